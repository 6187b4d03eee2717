"""The notebook-facing facade: `lab = Lab.connect()` catches the lab up to a known state.
Cluster up, the lab's Git server with its config repo, the agent installed and running, kubectl
on PATH — idempotently, so every chapter runs on its own, from nothing, in any order.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gitops_lab.apps import Apps, application
from gitops_lab.cluster import BinaryError, ClusterError, Provider, get_provider
from gitops_lab.cluster.kind import APP_NODE_PORT, KindCluster
from gitops_lab.cluster.labimages import lab_images
from gitops_lab.cluster.records import take_down
from gitops_lab.images.kind_registry import KindRegistry, registry_for
from gitops_lab.install import install
from gitops_lab.install.incluster import (
    ClusterGitServer,
    deploy_agent,
    deploy_git_server,
)
from gitops_lab.kube import Kube
from gitops_lab.labagent import AgentSupervisor, stop_agent_process
from gitops_lab.labbase import LabError, Progress
from gitops_lab.labgit import GitServer, WorkingCopy
from gitops_lab.paths import bin_dir, cache_root, lab_state_dir
from gitops_lab.samples import sample_files

__all__ = ["Lab", "LabError", "teardown"]

_Progress = Progress

Obj = dict[str, Any]
CONFIG_REPO = "lab"
SAMPLE_PATH = "apps/guestbook"
GIT_PORT = 9418  # git's own port; another free one is used when it is taken


def _register_course_magics() -> None:
    """`%%solution` in the notebook that connected (see gitops_lab/course)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        from gitops_lab.course import load_ipython_extension

        load_ipython_extension(shell)


class Lab(AgentSupervisor):
    """Everything a chapter needs, brought to a known state by `connect()`."""

    def __init__(self, provider: Provider, kubeconfig: Path, git: GitServer | ClusterGitServer,
                 state_dir: Path, agent_mode: str = "local") -> None:
        self.provider = provider
        self.kubeconfig = kubeconfig
        self.kube = Kube.from_kubeconfig(kubeconfig)
        self.apps = Apps(self.kube)
        self.git = git
        self.state_dir = state_dir
        self.agent_mode = agent_mode
        if isinstance(git, ClusterGitServer):
            # the learner pushes through the NodePort on 127.0.0.1; an agent in the cluster
            # pulls from the Service, a host agent through the same NodePort
            self.push_url = git.push_url(CONFIG_REPO)
            self.repo_url = git.url(CONFIG_REPO) if agent_mode == "in-cluster" else self.push_url
        else:
            self.push_url = self.repo_url = git.url(CONFIG_REPO)
        self._workcopy: WorkingCopy | None = None

    # ---- where things run ------------------------------------------------------------------------
    @property
    def provider_kind(self) -> str:
        """`local` (a real control plane, simulated nodes: no container runs), `kind` (real
        pods in Docker) or `existing`."""
        return self.provider.kind

    @property
    def app_url(self) -> str | None:
        """Where the sample app answers on 127.0.0.1 (kind), or None where pods do not run."""
        if isinstance(self.provider, KindCluster):
            return f"http://127.0.0.1:{self.provider.host_port(APP_NODE_PORT)}/"
        return None

    def fetch_app(self, timeout: float = 3.0) -> str:
        """The sample app's page (kind only); raises LabError naming why it did not answer."""
        url = self.app_url
        if url is None:
            raise LabError(f"no pod serves the app on the {self.provider_kind} provider: "
                           "its nodes are simulated (kwok); use the kind provider to see it")
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                return str(resp.read().decode(errors="replace"))
        except OSError as exc:
            raise LabError(f"the sample app did not answer at {url}: {exc}") from exc

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
        git: GitServer | ClusterGitServer
        if isinstance(cluster, KindCluster):
            # pods can run: the Git server and (by default) the agent run as pods
            mode = os.environ.get("GITOPS_LAB_AGENT_MODE", "in-cluster")
            steps = _Progress("images and the Git server in the cluster", 1)

            def say(line: str) -> None:
                steps.update(0.5, line)

            cluster.load_images(lab_images(say), say)
            admin = Kube.from_kubeconfig(kubeconfig)
            deploy_git_server(admin, cluster, say)
            say("the lab registry beside the node")
            KindRegistry(name).connect(cluster, admin)
            steps.finish("git-server and registry ready")
            git = ClusterGitServer(cluster)
        else:
            mode = "local"
            git_root = state_dir / "git"
            # git's own port for a new daemon; a live one this lab recorded is kept on its port
            git = GitServer.ensure(git_root, port=None if (git_root / "daemon.json").exists()
                                   else GIT_PORT)
        lab = cls(cluster, kubeconfig, git, state_dir, agent_mode=mode)
        lab.ensure_config_repo()
        if agent:
            lab.install_agent()
            lab.ensure_agent()
        _register_course_magics()
        return lab

    def ensure_config_repo(self) -> str:
        """The config repo `lab` on the Git server, with the sample app in apps/guestbook."""
        files = {"README.md": "# The lab's config repo\n\nEach directory under apps/ is "
                              "one Application's desired state.\n"}
        files.update(sample_files("guestbook", SAMPLE_PATH))
        if isinstance(self.git, GitServer):
            if not self.git.repo_path(CONFIG_REPO).exists():
                self.git.create_repo(CONFIG_REPO, files, message="Add the guestbook sample app")
        elif not _remote_has_refs(self.push_url):
            # the in-cluster server starts with an empty repository: seed it, and start the
            # lab's clone afresh (an old one belongs to a cluster that is gone)
            self._workcopy = None
            shutil.rmtree(self.state_dir / "work", ignore_errors=True)
            with tempfile.TemporaryDirectory(prefix="gitops-lab-seed-") as tmp:
                seed = WorkingCopy(self.push_url, Path(tmp) / "seed", branch="main")
                seed.write(files)
                seed.commit("Add the guestbook sample app")
                seed.push()
                seed.close()
        return self.workcopy.head

    @property
    def workcopy(self) -> WorkingCopy:
        """The lab's clone of the config repo (the learner's laptop, in GitOps terms)."""
        if self._workcopy is None:
            path = self.state_dir / "work"
            if path.exists() and not (path / ".git").exists():
                shutil.rmtree(path)
            self._workcopy = WorkingCopy(self.push_url, path)
        origin = self._workcopy.repo.remotes.origin
        if origin.url != self.push_url:  # the Git server came back on another port
            origin.set_url(self.push_url)
        self._workcopy.pull()
        return self._workcopy

    def install_agent(self) -> list[str]:
        """CRD, namespace, ServiceAccount and RBAC (idempotent server-side apply); in-cluster
        also the agent's image, Deployment and Service."""
        if self.agent_mode == "in-cluster" and isinstance(self.provider, KindCluster):
            bar = _Progress("the agent as a pod in the cluster", 1)
            done = deploy_agent(self.kube, self.provider, lambda line: bar.update(0.5, line))
            bar.finish("gitops-lab-agent ready")
            return done
        return install(self.kube, "local")

    # ---- the image pipeline: registry, CI, ImagePolicy -------------------------------------------
    @property
    def registry(self) -> str:
        """The lab registry's `host:port` (a Distribution registry on 127.0.0.1, started on first
        use, notifying the agent's /registry-webhook so a pushed tag is scanned at once)."""
        if isinstance(self.provider, KindCluster):
            return KindRegistry(self.provider.name).connect(self.provider, self.kube)
        from gitops_lab.images.registry_server import LabRegistry

        url = self.agent_url
        return LabRegistry(self.state_dir.name).up(
            notify=f"{url}/registry-webhook" if url else None)

    def ci_build(self, version: str, *, tags: tuple[str, ...] = (), broken: bool | None = None,
                 repository: str = "guestbook") -> str:
        """The lab's CI: build the sample app at VERSION and push `registry/guestbook:VERSION`
        (plus `tags`); returns the image reference. CI never touches Git or the cluster."""
        from gitops_lab.images.oci import ci_build

        return ci_build(self.registry, version, repository=repository, tags=tags, broken=broken)

    def image_policy(self, name: str = "guestbook", *, app: str | None = "guestbook",
                     semver: str = ">=1.0.0 <2.0.0", interval: str = "10s",
                     repository: str = "guestbook") -> Obj:
        """An ImagePolicy manifest (API.md §1b) for the lab registry's `repository`, writing
        back to Application `app` (None: report only); `lab.apps.apply(obj)` creates it."""
        spec: Obj = {"image": f"{self.registry}/{repository}", "interval": interval,
                     "policy": {"semver": {"range": semver}}}
        if app:
            spec["update"] = {"applicationRef": {"name": app}}
        return {"apiVersion": "gitopslab.io/v1alpha1", "kind": "ImagePolicy",
                "metadata": {"name": name, "namespace": self.apps.namespace}, "spec": spec}

    def image_policies(self) -> list[Obj]:
        """The ImagePolicies, with their status (latest tag, last write-back, conditions)."""
        path = f"/apis/gitopslab.io/v1alpha1/namespaces/{self.apps.namespace}/imagepolicies"
        return list(self.kube.request("GET", path).get("items") or [])

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
            current = self.apps.get(name)
            if _st(current, "sync", "status") == "OutOfSync" \
                    and _st(current, "sync", "revision") == head and not current.get("operation"):
                # drift a chapter left behind (Git is already pristine and the automated sync
                # only re-applies on a new revision without selfHeal): sync once, by hand
                self.apps.sync(name, prune=True)
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

    # ---- the course's exercises ---------------------------------------------------------------
    def check(self, key: str, *, wait: float | None = None) -> Any:
        """Check the learner's result for exercise `key` ("02-scale"); shows done or a hint."""
        from gitops_lab.course import run_check

        return run_check(self, key, wait=wait)

    # ---- drift, prune and alerting (chapters 04-05; gitops_lab/course/observe.py, alerts.py) ---
    def mark_events(self, app: str = "guestbook") -> Any:
        """Remember which Events the agent has recorded on `app` so far: the mark's
        `.new(reason)` lists only later ones, `.wait(reason)` waits for one. The chapters'
        checkers read the newest mark to tell the learner's change from earlier ones."""
        from gitops_lab.course.observe import EventMark

        return EventMark(self, app)

    def pods(self, namespace: str = "guestbook", image: str | None = None) -> list[Obj]:
        """The pods in `namespace` that are not being deleted (only those running `image`)."""
        from gitops_lab.course.observe import pods

        return pods(self, namespace, image)

    def alerts(self) -> Any:
        """The lab's alert receiver, started once, with the agent's --alert-webhook pointing at
        it (a restart of the host agent, or a rollout of the agent's pod on kind)."""
        from gitops_lab.course.alerts import AlertReceiver

        receiver = getattr(self, "_alert_receiver", None)
        if receiver is None:
            bar = _Progress("the alert receiver", 1)
            receiver = AlertReceiver(self).start(lambda line: bar.update(0.5, line))
            bar.finish(f"agent alerts go to {receiver.url}")
            self._alert_receiver = receiver
        return receiver

    def sample_metrics(self, app: str = "guestbook") -> Any:
        """Sample the agent's /metrics for `app` every second in a background thread (started
        once); `.plot()` draws them."""
        from gitops_lab.course.alerts import MetricsSampler

        sampler = getattr(self, "_metrics_sampler", None)
        if sampler is None:
            sampler = MetricsSampler(self, f"{self.apps.namespace}/{app}")
            self._metrics_sampler = sampler
        return sampler.start()

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
        registry = registry_for(self.state_dir.name)
        if cluster:  # the whole lab goes: its registry's images too (the Git repo already goes)
            registry.purge()
            self.provider.down()
            shutil.rmtree(self.state_dir, ignore_errors=True)
        else:
            registry.down()



def _remote_has_refs(url: str, timeout: float = 30.0) -> bool:
    """Does the repository at URL have a branch yet? Retried for a while: right after the
    in-cluster Git server's rollout its NodePort needs a moment (kube-proxy's sync)."""
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(["git", "ls-remote", "--heads", url], capture_output=True,
                             text=True, timeout=30, check=False)
        if out.returncode == 0:
            return bool(out.stdout.strip())
        if time.monotonic() > deadline:
            raise LabError(f"the lab's Git server does not answer at {url}: "
                           f"{out.stderr.strip() or 'connection closed'}")
        time.sleep(0.5)


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
    state_dir = lab_state_dir(name)
    stop_agent_process(state_dir / "agent.json")
    registry = registry_for(name)
    if cluster:
        registry.purge()
    else:
        registry.down()
    git_root = state_dir / "git"
    try:
        record = json.loads((git_root / "daemon.json").read_text())
        server = GitServer(git_root, pidfile=git_root / "daemon.json")
        server.pid, server.port = int(record["pid"]), int(record["port"])
        server.stop()  # only if that pid still is the daemon serving git_root
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if cluster:
        with contextlib.suppress(ClusterError, BinaryError, OSError, subprocess.SubprocessError):
            take_down(name)  # as `gitops-lab cluster down`, whose failures teardown ignored
        shutil.rmtree(state_dir, ignore_errors=True)
