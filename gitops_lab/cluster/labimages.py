"""The images the course runs on kind, built on this machine (nothing is pulled):

- `gitops-lab/guestbook:<version>` — the sample app (goapps/guestbook), FROM scratch, one
  static binary: 1.0.0 and 1.1.0 are good releases, 1.2.0-broken fails its readiness probe;
- `gitops-lab/agent:<version>` — the agent: a Debian bookworm root filesystem with python3 and
  git, the `gitops_lab` package and its runtime dependencies from PyPI, and kubectl (the agent
  renders Kustomize with `kubectl kustomize`).

Each carries a label with a hash of its inputs and is rebuilt only when they change. The
repository's Dockerfile builds the same agent image on machines that can pull python:3.11.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gitops_lab.cluster.binaries import Progress, ensure_binaries
from gitops_lab.cluster.gobuild import GUESTBOOK_VERSIONS, guestbook_binary
from gitops_lab.cluster.imagebuild import (
    INPUTS_LABEL,
    NodeImageError,
    debootstrap_rootfs,
    docker_env,
    docker_import,
    image_label,
    run_tool,
    scratch_image,
)
from gitops_lab.paths import cache_root

__all__ = [
    "AGENT_IMAGE",
    "AGENT_PACKAGES",
    "BASE_IMAGE",
    "GUESTBOOK_IMAGE",
    "agent_image",
    "base_image",
    "build_all",
    "guestbook_image",
    "lab_images",
]

GUESTBOOK_IMAGE = "gitops-lab/guestbook"
AGENT_IMAGE = "gitops-lab/agent:dev"
BASE_IMAGE = "gitops-lab/base:bookworm"
AGENT_PACKAGES = ("python3", "git", "ca-certificates")
# the agent needs neither Jupyter nor the widgets: only these runtime dependencies go in
_NOT_IN_AGENT = {"ipywidgets", "jupyterlab"}
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def guestbook_image(version: str, progress: Progress | None = None) -> str:
    """`gitops-lab/guestbook:VERSION` in Docker (built when missing or changed)."""
    say: Progress = progress or (lambda _line: None)
    binary = guestbook_binary(version, progress=say)
    tag = f"{GUESTBOOK_IMAGE}:{version}"
    digest = hashlib.sha256(binary.read_bytes()).hexdigest()[:16]
    if image_label(tag, INPUTS_LABEL) != digest:
        scratch_image(tag, {"/guestbook": binary}, ["/guestbook"],
                      extra=f"EXPOSE 8080\nUSER 65532:65532\nLABEL {INPUTS_LABEL}={digest}")
        say(f"built {tag}")
    return tag


def _agent_requirements() -> list[str]:
    import tomllib

    project = tomllib.loads((_PACKAGE_ROOT.parent / "pyproject.toml").read_text())["project"]
    deps = []
    for dep in project["dependencies"]:
        name = re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0]
        if name.lower() not in _NOT_IN_AGENT:
            deps.append(dep)
    return deps


def _source_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(_PACKAGE_ROOT.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(str(path.relative_to(_PACKAGE_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _site_packages(requirements: list[str], say: Progress) -> Path:
    """The agent's dependencies installed for Python 3.11 into a directory (cached by list)."""
    key = hashlib.sha256("\n".join(sorted(requirements)).encode()).hexdigest()[:12]
    target = cache_root() / "agent-image" / f"site-{key}"
    done = target / ".gitops-lab-complete"
    if done.exists():
        return target
    if target.exists():
        shutil.rmtree(target)
    started = time.monotonic()
    say(f"pip install the agent's dependencies ({len(requirements)}) for the agent image")
    out = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--target",
         str(target), "--only-binary=:all:", "--python-version", "3.11",
         "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64",
         "--implementation", "cp", *requirements],
        capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise NodeImageError("pip could not install the agent's dependencies: "
                             + out.stderr.strip()[-800:])
    for junk in target.glob("bin"):
        shutil.rmtree(junk, ignore_errors=True)
    done.write_text("\n".join(requirements))
    say(f"  ✓ agent dependencies in {time.monotonic() - started:.0f} s")
    return target


def base_image(progress: Progress | None = None) -> str:
    """`gitops-lab/base:bookworm`: Debian bookworm with python3 and git — the agent image's
    base, and the image of the lab's in-cluster Git server (`git daemon`)."""
    say: Progress = progress or (lambda _line: None)
    packages = hashlib.sha256(" ".join(AGENT_PACKAGES).encode()).hexdigest()[:8]
    inputs = hashlib.sha256(f"{packages} without docs".encode()).hexdigest()[:16]
    if image_label(BASE_IMAGE, INPUTS_LABEL) != inputs:
        rootfs = debootstrap_rootfs(cache_root() / "agent-image" / f"rootfs-{packages}",
                                    AGENT_PACKAGES, say, "agent image")
        docker_import(rootfs, BASE_IMAGE, [], {INPUTS_LABEL: inputs})
    return BASE_IMAGE


def agent_image(progress: Progress | None = None, image: str = AGENT_IMAGE) -> str:
    """The agent image in Docker, built from this installation of gitops_lab."""
    say: Progress = progress or (lambda _line: None)
    requirements = _agent_requirements()
    kubectl = ensure_binaries(say).path("kubectl")
    inputs = hashlib.sha256("\0".join(
        [_source_hash(), *requirements, *AGENT_PACKAGES,
         hashlib.sha256(kubectl.read_bytes()).hexdigest()]).encode()).hexdigest()[:16]
    if image_label(image, INPUTS_LABEL) == inputs:
        return image
    started = time.monotonic()
    base = base_image(say)
    site = _site_packages(requirements, say)
    with tempfile.TemporaryDirectory(prefix="gitops-lab-agent-") as tmp:
        ctx = Path(tmp)
        shutil.copytree(site, ctx / "site", symlinks=True,
                        ignore=shutil.ignore_patterns(".gitops-lab-complete"))
        shutil.copytree(_PACKAGE_ROOT, ctx / "site" / "gitops_lab",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copy2(kubectl, ctx / "kubectl")
        (ctx / "Dockerfile").write_text(f"""FROM {base}
COPY site /opt/gitops-lab/site
COPY kubectl /usr/local/bin/kubectl
ENV PYTHONPATH=/opt/gitops-lab/site HOME=/tmp GITOPS_LAB_CACHE=/tmp/gitops-lab \\
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /tmp
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["python3", "-m", "gitops_lab"]
CMD ["agent", "run", "--in-cluster", "--namespace", "gitops-lab", "--http-address", "0.0.0.0:8080"]
LABEL {INPUTS_LABEL}={inputs}
""")
        run_tool(["docker", "build", "-q", "-t", image, str(ctx)], f"docker build {image}",
                 env=docker_env())
    say(f"built {image} in {time.monotonic() - started:.0f} s")
    return image


def lab_images(progress: Progress | None = None) -> list[str]:
    """Every image the course runs on kind: the agent and each guestbook release."""
    images = [agent_image(progress), base_image(progress)]
    images += [guestbook_image(version, progress) for version in GUESTBOOK_VERSIONS]
    return images




def build_all(progress: Progress | None = None) -> list[str]:
    """The kind node image and the course's images (what `make kind-images` runs), so that
    the first `cluster up --provider kind` does not spend ~10 minutes building."""
    import sys

    from gitops_lab.cluster.nodeimage import ensure_node_image

    say: Progress = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    started = time.monotonic()
    images = [ensure_node_image(say), *lab_images(say)]
    say(f"kind images ready in {time.monotonic() - started:.0f} s: {', '.join(images)}")
    return images
