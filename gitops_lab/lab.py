"""The notebook-facing facade: `lab = Lab.connect()` catches the lab up to a known state.
Cluster up, the lab's Git server with its config repo, the agent installed and running, kubectl
on PATH — idempotently, so every chapter runs on its own, from nothing, in any order.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gitops_lab.apps import Apps, application
from gitops_lab.cluster import Provider, bin_dir, get_provider
from gitops_lab.cluster.base import clusters_root
from gitops_lab.cluster.binaries import cache_root
from gitops_lab.install import install
from gitops_lab.kube import Kube
from gitops_lab.samples import sample_files
from gitops_lab.source import GitServer, WorkingCopy

__all__ = ["Lab", "LabError", "teardown"]

Obj = dict[str, Any]
CONFIG_REPO = "lab"
SAMPLE_PATH = "apps/guestbook"
GIT_PORT = 9418  # git's own port; another free one is used when it is taken


class LabError(RuntimeError):
    """The lab could not reach the wanted state; the message says what to look at."""


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


class _Progress:
    """A progress bar in a notebook, plain lines elsewhere."""

    def __init__(self, title: str, total: float) -> None:
        self.total = total
        self.bar: Any = None
        self.last_line = 0.0
        self.title = title
        if _in_notebook():
            import ipywidgets as w
            from IPython.display import display

            self.bar = w.FloatProgress(value=0, min=0, max=total, description="",
                                       layout=w.Layout(width="320px"))
            self.label = w.HTML(value=f"<b>{title}</b>")
            self.box = w.HBox([self.bar, self.label])
            display(self.box)  # type: ignore[no-untyped-call]
        else:
            print(f"… {title}", file=sys.stderr, flush=True)

    def update(self, done: float, note: str = "") -> None:
        if self.bar is not None:
            self.bar.value = min(done, self.total)
            self.label.value = f"<b>{self.title}</b> {note}"
        elif time.monotonic() - self.last_line > 5:
            self.last_line = time.monotonic()
            print(f"  … {self.title}: {note}", file=sys.stderr, flush=True)

    def finish(self, note: str, ok: bool = True) -> None:
        if self.bar is not None:
            self.bar.value = self.total
            self.bar.bar_style = "success" if ok else "danger"
            self.label.value = f"<b>{self.title}</b> {note}"
        else:
            print(f"{'✓' if ok else '✗'} {self.title}: {note}", file=sys.stderr, flush=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _stop_agent_process(agent_file: Path) -> None:
    """Stop the agent recorded in `agent_file` (only if that pid still is a gitops_lab agent):
    SIGTERM, SIGKILL after 10 s; then forget it."""
    try:
        pid = int(json.loads(agent_file.read_text()).get("pid", 0))
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError, TypeError, AttributeError):
        pid, cmdline = 0, ""
    if pid and _pid_alive(pid) and "gitops_lab" in cmdline and "agent" in cmdline:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    agent_file.unlink(missing_ok=True)


class Lab:
    """Everything a chapter needs, brought to a known state by `connect()`."""

    def __init__(self, provider: Provider, kubeconfig: Path, git: GitServer,
                 state_dir: Path) -> None:
        self.provider = provider
        self.kubeconfig = kubeconfig
        self.kube = Kube.from_kubeconfig(kubeconfig)
        self.apps = Apps(self.kube)
        self.git = git
        self.state_dir = state_dir
        self.repo_url = git.url(CONFIG_REPO)
        self._workcopy: WorkingCopy | None = None

    # ---- catching up --------------------------------------------------------------------------
    @classmethod
    def connect(cls, provider: str | None = None, name: str | None = None, *,
                agent: bool = True) -> Lab:
        """Idempotent: cluster, Git server and config repo, agent. Seconds when already up."""
        provider = provider or os.environ.get("GITOPS_LAB_PROVIDER", "auto")
        name = name or os.environ.get("GITOPS_LAB_CLUSTER", "gitops-lab")
        cluster = get_provider(provider, name)
        progress = _Progress(f"cluster {name!r} ({cluster.kind})", 1)
        kubeconfig = cluster.up(lambda line: progress.update(0.5, line))
        progress.finish(f"up — kubeconfig {kubeconfig}")
        # the lab's kubectl & co., then this Python's scripts (`!gitops-lab …` in a notebook)
        os.environ["PATH"] = os.pathsep.join(
            [str(bin_dir()), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        os.environ["KUBECONFIG"] = str(kubeconfig)
        state_dir = cache_root() / "lab" / name
        state_dir.mkdir(parents=True, exist_ok=True)
        git_root = state_dir / "git"
        # git's own port for a new daemon; a live one this lab recorded is kept on its port
        git = GitServer.ensure(git_root, port=None if (git_root / "daemon.json").exists()
                               else GIT_PORT)
        lab = cls(cluster, kubeconfig, git, state_dir)
        lab.ensure_config_repo()
        if agent:
            lab.install_agent()
            lab.ensure_agent()
        return lab

    def ensure_config_repo(self) -> str:
        """The config repo `lab` on the Git server, with the sample app in apps/guestbook."""
        if not self.git.repo_path(CONFIG_REPO).exists():
            files = {"README.md": "# The lab's config repo\n\nEach directory under apps/ is "
                                  "one Application's desired state.\n"}
            files.update(sample_files("guestbook", SAMPLE_PATH))
            self.git.create_repo(CONFIG_REPO, files, message="Add the guestbook sample app")
        return self.workcopy.head

    @property
    def workcopy(self) -> WorkingCopy:
        """The lab's clone of the config repo (the learner's laptop, in GitOps terms)."""
        if self._workcopy is None:
            path = self.state_dir / "work"
            if path.exists() and not (path / ".git").exists():
                shutil.rmtree(path)
            self._workcopy = WorkingCopy(self.repo_url, path)
        origin = self._workcopy.repo.remotes.origin
        if origin.url != self.repo_url:  # the Git server came back on another port
            origin.set_url(self.repo_url)
        self._workcopy.pull()
        return self._workcopy

    def install_agent(self) -> list[str]:
        """CRD, namespace, ServiceAccount and RBAC (idempotent server-side apply)."""
        return install(self.kube, "local")

    # ---- the agent as a background process ------------------------------------------------------
    @property
    def _agent_file(self) -> Path:
        return self.state_dir / "agent.json"

    def agent_info(self) -> Obj | None:
        try:
            info = json.loads(self._agent_file.read_text())
        except (OSError, ValueError):
            return None
        if not _pid_alive(int(info.get("pid", 0))) or info.get("kubeconfig") != str(self.kubeconfig):
            return None
        try:
            with urllib.request.urlopen(f"{info['url']}/healthz", timeout=2) as resp:
                if resp.status != 200:
                    return None
        except OSError:
            return None
        return dict(info)

    @property
    def agent_url(self) -> str:
        info = self.agent_info()
        return str(info["url"]) if info else ""

    def ensure_agent(self, timeout: float = 30.0) -> Obj:
        """Start `gitops-lab agent run` in the background unless one is already healthy."""
        info = self.agent_info()
        if info is not None:
            return info
        self.stop_agent()
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        log = self.state_dir / "agent.log"
        cmd = [sys.executable, "-m", "gitops_lab", "agent", "run",
               "--kubeconfig", str(self.kubeconfig), "--http-address", f"127.0.0.1:{port}",
               "--poll-interval", "1"]
        webhook = os.environ.get("GITOPS_LAB_ALERT_WEBHOOK")
        if webhook:
            cmd += ["--alert-webhook", webhook]
        with log.open("ab") as sink:
            proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        info = {"pid": proc.pid, "url": f"http://127.0.0.1:{port}", "log": str(log),
                "kubeconfig": str(self.kubeconfig)}
        self._agent_file.write_text(json.dumps(info))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LabError(f"the agent exited (code {proc.returncode}); its log: {log}\n"
                               + self.agent_log(15))
            if self.agent_info() is not None:
                return info
            time.sleep(0.2)
        raise LabError(f"the agent did not answer /healthz in {timeout:.0f} s; log: {log}")

    def agent_log(self, lines: int = 30) -> str:
        try:
            text = (self.state_dir / "agent.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop_agent(self) -> None:
        _stop_agent_process(self._agent_file)

    # ---- Git: the only way desired state changes ---------------------------------------------------
    def commit(self, files: Mapping[str, str | bytes] | None = None, message: str = "change",
               *, delete: tuple[str, ...] = ()) -> str:
        """Write files into the config repo, commit and push; returns the new SHA."""
        wc = self.workcopy
        if files:
            wc.write(dict(files))
        if delete:
            wc.delete(*delete)
        sha = wc.commit(message)
        wc.push()
        return sha

    def revert(self, sha: str) -> str:
        """`git revert` a commit and push: GitOps' rollback."""
        wc = self.workcopy
        new = wc.revert(sha)
        wc.push()
        return new

    def read(self, path: str) -> str:
        return self.workcopy.read(path)

    def log(self, n: int = 10) -> list[Any]:
        return list(self.workcopy.log(n))

    # ---- the sample app ------------------------------------------------------------------------
    def sample_app(self, name: str = "guestbook", *, automated: bool = True,
                   self_heal: bool = False, prune: bool = True) -> Obj:
        # with the resources finalizer: deleting the app deletes what it deployed (cascade)
        return application(name, self.repo_url, SAMPLE_PATH, dest_namespace=name,
                           automated=automated, self_heal=self_heal, prune=prune, cascade=True)

    def reset_sample(self, name: str = "guestbook", *, self_heal: bool = False,
                     wait: bool = True) -> Obj:
        """Catch up: Git holds the pristine sample, the Application exists, Synced/Healthy."""
        self.reset_git()
        app = self.apps.apply(self.sample_app(name, self_heal=self_heal))
        if wait:
            head = self.workcopy.head
            return self.wait_for(
                name,
                lambda a: _st(a, "sync", "status") == "Synced"
                and _st(a, "sync", "revision") == head
                and _st(a, "health", "status") == "Healthy",
                what="the sample app to be Synced and Healthy at the head of main",
                timeout=90,
            )
        return app

    def reset_git(self) -> str:
        """Commit the pristine sample into apps/guestbook where it differs; returns HEAD."""
        wanted = sample_files("guestbook", SAMPLE_PATH)
        wc = self.workcopy
        folder = wc.path / SAMPLE_PATH
        present = [str(f.relative_to(wc.path)) for f in folder.rglob("*") if f.is_file()] \
            if folder.exists() else []
        changed = {p: t for p, t in wanted.items() if not self._same(p, t)}
        extra = tuple(p for p in present if p not in wanted)
        if changed or extra:
            return self.commit(changed, "Reset the guestbook sample", delete=extra)
        return wc.head

    def _same(self, path: str, text: str) -> bool:
        try:
            return self.workcopy.read(path) == text
        except OSError:
            return False

    # ---- waiting, with a progress bar and an explanation ---------------------------------------------
    def wait_for(self, name: str, until: Callable[[Obj], bool], *, what: str,
                 timeout: float = 60.0) -> Obj:
        """Wait for an Application state; on timeout say what was seen and where to look."""
        bar = _Progress(f"waiting for {what}", timeout)

        def progress(app: Obj, elapsed: float) -> None:
            bar.update(elapsed, f"{elapsed:4.1f} s — sync {_st(app, 'sync', 'status')}, "
                                f"health {_st(app, 'health', 'status')}")

        try:
            app = self.apps.wait(name, until, timeout=timeout, what=what, progress=progress)
        except Exception as exc:
            bar.finish(f"not reached in {timeout:.0f} s", ok=False)
            raise LabError(f"{exc}\nagent log (last lines):\n{self.agent_log(10)}") from exc
        bar.finish(f"sync {_st(app, 'sync', 'status')}, health {_st(app, 'health', 'status')}")
        return app

    def wait_until(self, check: Callable[[], bool], *, what: str, timeout: float = 30.0,
                   interval: float = 0.2) -> None:
        """Wait for any condition (e.g. a live replica count), with the same progress bar."""
        bar = _Progress(f"waiting for {what}", timeout)
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if check():
                bar.finish(f"done in {time.monotonic() - start:.1f} s")
                return
            bar.update(time.monotonic() - start, f"{time.monotonic() - start:4.1f} s")
            time.sleep(interval)
        bar.finish(f"not reached in {timeout:.0f} s", ok=False)
        raise LabError(f"timed out after {timeout:.0f} s waiting for {what}; "
                       f"agent log:\n{self.agent_log(10)}")

    # ---- kubectl, for the learner's eyes ------------------------------------------------------------
    def kubectl(self, *args: str, check: bool = True) -> str:
        kubectl = bin_dir() / "kubectl"
        out = subprocess.run(
            [str(kubectl) if kubectl.exists() else "kubectl", f"--kubeconfig={self.kubeconfig}",
             *args],
            capture_output=True, text=True, timeout=60, check=False,
        )
        if check and out.returncode != 0:
            raise LabError(f"kubectl {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout + (out.stderr if not check else "")

    def app(self, name: str = "guestbook") -> Obj:
        return self.apps.get(name)

    def events(self, name: str = "guestbook", reason: str | None = None) -> list[Obj]:
        """The Events the agent recorded on an Application, newest first (optionally one reason)."""
        selector = f"involvedObject.kind=Application,involvedObject.name={name}"
        if reason:
            selector += f",reason={reason}"
        items = self.kube.request("GET", f"/api/v1/namespaces/{self.apps.namespace}/events",
                                  query={"fieldSelector": selector}).get("items") or []

        def order(event: Obj) -> tuple[str, int]:
            stamp = str(event.get("lastTimestamp") or event.get("eventTime") or "")
            return stamp, int((event.get("metadata") or {}).get("resourceVersion") or 0)

        return sorted(items, key=order, reverse=True)

    # ---- widgets (imported lazily: the facade works without Jupyter) ---------------------------------
    def dashboard(self, name: str = "guestbook") -> Any:
        from gitops_lab.widgets import AppDashboard

        return AppDashboard(self.apps, name)

    # ---- cleanup ----------------------------------------------------------------------------------
    def delete_app(self, name: str = "guestbook", *, timeout: float = 30.0) -> None:
        """Delete the Application and the objects it deployed (its namespace).

        The sample app carries the resources finalizer, so the agent deletes its objects and
        then lets the Application go; without a running agent nobody would, so after
        `timeout` the finalizer is removed here and the namespace deleted directly."""
        if not self.apps.delete(name, wait=timeout if self.agent_info() else 0.0):
            self.apps.remove_finalizers(name)
            self.apps.delete(name, wait=10.0)
        self.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")

    def cleanup(self, *, cluster: bool = True) -> None:
        """Stop the agent and the Git server; with `cluster`, tear the cluster down too."""
        self.stop_agent()
        self.git.stop()
        if cluster:
            self.provider.down()
            shutil.rmtree(self.state_dir, ignore_errors=True)

    @contextmanager
    def paused_agent(self) -> Iterator[None]:
        """Stop the agent for a demo (what happens without GitOps?), start it again after."""
        self.stop_agent()
        try:
            yield
        finally:
            self.ensure_agent()
            self._finish_deletions()

    def _finish_deletions(self, timeout: float = 30.0) -> None:
        """Applications deleted while the agent was away carry the resources finalizer: the
        agent back, wait until it has deleted their objects and let them go (so the next
        step does not meet a half-deleted app); past `timeout`, let them go orphaning."""
        deadline = time.monotonic() + timeout
        while True:
            deleting = [a["metadata"]["name"] for a in self.apps.list()
                        if (a.get("metadata") or {}).get("deletionTimestamp")]
            if not deleting:
                return
            if time.monotonic() > deadline:
                for name in deleting:
                    self.apps.remove_finalizers(name)
                return
            time.sleep(0.2)


def _st(app: Mapping[str, Any], *path: str) -> Any:
    node: Any = app.get("status") or {}
    for part in path:
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def teardown(name: str | None = None, *, cluster: bool = True) -> None:
    """Stop whatever a lab NAME left running — agent, Git server and (with `cluster`) the
    cluster — without bringing anything up first, as `Lab.connect().cleanup()` would.
    For tests and scripts; idempotent.
    """
    name = name or os.environ.get("GITOPS_LAB_CLUSTER", "gitops-lab")
    state_dir = cache_root() / "lab" / name
    _stop_agent_process(state_dir / "agent.json")
    git_root = state_dir / "git"
    try:
        record = json.loads((git_root / "daemon.json").read_text())
        server = GitServer(git_root, pidfile=git_root / "daemon.json")
        server.pid, server.port = int(record["pid"]), int(record["port"])
        server.stop()  # only if that pid still is the daemon serving git_root
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if cluster:
        subprocess.run([sys.executable, "-m", "gitops_lab", "cluster", "down", "--name", name],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=120, check=False)
        shutil.rmtree(state_dir, ignore_errors=True)


def lab_clusters() -> list[str]:
    root = clusters_root()
    return sorted(p.name for p in root.iterdir()) if root.exists() else []
