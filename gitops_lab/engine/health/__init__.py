"""Object health: Argo CD's built-in checks (gitops-engine pkg/health), one module per kind.
engine/health: assess_health() is called by engine/report.py after apply, on each live object.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gitops_lab.api.types import Health, HealthStatus
from gitops_lab.engine.health import (
    apiservice,
    daemonset,
    deployment,
    hpa,
    ingress,
    job,
    pod,
    pvc,
    replicaset,
    service,
    statefulset,
)

__all__ = ["assess_health"]

Check = Callable[[Mapping[str, Any]], Health]

# (API group, kind) -> check. The core group is "". Kinds not listed are Healthy once they exist.
_CHECKS: dict[tuple[str, str], Check] = {
    ("apps", "Deployment"): deployment.check,
    ("apps", "StatefulSet"): statefulset.check,
    ("apps", "DaemonSet"): daemonset.check,
    ("apps", "ReplicaSet"): replicaset.check,
    ("extensions", "Deployment"): deployment.check,
    ("extensions", "DaemonSet"): daemonset.check,
    ("extensions", "ReplicaSet"): replicaset.check,
    ("extensions", "Ingress"): ingress.check,
    ("networking.k8s.io", "Ingress"): ingress.check,
    ("", "Pod"): pod.check,
    ("", "Service"): service.check,
    ("", "PersistentVolumeClaim"): pvc.check,
    ("batch", "Job"): job.check,
    ("autoscaling", "HorizontalPodAutoscaler"): hpa.check,
    ("apiregistration.k8s.io", "APIService"): apiservice.check,
}


def assess_health(obj: Mapping[str, Any]) -> Health:
    """The health of one live object, by Argo CD's rules for its (group, kind)."""
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return Health(HealthStatus.PROGRESSING, "Pending deletion")
    group = str(obj.get("apiVersion") or "").rpartition("/")[0]
    check = _CHECKS.get((group, str(obj.get("kind") or "")))
    if check is None:
        return Health(HealthStatus.HEALTHY)
    try:
        return check(obj)
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        # gitops-engine reports Unknown when an object cannot be read as its typed struct.
        return Health(HealthStatus.UNKNOWN, f"cannot assess health: {exc}")
