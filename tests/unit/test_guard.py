"""Pure rules of issue 13 part B: the guard of the agent's own objects, prune safety, spec
validation and the work queue's retry delay."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from gitops_lab.agent.fetcher import GitFetcher
from gitops_lab.agent.workqueue import WorkQueue
from gitops_lab.api.types import TRACKING_ANNOTATION, ResourceKey
from gitops_lab.engine.api import AppSpec, SpecError
from gitops_lab.engine.guard import is_protected, refusal
from gitops_lab.engine.inventory import Pair, cascade_candidates, prune_candidates
from gitops_lab.install import manifests


def owned(obj: dict[str, Any], app: str = "web") -> dict[str, Any]:
    key = ResourceKey.from_object(obj)
    obj.setdefault("metadata", {}).setdefault("annotations", {})[TRACKING_ANNOTATION] = \
        key.tracking_id("gitops-lab", app)
    obj["metadata"]["uid"] = "u1"
    return obj


@pytest.mark.parametrize("obj", manifests("in-cluster"),
                         ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_every_object_the_install_creates_is_protected(obj: dict[str, Any]) -> None:
    key = ResourceKey.from_object(obj)
    assert is_protected(key, obj, "gitops-lab"), key
    assert is_protected(key, obj, "gitops-lab", app_of_apps=True), key


def test_applications_only_for_an_app_of_apps() -> None:
    app = ResourceKey("gitopslab.io", "Application", "gitops-lab", "child", "v1alpha1")
    why = refusal(app, None, "gitops-lab")
    assert why is not None and "AppOfApps=true" in why
    assert refusal(app, None, "gitops-lab", app_of_apps=True) is None
    other = ResourceKey("gitopslab.io", "Something", "gitops-lab", "x", "v1alpha1")
    assert refusal(other, None, "gitops-lab", app_of_apps=True) is not None


def test_ordinary_objects_are_not_protected() -> None:
    for key in (ResourceKey("", "Namespace", "", "guestbook"),
                ResourceKey("", "ServiceAccount", "guestbook", "gitops-lab-agent"),
                ResourceKey("apps", "Deployment", "gitops-lab", "web"),
                ResourceKey("apiextensions.k8s.io", "CustomResourceDefinition", "",
                            "crontabs.stable.example.com")):
        assert refusal(key, None, "gitops-lab") is None, key


def test_prune_and_cascade_never_touch_the_agents_own_objects() -> None:
    ns = owned({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gitops-lab"}})
    cm = owned({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": "web"}})
    child = owned({"apiVersion": "gitopslab.io/v1alpha1", "kind": "Application",
                   "metadata": {"name": "child", "namespace": "gitops-lab"}})
    pairs = [Pair(ResourceKey.from_object(o), None, o) for o in (ns, cm, child)]
    assert [p.key.name for p in prune_candidates(pairs, "gitops-lab", "web")] == ["c"]
    assert [p.key.name for p in prune_candidates(pairs, "gitops-lab", "web", True)] == \
        ["c", "child"]
    crd = owned({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                 "metadata": {"name": "crontabs.stable.example.com"},
                 "spec": {"group": "stable.example.com"}})
    live = {p.key: p.live for p in pairs} | {ResourceKey.from_object(crd): crd}
    assert [o["metadata"]["name"] for o in
            cascade_candidates(list(live), live, "gitops-lab", "web")] == ["c"]


@pytest.mark.parametrize("dest, server, message", [
    ("Bad_NS!", "", "spec.destination.namespace 'Bad_NS!'"),
    ("x" * 64, "", "spec.destination.namespace"),
    ("ok", "https://elsewhere:6443", "spec.destination.server"),
])
def test_invalid_spec_is_an_invalid_spec_error(dest: str, server: str, message: str) -> None:
    app = {"metadata": {"name": "a", "namespace": "gitops-lab"},
           "spec": {"source": {"repoURL": "git://127.0.0.1/x.git"},
                    "destination": {"namespace": dest, "server": server}}}
    with pytest.raises(SpecError, match=message.replace("!", "\\!")):
        AppSpec.from_object(app)


def test_a_key_re_added_while_active_keeps_its_delay() -> None:
    queue = WorkQueue()
    queue.add(("ns", "a"))
    item = queue.get(timeout=1)
    assert item == (("ns", "a"), False)
    queue.add(("ns", "a"), delay=0.6)  # a retry queued by the reconcile itself
    queue.done(("ns", "a"))
    started = time.monotonic()
    again = queue.get(timeout=2)
    assert again is not None and time.monotonic() - started >= 0.5
    queue.close()


def test_fetches_of_one_repo_never_wait_for_another() -> None:
    stop = threading.Event()
    release = threading.Event()
    done: list[str] = []

    def fetch(url: str) -> None:
        if url == "slow":
            release.wait(10)

    fetcher = GitFetcher(fetch, done.append, stop)
    try:
        assert fetcher.request("slow", wait=0.2) is False
        started = time.monotonic()
        assert fetcher.request("fast", wait=2) is True
        assert time.monotonic() - started < 1
        assert fetcher.busy("slow") and not fetcher.busy("fast")
        # a fetch of the slow repo running longer than we would wait is not waited for
        started = time.monotonic()
        assert fetcher.request("slow", wait=0.1) is False
        assert time.monotonic() - started < 0.05
    finally:
        release.set()
        stop.set()
        fetcher.stop()
    assert "fast" in done
