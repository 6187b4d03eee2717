"""ReplicaSet health: spec observed, a true ReplicaFailure condition, then available replicas.
engine/health: one entry of the assess_health table, called by engine/sync.py after apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops_lab.api.types import Health, HealthStatus

__all__ = ["check"]


def check(obj: Mapping[str, Any]) -> Health:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if int(meta.get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return Health(
            HealthStatus.PROGRESSING,
            "Waiting for rollout to finish: "
            "observed replica set generation less than desired generation",
        )
    failure = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "ReplicaFailure"), None
    )
    if failure is not None and failure.get("status") == "True":
        return Health(HealthStatus.DEGRADED, str(failure.get("message") or ""))
    desired = spec.get("replicas")
    available = int(status.get("availableReplicas") or 0)
    if desired is not None and available < int(desired):
        return Health(
            HealthStatus.PROGRESSING,
            f"Waiting for rollout to finish: {available} out of {int(desired)} new replicas "
            "are available...",
        )
    return Health(HealthStatus.HEALTHY)
