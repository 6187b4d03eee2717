"""Kubernetes Events on Applications, and alerts POSTed to a webhook.
What to say is decided by pure functions (`sync_started`, `decide`: previous status + this
reconcile's result → Events and alerts); `Recorder` and `Alerter` say it. Used by
agent/controller.py; listeners (the EventLog widget) get every Event recorded.
"""

from __future__ import annotations

import collections
import enum
import json
import logging
import threading
import urllib.request
import uuid
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import Any

from gitops_lab.agent.status import Phase, last_synced_revision, now
from gitops_lab.api.types import API_VERSION, KIND, HealthStatus, SyncStatus
from gitops_lab.engine.api import ConditionType, ReconcileResult
from gitops_lab.kube import Kube, KubeError

__all__ = ["ALERT_REASONS", "Alerter", "Emit", "EventRecord", "EventType", "Reason", "Recorder",
           "decide", "sync_started"]

log = logging.getLogger("gitops_lab.agent.events")


class EventType(enum.StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


class Reason(enum.StrEnum):
    """The `reason` of the agent's Events and alerts (README: "Events on each Application")."""

    SYNC_STARTED = "SyncStarted"
    SYNCED = "Synced"
    PRUNED = "Pruned"
    SELF_HEALED = "SelfHealed"
    DRIFT_DETECTED = "DriftDetected"
    SYNC_FAILED = "SyncFailed"
    HEALTH_CHANGED = "HealthChanged"
    HEALTH_DEGRADED = "HealthDegraded"
    DELETED = "Deleted"
    DELETION_FAILED = "DeletionFailed"


ALERT_REASONS = (Reason.DRIFT_DETECTED.value, Reason.SYNC_FAILED.value,
                 Reason.HEALTH_DEGRADED.value)
# conditions that are failures (alerted once, retried with backoff); SharedResourceWarning
# is not one
ERROR_CONDITIONS = (ConditionType.COMPARISON.value, ConditionType.SYNC.value,
                    ConditionType.SOURCE.value)
AlertKey = tuple[str, ...]


@dataclass(frozen=True)
class Emit:
    """One thing to say about a reconcile: an Event, and with `alert` also a POST to the alert
    webhook (the Event then records whether it was sent); `event=False`: the alert only."""

    type: EventType
    reason: Reason
    message: str
    revision: str = ""
    resources: tuple[str, ...] = ()
    alert: bool = False
    event: bool = True
    aggregate: tuple[Any, ...] | None = None  # Recorder.record's: count up a repeat


def sync_started(prev: Mapping[str, Any], revision: str, by_request: bool) -> Emit:
    """`SyncStarted`, said before the writes. A retry of a failed automated sync at the same
    revision counts up one Event, like kubectl's."""
    last_op = prev.get("operationState") or {}
    last_failed = last_op.get("phase") == Phase.FAILED and \
        (last_op.get("syncResult") or {}).get("revision") == revision
    retry = not by_request and last_failed
    why = "operation" if by_request else "automated sync"
    return Emit(EventType.NORMAL, Reason.SYNC_STARTED,
                f"{why}: syncing to {revision[:7]}" + (" (retry)" if retry else ""),
                revision, aggregate=(Reason.SYNC_STARTED.value, revision) if retry else None)


def decide(prev: Mapping[str, Any], result: ReconcileResult,
           alerted: Set[AlertKey]) -> tuple[list[Emit], set[AlertKey]]:
    """The Events and alerts for what changed between the previous status and this reconcile,
    in order; and the failures alerted so far (`alerted`: those of the reconcile before), so
    a failure that goes on is alerted once."""
    out: list[Emit] = []
    rev = result.revision or ""
    prev_sync = (prev.get("sync") or {}).get("status")
    prev_health = (prev.get("health") or {}).get("status")
    spec = result.spec
    synced = result.changes is not None and not result.sync_error
    # Drift: live changed while Git did not (same revision as the last successful sync)
    drifted = result.compared_out_of_sync
    if drifted and rev and rev == last_synced_revision(prev) and \
            prev_sync == SyncStatus.SYNCED.value:
        names = tuple(str(d.key) for d in drifted)
        msg = f"live state differs from Git at {rev[:7]}: " + "; ".join(
            f"{d.key} {d.message}" for d in drifted[:5])
        healing = bool(spec and spec.automated and spec.self_heal)
        msg += " — self-heal reverts it" if healing else " — self-heal is off: sync to revert"
        out.append(Emit(EventType.WARNING, Reason.DRIFT_DETECTED, msg, rev, names, alert=True))
        if healing and synced:
            out.append(Emit(EventType.NORMAL, Reason.SELF_HEALED,
                            f"reverted drift on {', '.join(names[:5])}", rev))
    if result.changes is not None and synced:
        out.append(Emit(EventType.NORMAL, Reason.SYNCED,
                        f"synced to {rev[:7]}: {result.changes.summary()}", rev))
        pruned = [str(c.key) for c in result.changes if c.action.value == "pruned"]
        if pruned:
            out.append(Emit(EventType.NORMAL, Reason.PRUNED, "pruned " + ", ".join(pruned), rev))
    # SyncFailed: once per failure — keyed by condition type, revision and the objects
    # named, never by the message text (which may carry a timestamp or vary in order)
    failed = tuple(str(c.key) for c in result.changes.failed) if result.changes else ()
    current: dict[AlertKey, tuple[str, tuple[str, ...]]] = {}
    for cond in result.conditions:
        if cond.type not in (*ERROR_CONDITIONS, ConditionType.INVALID_SPEC.value):
            continue
        if cond.type == ConditionType.SYNC and result.sync_error:
            message, resources = result.sync_error, failed
        else:
            message, resources = f"{cond.type}: {cond.message}", ()
        current[(Reason.SYNC_FAILED.value, cond.type, rev, *cond.objects)] = (message, resources)
    for key, (message, resources) in current.items():
        if key not in alerted:
            out.append(Emit(EventType.WARNING, Reason.SYNC_FAILED, message, rev, resources,
                            alert=True))
    health = result.health.status.value
    if prev_health != health:
        degraded = health == HealthStatus.DEGRADED.value
        out.append(Emit(EventType.WARNING if degraded else EventType.NORMAL,
                        Reason.HEALTH_CHANGED,
                        f"health {prev_health or 'unknown'} → {health}"
                        + (f": {result.health.message}" if result.health.message else ""), rev))
        if degraded:
            bad = tuple(str(r.key) for r in result.resources
                        if r.health and r.health.status is HealthStatus.DEGRADED)
            out.append(Emit(EventType.WARNING, Reason.HEALTH_DEGRADED, result.health.message,
                            rev, bad, alert=True, event=False))
    return out, set(current)


@dataclass(frozen=True)
class EventRecord:
    app: str  # namespace/name
    type: str  # Normal | Warning
    reason: str
    message: str
    time: str = field(default_factory=now)
    revision: str = ""
    resources: tuple[str, ...] = ()
    alerted: bool = False


class Recorder:
    """Writes core/v1 Events about an Application (what `kubectl describe app` shows)."""

    def __init__(self, kube: Kube, component: str = "gitops-lab-agent") -> None:
        self.kube = kube
        self.component = component
        self._listeners: list[Any] = []
        self._lock = threading.Lock()
        # aggregated events: (namespace, app, key) -> (Event name, count), like client-go's
        # EventCorrelator: a repeat PATCHes count and lastTimestamp instead of a new Event
        self._aggregated: collections.OrderedDict[tuple[Any, ...], tuple[str, int]] = \
            collections.OrderedDict()

    def subscribe(self, callback: Any) -> None:
        with self._lock:
            self._listeners.append(callback)

    def unsubscribe(self, callback: Any) -> None:
        with self._lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    def emit(self, app: Mapping[str, Any], what: Emit, *, alerted: bool = False) -> None:
        """Record one decided Event (see `decide`)."""
        self.record(app, what.type.value, what.reason.value, what.message,
                    revision=what.revision, resources=what.resources, alerted=alerted,
                    aggregate=what.aggregate)

    def record(self, app: Mapping[str, Any], type_: str, reason: str, message: str, *,
               revision: str = "", resources: tuple[str, ...] = (), alerted: bool = False,
               kind: str = KIND, aggregate: tuple[Any, ...] | None = None) -> None:
        """One Event on `app` (an Application, or any object of `kind` in gitopslab.io); with
        `aggregate`, a repeat of that key on the same app counts up the existing Event (count,
        lastTimestamp, message) instead of creating another."""
        meta = app.get("metadata") or {}
        ns, name = str(meta.get("namespace")), str(meta.get("name"))
        stamp = now()
        event_name = f"{name}.{uuid.uuid4().hex[:12]}"
        if aggregate is not None:
            agg_key = (ns, name, type_, reason, *aggregate)
            with self._lock:
                seen = self._aggregated.get(agg_key)
            if seen is not None:
                old_name, count = seen
                try:
                    self.kube.request(
                        "PATCH", f"/api/v1/namespaces/{ns}/events/{old_name}",
                        body={"count": count + 1, "lastTimestamp": stamp,
                              "message": message[:1024]},
                        content_type="application/merge-patch+json")
                except KubeError as exc:
                    if not exc.not_found:
                        log.warning("could not update event %s on %s/%s: %s", reason, ns,
                                    name, exc.message)
                else:
                    with self._lock:
                        self._aggregated[agg_key] = (old_name, count + 1)
                    return
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": event_name, "namespace": ns},
            "involvedObject": {
                "apiVersion": API_VERSION, "kind": kind, "namespace": ns, "name": name,
                "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.component,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            self.kube.request("POST", f"/api/v1/namespaces/{ns}/events", body=event)
        except KubeError as exc:
            log.warning("could not record event %s on %s/%s: %s", reason, ns, name, exc.message)
        else:
            if aggregate is not None:
                with self._lock:
                    self._aggregated[(ns, name, type_, reason, *aggregate)] = (event_name, 1)
                    while len(self._aggregated) > 1000:
                        self._aggregated.popitem(last=False)
        rec = EventRecord(f"{ns}/{name}", type_, reason, message, stamp, revision, resources,
                          alerted)
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            try:
                callback(rec)
            except Exception:  # a widget must never break the agent
                log.exception("event listener failed")


class Alerter:
    """POSTs `{app, reason, message, revision, resources}` as JSON to the alert webhook."""

    def __init__(self, url: str | None, timeout: float = 3.0) -> None:
        self.url = url
        self.timeout = timeout
        self.sent: collections.deque[dict[str, Any]] = collections.deque(maxlen=200)

    def send(self, app: str, reason: str, message: str, revision: str,
             resources: list[str]) -> bool:
        payload = {"app": app, "reason": reason, "message": message, "revision": revision,
                   "resources": resources}
        self.sent.append(payload)
        if not self.url:
            return False
        body = json.dumps(payload).encode()
        req = urllib.request.Request(self.url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        # fire and forget in a thread: a slow receiver must not stall reconciles
        threading.Thread(target=self._post, args=(req,), daemon=True).start()
        return True

    def _post(self, req: urllib.request.Request) -> None:
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                resp.read()
        except OSError as exc:
            log.warning("alert webhook %s failed: %s", self.url, exc)

