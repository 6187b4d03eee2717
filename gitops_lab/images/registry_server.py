"""The lab's OCI registry: a real Distribution registry (`docker-registry serve`) on 127.0.0.1,
its storage under the lab's cache, notifications POSTed to the agent's /registry-webhook.
`gitops-lab registry up|down|status` and `lab.registry` drive it; a state file remembers it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gitops_lab.paths import registry_dir

__all__ = ["DEFAULT_PORT", "LabRegistry", "RegistryServerError", "registry_binary"]

HOST = "127.0.0.1"
DEFAULT_PORT = 5001


class RegistryServerError(RuntimeError):
    """The registry could not be started; the message says why and what to do."""


def registry_binary() -> str:
    for name in ("docker-registry", "registry"):
        found = shutil.which(name)
        if found:
            return found
    if Path("/usr/bin/docker-registry").is_file():
        return "/usr/bin/docker-registry"
    raise RegistryServerError(
        "the Distribution registry binary (docker-registry) is not installed; hint: "
        "`apt-get install docker-registry` (Debian/Ubuntu)")


def _answers(port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


@dataclass(frozen=True)
class RegistryStatus:
    name: str
    running: bool
    address: str  # host:port, "" when not running
    pid: int
    notify: str
    root: str
    log: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class LabRegistry:
    """One named registry: `up()` (idempotent) → "127.0.0.1:PORT", `down()`, `status()`."""

    def __init__(self, name: str = "gitops-lab", root: Path | None = None) -> None:
        self.name = name
        self.root = Path(root) if root is not None else registry_dir(name)
        self.state_file = self.root / "state.json"
        self.config_file = self.root / "config.yml"
        self.log_file = self.root / "registry.log"
        self.data_dir = self.root / "data"

    # ---- state -------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_file.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _ours(self, pid: int) -> bool:
        return bool(pid) and _alive(pid) and str(self.config_file) in _cmdline(pid)

    def status(self) -> RegistryStatus:
        state = self._state()
        pid = int(state.get("pid") or 0)
        port = int(state.get("port") or 0)
        running = self._ours(pid) and _answers(port)
        return RegistryStatus(self.name, running, f"{HOST}:{port}" if running else "", pid,
                              str(state.get("notify") or ""), str(self.root), str(self.log_file))

    @property
    def address(self) -> str:
        return self.status().address

    # ---- config ------------------------------------------------------------------------------
    def _config(self, port: int, notify: str) -> dict[str, Any]:
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.data_dir)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": f"{HOST}:{port}", "headers": {"X-Content-Type-Options": ["nosniff"]}},
        }
        if notify:
            config["notifications"] = {
                "events": {"includereferences": False},
                "endpoints": [{
                    "name": "gitops-lab-agent",
                    "url": notify,
                    "timeout": "2s",
                    "threshold": 5,
                    "backoff": "1s",
                    # blob uploads and pulls are noise: only manifest pushes name a new tag
                    "ignoredmediatypes": ["application/octet-stream"],
                    "ignore": {"actions": ["pull"]},
                }],
            }
        return config

    # ---- lifecycle ---------------------------------------------------------------------------
    def up(self, port: int | None = None, notify: str | None = None,
           timeout: float = 15.0) -> str:
        """Start the registry (or keep the running one) and return its `host:port`.

        `notify` is the URL notifications go to (the agent's /registry-webhook); None keeps
        what it was. A running registry is restarted only when `notify` changes (same port).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.status()
            want_notify = current.notify if notify is None else notify
            if current.running and want_notify == current.notify and \
                    (port is None or current.address.endswith(f":{port}")):
                return current.address
            if current.running:
                port = port or int(current.address.rsplit(":", 1)[1])
                self._stop(current.pid, port)
            return self._start(port, want_notify, timeout)

    def _start(self, port: int | None, notify: str, timeout: float) -> str:
        binary = registry_binary()
        if port is None:
            port = DEFAULT_PORT if not _answers(DEFAULT_PORT) else _free_port()
        elif _answers(port):
            raise RegistryServerError(f"{HOST}:{port} is already in use by another process; "
                                      "hint: pick another --port, or omit it for a free one")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(yaml.safe_dump(self._config(port, notify), sort_keys=False))
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen([binary, "serve", str(self.config_file)],
                                    stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if _answers(port, 0.2):
                state = {"pid": proc.pid, "port": port, "notify": notify,
                         "root": str(self.root), "config": str(self.config_file)}
                tmp = self.state_file.with_suffix(".tmp")
                tmp.write_text(json.dumps(state))
                tmp.replace(self.state_file)
                return f"{HOST}:{port}"
            time.sleep(0.05)
        if proc.poll() is None:
            self._stop(proc.pid)
        tail = ""
        with contextlib.suppress(OSError), open(self.log_file, "rb") as fh:
            fh.seek(offset)
            tail = " ".join(fh.read().decode(errors="replace").strip().splitlines()[-3:])
        raise RegistryServerError(f"the registry did not answer on {HOST}:{port} within "
                                  f"{timeout:g}s: {tail or 'no output'}; hint: see "
                                  f"{self.log_file}")

    @staticmethod
    def _stop(pid: int, port: int = 0, timeout: float = 5.0) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        # a Go program's main thread turns zombie before its other threads let go of the port
        while (_alive(pid) or (port and _answers(port, 0.1))) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            time.sleep(0.1)

    def down(self) -> bool:
        """Stop the registry (its storage stays); False when none was running. Idempotent."""
        state = self._state()
        pid = int(state.get("pid") or 0)
        was = self._ours(pid)
        if was:
            self._stop(pid, int(state.get("port") or 0))
        self.state_file.unlink(missing_ok=True)
        return was

    def purge(self) -> None:
        """Stop it and delete its storage."""
        self.down()
        shutil.rmtree(self.root, ignore_errors=True)
