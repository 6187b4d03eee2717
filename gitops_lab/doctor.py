"""`gitops-lab doctor`: what is installed and what is missing here, and how to get it.
Sits beside the CLI (which only prints it) over cluster/ (binaries, Docker) and paths.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from gitops_lab.cluster.binaries import BINARIES, binary_version, expected_version
from gitops_lab.cluster.docker import docker_available, lacks_sys_resource
from gitops_lab.paths import bin_dir

__all__ = ["GO_MINIMUM", "Check", "doctor_checks", "lab_can_run", "render", "verdict"]

GO_MINIMUM = (1, 25)


@dataclass
class Check:
    label: str
    ok: bool
    found: str
    hint: str = ""
    required: bool = True


def _tool_version(cmd: list[str]) -> str | None:
    exe = shutil.which(cmd[0])
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, *cmd[1:]], capture_output=True, text=True, timeout=15, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return f"{text[0] if text else '?'} ({exe})"


def _go_ok(found: str | None) -> bool:
    match = re.search(r"go(\d+)\.(\d+)", found or "")
    return match is not None and (int(match[1]), int(match[2])) >= GO_MINIMUM


def _chromium() -> str | None:
    for exe in ("chromium", "chromium-browser", "google-chrome", "chrome", "headless_shell"):
        path = shutil.which(exe)
        if path:
            return path
    default = Path.home() / ".cache" / "ms-playwright"
    browsers = Path(os.environ.get("PLAYWRIGHT_BROWSERS_PATH", default))
    for pattern in ("chromium*/chrome-linux*/chrome", "chromium_headless_shell*/*/headless_shell"):
        for found in sorted(browsers.glob(pattern)):
            return str(found)
    return None


def doctor_checks() -> list[Check]:
    checks: list[Check] = []
    py = sys.version_info
    checks.append(Check(
        "python", py[:2] == (3, 11), f"{platform.python_version()} ({sys.executable})",
        "the lab is tested on Python 3.11: `make setup` makes .venv with python3.11",
    ))
    directory = bin_dir()
    with ThreadPoolExecutor(max_workers=4) as pool:
        versions = list(pool.map(
            lambda n: binary_version(directory / n) if (directory / n).is_file() else None,
            BINARIES,
        ))
    go_found = _tool_version(["go", "version"])
    go_ok = _go_ok(go_found)
    for name, version in zip(BINARIES, versions, strict=True):
        want = expected_version(name)
        ok = version is not None and version.startswith(want)
        found = f"{version} ({directory / name})" if version else "missing"
        if version and not ok:
            found = f"{version}, want {want} ({directory / name})"
        build = "`make setup` builds it with Go (cold: ~6–7 min on 2 cores)"
        if not go_ok:
            build = "install Go 1.25+ first, then `make setup` builds it"
        checks.append(Check(name, ok, found, build))
    checks.append(Check(
        "go", go_ok, go_found or "missing",
        "Go 1.25+ builds the control-plane binaries: https://go.dev/doc/install "
        "(or conda-forge `go`)",
        required=not all(c.ok for c in checks if c.label in BINARIES),
    ))
    git = _tool_version(["git", "--version"])
    checks.append(Check("git", git is not None, git or "missing",
                        "`apt-get install git` (or conda-forge `git`)"))
    docker = docker_available()
    dockerd = shutil.which("dockerd")
    checks.append(Check(
        "docker daemon", docker, "answers" if docker else "no daemon answers `docker info`",
        "optional, for the kind provider (real pods): `gitops-lab docker start` starts "
        + ("the installed dockerd" if dockerd else
           "Debian's dockerd after `apt-get install docker.io`")
        + "; or start Docker Desktop",
        required=False,
    ))
    if docker and lacks_sys_resource():
        checks.append(Check(
            "CAP_SYS_RESOURCE", False, "missing in root's bounding set (a VM or sandbox)",
            "handled: privileged containers go through the lab's runc wrapper "
            "(`gitops-lab docker start` sets it up; so does the lab's node image)",
            required=False,
        ))
    builders = [t for t in ("debootstrap", "containerd", "jq") if shutil.which(t) is None]
    checks.append(Check(
        "kind node image", not builders,
        "buildable here (gitops-lab/node, from Debian packages and Go modules)" if not builders
        else f"cannot be built here: missing {', '.join(builders)}",
        "optional: `apt-get install debootstrap containerd jq` to build it offline; else "
        "kind uses the stock kindest/node, which Docker must be able to pull",
        required=False,
    ))
    checks.append(Check(
        "kind provider", docker and versions[BINARIES.index("kind")] is not None,
        "usable" if docker else "unavailable (needs a Docker daemon)",
        "optional: start Docker to use `--provider kind`", required=False,
    ))
    registry = shutil.which("docker-registry") or shutil.which("registry")
    checks.append(Check(
        "docker-registry", registry is not None, registry or "missing",
        "optional: the lab's OCI registry (image updates); `apt-get install docker-registry`",
        required=False,
    ))
    skopeo = _tool_version(["skopeo", "--version"])
    checks.append(Check(
        "skopeo", skopeo is not None, skopeo or "missing",
        "optional: inspect and copy the lab's images; `apt-get install skopeo`", required=False,
    ))
    chromium = _chromium()
    checks.append(Check(
        "chromium", chromium is not None, chromium or "missing",
        "optional: browser tests only; `apt-get install chromium`", required=False,
    ))
    return checks


def lab_can_run(checks: Sequence[Check]) -> bool:
    return all(c.ok for c in checks if c.required)


def render(check: Check) -> str:
    """One check as `doctor` prints it: mark, label, what was found and, when not ok, the hint."""
    mark = "ok" if check.ok else ("MISSING" if check.required else "absent")
    line = f"{mark:<8} {check.label:<24} {check.found}"
    if not check.ok and check.hint:
        line += f"\n{'':<9}→ {check.hint}"
    return line


def verdict(checks: Sequence[Check]) -> tuple[bool, str]:
    """Can the local lab run here, and the sentence that says so (or what is missing)."""
    if lab_can_run(checks):
        toolchain = [c for c in checks if c.label in BINARIES]
        how = "ready" if all(c.ok for c in toolchain) else "binaries will be built on first `up`"
        return True, f"the local lab can run ({how}): `gitops-lab cluster up --provider local`"
    missing = ", ".join(c.label for c in checks if c.required and not c.ok)
    return False, f"the local lab cannot run here: missing {missing}"
