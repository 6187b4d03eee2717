"""Build the peers of issue 12 (Flux, Argo CD) from the Go module proxy, for `make bench` only.

Like the control-plane binaries: a throw-away wrapper go.mod per command that requires the
pinned module and copies its `replace` directives (a dependency's replaces are ignored by Go),
`GOTOOLCHAIN=local`, `GOFLAGS=-mod=mod`, the module proxy only (never `direct`), `nice -n 19`.
The binaries and the CRDs (from the same module version's zip) land in
`~/.cache/gitops-lab/peers/<peer>-<version>/{bin,crds}`; `build.json` there records the cold
build's time. `make test` never calls this.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gitops_lab.cluster.binaries import BinaryError
from gitops_lab.cluster.binaries import go_env as lab_go_env
from gitops_lab.paths import peers_dir

Progress = Callable[[str], None]


@dataclass(frozen=True)
class GoCommand:
    """One binary: `go build -o bin/NAME PACKAGE` in a wrapper that requires MODULE@VERSION."""

    name: str
    module: str
    version: str
    package: str
    crds: str = ""  # a folder of the module zip whose *.yaml are the CRDs ("" = none)
    ldflags: str = "-s -w"
    # extra `replace` lines: a dependency version the module proxy here does not serve,
    # swapped for the nearest one it does (named in the bench's note)
    replaces: tuple[str, ...] = ()
    main_go: str = ""  # a main package of our own in the wrapper (then PACKAGE is ".")
    links: tuple[str, ...] = ()  # further names for the binary (argv[0] dispatch)
    # (file in the module, old text, new text): the module is copied out of the module cache,
    # patched, and replaced by that copy (only to keep a listener on 127.0.0.1)
    patches: tuple[tuple[str, str, str], ...] = ()


def go_binary() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists()
                                else "")
    if not go:
        raise BinaryError("no Go toolchain on PATH")
    return go


def go_env(work: Path) -> dict[str, str]:
    """The lab's Go build environment, with this machine's Go whatever go.mod asks for."""
    env = lab_go_env(work)
    env["GOTOOLCHAIN"] = "local"
    return env


def _go(args: list[str], work: Path, env: dict[str, str], timeout: float = 900) -> str:
    out = subprocess.run([go_binary(), *args], cwd=work, env=env, capture_output=True,
                         text=True, timeout=timeout, check=False)
    if out.returncode:
        raise BinaryError(f"go {' '.join(args)}: " + (out.stderr or out.stdout).strip()[-400:])
    return out.stdout


def module_info(module: str, version: str, work: Path) -> dict[str, str]:
    """`go mod download -json MODULE@VERSION` (zip + go.mod into the module cache)."""
    work.mkdir(parents=True, exist_ok=True)
    env = go_env(work)
    out = subprocess.run([go_binary(), "mod", "download", "-json", f"{module}@{version}"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=600,
                         check=False)
    try:
        info: dict[str, str] = json.loads(out.stdout)
    except ValueError as exc:
        raise BinaryError(f"go mod download {module}@{version}: "
                          + (out.stderr or out.stdout).strip()[-300:]) from exc
    if info.get("Error"):
        raise BinaryError(info["Error"])
    return info


def go_directive_problem(gomod_text: str) -> str:
    """Why this Go cannot build a module with this go.mod ("" = it can)."""
    have = subprocess.run([go_binary(), "env", "GOVERSION"], capture_output=True, text=True,
                          check=False).stdout.strip().removeprefix("go")

    def key(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", v)[:3])

    need = re.search(r"^go\s+(\S+)", gomod_text, re.M)
    if need and key(need.group(1)) > key(have):
        return f"needs Go ≥ {need.group(1)} (go.mod), this machine has {have}"
    return ""


def replace_lines(gomod_text: str) -> list[str]:
    """The module's `replace` directives minus local paths (`=> ./api`: the published module
    of that version is used instead)."""
    lines: list[str] = []
    block = False
    for raw in gomod_text.splitlines():
        line = raw.split("//", 1)[0].strip()
        if block:
            if line == ")":
                block = False
            elif "=>" in line and not line.split("=>", 1)[1].strip().startswith("."):
                lines.append(line)
            continue
        if line.startswith("replace ("):
            block = True
        elif (line.startswith("replace ") and "=>" in line
              and not line.split("=>", 1)[1].strip().startswith(".")):
            lines.append(line.removeprefix("replace ").strip())
    return lines


def build_command(cmd: GoCommand, folder: Path, progress: Progress) -> float:
    """Build one command into FOLDER/bin (and its CRDs into FOLDER/crds); returns seconds."""
    start = time.monotonic()
    work = folder / "build" / cmd.name
    info = module_info(cmd.module, cmd.version, work)
    gomod = Path(info["GoMod"]).read_text()
    problem = go_directive_problem(gomod)
    if problem:
        raise BinaryError(f"{cmd.module}@{cmd.version} {problem}")
    go_line = re.search(r"^go\s+(\S+)", gomod, re.M)
    replaces = [*replace_lines(gomod), *cmd.replaces]
    if cmd.patches:
        src = work / "src"
        shutil.rmtree(src, ignore_errors=True)
        shutil.copytree(info["Dir"], src)
        for path in src.rglob("*"):
            path.chmod(path.stat().st_mode | 0o200)
        for file, old, new in cmd.patches:
            target = src / file
            text = target.read_text()
            if old not in text:
                raise BinaryError(f"patch for {cmd.module}@{cmd.version}: {old!r} not in {file}")
            target.write_text(text.replace(old, new))
        replaces.append(f"{cmd.module} => ./src")
    text = "\n".join([
        f"module gitops-lab/peer-build/{cmd.name}", "",
        f"go {go_line.group(1) if go_line else '1.25'}", "",
        f"require {cmd.module} {cmd.version}", "",
        *([ "replace (", *[f"\t{r}" for r in replaces], ")", ""] if replaces else []),
    ])
    (work / "go.mod").write_text(text)
    (work / "go.sum").unlink(missing_ok=True)
    if cmd.main_go:
        (work / "main.go").write_text(cmd.main_go)
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    env = go_env(work)
    log = work / "build.log"
    progress(f"building {cmd.name} ({cmd.module}@{cmd.version}); log: {log}")
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            ["nice", "-n", "19", go_binary(), "build", "-trimpath", "-ldflags", cmd.ldflags,
             "-o", str(bin_dir / cmd.name), cmd.package],
            cwd=work, env=env, stdout=sink, stderr=subprocess.STDOUT)
        while True:
            try:
                proc.wait(timeout=60)
                break
            except subprocess.TimeoutExpired:
                progress(f"  … {cmd.name}: {time.monotonic() - start:.0f} s")
    if proc.returncode:
        tail = log.read_text(errors="replace").strip().splitlines()[-6:]
        raise BinaryError(f"go build {cmd.package}@{cmd.version} failed (exit "
                          f"{proc.returncode}): " + " | ".join(tail)[-400:])
    for link in cmd.links:
        (bin_dir / link).unlink(missing_ok=True)
        (bin_dir / link).symlink_to(cmd.name)
    if cmd.crds:
        src = Path(info["Dir"]) / cmd.crds
        dest = folder / "crds"
        dest.mkdir(parents=True, exist_ok=True)
        for crd in sorted(src.glob("*.yaml")):
            if "kind: CustomResourceDefinition" in crd.read_text():
                shutil.copyfile(crd, dest / crd.name)
    seconds = time.monotonic() - start
    progress(f"  ✓ {cmd.name} in {seconds:.0f} s")
    return seconds


def ensure_built(folder: Path, commands: tuple[GoCommand, ...], progress: Progress) -> dict[str, float]:
    """Build whichever of COMMANDS is missing from FOLDER/bin; returns {name: seconds} of the
    builds done now, and records them (with the Go version) in FOLDER/build.json."""
    record_path = folder / "build.json"
    try:
        record: dict[str, float] = json.loads(record_path.read_text()).get("seconds", {})
    except (OSError, ValueError):
        record = {}
    done: dict[str, float] = {}
    todo = [c for c in commands
            if not all((folder / "bin" / n).is_file() for n in (c.name, *c.links))]
    if not todo:
        return done
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / "build.lock"
    try:
        holder = int(lock.read_text().strip() or 0)
    except (OSError, ValueError):
        holder = 0
    if holder and holder != os.getpid() and Path(f"/proc/{holder}").exists():
        raise BinaryError(f"another build of {folder.name} is running (pid {holder}); "
                          "run the bench again when it is done")
    lock.write_text(str(os.getpid()))
    try:
        for cmd in todo:
            done[cmd.name] = build_command(cmd, folder, progress)
    finally:
        lock.unlink(missing_ok=True)
    if done:
        record = {**build_record(folder), **done}  # another process may have built one meanwhile
        goversion = subprocess.run([go_binary(), "env", "GOVERSION"], capture_output=True,
                                   text=True, check=False).stdout.strip()
        folder.mkdir(parents=True, exist_ok=True)
        record_path.write_text(json.dumps({"seconds": record, "go": goversion}, indent=1))
    return done


def build_record(folder: Path) -> dict[str, float]:
    try:
        seconds: dict[str, float] = json.loads((folder / "build.json").read_text())["seconds"]
    except (OSError, ValueError, KeyError):
        return {}
    return seconds


FLUX_VERSION = "v1.9.6"  # the newest source-/kustomize-controller pair whose go.mod says go 1.26
FLUX = (
    GoCommand("source-controller", "github.com/fluxcd/source-controller", FLUX_VERSION,
              "github.com/fluxcd/source-controller", crds="config/crd/bases",
              # v0.18.3's zip is not served by the proxy here ("not available"); v0.18.0 is
              replaces=("github.com/fluxcd/pkg/artifact => github.com/fluxcd/pkg/artifact v0.18.0",)),
    GoCommand("kustomize-controller", "github.com/fluxcd/kustomize-controller", FLUX_VERSION,
              "github.com/fluxcd/kustomize-controller", crds="config/crd/bases"),
)


def flux_dir() -> Path:
    return peers_dir() / f"flux-{FLUX_VERSION}"


# The newest argo-cd/v3 whose go.mod accepts Go 1.26 is v3.5.7 (v3.6.0 says go 1.27), but its
# go.mod replaces gitops-engine with ./gitops-engine (a nested module, not in the zip) and the
# module proxy here serves gitops-engine only at the commits of v3.5.2 and v3.5.3 (the
# pseudo-versions' times are those releases' times): v3.5.3 is the newest buildable exactly.
ARGOCD_VERSION = "v3.5.3"
ARGOCD_GITOPS_ENGINE = "v0.0.0-20260914071520-c9c369efcc5b"
# only the two commands measured, not the whole `cmd` (CLI, API server, Dex, ...): the same
# argv[0] dispatch as argo-cd's cmd/main.go, over fewer packages
ARGOCD_MAIN = """package main

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	appcontroller "github.com/argoproj/argo-cd/v3/cmd/argocd-application-controller/commands"
	gitaskpass "github.com/argoproj/argo-cd/v3/cmd/argocd-git-ask-pass/commands"
	reposerver "github.com/argoproj/argo-cd/v3/cmd/argocd-repo-server/commands"
)

func main() {
	name := filepath.Base(os.Args[0])
	if val := os.Getenv("ARGOCD_BINARY_NAME"); val != "" {
		name = val
	}
	var command *cobra.Command
	switch name {
	case "argocd-application-controller":
		command = appcontroller.NewCommand()
	case "argocd-repo-server":
		command = reposerver.NewCommand()
	case "argocd-git-ask-pass":
		command = gitaskpass.NewCommand()
	default:
		os.Stderr.WriteString("call me as argocd-application-controller or argocd-repo-server\\n")
		os.Exit(2)
	}
	if err := command.Execute(); err != nil {
		os.Exit(1)
	}
}
"""
ARGOCD = (
    GoCommand("argocd", "github.com/argoproj/argo-cd/v3", ARGOCD_VERSION, ".",
              crds="manifests/crds", main_go=ARGOCD_MAIN,
              replaces=("github.com/argoproj/argo-cd/gitops-engine => "
                        f"github.com/argoproj/argo-cd/gitops-engine {ARGOCD_GITOPS_ENGINE}",),
              links=("argocd-application-controller", "argocd-repo-server",
                     "argocd-git-ask-pass"),
              # the application controller binds its metrics/health server to 0.0.0.0 (no
              # flag); servers here listen on 127.0.0.1 only
              patches=(("controller/appcontroller.go", 'fmt.Sprintf("0.0.0.0:%d", metricsPort)',
                        'fmt.Sprintf("127.0.0.1:%d", metricsPort)'),)),
)


def argocd_dir() -> Path:
    return peers_dir() / f"argocd-{ARGOCD_VERSION}"


if __name__ == "__main__":  # python -m bench.peerbuild flux|argocd: build ahead of a bench run
    import sys

    from bench.support import say

    which = sys.argv[1] if len(sys.argv) > 1 else "flux"
    if which == "flux":
        print(ensure_built(flux_dir(), FLUX, say))
    elif which == "argocd":
        print(ensure_built(argocd_dir(), ARGOCD, say))
