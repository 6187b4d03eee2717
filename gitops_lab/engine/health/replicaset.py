"""ReplicaSet health: spec observed, a true ReplicaFailure condition, then available replicas.
engine/health: one entry of the assess_health table, called by engine/report.py after apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops_lab.api.types import Health, HealthStatus
from gitops_lab.engine.health._common import generation_pending

__all__ = ["check"]


def check(obj: Mapping[str, Any]) -> Health:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    pending = generation_pending(obj, "replica set")
    if pending is not None:
        return pending
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
