"""What keeps the widgets live: a list+watch thread per collection, and a throttle for redraws.
Below every widget in widgets/; reads the API server through `Kube` only, never writes.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import ipywidgets as w

from gitops_lab.api.types import GROUP, KIND, PLURAL, VERSION
from gitops_lab.kube import Kube, ResourceInfo
from gitops_lab.watch import OnChange
from gitops_lab.watch import Watch as _Watch

__all__ = ["APP_INFO", "WATCH_TIMEOUT", "AppView", "AppsLike", "Throttle", "Watch", "kube_of", "watch_app"]

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


class Watch(_Watch):
    """The shared list+watch (gitops_lab.watch) with short requests, so the thread of a
    closed widget ends within WATCH_TIMEOUT seconds."""

    def __init__(self, kube: Kube, path: str, on_change: OnChange, **options: Any) -> None:
        options.setdefault("timeout_seconds", WATCH_TIMEOUT)
        super().__init__(kube, path, on_change, **options)


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


class AppView(w.VBox):  # type: ignore[misc]
    """Base of the widgets that show one Application: first draw, live updates, reload, close.

    Subclasses build their children, call `super().__init__(children=...)`, then `_follow()`;
    they implement `update(app)` and `show_error(text)`.
    """

    apps: AppsLike
    name: str
    _watch: Watch | None = None

    def _follow(self, live: bool) -> None:
        self.reload()
        kube = kube_of(self.apps)
        if live and kube is not None:
            self._watch = watch_app(kube, self.apps.namespace, self.name,
                                    lambda app: self.update(app) if app else None)

    def update(self, app: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def show_error(self, text: str) -> None:
        raise NotImplementedError

    def reload(self) -> None:
        try:
            app = self.apps.get(self.name)
        except Exception as exc:  # shown in the widget, never raised into the notebook
            self.show_error(f'<span style="color:#a4272f">{html.escape(str(exc))}</span>')
            return
        self.update(app)

    def close(self) -> None:
        if self._watch is not None:
            self._watch.stop()
        super().close()


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
