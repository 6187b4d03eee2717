"""List+watch of one API collection in a thread: the one loop behind the agent's live cache
and the widgets' live views. Re-lists on 410 Gone, backs off on errors, survives restarts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Self

from gitops_lab.kube import Kube, KubeError

__all__ = ["OnChange", "Watch"]

Obj = dict[str, Any]
log = logging.getLogger("gitops_lab.watch")

OnChange = Callable[[str, Obj], None]


class Watch:
    """List then watch one collection (optionally narrowed by field/label selectors).

    `.objects` maps (namespace, name) to the latest object; `on_change(type, obj)` runs on the
    watch thread after every ADDED/MODIFIED/DELETED event and after every (re-)list with type
    "LISTED". Re-lists on 410 Gone, backs off on errors; `stop()` ends it (within
    WATCH_TIMEOUT seconds; no callbacks after `stop()`).
    """

    def __init__(self, kube: Kube, path: str, on_change: OnChange, *,
                 field_selector: str = "", label_selector: str = "",
                 timeout_seconds: int = 60, name: str = "watch",
                 defaults: dict[str, str] | None = None) -> None:
        self.kube = kube
        self.path = path
        self.on_change = on_change
        self.query: dict[str, str] = {}
        if field_selector:
            self.query["fieldSelector"] = field_selector
        if label_selector:
            self.query["labelSelector"] = label_selector
        self.timeout_seconds = timeout_seconds
        self.defaults = defaults or {}  # e.g. apiVersion/kind, which list items lack
        self.objects: dict[tuple[str, str], Obj] = {}
        self.synced = threading.Event()
        self.error = ""
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"watch-{name}", daemon=True)

    def start(self) -> Self:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def snapshot(self) -> list[Obj]:
        with self.lock:
            return list(self.objects.values())

    def _notify(self, kind: str, obj: Obj) -> None:
        if self._stop.is_set():
            return
        try:
            self.on_change(kind, obj)
        except Exception:  # a bug in a callback must not kill the watch
            log.exception("callback after %s on %s failed", kind, self.path)

    @staticmethod
    def _nk(obj: Obj) -> tuple[str, str]:
        meta = obj.get("metadata") or {}
        return str(meta.get("namespace") or ""), str(meta.get("name") or "")

    def _fill(self, obj: Obj) -> Obj:
        for field, value in self.defaults.items():
            obj.setdefault(field, value)
        return obj

    def relisted(self, old: dict[tuple[str, str], Obj], fresh: dict[tuple[str, str], Obj]) -> None:
        """After every (re-)list; the default tells `on_change` "LISTED". Subclasses diff."""
        self._notify("LISTED", {})

    def _list(self) -> str:
        data = self.kube.request("GET", self.path, query=self.query or None)
        fresh = {self._nk(o): self._fill(o) for o in data.get("items") or []}
        with self.lock:
            old, self.objects = self.objects, fresh
        self.synced.set()
        self.relisted(old, fresh)
        return str((data.get("metadata") or {}).get("resourceVersion", ""))

    def _run(self) -> None:
        backoff = 0.2
        rv = ""
        while not self._stop.is_set():
            try:
                if not rv:
                    rv = self._list()
                for event in self.kube.watch(self.path, resource_version=rv,
                                             timeout_seconds=self.timeout_seconds, **self.query):
                    if self._stop.is_set():
                        return
                    kind = str(event.get("type"))
                    obj = event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            rv = ""
                            break
                        raise KubeError(int(obj.get("code", 0)), str(obj.get("reason", "")),
                                        str(obj.get("message", "")))
                    rv = str((obj.get("metadata") or {}).get("resourceVersion", rv))
                    if kind == "BOOKMARK":
                        continue
                    self._fill(obj)
                    with self.lock:
                        if kind == "DELETED":
                            self.objects.pop(self._nk(obj), None)
                        else:
                            self.objects[self._nk(obj)] = obj
                    self._notify(kind, obj)
                backoff = 0.2
                self.error = ""
            except KubeError as exc:
                if exc.gone:
                    rv = ""
                    continue
                self.error = exc.message
                log.debug("watch %s: %s (retrying in %.1f s)", self.path, exc.message, backoff)
                if exc.status == 0:
                    rv = ""  # the API server restarted: list again
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception as exc:  # never let a watch thread die silently
                self.error = str(exc)
                log.exception("watch %s failed", self.path)
                rv = ""
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)


