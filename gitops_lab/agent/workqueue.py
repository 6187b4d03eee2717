"""The agent's work queue: which Applications to reconcile, when, and whether to fetch first.
Used by agent/controller.py (and images/controller.py for ImagePolicies).
"""

from __future__ import annotations

import threading
import time

__all__ = ["AppKey", "WorkQueue"]

AppKey = tuple[str, str]  # (namespace, name)


class WorkQueue:
    """client-go's workqueue in small: a key is queued once, never processed twice at once."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: dict[AppKey, tuple[float, bool]] = {}  # key -> (due time, fetch)
        self._active: set[AppKey] = set()
        self._again: dict[AppKey, tuple[float, bool]] = {}  # added while active: (due, fetch)
        self._closed = False

    def add(self, key: AppKey, *, fetch: bool = False, delay: float = 0.0) -> None:
        with self._cond:
            due = time.monotonic() + delay
            if key in self._active:
                # keep the delay: a retry queued by the reconcile itself must not run at once
                old_again = self._again.get(key)
                if old_again is not None:
                    due, fetch = min(due, old_again[0]), fetch or old_again[1]
                self._again[key] = (due, fetch)
                return
            old = self._pending.get(key)
            if old is not None:
                due = min(due, old[0])
                fetch = fetch or old[1]
            self._pending[key] = (due, fetch)
            self._cond.notify()

    def get(self, timeout: float = 0.5) -> tuple[AppKey, bool] | None:
        with self._cond:
            deadline = time.monotonic() + timeout
            while not self._closed:
                now_ = time.monotonic()
                ready = [(d, k) for k, (d, _) in self._pending.items() if d <= now_]
                if ready:
                    _, key = min(ready)
                    _, fetch = self._pending.pop(key)
                    self._active.add(key)
                    return key, fetch
                wait = min([d for d, _ in self._pending.values()] + [deadline]) - now_
                if now_ >= deadline:
                    return None
                self._cond.wait(max(0.001, wait))
            return None

    def done(self, key: AppKey) -> None:
        with self._cond:
            self._active.discard(key)
            if key in self._again:
                due, fetch = self._again.pop(key)
                old = self._pending.get(key)
                if old is not None:
                    due, fetch = min(due, old[0]), fetch or old[1]
                self._pending[key] = (due, fetch)
                self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._pending)
