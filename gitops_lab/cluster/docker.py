"""Docker for the kind provider: is a daemon answering, and — on a bare Debian machine with
Debian's docker.io installed but no service manager — start one and stop it again.

`gitops-lab docker start` is the one documented way (`.ci/run` uses it). What it handles:
- hosts whose root lacks CAP_SYS_RESOURCE in its bounding set (some VMs and sandboxes):
  `docker run --privileged`, which kind needs, fails there, so the daemon's default runtime
  becomes a runc wrapper that drops that one capability from each container's spec. Where
  the capability is present (laptops, Docker Desktop) the stock runc is used.
- a kind node runs privileged and its kubelet changes a few host-wide sysctls; they are
  recorded when the daemon starts and restored by `restore_host()` when the lab's cluster
  goes down.
- what Docker leaves behind after `stop`: the docker0 bridge and its iptables chains.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from gitops_lab.paths import dockerd_dir

__all__ = [
    "HOST_SYSCTLS",
    "NOSYSRES_RUNTIME",
    "DockerError",
    "docker_available",
    "docker_binary",
    "lacks_sys_resource",
    "record_host_sysctls",
    "restore_host_sysctls",
    "runc_wrapper_script",
    "start_dockerd",
    "stop_dockerd",
]

CAP_SYS_RESOURCE = 24
NOSYSRES_RUNTIME = "gitops-lab-nosysres"
# What a kind node's kubelet sets on the host (it runs privileged); restored on cluster down.
HOST_SYSCTLS = (
    "vm.overcommit_memory",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)


class DockerError(RuntimeError):
    """The Docker daemon could not be started or reached; the message has a hint."""


def docker_binary() -> str | None:
    return shutil.which("docker")


def docker_available(timeout: float = 5.0) -> bool:
    """True when a Docker daemon answers (the client alone is not enough)."""
    docker = docker_binary()
    if docker is None:
        return False
    try:
        out = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and bool(out.stdout.strip())


def lacks_sys_resource(status_file: Path = Path("/proc/self/status")) -> bool:
    """True where this process's bounding set has no CAP_SYS_RESOURCE (then runc cannot grant
    it to a privileged container and `docker run --privileged` fails)."""
    try:
        for line in status_file.read_text().splitlines():
            if line.startswith("CapBnd:"):
                return not (int(line.split()[1], 16) >> CAP_SYS_RESOURCE) & 1
    except (OSError, ValueError, IndexError):
        pass
    return False


def runc_wrapper_script(runc: str = "/usr/sbin/runc") -> str:
    """A runc wrapper that removes CAP_SYS_RESOURCE from the OCI spec of `create`/`run`
    (bundle/config.json) and of `exec` (--process FILE), then runs the real runc. Needs bash
    and jq, both on the host (docker.io pulls jq in via .ci/run) and in the lab's node image."""
    return f"""#!/bin/bash
# gitops-lab: drop CAP_SYS_RESOURCE, which this host's root cannot grant, from runc specs.
bundle="" process="" previous=""
for arg in "$@"; do
  case "$previous" in --bundle|-b) bundle="$arg" ;; --process|-p) process="$arg" ;; esac
  case "$arg" in --bundle=*) bundle="${{arg#--bundle=}}" ;; --process=*) process="${{arg#--process=}}" ;; esac
  previous="$arg"
done
drop() {{
  local file="$1" path="$2"
  [ -f "$file" ] || return 0
  local keep='map(select(. != "CAP_SYS_RESOURCE"))'
  jq -c "if $path then $path |= with_entries(.value |= $keep) else . end" "$file" \\
    > "$file.gitops-lab" && cat "$file.gitops-lab" > "$file" && rm -f "$file.gitops-lab"
}}
[ -n "$bundle" ] && drop "$bundle/config.json" .process.capabilities
[ -n "$process" ] && drop "$process" .capabilities
exec {runc} "$@"
"""


def _state() -> Path:
    return dockerd_dir()


def _sysctl_file() -> Path:
    return _state() / "host-sysctls.json"


def record_host_sysctls() -> None:
    """Remember the host sysctls a kind node may change (only the first recording counts, so
    a second `cluster up` never records the values a running node already set)."""
    path = _sysctl_file()
    if path.exists():
        return
    values = {"/lib/modules": "present" if Path("/lib/modules").exists() else "absent"}
    for key in HOST_SYSCTLS:
        proc = Path("/proc/sys") / key.replace(".", "/")
        try:
            values[key] = proc.read_text().strip()
        except OSError:
            continue
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))


def restore_host_sysctls() -> dict[str, str]:
    """Put back what `record_host_sysctls` saw; returns what was changed back."""
    path = _sysctl_file()
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    restored = {}
    if values.pop("/lib/modules", "present") == "absent":
        # kind bind-mounts the host's /lib/modules; Docker created it empty: remove it again
        with contextlib.suppress(OSError):
            Path("/lib/modules").rmdir()
            restored["/lib/modules"] = "removed"
    for key, value in values.items():
        proc = Path("/proc/sys") / key.replace(".", "/")
        try:
            if proc.read_text().strip() != value:
                proc.write_text(value)
                restored[key] = value
        except OSError:
            continue
    path.unlink(missing_ok=True)
    return restored


def _pidfile() -> Path:
    return _state() / "dockerd.pid"


def start_dockerd(timeout: float = 60.0) -> str:
    """Start Debian's dockerd by hand (no systemd needed) unless a daemon already answers.
    Returns a one-line description of what answers."""
    if docker_available():
        return "a Docker daemon already answers; nothing started"
    dockerd = shutil.which("dockerd")
    if dockerd is None or docker_binary() is None:
        raise DockerError(
            "dockerd is not installed; hint: on Debian/Ubuntu `apt-get install docker.io`, "
            "elsewhere install Docker Engine or Docker Desktop"
        )
    state = _state()
    state.mkdir(parents=True, exist_ok=True)
    record_host_sysctls()
    cmd = [dockerd, "--pidfile", str(_pidfile()), "--exec-root", "/run/gitops-lab-docker"]
    if lacks_sys_resource():
        runc = shutil.which("runc") or "/usr/sbin/runc"
        if shutil.which("jq") is None:
            raise DockerError("jq is needed by the runc wrapper; hint: apt-get install jq")
        wrapper = state / "runc-nosysres"
        wrapper.write_text(runc_wrapper_script(runc))
        wrapper.chmod(0o755)
        cmd += [f"--add-runtime={NOSYSRES_RUNTIME}={wrapper}", f"--default-runtime={NOSYSRES_RUNTIME}"]
    log = state / "dockerd.log"
    with log.open("ab") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").splitlines()[-10:]
            raise DockerError("dockerd exited while starting; log " + str(log) + ":\n" + "\n".join(tail))
        if docker_available(timeout=3):
            how = " with the CAP_SYS_RESOURCE runc wrapper" if lacks_sys_resource() else ""
            return f"dockerd started (pid {proc.pid}){how}; log {log}"
        time.sleep(0.5)
    raise DockerError(f"dockerd did not answer within {timeout:.0f} s; hint: see {log}")


def _cleanup_network() -> list[str]:
    """Remove the docker0 bridge and Docker's iptables chains once the daemon is gone."""
    done = []
    if shutil.which("ip") and Path("/sys/class/net/docker0").exists():
        subprocess.run(["ip", "link", "delete", "docker0"], capture_output=True, check=False)
        done.append("docker0")
    iptables = shutil.which("iptables")
    if iptables:
        for table, chains in (("nat", ["DOCKER"]),
                              ("filter", ["DOCKER-USER", "DOCKER-ISOLATION-STAGE-1",
                                          "DOCKER-ISOLATION-STAGE-2", "DOCKER"])):
            rules = subprocess.run([iptables, "-t", table, "-S"], capture_output=True, text=True,
                                   check=False).stdout.splitlines()
            # rules in the built-in chains that jump to Docker's chains, then the chains
            for rule in rules:
                parts = rule.split()
                if parts[:1] == ["-A"] and "-j" in parts and parts[parts.index("-j") + 1] in chains \
                        and parts[1] not in chains:
                    subprocess.run([iptables, "-t", table, "-D", *parts[1:]],
                                   capture_output=True, check=False)
            for chain in chains:
                if any(r.split()[:2] == ["-N", chain] for r in rules):
                    subprocess.run([iptables, "-t", table, "-F", chain], capture_output=True, check=False)
                    subprocess.run([iptables, "-t", table, "-X", chain], capture_output=True, check=False)
                    done.append(f"iptables {table}/{chain}")
    return done


def stop_dockerd(timeout: float = 30.0) -> str:
    """Stop the daemon `start_dockerd` started (never one it did not start), restore the host
    sysctls and remove Docker's bridge and iptables chains."""
    try:
        pid = int(_pidfile().read_text().strip())
    except (OSError, ValueError):
        restored = restore_host_sysctls()
        return "no dockerd started by gitops-lab" + (f"; restored {', '.join(restored)}" if restored else "")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
    _pidfile().unlink(missing_ok=True)
    restored = restore_host_sysctls()
    cleaned = _cleanup_network()
    parts = [f"dockerd (pid {pid}) stopped"]
    if restored:
        parts.append("restored " + ", ".join(f"{k}={v}" for k, v in restored.items()))
    if cleaned:
        parts.append("removed " + ", ".join(cleaned))
    return "; ".join(parts)
