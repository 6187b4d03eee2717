"""Whether the API server serves the agent, for /healthz: what the agent's Kube client knows,
and when that is stale or bad, one cheap call to find out now. Used by agent/controller.py.
"""

from __future__ import annotations

import threading
import time

from gitops_lab.agent.appwrites import APP_INFO
from gitops_lab.kube import Kube, KubeError

__all__ = ["HEALTH_PROBE_AFTER", "HEALTH_PROBE_EVERY", "ApiProbe"]

HEALTH_PROBE_AFTER = 10.0  # seconds without a successful API call before /healthz checks
HEALTH_PROBE_EVERY = 2.0  # at most one such check per this many seconds


class ApiProbe:
    """Answers "why does the API server not serve the agent?" ("" = it does)."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self._lock = threading.Lock()
        self._probed_at = -1e9
        self._error = ""

    def problem(self) -> str:
        """When the last call failed, or none succeeded for HEALTH_PROBE_AFTER seconds, one
        cheap call (at most every HEALTH_PROBE_EVERY seconds, however often /healthz is asked)
        finds out now. The Lease requests of a standby count: its connection shares this state."""
        now_ = time.monotonic()
        kube = self.kube
        if not kube.problem and now_ - kube.last_ok < HEALTH_PROBE_AFTER:
            return ""
        # one probe at a time; a concurrent /healthz answers with what is known
        if self._lock.acquire(blocking=False):
            try:
                if now_ - self._probed_at >= HEALTH_PROBE_EVERY:
                    self._probed_at = now_
                    try:
                        kube.request("GET", APP_INFO.path(self.namespace),
                                     query={"limit": 1}, timeout=3, retries=0)
                        self._error = ""
                    except KubeError as exc:
                        self._error = "" if exc.status in (0, 401) else (
                            f"cannot list Applications in {self.namespace}: {exc.message}")
            finally:
                self._lock.release()
        return kube.problem or self._error
