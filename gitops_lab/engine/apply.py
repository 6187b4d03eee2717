"""Staged server-side apply and prune, each returning a ChangeSet (one entry per object).
Used by engine/reconcile.py. Namespaces and CRDs go first, then sync waves, then kind order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gitops_lab.api.types import FIELD_MANAGER, SYNC_WAVE_ANNOTATION, Action, ResourceKey
from gitops_lab.kube import Kube, KubeError

__all__ = ["Change", "ChangeSet", "ResourceManager", "apply_order", "sync_wave"]

Obj = dict[str, Any]
T = TypeVar("T")
R = TypeVar("R")

# Roughly Argo CD's / Helm's install order: what others depend on goes first.
KIND_ORDER = [
    "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
    "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap",
    "StorageClass", "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition",
    "ClusterRole", "ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role",
    "RoleList", "RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod",
    "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler",
    "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService",
]


@dataclass(frozen=True)
class Change:
    key: ResourceKey
    action: Action
    message: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "group": self.key.group, "version": self.key.version, "kind": self.key.kind,
            "namespace": self.key.namespace, "name": self.key.name,
            "action": self.action.value, "message": self.message,
        }

    def __str__(self) -> str:
        return f"{self.key} {self.action.value}" + (f" ({self.message})" if self.message else "")


@dataclass
class ChangeSet:
    """What one apply or prune did: read by the widgets, the CLI, the events and the tests."""

    changes: list[Change] = field(default_factory=list)

    def add(self, key: ResourceKey, action: Action, message: str = "") -> None:
        self.changes.append(Change(key, action, message))

    def extend(self, other: ChangeSet) -> None:
        self.changes.extend(other.changes)

    def by_action(self, action: Action) -> list[Change]:
        return [c for c in self.changes if c.action is action]

    @property
    def failed(self) -> list[Change]:
        return self.by_action(Action.FAILED)

    @property
    def writes(self) -> int:
        return sum(
            1 for c in self.changes
            if c.action in (Action.CREATED, Action.CONFIGURED, Action.PRUNED)
        )

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for c in self.changes:
            counts[c.action.value] = counts.get(c.action.value, 0) + 1
        return ", ".join(f"{n} {a}" for a, n in sorted(counts.items())) or "nothing to do"

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.changes)

    def __len__(self) -> int:
        return len(self.changes)


def sync_wave(obj: Mapping[str, Any]) -> int:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    try:
        return int(annotations.get(SYNC_WAVE_ANNOTATION, 0))
    except (TypeError, ValueError):
        return 0


def apply_order(obj: Mapping[str, Any]) -> tuple[int, int, int, str, str]:
    """Sort key: Namespaces and CRDs first, then wave, then kind order, then name."""
    kind = str(obj.get("kind", ""))
    meta = obj.get("metadata") or {}
    first = 0 if kind == "Namespace" else 1 if kind == "CustomResourceDefinition" else 2
    kind_rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
    return (first, sync_wave(obj), kind_rank, str(meta.get("namespace", "")),
            str(meta.get("name", "")))


class ResourceManager:
    """One method per verb (dry-run, apply, delete, wait), all server-side, one field manager."""

    def __init__(self, kube: Kube, field_manager: str = FIELD_MANAGER,
                 crd_timeout: float = 30.0, parallelism: int = 8) -> None:
        self.kube = kube
        self.field_manager = field_manager
        self.crd_timeout = crd_timeout
        self._pool = ThreadPoolExecutor(max_workers=parallelism,
                                        thread_name_prefix="gitops-lab-apply")

    def dry_run(self, obj: Mapping[str, Any]) -> Obj:
        return self.kube.apply(obj, dry_run=True, field_manager=self.field_manager)

    def apply_all(
        self, objects: Iterable[tuple[Obj, bool]], unchanged: Iterable[ResourceKey] = ()
    ) -> tuple[ChangeSet, dict[ResourceKey, Obj]]:
        """Apply (object, exists_live) pairs stage by stage; the objects already equal to Git
        are not passed in but named in `unchanged`, and get an `unchanged` entry after the rest.
        Returns the changes and, per object applied (and served), the API server's result.

        A stage is one (Namespace/CRD/other, sync wave, kind) group: stages run in order, the
        objects inside one stage in parallel, as kubectl would if it could.
        """
        changes = ChangeSet()
        results: dict[ResourceKey, Obj] = {}
        stages: dict[tuple[int, int, int], list[tuple[Obj, bool]]] = {}
        for obj, exists in objects:
            stages.setdefault(apply_order(obj)[:3], []).append((obj, exists))

        def one(item: tuple[Obj, bool]) -> tuple[ResourceKey, bool, Obj | KubeError]:
            obj, exists = item
            key = ResourceKey.from_object(obj)
            try:
                return key, exists, self.kube.apply(obj, field_manager=self.field_manager)
            except KubeError as exc:
                return key, exists, exc

        for stage in sorted(stages):
            batch = sorted(stages[stage], key=lambda item: apply_order(item[0]))
            outcomes = list(self._pool.map(one, batch)) if len(batch) > 1 else [one(batch[0])]
            for key, exists, outcome in outcomes:
                if isinstance(outcome, KubeError):
                    changes.add(key, Action.FAILED, outcome.message)
                    continue
                if key.kind == "CustomResourceDefinition":
                    try:  # its custom resources come in a later stage: wait until it is served
                        self.wait_established(key.name)
                    except KubeError as exc:
                        changes.add(key, Action.FAILED, exc.message)
                        continue  # not applied as far as the sync goes: it is not Synced
                results[key] = outcome
                changes.add(key, Action.CONFIGURED if exists else Action.CREATED)
        for key in unchanged:
            changes.add(key, Action.UNCHANGED)
        return changes, results

    def ensure_namespace(self, name: str) -> None:
        """`CreateNamespace=true`: create the destination namespace when it does not exist."""
        if self.kube.get_or_none("v1", "Namespace", name) is None:
            self.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def map(self, func: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """Run `func` over items on the manager's thread pool (for dry runs)."""
        if len(items) < 2:
            return [func(i) for i in items]
        return list(self._pool.map(func, items))

    def wait_established(self, name: str) -> None:
        deadline = time.monotonic() + self.crd_timeout
        while time.monotonic() < deadline:
            crd = self.kube.get_or_none(
                "apiextensions.k8s.io/v1", "CustomResourceDefinition", name
            )
            conditions = ((crd or {}).get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Established" and c.get("status") == "True"
                   for c in conditions):
                self.kube.refresh_discovery()
                return
            time.sleep(0.1)
        raise KubeError(0, "Timeout", f"CustomResourceDefinition {name} not established "
                        f"after {self.crd_timeout:.0f} s")

    def delete_all(self, objects: Iterable[Obj]) -> ChangeSet:
        """Prune in reverse apply order; the uid precondition guards against a recreated twin."""
        changes = ChangeSet()
        for obj in sorted(objects, key=apply_order, reverse=True):
            key = ResourceKey.from_object(obj)
            meta = obj.get("metadata") or {}
            try:
                self.kube.delete(
                    str(obj["apiVersion"]), key.kind, key.name, key.namespace or None,
                    propagation="Background",
                    preconditions={"uid": str(meta.get("uid", ""))} if meta.get("uid") else None,
                )
            except KubeError as exc:
                if exc.not_found:
                    changes.add(key, Action.PRUNED, "already gone")
                else:
                    changes.add(key, Action.FAILED, f"prune failed: {exc.message}")
                continue
            changes.add(key, Action.PRUNED)
        return changes
