"""A watch-fed cache of live objects, one list+watch per kind the apps manage (like Argo's).
Used by agent/controller.py: reconciles read it instead of GETting, and every change to a
watched object calls back so the owning app is re-compared within a second.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from gitops_lab.api.types import ResourceKey
from gitops_lab.kube import Kube, KubeError, ResourceInfo

__all__ = ["KindWatch", "LiveCache"]

Obj = dict[str, Any]
log = logging.getLogger("gitops_lab.agent.livecache")
OnChange = Callable[[ResourceKey, Obj | None, str], None]


class KindWatch:
    """List then watch one kind across all namespaces; re-list on 410 Gone; back off on errors."""

    def __init__(self, kube: Kube, info: ResourceInfo, on_change: OnChange,
                 stop: threading.Event, namespace: str | None = None) -> None:
        self.kube = kube
        self.info = info
        self.namespace = namespace
        self.on_change = on_change
        self.stop = stop
        self.objects: dict[tuple[str, str], Obj] = {}
        self.synced = threading.Event()
        self.error = ""
        self.lock = threading.Lock()
        self.thread = threading.Thread(
            target=self._run, name=f"watch-{info.kind}", daemon=True
        )

    def _key(self, obj: Obj) -> ResourceKey:
        meta = obj.get("metadata") or {}
        return ResourceKey(self.info.group, self.info.kind, str(meta.get("namespace") or ""),
                           str(meta.get("name")), self.info.version)

    def _list(self) -> str:
        data = self.kube.request("GET", self.info.path(self.namespace))
        fresh: dict[tuple[str, str], Obj] = {}
        for item in data.get("items") or []:
            item.setdefault("apiVersion", self.info.api_version)
            item.setdefault("kind", self.info.kind)
            meta = item.get("metadata") or {}
            fresh[(str(meta.get("namespace") or ""), str(meta.get("name")))] = item
        with self.lock:
            old = self.objects
            self.objects = fresh
        # tell about whatever changed while we were not watching
        for nk, obj in fresh.items():
            before = old.get(nk)
            if before is None or before.get("metadata", {}).get("resourceVersion") != \
                    obj.get("metadata", {}).get("resourceVersion"):
                self.on_change(self._key(obj), obj, "ADDED" if before is None else "MODIFIED")
        for nk, obj in old.items():
            if nk not in fresh:
                self.on_change(self._key(obj), None, "DELETED")
        self.synced.set()
        return str((data.get("metadata") or {}).get("resourceVersion", ""))

    def _run(self) -> None:
        backoff = 0.2
        rv = ""
        while not self.stop.is_set():
            try:
                if not rv:
                    rv = self._list()
                for event in self.kube.watch(self.info.path(self.namespace), resource_version=rv,
                                             timeout_seconds=120):
                    if self.stop.is_set():
                        return
                    kind = event.get("type")
                    obj = event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            rv = ""  # expired: list again
                            break
                        raise KubeError(int(obj.get("code", 0)), str(obj.get("reason", "")),
                                        str(obj.get("message", "")))
                    rv = str((obj.get("metadata") or {}).get("resourceVersion", rv))
                    if kind == "BOOKMARK":
                        continue
                    obj.setdefault("apiVersion", self.info.api_version)
                    obj.setdefault("kind", self.info.kind)
                    meta = obj.get("metadata") or {}
                    nk = (str(meta.get("namespace") or ""), str(meta.get("name")))
                    with self.lock:
                        if kind == "DELETED":
                            self.objects.pop(nk, None)
                        else:
                            self.objects[nk] = obj
                    self.on_change(self._key(obj), None if kind == "DELETED" else obj, str(kind))
                backoff = 0.2
                self.error = ""
            except KubeError as exc:
                if exc.gone:
                    rv = ""
                    continue
                self.error = exc.message
                log.warning("watch %s: %s (retrying in %.1f s)", self.info.kind, exc.message,
                            backoff)
                if exc.status == 0:
                    rv = ""  # API server restarted: its watch cache is new
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception as exc:  # never let a watch thread die silently
                self.error = str(exc)
                log.exception("watch %s failed", self.info.kind)
                rv = ""
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)


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
                watch.thread.start()
        return watch

    def get(self, key: ResourceKey) -> Obj | None:
        watch = self._watch_for(key)
        if watch is None or not watch.synced.wait(self.sync_timeout):
            info = self.kube.resource_for_key(key)
            try:
                return self.kube.request("GET", info.path(key.namespace or None, key.name))
            except KubeError as exc:
                if exc.not_found:
                    return None
                raise
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
