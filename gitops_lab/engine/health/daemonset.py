"""DaemonSet health: spec observed, OnDelete is Healthy, else updated and available pod counts.
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
    pending = generation_pending(obj, "daemon set")
    if pending is not None:
        return pending
    desired = int(status.get("desiredNumberScheduled") or 0)
    updated = int(status.get("updatedNumberScheduled") or 0)
    available = int(status.get("numberAvailable") or 0)
    if (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
        return Health(
            HealthStatus.HEALTHY,
            f"daemon set {updated} out of {desired} new pods have been updated",
        )
    name = meta.get("name", "")
    if updated < desired:
        return Health(
            HealthStatus.PROGRESSING,
            f'Waiting for daemon set "{name}" rollout to finish: {updated} out of {desired} '
            "new pods have been updated...",
        )
    if available < desired:
        return Health(
            HealthStatus.PROGRESSING,
            f'Waiting for daemon set "{name}" rollout to finish: {available} of {desired} '
            "updated pods are available...",
        )
    return Health(HealthStatus.HEALTHY)
