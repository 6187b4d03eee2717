"""Kubernetes Events on Applications, and alerts POSTed to a webhook.
Used by agent/controller.py; every event is also kept in memory for the EventLog widget.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gitops_lab.agent.status import now
from gitops_lab.api.types import API_VERSION, KIND
from gitops_lab.kube import Kube, KubeError

__all__ = ["ALERT_REASONS", "Alerter", "EventRecord", "Recorder"]

log = logging.getLogger("gitops_lab.agent.events")

ALERT_REASONS = ("DriftDetected", "SyncFailed", "HealthDegraded")


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

