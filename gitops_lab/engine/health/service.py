"""Service health: only type LoadBalancer has a rule, Progressing until an ingress is assigned.
engine/health: one entry of the assess_health table, called by engine/report.py after apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops_lab.api.types import Health, HealthStatus

__all__ = ["check"]


def check(obj: Mapping[str, Any]) -> Health:
    if (obj.get("spec") or {}).get("type") != "LoadBalancer":
        return Health(HealthStatus.HEALTHY)
    load_balancer = (obj.get("status") or {}).get("loadBalancer") or {}
    if load_balancer.get("ingress"):
        return Health(HealthStatus.HEALTHY)
    return Health(HealthStatus.PROGRESSING)
