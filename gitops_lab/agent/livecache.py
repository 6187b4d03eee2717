"""A watch-fed cache of live objects, one list+watch per kind the apps manage (like Argo's).
Used by agent/controller.py: reconciles read it instead of GETting, and every change to a
watched object calls back so the owning app is re-compared within a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from gitops_lab.api.types import ResourceKey
from gitops_lab.kube import Kube, ResourceInfo
from gitops_lab.watch import Watch

__all__ = ["KindWatch", "LiveCache"]

Obj = dict[str, Any]
OnChange = Callable[[ResourceKey, Obj | None, str], None]


class KindWatch(Watch):
    """One kind across all namespaces (or one): every change is reported as (key, obj, type),
    including what changed while no watch was open (diffed after each re-list)."""

    def __init__(self, kube: Kube, info: ResourceInfo, on_change: OnChange,
                 stop: threading.Event | None = None, namespace: str | None = None) -> None:
        self.info = info
        self.namespace = namespace
        self._on_key_change = on_change
        super().__init__(kube, info.path(namespace), self._event, timeout_seconds=120,
                         name=info.kind, defaults={"apiVersion": info.api_version,
                                                   "kind": info.kind})
        if stop is not None:
            self._stop = stop  # share the owner's stop switch

    def _key(self, obj: Obj) -> ResourceKey:
        meta = obj.get("metadata") or {}
        return ResourceKey(self.info.group, self.info.kind, str(meta.get("namespace") or ""),
                           str(meta.get("name")), self.info.version)

    def _event(self, kind: str, obj: Obj) -> None:
        self._on_key_change(self._key(obj), None if kind == "DELETED" else obj, kind)

    def relisted(self, old: dict[tuple[str, str], Obj], fresh: dict[tuple[str, str], Obj]) -> None:
        for nk, obj in fresh.items():
            before = old.get(nk)
            if before is None or (before.get("metadata") or {}).get("resourceVersion") != \
                    (obj.get("metadata") or {}).get("resourceVersion"):
                self._event("ADDED" if before is None else "MODIFIED", obj)
        for nk, obj in old.items():
            if nk not in fresh:
                self._event("DELETED", obj)


class LiveCache:
    """`get(key)` from watched kinds; kinds start being watched the first time they are asked for."""

    def __init__(self, kube: Kube, on_change: OnChange | None = None,
                 sync_timeout: float = 10.0) -> None:
        self.kube = kube
        self.on_change: OnChange = on_change or (lambda _k, _o, _t: None)
        self.sync_timeout = sync_timeout
        self._watches: dict[tuple[str, str], KindWatch] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def _watch_for(self, key: ResourceKey) -> KindWatch | None:
        info = self.kube.resource_for_key(key)
        wkey = (info.group, info.kind)
        with self._lock:
            watch = self._watches.get(wkey)
            if watch is None:
                if "watch" not in info.verbs or "list" not in info.verbs:
                    return None
                watch = KindWatch(self.kube, info, self.on_change, self._stop)
                self._watches[wkey] = watch
                watch.start()
        return watch

    def get(self, key: ResourceKey) -> Obj | None:
        watch = self._watch_for(key)
        if watch is not None and not watch.synced.is_set():
            deadline = time.monotonic() + self.sync_timeout
            # a watch that cannot list (e.g. Forbidden) says so at once: don't wait for it
            while not watch.synced.wait(0.05) and not watch.error and time.monotonic() < deadline:
                pass
        if watch is None or not watch.synced.is_set():
            return self.kube.get_by_key(key)
        with watch.lock:
            return watch.objects.get((key.namespace, key.name))

    def objects(self, group: str, kind: str, namespace: str | None = None) -> list[Obj]:
        """Objects of one kind (optionally one namespace); starts watching it if needed."""
        watch = self._watch_for(ResourceKey(group, kind, namespace or "", ""))
        if watch is None:
            return []
        watch.synced.wait(self.sync_timeout)
        with watch.lock:
            return [o for (ns, _), o in watch.objects.items()
                    if namespace is None or ns == namespace]

    def kinds(self) -> list[str]:
        return sorted(f"{w.info.kind}.{w.info.group}".rstrip(".") for w in self._watches.values())

    def errors(self) -> dict[str, str]:
        return {w.info.kind: w.error for w in self._watches.values() if w.error}

    def stop(self) -> None:
        self._stop.set()
