"""HorizontalPodAutoscaler health, exactly gitops-engine's pkg/health/health_hpa.go.
engine/health: one entry of the assess_health table, called by engine/report.py after apply.

The conditions are read in the order the controller lists them and the first decisive one
wins: a known failure reason is Degraded, `AbleToScale` or `ScalingLimited` with status True
is Healthy. So an HPA that lists `AbleToScale=True` before a failing `ScalingActive` is
Healthy, as in Argo CD; none decisive (or none at all) is Progressing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gitops_lab.api.types import Health, HealthStatus

__all__ = ["check"]

# autoscaling/v1 has no status.conditions; the controller keeps them in this annotation.
V1_CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
# The versions gitops-engine reads status.conditions of; any other is "unsupported HPA GVK".
_V2_VERSIONS = frozenset({"v2", "v2beta1", "v2beta2"})

_WAITING = Health(HealthStatus.PROGRESSING, "Waiting to Autoscale")

# (type, reason): the status is not looked at, as in gitops-engine.
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
    """The conditions where the object's version keeps them: v1 in the annotation only,
    v2* in status.conditions only. ValueError for another version or a bad annotation
    (assess_health reports it as Unknown, as gitops-engine does for its conversion errors)."""
    api_version = str(obj.get("apiVersion") or "")
    version = api_version.rpartition("/")[2]
    if version == "v1":
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if V1_CONDITIONS_ANNOTATION not in annotations:
            return []
        try:
            parsed = json.loads(annotations[V1_CONDITIONS_ANNOTATION])
        except ValueError as exc:
            raise ValueError(f"failed to convert conditions annotation to typed: {exc}") from exc
        if parsed is not None and not isinstance(parsed, list):
            raise ValueError("failed to convert conditions annotation to typed: not a list")
        return list(parsed or [])
    if version in _V2_VERSIONS:
        return list((obj.get("status") or {}).get("conditions") or [])
    raise ValueError(f"unsupported HPA version {api_version!r}")


def check(obj: Mapping[str, Any]) -> Health:
    for cond in _conditions(obj):
        kind, reason = str(cond.get("type") or ""), str(cond.get("reason") or "")
        message = str(cond.get("message") or "")
        if (kind, reason) in _DEGRADED:
            return Health(HealthStatus.DEGRADED, message)
        if kind in _HEALTHY_TYPES and cond.get("status") == "True":
            return Health(HealthStatus.HEALTHY, message)
    return _WAITING
