"""What keeps the widgets live: a list+watch thread per collection, and a throttle for redraws.
Below every widget in widgets/; reads the API server through `Kube` only, never writes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from gitops_lab.api.types import GROUP, KIND, PLURAL, VERSION
from gitops_lab.kube import Kube, KubeError, ResourceInfo

__all__ = ["APP_INFO", "WATCH_TIMEOUT", "AppsLike", "Throttle", "Watch", "kube_of", "watch_app"]

Obj = dict[str, Any]
log = logging.getLogger("gitops_lab.widgets")

APP_INFO = ResourceInfo(GROUP, VERSION, KIND, PLURAL, True)
# Each watch request ends after this many seconds and is re-opened from the last
# resourceVersion; it also bounds how long a thread lingers after `close()`.
WATCH_TIMEOUT = 10


class AppsLike(Protocol):
    """What the widgets need of `gitops_lab.apps.Apps` (a fake with these verbs does for tests)."""

    namespace: str

    def get(self, name: str) -> Any: ...

    def sync(self, name: str, revision: str | None = None, prune: bool = False) -> Any: ...

    def rollback(self, name: str, history_id: int) -> Any: ...

    def refresh(self, name: str) -> Any: ...

    def set_policy(self, name: str, *, automated: bool | None = None,
                   self_heal: bool | None = None, prune: bool | None = None) -> Any: ...


def kube_of(apps: object) -> Kube | None:
    """The Kube behind an Apps (None for fakes: such widgets render only what they are given)."""
    kube = getattr(apps, "kube", None)
    return kube if isinstance(kube, Kube) else None


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
                 timeout_seconds: int | None = None, name: str = "watch") -> None:
        self.kube = kube
        self.path = path
        self.on_change = on_change
        self.query: dict[str, str] = {}
        if field_selector:
            self.query["fieldSelector"] = field_selector
        if label_selector:
            self.query["labelSelector"] = label_selector
        self.timeout_seconds = WATCH_TIMEOUT if timeout_seconds is None else timeout_seconds
        self.objects: dict[tuple[str, str], Obj] = {}
        self.synced = threading.Event()
        self.error = ""
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"gitops-widget-{name}", daemon=True)

    def start(self) -> Watch:
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
        except Exception:  # a drawing bug must not kill the watch
            log.exception("widget update after %s on %s failed", kind, self.path)

    @staticmethod
    def _nk(obj: Obj) -> tuple[str, str]:
        meta = obj.get("metadata") or {}
        return str(meta.get("namespace") or ""), str(meta.get("name") or "")

    def _list(self) -> str:
        data = self.kube.request("GET", self.path, query=self.query or None)
        fresh = {self._nk(o): o for o in data.get("items") or []}
        with self.lock:
            self.objects = fresh
        self.synced.set()
        self._notify("LISTED", {})
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


def watch_app(kube: Kube, namespace: str, name: str,
              on_app: Callable[[Obj | None], None]) -> Watch:
    """Watch one Application (fieldSelector metadata.name); `on_app(app or None)` on each change."""
    watch: Watch

    def changed(_kind: str, _obj: Obj) -> None:
        with watch.lock:
            app = watch.objects.get((namespace, name))
        on_app(app)

    watch = Watch(kube, APP_INFO.path(namespace), changed,
                  field_selector=f"metadata.name={name}", name=f"app-{name}")
    return watch.start()


class Throttle:
    """Coalesce calls: `poke()` as often as you like, `fn` runs at most once per `interval` s."""

    def __init__(self, fn: Callable[[], None], interval: float = 0.3) -> None:
        self.fn = fn
        self.interval = interval
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._last = 0.0
        self._closed = False

    def poke(self) -> None:
        with self._lock:
            if self._closed or self._timer is not None:
                return
            delay = max(0.0, self._last + self.interval - time.monotonic())
            self._timer = threading.Timer(delay, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
            self._last = time.monotonic()
            if self._closed:
                return
        try:
            self.fn()
        except Exception:
            log.exception("throttled widget update failed")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
