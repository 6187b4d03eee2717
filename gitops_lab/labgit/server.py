"""The lab's loopback Git server: `git daemon` on 127.0.0.1 serving bare repos, push enabled.
labgit/: the lab's "Git side" — tests and notebooks push here, the agent's RepoCache pulls.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import git

from gitops_lab.labgit.workcopy import WorkingCopy

__all__ = ["GitServer", "GitServerError"]

HOST = "127.0.0.1"  # loopback only, always


class GitServerError(RuntimeError):
    """The git daemon could not be started, or a repo could not be created."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _answers(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def _is_daemon_for(pid: int, root: Path) -> bool:
    """Is `pid` a live `git daemon` serving `root` (and not a reused pid)?"""
    args = _cmdline(pid)
    return "daemon" in args and f"--base-path={root}" in args


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); /proc tells it apart.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _check_name(name: str) -> str:
    clean = name.strip().strip("/").removesuffix(".git")
    parts = clean.split("/")
    if not clean or clean.startswith("-") or any(p in ("", ".", "..") for p in parts):
        raise GitServerError(f"repository name {name!r} is not a simple relative name")
    return clean


class GitServer:
    """`git daemon` serving the bare repos under `root` at git://127.0.0.1:<port>/<name>.git.

    Anonymous push is on (`--enable=receive-pack`): it listens on loopback only. With a
    `pidfile` the daemon is recorded there (pid, port, root) so `GitServer.ensure` can find
    and reuse it from another process, e.g. the next notebook.
    """

    def __init__(
        self, root: Path | str, port: int | None = None, *, pidfile: Path | str | None = None
    ) -> None:
        self.root = Path(root).resolve()
        self.requested_port = port
        self.port: int | None = None
        self.pid: int | None = None
        self.pidfile = Path(pidfile) if pidfile is not None else None
        self.log_path = self.root / "daemon.log"
        self._proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def _command(self, port: int) -> list[str]:
        return [
            git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git",
            "daemon",
            f"--listen={HOST}",
            f"--port={port}",
            "--export-all",
            "--enable=receive-pack",
            "--reuseaddr",
            "--informative-errors",
            f"--base-path={self.root}",
            str(self.root),
        ]

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(offset)
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return " ".join(text.strip().splitlines()[-3:])

    def start(self, timeout: float = 10.0) -> GitServer:
        """Start the daemon and wait until its port answers; idempotent."""
        if self.running:
            return self
        self.root.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self.requested_port else 3
        last_error = ""
        for _ in range(attempts):
            port = self.requested_port or _free_port()
            if _answers(port, timeout=0.2):
                # Someone else's server: ours would exit while theirs answers, and we would
                # silently serve (and push to) their repositories.
                last_error = f"{HOST}:{port} is already in use by another process"
                continue
            offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            with open(self.log_path, "ab") as log:
                proc = subprocess.Popen(
                    self._command(port),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.root,
                    start_new_session=True,  # its own process group: stop() ends all children
                )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                if _answers(port, timeout=0.2):
                    self._proc, self.pid, self.port = proc, proc.pid, port
                    self._write_pidfile()
                    return self
                time.sleep(0.05)
            if proc.poll() is None:  # alive but silent: give up on it
                self._kill_group(proc.pid, proc)
                raise GitServerError(
                    f"git daemon did not answer on {HOST}:{port} within {timeout:g}s; "
                    f"see {self.log_path}"
                )
            last_error = self._log_since(offset) or f"exit status {proc.returncode}"
            if "in use" not in last_error:
                break
        raise GitServerError(f"git daemon for {self.root} failed to start: {last_error}")

    def _write_pidfile(self) -> None:
        if self.pidfile is None:
            return
        record = {"pid": self.pid, "port": self.port, "root": str(self.root)}
        tmp = self.pidfile.with_name(self.pidfile.name + ".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(self.pidfile)

    @staticmethod
    def _kill_group(pid: int, proc: subprocess.Popen[bytes] | None, timeout: float = 5.0) -> None:
        def signal_group(sig: signal.Signals) -> None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getpgid(pid) == pid:
                    os.killpg(pid, sig)
                else:
                    os.kill(pid, sig)

        signal_group(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None:
                if proc.poll() is not None:
                    break
            elif not _alive(pid):
                break
            time.sleep(0.05)
        else:
            signal_group(signal.SIGKILL)
            if proc is not None:
                proc.wait(timeout)
        # The per-connection children share the group; make sure none is left behind.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)

    def stop(self) -> None:
        """Stop the daemon (and its per-connection children); idempotent."""
        pid = self.pid
        if pid is None:
            return
        if self._proc is not None or _is_daemon_for(pid, self.root):
            self._kill_group(pid, self._proc)
        if self.pidfile is not None:
            with contextlib.suppress(OSError, ValueError):
                if json.loads(self.pidfile.read_text()).get("pid") == pid:
                    self.pidfile.unlink()
        self._proc, self.pid, self.port = None, None, None

    @property
    def running(self) -> bool:
        if self.pid is None or self.port is None:
            return False
        if self._proc is not None:
            return self._proc.poll() is None
        return _alive(self.pid) and _is_daemon_for(self.pid, self.root)

    def __enter__(self) -> GitServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @classmethod
    def ensure(cls, root: Path | str, port: int | None = None, timeout: float = 10.0) -> GitServer:
        """The daemon recorded in `<root>/daemon.json` if it still serves `root` (and `port`,
        when given); otherwise a new one, recorded there. For notebooks that each run alone.
        """
        root = Path(root).resolve()
        root.mkdir(parents=True, exist_ok=True)
        pidfile = root / "daemon.json"
        with open(root / "daemon.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                record = json.loads(pidfile.read_text())
                pid, rport = int(record["pid"]), int(record["port"])
            except (OSError, ValueError, KeyError, TypeError):
                pid, rport = 0, 0
            if pid and _alive(pid) and _is_daemon_for(pid, root):
                server = cls(root, rport, pidfile=pidfile)
                server.pid, server.port = pid, rport
                if (port is None or port == rport) and _answers(rport):
                    return server
                server.stop()  # ours, but on another port or deaf: replace it
            if port is not None and _answers(port, timeout=0.2):
                port = None  # the wished-for port belongs to someone else: take a free one
            return cls(root, port, pidfile=pidfile).start(timeout)

    # -- repositories -------------------------------------------------------------------

    def url(self, name: str) -> str:
        """`git://127.0.0.1:<port>/<name>.git` (the server must be started)."""
        if self.port is None:
            raise GitServerError("the git daemon is not started; call start() first")
        return f"git://{HOST}:{self.port}/{_check_name(name)}.git"

    def repo_path(self, name: str) -> Path:
        return self.root / f"{_check_name(name)}.git"

    def create_repo(
        self,
        name: str,
        files: Mapping[str, str | bytes] | None = None,
        message: str = "initial",
        *,
        branch: str = "main",
        exist_ok: bool = False,
    ) -> Path:
        """Create the bare repo `<root>/<name>.git` (default branch `branch`), optionally with
        a first commit holding `files`. With `exist_ok` an existing repo is returned as is.
        """
        path = self.repo_path(name)
        if path.exists():
            if exist_ok:
                return path
            raise GitServerError(f"repository {path} already exists")
        path.parent.mkdir(parents=True, exist_ok=True)
        git.Repo.init(str(path), mkdir=True, bare=True, initial_branch=branch).close()
        if files:
            with tempfile.TemporaryDirectory(prefix="gitops-lab-seed-") as tmp:
                wc = WorkingCopy(path, Path(tmp) / "wc", branch=branch)
                wc.write(files)
                wc.commit(message)
                wc.push()
                wc.close()
        return path
