"""The `diff` verb: compare the server-side-apply dry run of a desired object with the live
object. Used by engine/reconcile.py; normalisers remove what the API server owns so defaults
are no drift; `Differ` owns the dry-run memo, so a no-op reconcile asks the API server nothing.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

import yaml

from gitops_lab.api.types import ResourceKey, SyncStatus
from gitops_lab.engine.apply import ResourceManager
from gitops_lab.kube import KubeError

__all__ = ["SECRET_MASK", "Comparison", "Differ", "ResourceDiff", "compare", "hide_secret_data",
           "normalize", "unified_diff"]

Obj = dict[str, Any]

# Metadata the API server writes on every object; never part of what Git says.
SERVER_METADATA = (
    "managedFields", "resourceVersion", "uid", "creationTimestamp", "generation",
    "selfLink", "deletionGracePeriodSeconds",
)
SERVER_ANNOTATIONS = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
)


def normalize(obj: Mapping[str, Any] | None) -> Obj | None:
    """A view without status and server-owned metadata: what a diff should look at.

    Shallow: only the top level, `metadata` and its `annotations` are new dicts; everything
    below (spec, data…) is shared with `obj`, so treat the result as read-only.
    """
    if obj is None:
        return None
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in SERVER_METADATA}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k not in SERVER_ANNOTATIONS}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    if meta.get("labels") == {}:
        meta.pop("labels")
    out["metadata"] = meta
    return out


SECRET_MASK = "++++++++"


def _secret_bytes(field: str, value: Any) -> str:
    """One Secret value as the API server stores it (data: base64; stringData: encoded)."""
    if field == "stringData" and isinstance(value, str):
        return base64.b64encode(value.encode()).decode()
    return repr(value) if not isinstance(value, str) else value


def hide_secret_data(*objs: Mapping[str, Any] | None) -> list[Obj | None]:
    """Copies of Secrets with every `data`/`stringData` value replaced by a mask (Argo CD's
    HideSecretData): per key, the first distinct value is `++++++++`, the next `+++++++++`
    and so on, so an unchanged value masks the same on both sides and a changed one shows as
    a change, without either value appearing. Non-Secrets pass through unchanged."""
    masks: dict[str, dict[str, str]] = {}
    out: list[Obj | None] = []
    for obj in objs:
        if obj is None or obj.get("kind") != "Secret" or "/" in str(obj.get("apiVersion", "v1")):
            out.append(None if obj is None else dict(obj))
            continue
        copy = dict(obj)
        for part in ("data", "stringData"):
            values = obj.get(part)
            if not isinstance(values, Mapping):
                continue
            hidden = {}
            for key, value in values.items():
                seen = masks.setdefault(str(key), {})
                ident = _secret_bytes(part, value)
                hidden[key] = seen.setdefault(ident, SECRET_MASK + "+" * len(seen))
            copy[part] = hidden
        out.append(copy)
    return out


def unified_diff(live: Obj | None, desired: Obj | None, name: str = "") -> str:
    """A coloured-diff-ready unified diff of two normalised objects, as YAML; Secret values
    are masked (hide_secret_data), in every diff the project shows."""
    live, desired = hide_secret_data(live, desired)
    a = yaml.safe_dump(live, sort_keys=True).splitlines() if live else []
    b = yaml.safe_dump(desired, sort_keys=True).splitlines() if desired else []
    return "\n".join(
        difflib.unified_diff(a, b, fromfile=f"live/{name}", tofile=f"git/{name}", lineterm="")
    )


@dataclass(frozen=True)
class ResourceDiff:
    """Result of comparing one object: Synced or OutOfSync, with both normalised sides."""

    key: ResourceKey
    status: SyncStatus
    live: Obj | None = None
    predicted: Obj | None = None
    message: str = ""
    changed_paths: tuple[str, ...] = field(default=())

    @property
    def text(self) -> str:
        return unified_diff(self.live, self.predicted, str(self.key))


def _changed(a: Any, b: Any, path: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            _changed(a.get(k), b.get(k), f"{path}.{k}" if path else str(k), out)
    elif a != b:
        out.append(path)


def compare(key: ResourceKey, predicted: Mapping[str, Any] | None,
            live: Mapping[str, Any] | None) -> ResourceDiff:
    """`predicted` is what a dry-run apply of Git's object onto the live one would leave."""
    want = normalize(predicted)
    have = normalize(live)
    if have is None:
        return ResourceDiff(key, SyncStatus.OUT_OF_SYNC, None, want, "missing from the cluster")
    paths: list[str] = []
    _changed(have, want, "", paths)
    if not paths:
        return ResourceDiff(key, SyncStatus.SYNCED, have, want)
    shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
    return ResourceDiff(key, SyncStatus.OUT_OF_SYNC, have, want, f"differs at {shown}",
                        tuple(paths))


# one object to compare: its key, Git's object (ready to apply) and the live one (or None)
Item = tuple[ResourceKey, Obj, Obj | None]


@dataclass
class Comparison:
    """What `Differ.compare_all` found: a diff per object it could ask about, the objects whose
    dry run failed (key, the API server's message), and those that cannot be asked yet."""

    diffs: dict[ResourceKey, ResourceDiff] = field(default_factory=dict)
    errors: list[tuple[ResourceKey, str]] = field(default_factory=list)
    waiting: list[Item] = field(default_factory=list)


def _hash(obj: Mapping[str, Any]) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _rv(obj: Mapping[str, Any] | None) -> str | None:
    return None if obj is None else str((obj.get("metadata") or {}).get("resourceVersion"))


class Differ:
    """Dry-run apply and compare, memoised on (desired hash, live resourceVersion): an object
    neither Git nor the cluster changed is not asked about again."""

    def __init__(self, manager: ResourceManager) -> None:
        self.manager = manager
        self._memo: dict[ResourceKey, tuple[str, str | None, Obj]] = {}
        self._lock = threading.Lock()

    def predict(self, key: ResourceKey, obj: Obj, live: Obj | None,
                pending_namespaces: AbstractSet[str],
                pending_kinds: AbstractSet[tuple[str, str]]) -> Obj | None:
        """What applying `obj` would leave. None: it cannot be asked yet, as its Namespace or
        CRD is created by this same sync (a sync creates those first, then dry-runs it before
        applying anything else)."""
        digest = _hash(obj)
        rv = _rv(live)
        memo = self._memo.get(key)
        if memo is not None and memo[0] == digest and memo[1] == rv:
            return memo[2]
        if (key.namespace in pending_namespaces and live is None) or (
            (key.group, key.kind) in pending_kinds
        ):
            return None
        predicted = self.manager.dry_run(obj)
        with self._lock:
            self._memo[key] = (digest, rv, predicted)
        return predicted

    def remember(self, key: ResourceKey, desired: Obj, applied: Obj) -> None:
        """`desired` was just applied with this result: applying it again would give the same."""
        with self._lock:
            self._memo[key] = (_hash(desired), _rv(applied), applied)

    def compare_all(self, items: Sequence[Item],
                    pending_namespaces: AbstractSet[str] = frozenset(),
                    pending_kinds: AbstractSet[tuple[str, str]] = frozenset()) -> Comparison:
        """Dry-run and compare `items` (in parallel, on the manager's pool)."""

        def predict(item: Item) -> Obj | KubeError | None:
            key, desired, live = item
            try:
                return self.predict(key, desired, live, pending_namespaces, pending_kinds)
            except KubeError as exc:
                return exc

        out = Comparison()
        for item, predicted in zip(items, self.manager.map(predict, items), strict=True):
            key, desired, live = item
            if isinstance(predicted, KubeError):
                out.errors.append((key, predicted.message))
            elif predicted is None:
                out.waiting.append(item)
                out.diffs[key] = compare(key, desired, None)
            else:
                out.diffs[key] = compare(key, predicted, live)
        return out
