"""Desired state and ownership: Git's objects made ready to apply (namespace defaulting,
tracking annotation, refusals), pairing them with live objects, whose an object is, what may
be pruned. Used by engine/reconcile.py; ownership and prune safety live here and nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gitops_lab.api.types import GROUP, TRACKING_ANNOTATION, ResourceKey
from gitops_lab.engine.api import AppSpec
from gitops_lab.engine.guard import is_protected, refusal
from gitops_lab.kube import Kube, KubeError
from gitops_lab.source.render import Manifest

__all__ = [
    "Desired", "Pair", "cascade_candidates", "claim", "inventory_keys", "is_owned", "owner",
    "pair", "prepare", "prune_candidates", "tracking_id", "where",
]

Obj = dict[str, Any]
# etcd's default --max-request-bytes: a larger object passes a dry run but never stores.
MAX_OBJECT_BYTES = 1536 * 1024


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


def owner(live: Mapping[str, Any] | None) -> str:
    """The tracking id a live object carries ("" = none)."""
    annotations = ((live or {}).get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(TRACKING_ANNOTATION, ""))


def claim(key: ResourceKey, live: Mapping[str, Any] | None,
          spec: AppSpec) -> tuple[bool, str] | None:
    """Whether this app may apply Git's `key` over `live`: None = yes; else (refused, why).
    refused=True is an error (an app of apps never adopts an Application it did not create);
    False a warning (the object is another app's: it is left alone)."""
    if live is None:
        return None
    tracked = owner(live)
    if key.group == GROUP and not is_owned(live, spec.namespace, spec.name):
        by = f"managed by {tracked.split(':', 1)[0]}" if tracked else \
            "it has no tracking annotation"
        return True, (f"refused: it exists and was not created by this app ({by}); "
                      "an app of apps never adopts an existing Application")
    if tracked and not tracked.startswith(spec.tracking_prefix):
        return False, (f"is already managed by {tracked.split(':', 1)[0].replace('_', '/')}; "
                       "not touching it")
    return None


def where(manifest: Manifest | None, key: ResourceKey) -> str:
    """`file: key`, how messages name an object of Git."""
    return f"{manifest.path}: {key}" if manifest is not None else str(key)


@dataclass
class Desired:
    """Git's objects ready to apply, the manifest each came from, and (subject, cause) errors."""

    objects: list[Obj] = field(default_factory=list)
    origin: dict[ResourceKey, Manifest] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)

    def where(self, key: ResourceKey) -> str:
        return where(self.origin.get(key), key)


def prepare(kube: Kube, spec: AppSpec, manifests: list[Manifest]) -> Desired:
    """Namespace defaulting, tracking annotation; unknown kinds are reported, not guessed,
    and the agent's own objects (engine/guard.py) are refused. Errors are (subject, cause)
    pairs, the subject naming the file and the object."""
    crd_scopes: dict[tuple[str, str], bool] = {}
    for m in manifests:
        if m.obj.get("kind") == "CustomResourceDefinition":
            crd = m.obj.get("spec") or {}
            crd_scopes[(str(crd.get("group")), str((crd.get("names") or {}).get("kind")))] = (
                crd.get("scope", "Namespaced") == "Namespaced"
            )
    out = Desired()
    for m in manifests:
        text = json.dumps(m.obj)
        obj = json.loads(text)  # a private copy
        api_version = str(obj["apiVersion"])
        group = api_version.rpartition("/")[0]
        try:
            namespaced = kube.resource_for(api_version, str(obj["kind"])).namespaced
        except KubeError as exc:
            if exc.status != 404:
                raise
            if (group, obj["kind"]) not in crd_scopes:
                out.errors.append((
                    f"{m.path}: {obj['kind']} {obj['metadata'].get('name')}",
                    f"unknown kind {obj['kind']!r} in {api_version!r} (no such resource "
                    "type on the API server, and no CRD for it in this app)"))
                continue
            namespaced = crd_scopes[(group, obj["kind"])]
        meta = obj["metadata"]
        if namespaced:
            meta["namespace"] = meta.get("namespace") or spec.dest_namespace or "default"
        else:
            meta.pop("namespace", None)
        key = ResourceKey.from_object(obj)
        why = refusal(key, obj, spec.namespace, spec.app_of_apps)
        if why is not None:
            out.errors.append((where(m, key), f"refused: {why}; nothing of this commit is "
                               "applied or pruned until it is removed from Git"))
            continue
        if len(text) > MAX_OBJECT_BYTES:
            out.errors.append((where(m, key), f"the object is {len(text) // 1024} KiB; the API "
                               f"server stores at most {MAX_OBJECT_BYTES // 1024} KiB per object"))
            continue
        annotations = meta.setdefault("annotations", {})
        annotations[TRACKING_ANNOTATION] = key.tracking_id(spec.namespace, spec.name)
        out.objects.append(obj)
        out.origin[key] = m
    return out


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
