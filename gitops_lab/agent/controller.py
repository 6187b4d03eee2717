"""The GitOps agent: watches Applications and the objects they manage, polls Git, reconciles.
Top of the agent/ package: runs engine/sync.py in worker threads and writes status, events,
alerts and metrics. Runs in the foreground (`gitops-lab agent run`) or in a notebook thread.

With leader election (the default) the agent first campaigns for a Lease (agent/leader.py):
its HTTP server is up at once, but watches, workers and the Git poller run only while it is
the leader (a "term"). A standby waits; a leader that loses the Lease stops its term at once
and becomes a standby again. Every write goes through a Kube fenced on leadership.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitops_lab.agent.events import Alerter, Recorder
from gitops_lab.agent.leader import LeaderElector, LeaseConfig
from gitops_lab.agent.livecache import KindWatch, LiveCache
from gitops_lab.agent.server import AgentServer, Metrics, NotLeader
from gitops_lab.agent.status import build_status, now, status_changed
from gitops_lab.api.types import (
    GROUP,
    PLURAL,
    REFRESH_ANNOTATION,
    VERSION,
    HealthStatus,
    ResourceKey,
    SyncStatus,
)
from gitops_lab.cluster.binaries import cache_root
from gitops_lab.engine.sync import AppSpec, Reconciler, ReconcileResult, SpecError, SyncRequest
from gitops_lab.kube import Kube, KubeError, ResourceInfo
from gitops_lab.source import RepoCache, SourceError

__all__ = ["Agent", "AgentOptions", "WorkQueue"]

log = logging.getLogger("gitops_lab.agent")
AppKey = tuple[str, str]  # (namespace, name)

APP_INFO = ResourceInfo(GROUP, VERSION, "Application", PLURAL, True, ("list", "watch"))


@dataclass
class AgentOptions:
    namespace: str = "gitops-lab"
    poll_interval: float = 1.0  # seconds between Git polls (Argo CD: 180 s)
    resync_interval: float = 60.0  # full re-compare of every app even when nothing happened
    workers: int = 4
    alert_webhook: str | None = None
    http_address: str = "127.0.0.1:0"
    cache_dir: Path = field(default_factory=lambda: cache_root() / "repos")
    kubectl: str | None = None
    # leader election: only the holder of Lease <namespace>/<lease_name> reconciles
    leader_elect: bool = True
    lease_name: str = "gitops-lab-agent"
    lease_duration: float = 15.0  # seconds; renew deadline 2/3 of it, retry min(2 s, 1/5)
    identity: str = ""  # holderIdentity; default $POD_NAME or hostname_pid


class WorkQueue:
    """client-go's workqueue in small: a key is queued once, never processed twice at once."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: dict[AppKey, tuple[float, bool]] = {}  # key -> (due time, fetch)
        self._active: set[AppKey] = set()
        self._again: dict[AppKey, bool] = {}
        self._closed = False

    def add(self, key: AppKey, *, fetch: bool = False, delay: float = 0.0) -> None:
        with self._cond:
            due = time.monotonic() + delay
            if key in self._active:
                self._again[key] = self._again.get(key, False) or fetch
                return
            old = self._pending.get(key)
            if old is not None:
                due = min(due, old[0])
                fetch = fetch or old[1]
            self._pending[key] = (due, fetch)
            self._cond.notify()

    def get(self, timeout: float = 0.5) -> tuple[AppKey, bool] | None:
        with self._cond:
            deadline = time.monotonic() + timeout
            while not self._closed:
                now_ = time.monotonic()
                ready = [(d, k) for k, (d, _) in self._pending.items() if d <= now_]
                if ready:
                    _, key = min(ready)
                    _, fetch = self._pending.pop(key)
                    self._active.add(key)
                    return key, fetch
                wait = min([d for d, _ in self._pending.values()] + [deadline]) - now_
                if now_ >= deadline:
                    return None
                self._cond.wait(max(0.001, wait))
            return None

    def done(self, key: AppKey) -> None:
        with self._cond:
            self._active.discard(key)
            if key in self._again:
                fetch = self._again.pop(key)
                self._pending[key] = (time.monotonic(), fetch)
                self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._pending)


class Agent:
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
        self.recorder = Recorder(self.kube)
        self.alerter = Alerter(self.options.alert_webhook)
        self.metrics = Metrics()
        # the leader's machinery, made anew for every term (see _start_term)
        self.queue = WorkQueue()
        self.live = LiveCache(self.kube, self._on_live_change)
        self.reconciler = Reconciler(self.kube, self.repos, self.live,
                                     kubectl=self.options.kubectl)
        self.apps: dict[AppKey, dict[str, Any]] = {}
        self.results: dict[AppKey, ReconcileResult] = {}
        self.statuses: dict[AppKey, dict[str, Any]] = {}
        self._owners: dict[ResourceKey, set[AppKey]] = {}
        self._seen: dict[AppKey, tuple[Any, ...]] = {}
        self._heads: dict[AppKey, str] = {}
        self._handled_ops: dict[AppKey, int] = {}  # app -> generation whose operation is done
        self._lock = threading.RLock()
        self._stop = threading.Event()  # the agent's: set once, by stop() or a signal
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

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Agent:
        """HTTP server at once; the reconcile machinery now (no election) or once leader."""
        if self.server is not None:
            return self
        self.started_at = time.time()
        self.server = AgentServer(self.options.http_address, self.metrics, self.healthy,
                                  self.webhook, ready=self.readiness)
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
            self.reconciler = Reconciler(self.kube, self.repos, self.live,
                                         kubectl=self.options.kubectl)
            self._app_watch = KindWatch(self.kube, APP_INFO, self._on_app_change, stop,
                                        namespace=self.options.namespace)
            self._app_watch.start()
            self._spawn(self._poll_git, "git-poller", stop)
            for i in range(self.options.workers):
                self._spawn(self._worker, f"worker-{i}", stop, self.queue)
            self.metrics.leader.set(1)

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
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:  # a later term lists everything again
            for state in (self.apps, self.results, self.statuses, self._owners, self._seen,
                          self._heads, self._handled_ops):
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

    def healthy(self) -> bool:
        """/healthz: the process is alive and not stopping (leader and standby alike)."""
        return not self._stop.is_set()

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
                for owners in self._owners.values():
                    owners.discard(app_key)
            return
        meta = obj.get("metadata") or {}
        refresh = (meta.get("annotations") or {}).get(REFRESH_ANNOTATION)
        fingerprint = (meta.get("generation"), refresh, bool(obj.get("operation")))
        with self._lock:
            if _older(obj, self.apps.get(app_key)):
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

    def _poll_git(self, stop: threading.Event) -> None:
        """Fetch each repo once per interval; queue the apps whose target moved."""
        last_resync = time.monotonic()
        while not stop.wait(self.options.poll_interval):
            with self._lock:
                apps = dict(self.apps)
            by_repo: dict[str, list[tuple[AppKey, AppSpec]]] = {}
            for app_key, app in apps.items():
                try:
                    spec = AppSpec.from_object(app)
                except SpecError:
                    continue
                by_repo.setdefault(spec.repo_url, []).append((app_key, spec))
            for url, members in by_repo.items():
                failing = url in self.reconciler.fetch_errors
                with contextlib.suppress(SourceError):  # never fetched: the reconcile says why
                    self.reconciler.fetch(url, timeout=10)
                if failing != (url in self.reconciler.fetch_errors):
                    for app_key, _ in members:
                        self.queue.add(app_key)  # Git went away or came back: say so
                if url in self.reconciler.fetch_errors:
                    continue
                for app_key, spec in members:
                    try:
                        head = self.reconciler.resolve(spec, None, fetch=False)
                    except SourceError:
                        head = ""
                    if self._heads.get(app_key) != head:
                        self._heads[app_key] = head
                        self.queue.add(app_key)
            if time.monotonic() - last_resync > self.options.resync_interval:
                last_resync = time.monotonic()
                for app_key in apps:
                    self.queue.add(app_key)

    def webhook(self, payload: dict[str, Any]) -> int:
        """A Git push notification: refresh the apps on that repo (all apps if none named).
        A standby raises NotLeader (HTTP 503): only the leader acts on it."""
        if not self.is_leader:
            raise NotLeader(f"this agent ({self.identity}) is a standby; the leader is "
                            f"{self.leader or 'not elected yet'}")
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

    def refresh(self, namespace: str, name: str) -> None:
        self.queue.add((namespace, name), fetch=True)

    # ---- the work --------------------------------------------------------------------------
    def _worker(self, stop: threading.Event, queue: WorkQueue) -> None:
        while not stop.is_set():
            item = queue.get()
            if item is None:
                continue
            app_key, fetch = item
            try:
                self._process(app_key, fetch)
            except KubeError as exc:
                if exc.reason == "Fenced":  # the Lease was lost: this term is ending
                    log.info("reconcile %s/%s dropped: %s", *app_key, exc.message)
                    queue.done(app_key)
                    continue
                log.warning("reconcile %s/%s: %s (retrying)", *app_key, exc.message)
                self.metrics.reconciles.labels(f"{app_key[0]}/{app_key[1]}", "error").inc()
                queue.done(app_key)
                queue.add(app_key, fetch=fetch, delay=1.0)
                continue
            except Exception:
                log.exception("reconcile %s/%s crashed", *app_key)
                queue.done(app_key)
                queue.add(app_key, fetch=fetch, delay=2.0)
                continue
            queue.done(app_key)

    def _process(self, app_key: AppKey, fetch: bool) -> None:
        with self._lock:
            app = self.apps.get(app_key)
            prev = dict(self.statuses.get(app_key) or (app or {}).get("status") or {})
        if app is None:
            return
        label = f"{app_key[0]}/{app_key[1]}"
        generation = int((app.get("metadata") or {}).get("generation") or 0)
        operation = app.get("operation") or None
        if operation is not None and self._handled_ops.get(app_key, -1) >= generation:
            operation = None  # done already; our cached copy predates the clearing patch
        op_sync = (operation or {}).get("sync")
        request = None
        if operation is not None:
            op_sync = op_sync or {}
            request = SyncRequest(revision=op_sync.get("revision") or None,
                                  prune=bool(op_sync.get("prune", False)))
        started = now()
        t0 = time.perf_counter()

        def on_sync_start(sha: str) -> None:
            why = "operation" if request else "automated sync"
            self.recorder.record(app, "Normal", "SyncStarted",
                                 f"{why}: syncing to {sha[:7]}", revision=sha)

        result = self.reconciler.reconcile(app, fetch=fetch, sync=request, previous=prev,
                                           on_sync_start=on_sync_start)
        elapsed = time.perf_counter() - t0
        if not self._may_write():  # no status, Events or alerts from an ex-leader
            raise KubeError(0, "Fenced", "the Lease was lost during this reconcile; its "
                            "result is dropped (the new leader reconciles again)")
        status = build_status(prev, result, started_at=started, operation=operation)
        self._index(app_key, result)
        self._emit(app, prev, result)

        rollback = False
        if request is not None and request.revision and result.revision and result.spec:
            try:
                head = self.reconciler.resolve(result.spec, None, fetch=False)
            except SourceError:
                head = ""
            rollback = bool(head) and head != result.revision
        if status_changed(prev, status) or operation is not None or \
                _stale(prev, self.options.resync_interval):
            self._write_status(app, status)
        with self._lock:
            self.statuses[app_key] = status
            self.results[app_key] = result
            if result.revision:
                self._heads.setdefault(app_key, result.revision)
        if operation is not None:
            self._handled_ops[app_key] = generation
            patched = self._finish_operation(app, rollback, result)
            with self._lock:
                if patched and not _older(patched, self.apps.get(app_key)):
                    self.apps[app_key] = patched  # so no reconcile acts on the old spec
        if (app.get("metadata", {}).get("annotations") or {}).get(REFRESH_ANNOTATION):
            self._clear_refresh(app)
        self.metrics.reconciles.labels(label, "ok" if result.ok else "error").inc()
        self.metrics.duration.labels(label).observe(elapsed)
        self.metrics.set_state(label, result.sync_status.value, result.health.status.value)
        if not result.ok:
            self.queue.add(app_key, delay=max(self.options.poll_interval, 2.0))

    def _index(self, app_key: AppKey, result: ReconcileResult) -> None:
        """Remember which live objects belong to which app, so their changes re-queue it."""
        keys = {r.key for r in result.resources}
        with self._lock:
            for owners in self._owners.values():
                owners.discard(app_key)
            for key in keys:
                self._owners.setdefault(key, set()).add(app_key)
        for key in keys:
            with contextlib.suppress(KubeError):
                self.live.get(key)  # start watching the kind, if not yet

    def _emit(self, app: Mapping[str, Any], prev: Mapping[str, Any],
              result: ReconcileResult) -> None:
        """Events and alerts for what changed between the previous status and this reconcile."""
        label = f"{app['metadata']['namespace']}/{app['metadata']['name']}"
        rev = result.revision or ""
        prev_sync = (prev.get("sync") or {}).get("status")
        prev_health = (prev.get("health") or {}).get("status")
        last_synced = ((prev.get("operationState") or {}).get("syncResult") or {}).get("revision")
        spec = result.spec
        # Drift: live changed while Git did not (same revision as the last successful sync)
        drifted = result.compared_out_of_sync
        if drifted and rev and rev == last_synced and prev_sync == SyncStatus.SYNCED.value:
            names = [str(d.key) for d in drifted]
            msg = f"live state differs from Git at {rev[:7]}: " + "; ".join(
                f"{d.key} {d.message}" for d in drifted[:5])
            healing = bool(spec and spec.automated and spec.self_heal)
            msg += " — self-heal reverts it" if healing else " — self-heal is off: sync to revert"
            self.metrics.drift.labels(label).inc()
            self._alert(app, "DriftDetected", msg, rev, names)
            if healing and result.changes is not None and not result.sync_error:
                self.recorder.record(app, "Normal", "SelfHealed",
                                     f"reverted drift on {', '.join(names[:5])}", revision=rev)
        if result.changes is not None:
            if result.sync_error:
                self._alert(app, "SyncFailed", result.sync_error, rev,
                            [str(c.key) for c in result.changes.failed])
            else:
                self.recorder.record(app, "Normal", "Synced",
                                     f"synced to {rev[:7]}: {result.changes.summary()}",
                                     revision=rev)
                pruned = [str(c.key) for c in result.changes if c.action.value == "pruned"]
                if pruned:
                    self.recorder.record(app, "Normal", "Pruned", "pruned " + ", ".join(pruned),
                                         revision=rev)
        new_conds = {c.type: c.message for c in result.conditions}
        old_conds = {c.get("type"): c.get("message") for c in prev.get("conditions") or []}
        for ctype, msg in new_conds.items():
            if ctype in ("ComparisonError", "SourceError", "SyncError", "InvalidSpecError") and \
                    old_conds.get(ctype) != msg and not (result.changes and result.sync_error):
                self._alert(app, "SyncFailed", f"{ctype}: {msg}", rev, [])
        health = result.health.status.value
        if prev_health != health:
            kind = "Warning" if health == HealthStatus.DEGRADED.value else "Normal"
            self.recorder.record(app, kind, "HealthChanged",
                                 f"health {prev_health or 'unknown'} → {health}"
                                 + (f": {result.health.message}" if result.health.message else ""),
                                 revision=rev)
            if health == HealthStatus.DEGRADED.value:
                bad = [str(r.key) for r in result.resources
                       if r.health and r.health.status is HealthStatus.DEGRADED]
                self.alerter.send(label, "HealthDegraded", result.health.message, rev, bad)

    def _alert(self, app: Mapping[str, Any], reason: str, message: str, revision: str,
               resources: list[str]) -> None:
        label = f"{app['metadata']['namespace']}/{app['metadata']['name']}"
        sent = self.alerter.send(label, reason, message, revision, resources)
        self.recorder.record(app, "Warning", reason, message, revision=revision,
                             resources=tuple(resources), alerted=sent)

    # ---- writes to the Application -------------------------------------------------------------
    def _write_status(self, app: Mapping[str, Any], status: dict[str, Any]) -> None:
        meta = app["metadata"]
        path = APP_INFO.path(meta["namespace"], meta["name"]) + "/status"
        # a merge patch with the full status: lists are replaced, absent keys are removed
        body = {"status": {**{k: None for k in (app.get("status") or {}) if k not in status},
                           **status}}
        try:
            self.kube.request("PATCH", path, body=body,
                              content_type="application/merge-patch+json")
        except KubeError as exc:
            if not exc.not_found:
                raise

    def _finish_operation(self, app: Mapping[str, Any], rollback: bool,
                          result: ReconcileResult) -> dict[str, Any] | None:
        meta = app["metadata"]
        patch: dict[str, Any] = {"operation": None}
        if rollback and ((app.get("spec") or {}).get("syncPolicy") or {}).get("automated"):
            patch["spec"] = {"syncPolicy": {"automated": None}}
            self.recorder.record(
                app, "Normal", "Synced",
                f"rolled back to {(result.revision or '')[:7]}: automated sync is now off so "
                "the rollback is not undone; re-enable it when Git is fixed",
                revision=result.revision or "")
        try:
            return self.kube.request("PATCH", APP_INFO.path(meta["namespace"], meta["name"]),
                                     body=patch, content_type="application/merge-patch+json")
        except KubeError as exc:
            if not exc.not_found:
                raise
        return None

    def _clear_refresh(self, app: Mapping[str, Any]) -> None:
        meta = app["metadata"]
        try:
            self.kube.request(
                "PATCH", APP_INFO.path(meta["namespace"], meta["name"]),
                body={"metadata": {"annotations": {REFRESH_ANNOTATION: None}}},
                content_type="application/merge-patch+json")
        except KubeError as exc:
            if not exc.not_found:
                raise


def _older(obj: Mapping[str, Any], than: Mapping[str, Any] | None) -> bool:
    """True when `obj` is an older version of `than` (resourceVersions of one API server)."""
    if than is None:
        return False
    try:
        return int(obj["metadata"]["resourceVersion"]) < int(than["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return False


def _stale(prev: Mapping[str, Any], max_age: float) -> bool:
    stamp = prev.get("reconciledAt")
    if not stamp:
        return True
    try:
        then = time.mktime(time.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    except ValueError:
        return True
    return time.time() - then > max_age


def default_options_from_env() -> AgentOptions:
    opts = AgentOptions()
    if os.environ.get("GITOPS_LAB_POLL_INTERVAL"):
        opts.poll_interval = float(os.environ["GITOPS_LAB_POLL_INTERVAL"])
    return opts
