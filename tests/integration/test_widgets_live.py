"""The widgets against a real API server: watches drive AppDashboard and EventLog (no agent).
The Application lives in a fresh namespace so an agent running in the same session ignores it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gitops_lab.apps import Apps, application
from gitops_lab.install import install
from gitops_lab.kube import Kube, KubeError
from gitops_lab.widgets import AppDashboard, DiffView, EventLog, _live

pytestmark = pytest.mark.cluster

NAME = "widget-live"


def eventually(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Wait for `check()`; return how long it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError(f"{what}: not within {timeout} s")


@pytest.fixture
def kube(lab_cluster: Any) -> Kube:
    kube = Kube.from_kubeconfig(lab_cluster.kubeconfig)
    install(kube)
    return kube


@pytest.fixture
def apps(kube: Kube, lab_namespace: str) -> Iterator[Apps]:
    apps = Apps(kube, lab_namespace)
    apps.apply(application(NAME, "git://127.0.0.1:9/none.git", "app", namespace=lab_namespace,
                           dest_namespace=lab_namespace, automated=False))
    yield apps
    apps.delete(NAME)


def set_status(apps: Apps, status: dict[str, Any]) -> None:
    """Write status as the agent would: merge-patch on the status subresource."""
    apps.kube.request("PATCH", f"{apps._path(NAME)}/status", body={"status": status},
                      content_type="application/merge-patch+json")


def status(sync: str, health: str = "Healthy", resources: list[Any] | None = None) -> Any:
    return {"sync": {"status": sync, "revision": "a" * 40},
            "health": {"status": health, "message": ""},
            "resources": resources or []}


def test_dashboard_follows_status_through_the_watch(apps: Apps,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_live, "WATCH_TIMEOUT", 2)
    set_status(apps, status("OutOfSync", "Progressing"))
    dash = AppDashboard(apps, NAME, live=True)
    try:
        assert dash.sync_status == "OutOfSync"
        assert dash.health_status == "Progressing"
        set_status(apps, status("Synced", "Healthy"))
        took = eventually(lambda: dash.sync_status == "Synced", 2.0, "the Synced status")
        assert dash.health_status == "Healthy" and "Synced" in dash.badge.value
        set_status(apps, status("OutOfSync", "Degraded"))
        eventually(lambda: dash.sync_status == "OutOfSync", 2.0, "OutOfSync again")
        eventually(lambda: dash.health_status == "Degraded", 2.0, "Degraded")
        print(f"status change reached the widget in {took * 1000:.0f} ms")
    finally:
        dash.close()
    # closed: no more updates, and the watch threads end
    set_status(apps, status("Synced"))
    time.sleep(0.5)
    assert dash.sync_status == "OutOfSync"
    for thread in dash.threads:
        thread.join(timeout=10)
        assert not thread.is_alive(), thread.name


def test_dashboard_tree_follows_pods(apps: Apps, kube: Kube, lab_namespace: str) -> None:
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": lab_namespace},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
    }
    kube.apply(deployment)
    dash = AppDashboard(apps, NAME, live=True)
    try:
        set_status(apps, status("Synced", resources=[{
            "group": "apps", "version": "v1", "kind": "Deployment", "namespace": lab_namespace,
            "name": "web", "status": "Synced", "health": {"status": "Healthy"}}]))

        def two_pods() -> bool:
            return sum(1 for n in dash.tree if n.kind == "Pod") == 2

        eventually(two_pods, 30, "the Deployment's two pods in the tree")
        kinds = [n.kind for n in dash.tree]
        assert kinds[:3] == ["Application", "Deployment", "ReplicaSet"]
        assert 'data-kind="Pod"' in dash.tree_html.value
    finally:
        dash.close()
        with contextlib.suppress(KubeError):
            kube.delete("apps/v1", "Deployment", "web", lab_namespace, propagation="Background")


def test_event_log_follows_events(apps: Apps, kube: Kube, lab_namespace: str) -> None:
    app = apps.get(NAME)
    log = EventLog(kube, NAME, namespace=lab_namespace)
    try:
        assert log.rows == []
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        kube.create({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{NAME}.drift", "namespace": lab_namespace},
            "involvedObject": {"apiVersion": "gitopslab.io/v1alpha1", "kind": "Application",
                               "namespace": lab_namespace, "name": NAME,
                               "uid": app["metadata"]["uid"]},
            "type": "Warning", "reason": "DriftDetected", "message": "ConfigMap x drifted",
            "firstTimestamp": stamp, "lastTimestamp": stamp,
            "source": {"component": "test"},
        })
        eventually(lambda: [r["reason"] for r in log.rows] == ["DriftDetected"], 2.0,
                   "the DriftDetected event in the log")
        assert "gitops-event-drift" in log.table_html.value
    finally:
        log.close()


def test_diff_view_for_app_compares_git_with_live(apps: Apps, kube: Kube, lab_namespace: str,
                                                 git_server: Any, tmp_path: Any) -> None:
    import yaml

    repo = f"widgets-{lab_namespace}"[:60]
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
          "data": {"color": "blue"}}
    git_server.create_repo(repo, {"app/cm.yaml": yaml.safe_dump(cm)})
    apps.apply(application(NAME, git_server.url(repo), "app", namespace=lab_namespace,
                           dest_namespace=lab_namespace, automated=False))
    kube.apply({**cm, "metadata": {"name": "settings", "namespace": lab_namespace},
                "data": {"color": "red"}})
    view = DiffView.for_app(kube, apps, NAME, cache_dir=tmp_path / "repos")
    assert [e["key"] for e in view.entries] == [f"ConfigMap {lab_namespace}/settings"]
    body = view.accordion.children[0].value
    assert 'class="gitops-diff-add"' in body and "color: blue" in body
    assert 'class="gitops-diff-del"' in body and "color: red" in body
    assert apps.get(NAME).get("status") is None  # compare only: nothing written
