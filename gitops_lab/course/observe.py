"""What chapters 04–05 look at while they change things: the app's pods, and the Events the
agent records *from a mark on* (the ones of earlier runs left out). Plumbing for the cells.

``lab.mark_events()`` returns an EventMark; the chapter's checkers read the newest mark of an
app (``latest_mark``) to tell the learner's change from what happened before it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gitops_lab.lab import Lab

__all__ = ["EventMark", "count_ready", "image_of", "latest_mark", "pods", "ready"]

Obj = dict[str, Any]

_MARKS: dict[tuple[str, str], EventMark] = {}


def _key(event: Obj) -> tuple[str, int]:
    """An Event as it is now: its name and count (a repeat counts up the same Event)."""
    return (str((event.get("metadata") or {}).get("name")), int(event.get("count") or 1))


class EventMark:
    """The Events on Application `app` that exist now; `new()` returns only later ones."""

    def __init__(self, lab: Lab, app: str = "guestbook") -> None:
        self.lab = lab
        self.app = app
        self.at = time.time()
        self._seen = {_key(e) for e in lab.events(app)}
        _MARKS[(str(lab.provider.name), app)] = self

    def new(self, reason: str | None = None, *, about: str = "") -> list[Obj]:
        """Events recorded since the mark (optionally one reason, and `about` in the
        message), newest first."""
        return [e for e in self.lab.events(self.app, reason)
                if _key(e) not in self._seen and about in str(e.get("message") or "")]

    def wait(self, reason: str, *, about: str = "", timeout: float = 30.0) -> Obj:
        """Wait for a new Event `reason` (with `about` in its message); returns the newest."""
        found: list[Obj] = []

        def seen() -> bool:
            found[:] = self.new(reason, about=about)
            return bool(found)

        what = f"the agent's {reason} event" + (f" about {about}" if about else "")
        self.lab.wait_until(seen, what=what, timeout=timeout)
        return found[0]

    def __repr__(self) -> str:
        return (f"EventMark({self.app}: {len(self._seen)} earlier Events left out, "
                f"since {time.strftime('%H:%M:%S', time.localtime(self.at))})")


def latest_mark(lab: Lab, app: str = "guestbook") -> EventMark | None:
    """The newest mark made for `app` in this Python process (None: none yet)."""
    return _MARKS.get((str(lab.provider.name), app))


def pods(lab: Lab, namespace: str = "guestbook", image: str | None = None) -> list[Obj]:
    """The pods in `namespace` not being deleted (only those running `image`, if given)."""
    items = json.loads(lab.kubectl("get", "pods", "-n", namespace, "-o", "json"))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")
            and (image is None or image_of(p) == image)]


def image_of(obj: Obj) -> str:
    """The first container's image of a pod, or of a Deployment's pod template."""
    spec = obj.get("spec") or {}
    spec = (spec.get("template") or {}).get("spec") or spec
    containers = spec.get("containers") or [{}]
    return str(containers[0].get("image") or "")


def ready(pod: Obj) -> bool:
    """The pod's Ready condition is True (on kind: its readiness probe passes)."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def count_ready(lab: Lab, namespace: str = "guestbook",
                image: str | None = None) -> Callable[[], int]:
    """A function counting the ready pods (for `lab.wait_until`)."""
    return lambda: sum(map(ready, pods(lab, namespace, image)))
