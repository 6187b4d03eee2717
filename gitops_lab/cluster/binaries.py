"""Control-plane binaries: find them in the versioned cache or build them with Go.
Sits under cluster/: the local provider and `gitops-lab env` ask here for a bin directory.

No container registry is reachable on the lab machines, so the Kubernetes release the lab
pins is built from the Go module proxy: a throw-away wrapper module requires
k8s.io/kubernetes and replaces each staging module (k8s.io/api, k8s.io/client-go, ...) with
its published v0.X.Y release, which is how kubernetes/kubernetes#79384 documents it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gitops_lab.paths import KUBERNETES_VERSION, bin_dir, build_dir, cache_root

__all__ = [
    "BINARIES",
    "ETCD_VERSION",
    "KIND_VERSION",
    "KUBERNETES_VERSION",
    "KWOK_VERSION",
    "BinaryError",
    "Toolchain",
    "binary_version",
    "ensure_binaries",
    "expected_version",
    "find_binaries",
]

ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"
KIND_VERSION = "v0.33.0"

KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
BINARIES = (*KUBE_BINARIES, "etcd", "kwok", "kind")

Progress = Callable[[str], None]


class BinaryError(RuntimeError):
    """A control-plane binary is missing and cannot be built here."""


@dataclass(frozen=True)
class Toolchain:
    """Where the binaries live and which versions they report."""

    bin_dir: Path
    versions: dict[str, str]

    def path(self, name: str) -> Path:
        return self.bin_dir / name


def expected_version(name: str) -> str:
    """The version the lab pins for one of BINARIES (what `gitops-lab doctor` compares with)."""
    if name in KUBE_BINARIES or name in ("kubelet", "kubeadm", "kube-proxy"):
        return KUBERNETES_VERSION
    return {"etcd": ETCD_VERSION, "kwok": KWOK_VERSION, "kind": KIND_VERSION}[name]


def _version_args(name: str) -> list[str]:
    if name == "kubectl":
        return ["version", "--client"]
    if name == "kind":
        return ["version"]
    if name == "kubeadm":
        return ["version", "-o", "short"]
    return ["--version"]


def binary_version(path: Path) -> str | None:
    """The version string a binary prints, or None when it does not run."""
    name = path.name
    try:
        out = subprocess.run(
            [str(path), *_version_args(name)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = out.stdout + out.stderr
    match = re.search(r"v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)", text)
    if not match:
        return None
    return "v" + match.group(1)


def find_binaries(directory: Path | None = None) -> Toolchain | None:
    """The cached toolchain when every binary is present and reports the pinned version."""
    directory = directory or bin_dir()
    versions: dict[str, str] = {}
    for name in BINARIES:
        path = directory / name
        if not path.is_file():
            return None
        version = binary_version(path)
        if version is None or not version.startswith(expected_version(name)):
            return None
        versions[name] = version
    return Toolchain(directory, versions)


def _missing(directory: Path) -> list[str]:
    return _missing_in(directory, BINARIES)


def _missing_in(directory: Path, names: tuple[str, ...]) -> list[str]:
    """NAMES whose binary in DIRECTORY is absent or reports another version than pinned."""
    missing = []
    for name in names:
        path = directory / name
        version = binary_version(path) if path.is_file() else None
        if version is None or not version.startswith(expected_version(name)):
            missing.append(name)
    return missing


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise BinaryError(
            "Go is not installed and the control-plane binaries are not in "
            f"{bin_dir()}; hint: install Go 1.25+ (apt-get install golang-go is too old on "
            "Debian 12; use the official toolchain), or install conda-forge's "
            "kubernetes-server and etcd and point GITOPS_LAB_CACHE at them, or use "
            "--provider kind on a machine with Docker."
        )
    return go


def go_env(work: Path) -> dict[str, str]:
    """The environment every Go build of the lab runs with: module mode, no cgo, the lab's
    build cache, and the machine's GOPROXY minus `direct` (see offline_goproxy)."""
    env = dict(os.environ)
    env.setdefault("GOTOOLCHAIN", "local")
    env["CGO_ENABLED"] = "0"
    env["GOFLAGS"] = "-mod=mod -buildvcs=false"
    env.setdefault("GOCACHE", str(cache_root() / "go-build"))
    env["GOWORK"] = "off"
    env["GOPROXY"] = offline_goproxy(env.get("GOPROXY", ""))
    env["PWD"] = str(work)
    return env


_go_env = go_env  # the name nodeimage.py imports (its text is part of the node image's hash)


def offline_goproxy(value: str) -> str:
    """The GOPROXY list minus `direct` (and `off`): a module the proxy lacks must fail the
    build, never send Go to the module's own host."""
    if not value:
        value = subprocess.run(["go", "env", "GOPROXY"], capture_output=True, text=True,
                               check=False).stdout.strip()
    proxies = [p for p in re.split(r"[,|]", value) if p.strip() not in ("", "direct", "off")]
    if not proxies:
        raise BinaryError(
            f"GOPROXY={value!r} names no module proxy; hint: set GOPROXY to the proxy this "
            "machine reaches (Go may not fetch modules from their origin hosts here)"
        )
    return ",".join(proxies)


def _run(cmd: list[str], cwd: Path, env: dict[str, str], progress: Progress, label: str) -> None:
    """Run a build step, printing a heartbeat every 30 s so long builds show they are alive."""
    start = time.monotonic()
    log = cwd / "build.log"
    with log.open("ab") as sink:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT)
        while True:
            try:
                proc.wait(timeout=30)
                break
            except subprocess.TimeoutExpired:
                progress(f"  … {label}: {int(time.monotonic() - start)} s")
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-25:]
        raise BinaryError(
            f"{label} failed (exit {proc.returncode}); log: {log}\n" + "\n".join(tail)
        )
    progress(f"  ✓ {label} in {time.monotonic() - start:.0f} s")


def _staging_modules(go: str, work: Path, env: dict[str, str]) -> list[str]:
    subprocess.run(
        [go, "mod", "download", f"k8s.io/kubernetes@{KUBERNETES_VERSION}"],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
    )
    modcache = subprocess.run(
        [go, "env", "GOMODCACHE"], cwd=work, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    gomod = Path(modcache) / "cache/download/k8s.io/kubernetes/@v" / f"{KUBERNETES_VERSION}.mod"
    staged = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", gomod.read_text(), re.M)
    if not staged:
        raise BinaryError(f"no staging replace lines found in {gomod}")
    return sorted(set(staged))


def _build_kubernetes(out: Path, progress: Progress,
                      names: tuple[str, ...] = KUBE_BINARIES) -> None:
    """Build NAMES (commands of k8s.io/kubernetes/cmd) of the pinned release into OUT."""
    go = _go()
    work = build_dir(f"kubernetes-{KUBERNETES_VERSION}")
    work.mkdir(parents=True, exist_ok=True)
    env = go_env(work)
    staging = _staging_modules(go, work, env)
    minor = KUBERNETES_VERSION.split(".")[1]
    staging_version = f"v0.{minor}.{KUBERNETES_VERSION.split('.')[2]}"
    lines = [
        "module gitops-lab/kubernetes-build",
        "",
        "go 1.25",
        "",
        f"require k8s.io/kubernetes {KUBERNETES_VERSION}",
        "",
        "replace (",
        *[f"\t{mod} => {mod} {staging_version}" for mod in staging],
        ")",
        "",
    ]
    (work / "go.mod").write_text("\n".join(lines))
    ldflags = " ".join(
        [
            "-s -w",
            f"-X k8s.io/component-base/version.gitVersion={KUBERNETES_VERSION}",
            "-X k8s.io/component-base/version.gitMajor=1",
            f"-X k8s.io/component-base/version.gitMinor={minor}",
            "-X k8s.io/component-base/version.gitTreeState=clean",
            f"-X k8s.io/client-go/pkg/version.gitVersion={KUBERNETES_VERSION}",
        ]
    )
    todo = _missing_in(out, names)
    pkgs = [f"k8s.io/kubernetes/cmd/{name}" for name in todo]
    progress(f"building {', '.join(todo)} {KUBERNETES_VERSION} (cold: about 2-5 min on 2 cores)")
    _run(
        [go, "build", "-trimpath", "-ldflags", ldflags, "-o", str(out) + "/", *pkgs],
        work,
        env,
        progress,
        f"go build kubernetes {KUBERNETES_VERSION}",
    )


def _build_etcd(out: Path, progress: Progress) -> None:
    go = _go()
    work = build_dir(f"etcd-{ETCD_VERSION}")
    work.mkdir(parents=True, exist_ok=True)
    env = go_env(work)
    (work / "go.mod").write_text(
        "module gitops-lab/etcd-build\n\ngo 1.25\n\n"
        f"require go.etcd.io/etcd/server/v3 {ETCD_VERSION}\n"
    )
    progress(f"building etcd {ETCD_VERSION}")
    _run(
        [go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out / "etcd"),
         "go.etcd.io/etcd/server/v3"],
        work,
        env,
        progress,
        f"go build etcd {ETCD_VERSION}",
    )


def _install(module: str, version: str, out: Path, progress: Progress, ldflags: str) -> None:
    go = _go()
    work = build_dir("install")
    work.mkdir(parents=True, exist_ok=True)
    env = go_env(work)
    env["GOBIN"] = str(out)
    env["GOFLAGS"] = "-buildvcs=false"
    progress(f"installing {module}@{version}")
    _run(
        [go, "install", "-trimpath", "-ldflags", ldflags, f"{module}@{version}"],
        work,
        env,
        progress,
        f"go install {module}@{version}",
    )


def ensure_binaries(progress: Progress | None = None) -> Toolchain:
    """Return the pinned toolchain, building whatever is missing (idempotent; warm = seconds)."""
    say: Progress = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    out = bin_dir()
    found = find_binaries(out)
    if found is not None:
        return found
    out.mkdir(parents=True, exist_ok=True)
    missing = _missing(out)
    start = time.monotonic()
    say(f"control-plane binaries missing in {out}: {', '.join(missing)}")
    if any(name in KUBE_BINARIES for name in missing):
        _build_kubernetes(out, say)
    if "etcd" in missing:
        _build_etcd(out, say)
    if "kwok" in missing:
        _install(
            "sigs.k8s.io/kwok/cmd/kwok",
            KWOK_VERSION,
            out,
            say,
            f"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version={KWOK_VERSION}",
        )
    if "kind" in missing:
        _install("sigs.k8s.io/kind", KIND_VERSION, out, say, "-s -w")
    found = find_binaries(out)
    if found is None:
        raise BinaryError(
            f"built binaries in {out} but these still do not report the pinned versions: "
            f"{', '.join(_missing(out))}"
        )
    say(f"control-plane binaries ready in {time.monotonic() - start:.0f} s: {out}")
    return found
