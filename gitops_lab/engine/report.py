"""The last stage of a reconcile: each object's sync status and health, and the app's.
Used by engine/reconcile.py; the app's health is the worst of its objects'.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gitops_lab.api.types import Health, HealthStatus, ResourceKey, SyncStatus, worst_health
from gitops_lab.engine.api import ConditionType, LiveView, ReconcileResult, ResourceStatus
from gitops_lab.engine.health import assess_health
from gitops_lab.engine.inventory import Pair, is_owned
from gitops_lab.kube import KubeError
from gitops_lab.source.render import Manifest

__all__ = ["health_only", "resource_statuses"]

Obj = dict[str, Any]


def resource_statuses(result: ReconcileResult, pairs: Sequence[Pair],
                      live: Mapping[ResourceKey, Obj | None],
                      origin: Mapping[ResourceKey, Manifest], app_namespace: str,
                      app_name: str) -> None:
    """result.resources, .health and .sync_status from the diffs and the live objects."""
    healths: list[Health] = []
    resources: list[ResourceStatus] = []
    for p in pairs:
        obj = live.get(p.key)
        if p.desired is None:
            if obj is None or not is_owned(obj, app_namespace, app_name):
                continue  # gone, or no longer ours: not part of the app any more
            resources.append(ResourceStatus(p.key, SyncStatus.OUT_OF_SYNC, None, True,
                                            "requires pruning"))
            continue
        diff = result.diffs.get(p.key)
        health = assess_health(obj) if obj is not None else Health(
            HealthStatus.MISSING, "not found in the cluster")
        healths.append(health)
        sync_status = diff.status if diff else SyncStatus.OUT_OF_SYNC
        m = origin.get(p.key)
        resources.append(ResourceStatus(
            p.key, sync_status, health, False,
            diff.message if diff else "could not be compared",
            m.path if m else "",
        ))
    result.resources = resources
    result.health = worst_health(healths)
    if result.health.status is not HealthStatus.HEALTHY:
        worst = next(r for r in resources
                     if r.health and r.health.status is result.health.status)
        result.health = Health(result.health.status, f"{worst.key}: "
                               f"{worst.health.message if worst.health else ''}".rstrip(": "))
    has_comparison_error = any(c.type == ConditionType.COMPARISON for c in result.conditions)
    if any(r.status is SyncStatus.OUT_OF_SYNC for r in resources) or has_comparison_error:
        result.sync_status = SyncStatus.OUT_OF_SYNC
    else:
        result.sync_status = SyncStatus.SYNCED


def health_only(result: ReconcileResult, view: LiveView,
                inventory: Sequence[ResourceKey]) -> None:
    """When Git cannot be read: keep the last inventory, report its live health, change nothing."""
    with result.trace.step("health") as step:
        live: dict[ResourceKey, Obj | None] = {}
        for k in inventory:
            try:
                live[k] = view.get(k)
            except KubeError:
                live[k] = None
        healths = [assess_health(o) if o is not None else Health(HealthStatus.MISSING)
                   for o in live.values()]
        result.resources = [
            ResourceStatus(k, SyncStatus.UNKNOWN, h) for k, h in zip(live, healths, strict=True)
        ]
        result.health = worst_health(healths) if healths else Health(HealthStatus.UNKNOWN)
        result.sync_status = SyncStatus.UNKNOWN
        result.live = {k: v for k, v in live.items() if v is not None}
        step.detail = "Git unreadable: last known objects only"
