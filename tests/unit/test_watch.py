"""The list+watch loop on its own (a scripted fake API, pure unit test): 410 Gone makes it
list again and report what changed meanwhile; errors back off; stop() ends it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from gitops_lab.agent.livecache import KindWatch
from gitops_lab.api.types import ResourceKey
from gitops_lab.kube import KubeError, ResourceInfo

CM = ResourceInfo("", "v1", "ConfigMap", "configmaps", True, ("list", "watch"))


def cm(name: str, rv: int) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "demo", "resourceVersion": str(rv)}}


class ScriptedKube:
    """Answers list and watch calls from a script; records what was asked."""

    def __init__(self, lists: list[list[dict[str, Any]]],
                 watches: list[list[dict[str, Any]] | KubeError]) -> None:
        self.lists = lists
        self.watches = watches
        self.calls: list[str] = []
        self.done = threading.Event()

    def request(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        items = self.lists.pop(0)
        self.calls.append(f"list {path}")
        rv = max((int(i["metadata"]["resourceVersion"]) for i in items), default=1)
        return {"items": items, "metadata": {"resourceVersion": str(rv)}}

    def watch(self, path: str, *, resource_version: str, **_: Any) -> Iterator[dict[str, Any]]:
        self.calls.append(f"watch {path}@{resource_version}")
        if not self.watches:
            self.done.set()
            time.sleep(0.05)
            return
        step = self.watches.pop(0)
        if isinstance(step, KubeError):
            raise step
        yield from step


def run(kube: ScriptedKube) -> list[tuple[str, str, str | None]]:
    seen: list[tuple[str, str, str | None]] = []

    def on_change(key: ResourceKey, obj: dict[str, Any] | None, kind: str) -> None:
        rv = None if obj is None else obj["metadata"]["resourceVersion"]
        seen.append((kind, key.name, rv))

    stop = threading.Event()
    watch = KindWatch(kube, CM, on_change, stop)  # type: ignore[arg-type]
    watch.start()
    assert kube.done.wait(5), kube.calls
    stop.set()
    watch.thread.join(5)
    assert not watch.thread.is_alive()
    return seen


def test_410_gone_relists_and_reports_what_changed_meanwhile() -> None:
    kube = ScriptedKube(
        lists=[[cm("a", 5), cm("b", 6)],
               [cm("a", 9), cm("c", 10)]],           # a changed, b deleted, c added
        watches=[[{"type": "MODIFIED", "object": cm("b", 7)},
                  {"type": "ERROR", "object": {"code": 410, "reason": "Expired",
                                               "message": "too old resource version"}}],
                 []])
    seen = run(kube)
    assert seen == [
        ("ADDED", "a", "5"), ("ADDED", "b", "6"),      # first list
        ("MODIFIED", "b", "7"),                          # watch event
        ("MODIFIED", "a", "9"), ("ADDED", "c", "10"),    # re-list after 410: the differences
        ("DELETED", "b", None),
    ]
    assert kube.calls[:3] == ["list /api/v1/configmaps", "watch /api/v1/configmaps@6",
                              "list /api/v1/configmaps"]


def test_unreachable_api_server_backs_off_and_lists_again() -> None:
    kube = ScriptedKube(lists=[[cm("a", 1)], [cm("a", 2)]],
                        watches=[KubeError(0, "Unreachable", "connection refused"), []])
    seen = run(kube)
    assert seen == [("ADDED", "a", "1"), ("MODIFIED", "a", "2")]
    assert [c.split()[0] for c in kube.calls[:4]] == ["list", "watch", "list", "watch"]
