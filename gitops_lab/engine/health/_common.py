"""What the workload checks share: has the controller seen the latest spec yet?
engine/health: used by deployment.py, daemonset.py and replicaset.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops_lab.api.types import Health, HealthStatus

__all__ = ["generation_pending"]


def generation_pending(obj: Mapping[str, Any], noun: str) -> Health | None:
    """Progressing while `metadata.generation` is ahead of `status.observedGeneration`:
    the controller has not acted on the newest spec, so no count below can be trusted."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    if int(meta.get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return Health(
            HealthStatus.PROGRESSING,
            f"Waiting for rollout to finish: observed {noun} generation less than desired "
            "generation",
        )
    return None
