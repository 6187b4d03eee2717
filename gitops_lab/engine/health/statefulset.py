"""StatefulSet health: spec observed, pods ready, then partition / OnDelete / revision rules.
engine/health: one entry of the assess_health table, called by engine/report.py after apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops_lab.api.types import Health, HealthStatus

__all__ = ["check"]


def check(obj: Mapping[str, Any]) -> Health:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    observed = int(status.get("observedGeneration") or 0)
    if observed == 0 or int(meta.get("generation") or 0) > observed:
        return Health(
            HealthStatus.PROGRESSING, "Waiting for statefulset spec update to be observed..."
        )
    desired = spec.get("replicas")
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    if desired is not None and ready < int(desired):
        return Health(
            HealthStatus.PROGRESSING, f"Waiting for {int(desired) - ready} pods to be ready..."
        )
    strategy = spec.get("updateStrategy") or {}
    rolling = strategy.get("rollingUpdate")
    if strategy.get("type") == "RollingUpdate" and rolling is not None:
        partition = rolling.get("partition")
        if desired is not None and partition is not None:
            wanted = int(desired) - int(partition)
            if updated < wanted:
                return Health(
                    HealthStatus.PROGRESSING,
                    f"Waiting for partitioned roll out to finish: {updated} out of {wanted} "
                    "new pods have been updated...",
                )
        return Health(
            HealthStatus.HEALTHY,
            f"partitioned roll out complete: {updated} new pods have been updated...",
        )
    if strategy.get("type") == "OnDelete":
        return Health(
            HealthStatus.HEALTHY, f"statefulset has {ready} ready pods ({updated} updated)"
        )
    update_rev = str(status.get("updateRevision") or "")
    current_rev = str(status.get("currentRevision") or "")
    if update_rev != current_rev:
        return Health(
            HealthStatus.PROGRESSING,
            f"waiting for statefulset rolling update to complete {updated} pods "
            f"at revision {update_rev}...",
        )
    current = int(status.get("currentReplicas") or 0)
    return Health(
        HealthStatus.HEALTHY,
        f"statefulset rolling update complete {current} pods at revision {current_rev}...",
    )
