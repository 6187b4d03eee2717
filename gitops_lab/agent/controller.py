"""The GitOps agent: watches Applications and the objects they manage, polls Git, reconciles.
Top of the agent/ package: its lifecycle, leadership terms, health and inputs (watches, the
Git poller, webhooks) live here; the work of one reconcile is agent/work.py. Runs in the
foreground (`gitops-lab agent run`) or in a notebook thread.

With leader election (the default) the agent first campaigns for a Lease (agent/leader.py):
its HTTP server is up at once, but watches, workers and the Git poller run only while it is
the leader (a "term"). A standby waits; a leader that loses the Lease stops its term at once
and becomes a standby again. Every write goes through a Kube fenced on leadership.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from typing import Any

from gitops_lab.agent.appwrites import APP_INFO, older
from gitops_lab.agent.events import Alerter, Recorder
from gitops_lab.agent.fetcher import GitFetcher
from gitops_lab.agent.leader import LeaderElector, LeaseConfig
from gitops_lab.agent.livecache import KindWatch, LiveCache
from gitops_lab.agent.options import AgentOptions
from gitops_lab.agent.probe import ApiProbe
from gitops_lab.agent.server import AgentServer, Metrics, NotLeader
from gitops_lab.agent.work import AppWork
from gitops_lab.agent.workqueue import AppKey, WorkQueue
from gitops_lab.api.types import REFRESH_ANNOTATION, ResourceKey
from gitops_lab.engine.api import AppSpec, ReconcileResult, SpecError
from gitops_lab.engine.reconcile import Reconciler
from gitops_lab.kube import Kube
from gitops_lab.source.cache import GitCache
from gitops_lab.source.errors import SourceError
from gitops_lab.source.git import RepoCache

__all__ = ["Agent", "AgentOptions"]

log = logging.getLogger("gitops_lab.agent")


class Agent(AppWork):
    """Keeps every Application in `options.namespace` equal to Git. Thread-safe start/stop.

    With `options.leader_elect` (the default, in-process too) only the holder of the Lease
    reconciles: start two agents on one namespace and exactly one of them writes."""

    def __init__(self, kube: Kube, options: AgentOptions | None = None) -> None:
        self.options = options or AgentOptions()
        self.elector: LeaderElector | None = None
        if self.options.leader_elect:
            self.elector = LeaderElector(
                kube, LeaseConfig(self.options.lease_name, self.options.namespace,
                                  self.options.identity, self.options.lease_duration),
                on_started=self._start_term, on_stopped=self._stop_term)
        # every write of this agent (apply, prune, status, Events) passes this fence
        self.kube = kube.fenced(self._may_write, "this agent is not the leader (it does not "
                                "hold the Lease): it writes nothing")
        self.repos = RepoCache(self.options.cache_dir)
        self._stop = threading.Event()  # the agent's: set once, by stop() or a signal
        # Git fetches run on one thread per repository for the agent's whole life (they
        # write only to the local mirrors); each term's GitCache asks them for fetches
        self.fetcher = GitFetcher(self._fetch_repo, self._after_fetch, self._stop)
        self._fetch_failing: dict[str, bool] = {}
        self.recorder = Recorder(self.kube)
        self.alerter = Alerter(self.options.alert_webhook)
        self.metrics = Metrics()
        # the leader's machinery, made anew for every term (see _start_term)
        self.queue = WorkQueue()
        self.live = LiveCache(self.kube, self._on_live_change)
        self.git = self._new_git_cache()
        self.reconciler = Reconciler(self.kube, self.git, self.live)
        self.apps: dict[AppKey, dict[str, Any]] = {}
        self.results: dict[AppKey, ReconcileResult] = {}
        self.statuses: dict[AppKey, dict[str, Any]] = {}
        self._owners: dict[ResourceKey, set[AppKey]] = {}
        self._seen: dict[AppKey, tuple[Any, ...]] = {}
        self._heads: dict[AppKey, str] = {}
        self._handled_ops: dict[AppKey, int] = {}  # app -> generation whose operation is done
        self._failures: dict[AppKey, tuple[Any, int]] = {}  # app -> (what failed, how often)
        self._alerted: dict[AppKey, set[tuple[str, ...]]] = {}  # de-duplication of alerts
        self._lock = threading.RLock()
        self._term_lock = threading.Lock()
        self._term_stop = threading.Event()  # the current term's: set = no term running
        self._term_stop.set()
        self._stop_timeout = 10.0
        self._threads: list[threading.Thread] = []
        self._app_watch = KindWatch(self.kube, APP_INFO, self._on_app_change, self._term_stop,
                                    namespace=self.options.namespace)
        self.server: AgentServer | None = None
        self.started_at = 0.0
        self.terms = 0  # how many times this agent started reconciling (became leader)
        self._probe = ApiProbe(self.kube, self.options.namespace)  # for /healthz
        # the image updater (ImagePolicies) runs in this process, only while it leads: it
        # pushes Git commits, which the Kube fence cannot stop, so it checks the Lease right
        # before each push too. Started in _start_term, stopped in _stop_term.
        from gitops_lab.images.controller import ImageUpdater

        self.images = ImageUpdater(
            self.kube, WorkQueue, namespace=self.options.namespace,
            cache_dir=self.options.cache_dir / "writeback", registry=self.metrics.registry,
            alerter=self.alerter, get_app=self._get_app, refresh_app=self.refresh,
            may_push=self._may_write)

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Agent:
        """HTTP server at once; the reconcile machinery now (no election) or once leader."""
        if self.server is not None:
            return self
        self.started_at = time.time()
        self.server = AgentServer(self.options.http_address, self.metrics, self.healthy,
                                  self.webhook, self.registry_webhook, ready=self.readiness)
        self.server.start()
        if self.elector is not None:
            log.info("agent started: namespace=%s http=%s; campaigning for Lease %s/%s as %s",
                     self.options.namespace, self.server.url, self.options.namespace,
                     self.options.lease_name, self.elector.identity)
            self.elector.start()
        else:
            log.info("agent started: namespace=%s http=%s (no leader election)",
                     self.options.namespace, self.server.url)
            self._start_term()
        return self

    def _start_term(self) -> None:
        """Start reconciling: fresh watches, queue, caches, Git poller and workers."""
        with self._term_lock:
            if not self._term_stop.is_set() or self._stop.is_set():
                return
            stop = self._term_stop = threading.Event()
            self.terms += 1
            self.queue = WorkQueue()
            self.live = LiveCache(self.kube, self._on_live_change)
            self.git = self._new_git_cache(self.git.fetch_errors)
            self.reconciler = Reconciler(self.kube, self.git, self.live)
            self._app_watch = KindWatch(self.kube, APP_INFO, self._on_app_change, stop,
                                        namespace=self.options.namespace)
            self._app_watch.start()
            self._spawn(self._poll_git, "git-poller", stop, self.queue)
            for i in range(self.options.workers):
                self._spawn(self._worker, f"worker-{i}", stop, self.queue)
            self.images.start()
            self.metrics.leader.set(1)

    def _new_git_cache(self, fetch_errors: dict[str, str] | None = None) -> GitCache:
        """A term's Git cache, shared by the poller and the reconciles: fetches go through the
        agent's per-repo fetcher, and what is known about Git (which repos fail to fetch, and
        why) carries over from the last term."""
        git = GitCache(self.repos, kubectl=self.options.kubectl, fetch_errors=fetch_errors)
        git.background_fetch = self.fetcher.request
        return git

    def _stop_term(self) -> None:
        """Stop reconciling: no new work; the reconciles in flight end (their writes are fenced
        already when the Lease was lost); forget what this term knew."""
        with self._term_lock:
            if self._term_stop.is_set():
                return
            self._term_stop.set()
            self.metrics.leader.set(0)
            self.queue.close()
            self.live.stop()
            threads, self._threads = self._threads, []
        deadline = time.monotonic() + self._stop_timeout
        self.images.stop(self._stop_timeout)  # its scans end; a push in flight is refused
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:  # a later term lists everything again
            for state in (self.apps, self.results, self.statuses, self._owners, self._seen,
                          self._heads, self._handled_ops, self._failures, self._alerted,
                          self._fetch_failing):
                state.clear()

    def _spawn(self, target: Any, name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, name=name, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop reconciling, then (leader) release the Lease so a standby takes over at once."""
        self._stop_timeout = timeout
        self._stop.set()
        if self.elector is not None:
            self.elector.stop(timeout + 5)
        self._stop_term()
        self.fetcher.stop()
        if self.server is not None:
            self.server.stop()
            self.server = None

    def run_forever(self) -> None:
        """Foreground mode: until SIGTERM/SIGINT, then a clean stop."""
        def _handler(signum: int, _frame: Any) -> None:
            log.info("signal %s: stopping", signal.Signals(signum).name)
            self._stop.set()

        signal.signal(signal.SIGTERM, _handler)
        signal.signal(signal.SIGINT, _handler)
        self.start()
        while not self._stop.wait(0.5):
            pass
        self.stop()

    def healthy(self) -> tuple[bool, str]:
        """(healthy, why not) for /healthz, on leader and standby alike: the API server accepts
        the agent's calls, and — only while it leads — it has listed its Applications. Not
        healthy while calls fail with 401 or cannot connect (after one fresh call, which also
        re-requests a rejected token): the reason names the cause."""
        if self._stop.is_set():
            return False, "stopping"
        if self.is_leader and not self._app_watch.synced.is_set():
            error = self._app_watch.error
            return False, (f"Applications in {self.options.namespace} not listed yet"
                           + (f": {error}" if error else ""))
        problem = self._probe.problem()
        return (not problem), problem

    @property
    def is_leader(self) -> bool:
        """True while this agent reconciles: it holds the Lease (or elects no leader)."""
        if self._term_stop.is_set() or self._stop.is_set():
            return False
        return self.elector is None or self.elector.is_leader

    @property
    def leader(self) -> str:
        """The Lease's holder as last seen ("" = none yet, or no election)."""
        return self.elector.leader if self.elector is not None else ""

    @property
    def identity(self) -> str:
        return self.elector.identity if self.elector is not None else ""

    def _may_write(self) -> bool:
        return self.elector is None or self.elector.is_leader

    def ready(self) -> bool:
        """/readyz: the leader, with its Applications listed (where /webhook should go)."""
        return self.readiness()[0]

    def readiness(self) -> tuple[bool, str]:
        """(ready, why not): /readyz's answer."""
        if self._stop.is_set():
            return False, "stopping"
        if not self.is_leader:
            if self.elector is None:
                return False, "not started"
            if self.elector.problem:
                return False, f"not the leader: {self.elector.problem}"
            return False, f"standby: the leader is {self.leader or 'not elected yet'}"
        if not self._app_watch.synced.is_set():
            error = self._app_watch.error
            return False, (f"leader, but the Applications in {self.options.namespace} are not "
                           "listed yet" + (f": {error}" if error else ""))
        return True, ""

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Wait until this agent leads and has listed its Applications."""
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline or self._stop.is_set():
                return False
            time.sleep(0.02)
        return True

    @property
    def url(self) -> str:
        return self.server.url if self.server else ""

    # ---- inputs: watches, Git poller, webhook ------------------------------------------------
    def _on_app_change(self, key: ResourceKey, obj: dict[str, Any] | None, kind: str) -> None:
        app_key = (key.namespace, key.name)
        if obj is None:
            with self._lock:
                self.apps.pop(app_key, None)
                self.results.pop(app_key, None)
                self.statuses.pop(app_key, None)
                self._seen.pop(app_key, None)
                self._failures.pop(app_key, None)
                self._alerted.pop(app_key, None)
                for owners in self._owners.values():
                    owners.discard(app_key)
            return
        meta = obj.get("metadata") or {}
        refresh = (meta.get("annotations") or {}).get(REFRESH_ANNOTATION)
        fingerprint = (meta.get("generation"), refresh, bool(obj.get("operation")),
                       meta.get("deletionTimestamp"))
        with self._lock:
            if older(obj, self.apps.get(app_key)):
                return  # a late event; we already hold a newer copy (e.g. from our own patch)
            self.apps[app_key] = obj
            if app_key not in self.statuses:
                self.statuses[app_key] = dict(obj.get("status") or {})
            changed = self._seen.get(app_key) != fingerprint
            self._seen[app_key] = fingerprint
        if changed:
            self.queue.add(app_key, fetch=True)

    def _on_live_change(self, key: ResourceKey, obj: dict[str, Any] | None, kind: str) -> None:
        with self._lock:
            owners = set(self._owners.get(key, ()))
        for app_key in owners:
            self.queue.add(app_key)

    def _poll_git(self, stop: threading.Event, queue: WorkQueue) -> None:
        """Ask for a fetch of each repo once per interval; never waits for one (each repo is
        fetched on its own thread, see agent/fetcher.py, and `_after_fetch` queues apps)."""
        last_resync = time.monotonic()
        while not stop.wait(self.options.poll_interval):
            with self._lock:
                apps = dict(self.apps)
            urls: set[str] = set()
            for app in apps.values():
                with contextlib.suppress(SpecError):
                    urls.add(AppSpec.from_object(app).repo_url)
            for url in urls:
                if not self.fetcher.busy(url):  # one that never answers is not asked again
                    self.fetcher.request(url)
            if time.monotonic() - last_resync > self.options.resync_interval:
                last_resync = time.monotonic()
                for app_key in apps:
                    queue.add(app_key)

    def _fetch_repo(self, url: str) -> None:
        git = self.git
        with contextlib.suppress(SourceError):  # recorded in git.fetch_errors
            git.fetch(url, timeout=10 if git.has_mirror(url) else 30)

    def _after_fetch(self, url: str) -> None:
        """On the repo's fetch thread: queue the apps of `url` whose target moved, or all of
        them when Git went away or came back."""
        with self._lock:
            apps = dict(self.apps)
        members: list[tuple[AppKey, AppSpec]] = []
        for app_key, app in apps.items():
            with contextlib.suppress(SpecError):
                spec = AppSpec.from_object(app)
                if spec.repo_url == url:
                    members.append((app_key, spec))
        git = self.git
        failing = url in git.fetch_errors
        if failing != self._fetch_failing.get(url, False):
            self._fetch_failing[url] = failing
            for app_key, _ in members:
                self.queue.add(app_key)  # Git went away or came back: say so
        if failing or not git.has_mirror(url):
            return
        for app_key, spec in members:
            try:
                head = git.resolve(url, spec.target_revision)
            except SourceError:
                head = ""
            if self._heads.get(app_key) != head:
                self._heads[app_key] = head
                with self._lock:
                    last = self.results.get(app_key)
                if last is None or last.revision != head:  # else compared at it already
                    self.queue.add(app_key)

    def _not_leader(self) -> NotLeader:
        return NotLeader(f"this agent ({self.identity}) is a standby; the leader is "
                         f"{self.leader or 'not elected yet'}")

    def webhook(self, payload: dict[str, Any]) -> int:
        """A Git push notification: refresh the apps on that repo (all apps if none named).
        A standby raises NotLeader (HTTP 503): only the leader acts on it."""
        if not self.is_leader:
            raise self._not_leader()
        repo = payload.get("repository") or {}
        urls = {str(repo.get(k)) for k in ("url", "clone_url", "git_url") if repo.get(k)}
        count = 0
        with self._lock:
            apps = dict(self.apps)
        for app_key, app in apps.items():
            source = ((app.get("spec") or {}).get("source") or {})
            if not urls or source.get("repoURL") in urls:
                self.queue.add(app_key, fetch=True)
                count += 1
        return count

    def registry_webhook(self, payload: dict[str, Any]) -> int:
        """A registry push notification: scan the ImagePolicies of the pushed repositories.
        A standby raises NotLeader (HTTP 503): only the leader runs the image updater."""
        if not self.is_leader:
            raise self._not_leader()
        return self.images.notify(payload)

    def refresh(self, namespace: str, name: str) -> None:
        self.queue.add((namespace, name), fetch=True)

    def _get_app(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self.apps.get((namespace, name))

