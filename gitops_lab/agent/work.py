"""The agent's work: reconcile one queued Application — compare, say "sync started", sync,
write status, Events, alerts and metrics — or, when it is being deleted, delete its objects.
Mixed into the Agent (agent/controller.py), whose terms make the queue, caches and
Reconciler this uses; the engine does the reconcile, agent/events.py decides what to say.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from gitops_lab.agent.appwrites import (
    clear_refresh,
    finish_operation,
    older,
    remove_finalizer,
    stale,
    write_status,
)
from gitops_lab.agent.events import (
    ERROR_CONDITIONS,
    Alerter,
    EventType,
    Reason,
    Recorder,
    decide,
    sync_started,
)
from gitops_lab.agent.livecache import LiveCache
from gitops_lab.agent.options import BACKOFF_BASE, BACKOFF_MAX, AgentOptions
from gitops_lab.agent.server import Metrics
from gitops_lab.agent.status import build_status, last_synced_revision, now, status_changed
from gitops_lab.agent.workqueue import AppKey, WorkQueue
from gitops_lab.api.types import REFRESH_ANNOTATION, RESOURCES_FINALIZER, ResourceKey
from gitops_lab.engine.api import ConditionType, ReconcileResult, SyncRequest
from gitops_lab.engine.guard import APP_OF_APPS_OPTION
from gitops_lab.engine.inventory import cascade_candidates, inventory_keys
from gitops_lab.engine.reconcile import Reconciler
from gitops_lab.kube import Kube, KubeError

__all__ = ["AppWork"]

log = logging.getLogger("gitops_lab.agent")


class AppWork:
    """Worker threads and the reconcile of one app. The Agent provides the state below."""

    options: AgentOptions
    kube: Kube
    queue: WorkQueue
    live: LiveCache
    reconciler: Reconciler
    recorder: Recorder
    alerter: Alerter
    metrics: Metrics
    apps: dict[AppKey, dict[str, Any]]
    results: dict[AppKey, ReconcileResult]
    statuses: dict[AppKey, dict[str, Any]]
    _owners: dict[ResourceKey, set[AppKey]]
    _heads: dict[AppKey, str]
    _handled_ops: dict[AppKey, int]  # app -> generation whose operation is done
    _failures: dict[AppKey, tuple[Any, int]]  # app -> (what failed, how often)
    _alerted: dict[AppKey, set[tuple[str, ...]]]  # de-duplication of alerts
    _lock: threading.RLock

    def _may_write(self) -> bool:
        raise NotImplementedError

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
                delay = self._retry_later(app_key, ("api", exc.status), fetch)
                log.warning("reconcile %s/%s: %s (retrying in %.0f s)", *app_key, exc.message,
                            delay)
                self.metrics.reconciles.labels(f"{app_key[0]}/{app_key[1]}", "error").inc()
            except Exception:
                delay = self._retry_later(app_key, ("crash",), fetch)
                log.exception("reconcile %s/%s crashed (retrying in %.0f s)", *app_key, delay)
            queue.done(app_key)

    def _retry_later(self, app_key: AppKey, what: tuple[Any, ...], fetch: bool = False) -> float:
        """Queue a failed app again after an exponential backoff (see BACKOFF_BASE)."""
        with self._lock:
            app = self.apps.get(app_key) or {}
            signature = ((app.get("metadata") or {}).get("generation"), *what)
            old, count = self._failures.get(app_key, (None, 0))
            count = count + 1 if old == signature else 1
            self._failures[app_key] = (signature, count)
        delay = float(min(BACKOFF_BASE * 2 ** (count - 1), BACKOFF_MAX))
        self.queue.add(app_key, fetch=fetch, delay=delay)
        return delay

    def _process(self, app_key: AppKey, fetch: bool) -> None:
        with self._lock:
            app = self.apps.get(app_key)
            prev = dict(self.statuses.get(app_key) or (app or {}).get("status") or {})
        if app is None:
            return
        if (app.get("metadata") or {}).get("deletionTimestamp"):
            self._finalize(app_key, app, prev)  # being deleted: never sync it again
            return
        label = f"{app_key[0]}/{app_key[1]}"
        generation = int((app.get("metadata") or {}).get("generation") or 0)
        operation = app.get("operation") or None
        if operation is not None and self._handled_ops.get(app_key, -1) >= generation:
            operation = None  # done already; our cached copy predates the clearing patch
        request = None
        if operation is not None:
            op_sync = operation.get("sync") or {}
            request = SyncRequest(revision=op_sync.get("revision") or None,
                                  prune=bool(op_sync.get("prune", False)))
        started = now()
        t0 = time.perf_counter()

        compared = self.reconciler.compare(
            app, inventory=inventory_keys(prev), last_synced=last_synced_revision(prev),
            fetch=fetch, request=request)
        if compared.syncs:  # before the writes, so the Event's time is when they started
            self.recorder.emit(app, sync_started(prev, compared.result.revision or "",
                                                 by_request=request is not None))
        result = self.reconciler.sync(compared)
        elapsed = time.perf_counter() - t0
        if not self._may_write():  # no status, Events or alerts from an ex-leader
            raise KubeError(0, "Fenced", "the Lease was lost during this reconcile; its "
                            "result is dropped (the new leader reconciles again)")
        status = build_status(prev, result, started_at=started, operation=operation)
        self._index(app_key, result)
        self._emit(app, prev, result)

        if status_changed(prev, status) or operation is not None or \
                stale(prev, self.options.status_heartbeat):
            write_status(self.kube, app, status)
        with self._lock:
            self.statuses[app_key] = status
            self.results[app_key] = result
            if result.revision:
                self._heads.setdefault(app_key, result.revision)
        if operation is not None:
            self._handled_ops[app_key] = generation
            patched = self._finish_operation(app, result)
            with self._lock:
                if patched and not older(patched, self.apps.get(app_key)):
                    self.apps[app_key] = patched  # so no reconcile acts on the old spec
        if (app.get("metadata", {}).get("annotations") or {}).get(REFRESH_ANNOTATION):
            clear_refresh(self.kube, app)
        self.metrics.reconciles.labels(label, "ok" if result.ok else "error").inc()
        self.metrics.duration.labels(label).observe(elapsed)
        self.metrics.set_state(label, result.sync_status.value, result.health.status.value)
        failing = [c.type for c in result.conditions if c.type in ERROR_CONDITIONS]
        if failing:
            self._retry_later(app_key, (result.revision, *failing))
        else:
            with self._lock:
                self._failures.pop(app_key, None)

    def _finish_operation(self, app: Mapping[str, Any],
                          result: ReconcileResult) -> dict[str, Any] | None:
        """The operation is done; a rollback also turns automated sync off, and says so."""
        rollback = result.rollback and bool(
            ((app.get("spec") or {}).get("syncPolicy") or {}).get("automated"))
        if rollback:
            self.recorder.record(
                app, EventType.NORMAL.value, Reason.SYNCED.value,
                f"rolled back to {(result.revision or '')[:7]}: automated sync is now off so "
                "the rollback is not undone; re-enable it when Git is fixed",
                revision=result.revision or "")
        return finish_operation(self.kube, app, stop_automation=rollback)

    def _finalize(self, app_key: AppKey, app: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        """An Application being deleted. With the resources finalizer: delete its inventory
        objects that carry its tracking annotation (never the agent's own), then remove the
        finalizer. Without it: nothing — its objects are orphaned, as in Argo CD."""
        meta = app.get("metadata") or {}
        finalizers = list(meta.get("finalizers") or [])
        if RESOURCES_FINALIZER not in finalizers:
            return
        policy = (app.get("spec") or {}).get("syncPolicy") or {}
        app_of_apps = APP_OF_APPS_OPTION in (policy.get("syncOptions") or [])
        inventory = inventory_keys(status)
        live: dict[ResourceKey, dict[str, Any] | None] = {}
        unreadable: list[str] = []
        for key in inventory:
            try:
                live[key] = self.live.get(key)
            except KubeError as exc:
                if not exc.not_found:
                    unreadable.append(f"{key}: {exc.message}")
        doomed = cascade_candidates(inventory, live, app_key[0], app_key[1], app_of_apps)
        changes = self.reconciler.manager.delete_all(doomed)
        problems = unreadable + [f"{c.key}: {c.message}" for c in changes.failed]
        if problems:
            message = "cannot delete the app's objects: " + "; ".join(problems)
            delay = self._retry_later(app_key, ("delete",))
            with self._lock:
                first = (ConditionType.DELETION.value,) not in self._alerted.get(app_key, set())
                self._alerted.setdefault(app_key, set()).add((ConditionType.DELETION.value,))
            if first:
                self.recorder.record(app, EventType.WARNING.value, Reason.DELETION_FAILED.value,
                                     f"{message}; the finalizer {RESOURCES_FINALIZER} stays "
                                     f"(retrying in {delay:.0f} s)")
            write_status(self.kube, app, {**status, "conditions": [
                {"type": ConditionType.DELETION.value, "message": message,
                 "lastTransitionTime": now()}]})
            return
        deleted = [str(c.key) for c in changes if c.action.value == "pruned"]
        kept = [str(k) for k in inventory
                if k.kind == "CustomResourceDefinition" and live.get(k) is not None]
        self.recorder.record(app, EventType.NORMAL.value, Reason.DELETED.value,
                             "deleted with the app: " + (", ".join(deleted) or "nothing left")
                             + (f"; left in place (CRDs are never deleted in cascade): "
                                f"{', '.join(kept)}" if kept else ""))
        try:
            remove_finalizer(self.kube, app, finalizers,
                             [f for f in finalizers if f != RESOURCES_FINALIZER])
        except KubeError as exc:
            self._retry_later(app_key, ("finalizer", exc.status))

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
        """Events and alerts for what changed between the previous status and this reconcile
        (decided in agent/events.py)."""
        app_key = (str(app["metadata"]["namespace"]), str(app["metadata"]["name"]))
        label = f"{app_key[0]}/{app_key[1]}"
        with self._lock:
            emits, self._alerted[app_key] = decide(prev, result,
                                                   self._alerted.get(app_key, set()))
        for what in emits:
            if what.reason is Reason.DRIFT_DETECTED:
                self.metrics.drift.labels(label).inc()
            sent = what.alert and self.alerter.send(label, what.reason.value, what.message,
                                                    what.revision, list(what.resources))
            if what.event:
                self.recorder.emit(app, what, alerted=sent)
