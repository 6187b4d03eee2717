"""Deployment health: paused, progress deadline, then the kubectl rollout-status counts.
engine/health: one entry of the assess_health table, called by engine/report.py after apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops_lab.api.types import Health, HealthStatus
from gitops_lab.engine.health._common import generation_pending

__all__ = ["check"]


def check(obj: Mapping[str, Any]) -> Health:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if spec.get("paused"):
        return Health(HealthStatus.SUSPENDED, "Deployment is paused")
    pending = generation_pending(obj, "deployment")
    if pending is not None:
        return pending
    progressing = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), None
    )
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        name = meta.get("name", "")
        return Health(HealthStatus.DEGRADED, f'Deployment "{name}" exceeded its progress deadline')
    desired = spec.get("replicas")
    replicas = int(status.get("replicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if desired is not None and updated < int(desired):
        return Health(
            HealthStatus.PROGRESSING,
            f"Waiting for rollout to finish: {updated} out of {int(desired)} new replicas "
            "have been updated...",
        )
    if replicas > updated:
        return Health(
            HealthStatus.PROGRESSING,
            f"Waiting for rollout to finish: {replicas - updated} old replicas "
            "are pending termination...",
        )
    if available < updated:
        return Health(
            HealthStatus.PROGRESSING,
            f"Waiting for rollout to finish: {available} of {updated} updated replicas "
            "are available...",
        )
    return Health(HealthStatus.HEALTHY)
