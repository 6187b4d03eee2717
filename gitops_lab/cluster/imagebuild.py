"""Building container images with nothing pulled from a registry: a Debian root filesystem by
debootstrap, FROM-scratch images, `docker import`, and the label that says what went in.
cluster/: the tools nodeimage.py (the kind node) and labimages.py (the course's images) share.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from gitops_lab.cluster.binaries import BinaryError, Progress
from gitops_lab.cluster.binaries import _run as _run_step

__all__ = [
    "INPUTS_LABEL",
    "NodeImageError",
    "debian_mirror",
    "debootstrap_rootfs",
    "docker_env",
    "docker_import",
    "image_label",
    "run_tool",
    "scratch_image",
    "tool_hint",
]

# Every image the lab builds carries a hash of its inputs here: rebuilt only when it changes.
INPUTS_LABEL = "io.gitops-lab.inputs"


class NodeImageError(BinaryError):
    """A piece of the node image is missing or failed to build; the message names it."""


def run_tool(cmd: list[str], what: str, *, cwd: Path | None = None, input: bytes | None = None,
             env: dict[str, str] | None = None) -> str:
    """Run one build tool; its stdout, or NodeImageError with the tail of its stderr."""
    try:
        out = subprocess.run(cmd, cwd=cwd, input=input, capture_output=True, env=env, check=False)
    except FileNotFoundError as exc:
        raise NodeImageError(f"{what}: {cmd[0]} is not installed; hint: {tool_hint(cmd[0])}") from exc
    if out.returncode != 0:
        tail = out.stderr.decode(errors="replace").strip().splitlines()[-12:]
        raise NodeImageError(f"{what} failed (exit {out.returncode}):\n" + "\n".join(tail))
    return out.stdout.decode(errors="replace")


def tool_hint(tool: str) -> str:
    """How to get a missing build tool on Debian."""
    return {
        "debootstrap": "apt-get install debootstrap",
        "docker": "apt-get install docker.io, then `gitops-lab docker start`",
        "containerd": "apt-get install containerd (Debian's docker.io brings it)",
        "ctr": "apt-get install containerd",
        "chroot": "coreutils provides chroot",
    }.get(tool, f"install {tool}")


def debian_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The Debian archive this machine's apt uses (deb822 or one-line sources)."""
    candidates: list[Path] = []
    if (sources / "sources.list").exists():
        candidates.append(sources / "sources.list")
    candidates += sorted((sources / "sources.list.d").glob("*.sources"))
    candidates += sorted((sources / "sources.list.d").glob("*.list"))
    for path in candidates:
        text = path.read_text(errors="replace")
        for uri in re.findall(r"^URIs:\s*(\S+)", text, re.M) + re.findall(
                r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+", text, re.M):
            if uri.rstrip("/").endswith("/debian"):
                return str(uri)
    raise NodeImageError(
        "no Debian archive found in /etc/apt/sources.list(.d); hint: the node image is built "
        "from Debian bookworm packages, so this machine's apt must reach a Debian mirror"
    )


def debootstrap_rootfs(target: Path, packages: tuple[str, ...], progress: Progress,
                       label: str) -> Path:
    """A Debian bookworm minbase root filesystem with PACKAGES, cached by package list."""
    done = target / ".gitops-lab-complete"
    if done.exists():
        return target
    if shutil.which("debootstrap") is None:
        raise NodeImageError(f"{label}: debootstrap is not installed; hint: apt-get install debootstrap")
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    progress(f"debootstrap bookworm for the {label} ({len(packages)} packages; cold: ~2 min)")
    # a heartbeat line every 30 s; the log is build.log beside the root filesystem
    _run_step(["debootstrap", "--variant=minbase", "--include=" + ",".join(packages),
               "bookworm", str(target), debian_mirror()],
              target.parent, dict(os.environ), progress, f"debootstrap {label}")
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for item in (target / junk).glob("*"):
            if item.is_file():
                item.unlink()
    done.write_text(" ".join(packages))
    return target


def image_label(image: str, label: str) -> str | None:
    """The value of LABEL on a local Docker image, None when the image or the label is absent."""
    out = subprocess.run(["docker", "image", "inspect", image, "--format",
                          "{{json .Config.Labels}}"], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return None
    labels = json.loads(out.stdout or "null") or {}
    value = labels.get(label)
    return str(value) if value is not None else None


def scratch_image(tag: str, files: dict[str, Path], entrypoint: list[str] | None,
                  extra: str = "") -> None:
    """`docker build` FROM scratch with FILES (path in image -> host file)."""
    with tempfile.TemporaryDirectory(prefix="gitops-lab-img-") as tmp:
        ctx = Path(tmp)
        lines = ["FROM scratch"]
        for index, (dest, src) in enumerate(files.items()):
            name = f"f{index}"
            if src.is_dir():
                shutil.copytree(src, ctx / name, symlinks=True)
            else:
                shutil.copy2(src, ctx / name)
            lines.append(f"COPY {name} {dest}")
        lines.append("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        if entrypoint:
            lines.append(f"ENTRYPOINT {json.dumps(entrypoint)}")
        if extra:
            lines.append(extra)
        (ctx / "Dockerfile").write_text("\n".join(lines) + "\n")
        run_tool(["docker", "build", "-q", "-t", tag, str(ctx)], f"docker build {tag}",
                 env=docker_env())


def docker_env() -> dict[str, str]:
    """The environment for `docker build`: the classic builder, which needs nothing pulled."""
    env = dict(os.environ)
    env["DOCKER_BUILDKIT"] = "0"  # the classic builder: FROM scratch needs nothing pulled
    return env


def docker_import(root: Path, image: str, changes: list[str], labels: dict[str, str],
                  stopsignal: str | None = None) -> None:
    """`tar | docker import` ROOT as IMAGE. docker 20.10's import cannot set STOPSIGNAL or
    labels, so a metadata-only classic build on top adds them."""
    raw = f"{image}-raw"
    tar = subprocess.Popen(
        ["tar", "-C", str(root), "--numeric-owner", "--exclude=./proc/*", "--exclude=./sys/*",
         "--exclude=./dev/*", "--exclude=./.gitops-lab-complete",
         # documentation nobody reads in a container: ~100 MB less to load into every node
         "--exclude=./usr/share/doc/*", "--exclude=./usr/share/man/*",
         "--exclude=./usr/share/info/*", "--exclude=./usr/share/locale/*",
         "-cf", "-", "."],
        stdout=subprocess.PIPE)
    cmd = ["docker", "import"]
    for change in changes:
        cmd += ["--change", change]
    imported = subprocess.run([*cmd, "-", raw], stdin=tar.stdout, capture_output=True, check=False)
    assert tar.stdout is not None
    tar.stdout.close()
    tar.wait()
    if imported.returncode != 0 or tar.returncode != 0:
        raise NodeImageError(f"docker import of {image} failed: "
                             + imported.stderr.decode(errors="replace").strip()[-800:])
    lines = [f"FROM {raw}"]
    if stopsignal:
        lines.append(f"STOPSIGNAL {stopsignal}")
    lines += [f"LABEL {key}={json.dumps(value)}" for key, value in labels.items()]
    run_tool(["docker", "build", "-q", "-t", image, "-"], f"labelling {image}",
             input=("\n".join(lines) + "\n").encode(), env=docker_env())
    subprocess.run(["docker", "rmi", raw], capture_output=True, check=False)
