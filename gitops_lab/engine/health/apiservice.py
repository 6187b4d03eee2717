"""APIService health: the Available condition; Progressing until the aggregated API answers.
engine/health: one entry of the assess_health table, called by engine/report.py after apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops_lab.api.types import Health, HealthStatus

__all__ = ["check"]


def check(obj: Mapping[str, Any]) -> Health:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") != "Available":
            continue
        message = f"{cond.get('reason') or ''}: {cond.get('message') or ''}"
        if cond.get("status") == "True":
            return Health(HealthStatus.HEALTHY, message)
        # gitops-engine keeps an unavailable APIService Progressing, never Degraded.
        return Health(HealthStatus.PROGRESSING, message)
    return Health(HealthStatus.PROGRESSING, "Waiting to be processed")
