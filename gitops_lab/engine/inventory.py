"""Ownership: the tracking annotation, pairing desired with live objects, what may be pruned.
Pure functions used by engine/sync.py; prune safety lives here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gitops_lab.api.types import TRACKING_ANNOTATION, ResourceKey
from gitops_lab.engine.guard import is_protected

__all__ = [
    "Pair", "cascade_candidates", "inventory_keys", "is_owned", "pair", "prune_candidates",
    "tracking_id",
]

Obj = dict[str, Any]


def tracking_id(app_namespace: str, app_name: str, key: ResourceKey) -> str:
    """`<app-namespace>_<app-name>:<group>/<kind>:<namespace>/<name>` (API.md §1)."""
    return key.tracking_id(app_namespace, app_name)


def is_owned(live: Mapping[str, Any] | None, app_namespace: str, app_name: str) -> bool:
    """True only when the live object carries exactly this app's tracking id for itself."""
    if not live:
        return False
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    expected = tracking_id(app_namespace, app_name, ResourceKey.from_object(live))
    return annotations.get(TRACKING_ANNOTATION) == expected


@dataclass(frozen=True)
class Pair:
    """One object as Git wants it and as the cluster has it; either side may be None."""

    key: ResourceKey
    desired: Obj | None
    live: Obj | None

    @property
    def missing(self) -> bool:
        return self.desired is not None and self.live is None

    @property
    def extra(self) -> bool:
        return self.desired is None


def pair(desired: Iterable[Obj], live: Mapping[ResourceKey, Obj | None],
         inventory: Iterable[ResourceKey] = ()) -> list[Pair]:
    """Align desired objects with live ones: desired first (in order), then inventory leftovers."""
    out: list[Pair] = []
    seen: set[ResourceKey] = set()
    for obj in desired:
        key = ResourceKey.from_object(obj)
        seen.add(key)
        out.append(Pair(key, obj, live.get(key)))
    for key in inventory:
        if key not in seen:
            seen.add(key)
            out.append(Pair(key, None, live.get(key)))
    return out


def prune_candidates(pairs: Iterable[Pair], app_namespace: str, app_name: str,
                     app_of_apps: bool = False) -> list[Pair]:
    """Objects that left Git, are in the inventory, exist live, and carry this app's id —
    never the agent's own objects (engine/guard.py), whatever their annotation says."""
    return [
        p for p in pairs
        if p.desired is None and p.live is not None and is_owned(p.live, app_namespace, app_name)
        and not is_protected(p.key, p.live, app_namespace, app_of_apps)
    ]


def inventory_keys(status: Mapping[str, Any]) -> list[ResourceKey]:
    """The app's inventory: the objects its last status listed."""
    return [ResourceKey(str(r.get("group", "")), str(r.get("kind", "")),
                        str(r.get("namespace", "")), str(r.get("name", "")),
                        str(r.get("version", "")))
            for r in status.get("resources") or []]


def cascade_candidates(inventory: Iterable[ResourceKey], live: Mapping[ResourceKey, Obj | None],
                       app_namespace: str, app_name: str,
                       app_of_apps: bool = False) -> list[Obj]:
    """What deleting an Application with the resources finalizer deletes: its inventory
    objects that exist and carry its tracking id; never the agent's own objects, and never a
    CustomResourceDefinition (that would delete every custom resource of it, in every
    namespace — which is also why the agent's RBAC may not delete CRDs: they are left)."""
    out: list[Obj] = []
    for key in inventory:
        obj = live.get(key)
        if obj is not None and is_owned(obj, app_namespace, app_name) and \
                key.kind != "CustomResourceDefinition" and \
                not is_protected(key, obj, app_namespace, app_of_apps):
            out.append(obj)
    return out
