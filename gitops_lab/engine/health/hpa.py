"""HorizontalPodAutoscaler health: failing conditions are Degraded, a scaler able to act Healthy.
engine/health: one entry of the assess_health table, called by engine/report.py after apply.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gitops_lab.api.types import Health, HealthStatus

__all__ = ["check"]

# autoscaling/v1 has no status.conditions; the controller keeps them in this annotation.
V1_CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"

_WAITING = Health(HealthStatus.PROGRESSING, "Waiting to Autoscale")

_DEGRADED = frozenset(
    {
        ("AbleToScale", "FailedGetScale"),
        ("AbleToScale", "FailedUpdateScale"),
        ("ScalingActive", "FailedGetResourceMetric"),
        ("ScalingActive", "InvalidSelector"),
    }
)
_HEALTHY_TYPES = frozenset({"AbleToScale", "ScalingLimited"})


def _conditions(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    conditions = (obj.get("status") or {}).get("conditions")
    if conditions is not None:
        return list(conditions)
    annotation = ((obj.get("metadata") or {}).get("annotations") or {}).get(
        V1_CONDITIONS_ANNOTATION
    )
    return list(json.loads(annotation)) if annotation else []


def _is_degraded(cond: Mapping[str, Any]) -> bool:
    kind, reason = str(cond.get("type")), str(cond.get("reason"))
    # Any metric the controller cannot fetch (resource, pods, object, external) stops scaling.
    return (kind, reason) in _DEGRADED or (
        kind == "ScalingActive" and cond.get("status") == "False" and reason.startswith("FailedGet")
    )


def check(obj: Mapping[str, Any]) -> Health:
    conditions = _conditions(obj)
    for cond in conditions:
        if _is_degraded(cond):
            return Health(HealthStatus.DEGRADED, str(cond.get("message") or ""))
    for cond in conditions:
        if cond.get("type") in _HEALTHY_TYPES and cond.get("status") == "True":
            return Health(HealthStatus.HEALTHY, str(cond.get("message") or ""))
    return _WAITING
