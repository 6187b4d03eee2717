"""Job health: the Failed, Complete and Suspended conditions; Progressing until one is true.
engine/health: one entry of the assess_health table, called by engine/report.py after apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops_lab.api.types import Health, HealthStatus

__all__ = ["check"]


def check(obj: Mapping[str, Any]) -> Health:
    status = obj.get("status") or {}
    true = {
        str(c.get("type")): str(c.get("message") or "")
        for c in status.get("conditions") or []
        if c.get("status") == "True"
    }
    if "Failed" in true:
        return Health(HealthStatus.DEGRADED, true["Failed"])
    if "Complete" in true:
        return Health(HealthStatus.HEALTHY, true["Complete"])
    if "Suspended" in true:
        return Health(HealthStatus.SUSPENDED, true["Suspended"])
    if (obj.get("spec") or {}).get("suspend"):
        return Health(HealthStatus.SUSPENDED, "Job is suspended")
    return Health(HealthStatus.PROGRESSING)
