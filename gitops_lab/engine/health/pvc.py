"""PersistentVolumeClaim health: the claim phase (Bound, Pending, Lost).
engine/health: one entry of the assess_health table, called by engine/report.py after apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops_lab.api.types import Health, HealthStatus

__all__ = ["check"]

_BY_PHASE = {
    "Bound": HealthStatus.HEALTHY,
    "Pending": HealthStatus.PROGRESSING,
    "Lost": HealthStatus.DEGRADED,
}


def check(obj: Mapping[str, Any]) -> Health:
    phase = (obj.get("status") or {}).get("phase")
    return Health(_BY_PHASE.get(str(phase), HealthStatus.UNKNOWN))
