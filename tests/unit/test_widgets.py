"""The widgets render Application dicts and call `Apps` verbs: pure, no cluster (fakes only)."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

import pytest

from gitops_lab.api.types import ResourceKey, SyncStatus
from gitops_lab.widgets import (
    AppDashboard,
    ClusterView,
    DiffView,
    EventLog,
    HistoryTimeline,
    ReconcileTrace,
    build_tree,
)

Obj = dict[str, Any]
SHA_A = "a" * 40
SHA_B = "b" * 40
SHA_C = "c" * 40


def make_app(sync: str = "Synced", health: str = "Healthy", *, automated: bool = True,
             self_heal: bool = False, prune: bool = False, revision: str = SHA_B,
             conditions: list[Obj] | None = None) -> Obj:
    """An Application shaped like shared/API.md §1 with what agent/status.py adds."""
    spec: Obj = {
        "source": {"repoURL": "git://127.0.0.1:9418/lab.git", "targetRevision": "main",
                   "path": "apps/guestbook"},
        "destination": {"namespace": "guestbook"},
    }
    if automated:
        spec["syncPolicy"] = {"automated": {"prune": prune, "selfHeal": self_heal,
                                            "allowEmpty": False}}
    status: Obj = {
        "sync": {"status": sync, "revision": revision},
        "health": {"status": health, "message": "" if health == "Healthy" else "1 of 2 ready"},
        "revisionInfo": {"revision": revision, "message": "scale to 2", "author": "Ann",
                         "date": "2024-05-01T10:00:00Z"},
        "resources": [
            {"group": "", "version": "v1", "kind": "ConfigMap", "namespace": "guestbook",
             "name": "settings", "status": "Synced", "requiresPruning": False,
             "health": {"status": "Healthy", "message": ""}},
            {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "guestbook",
             "name": "guestbook-ui", "status": sync, "requiresPruning": False,
             "health": {"status": health, "message": ""}},
            {"group": "", "version": "v1", "kind": "Service", "namespace": "guestbook",
             "name": "guestbook-svc", "status": "OutOfSync", "requiresPruning": True},
        ],
        "history": [
            {"id": 0, "revision": SHA_A, "deployedAt": "2024-05-01T09:00:00Z",
             "source": spec["source"]},
            {"id": 1, "revision": SHA_B, "deployedAt": "2024-05-01T10:00:00Z",
             "source": spec["source"]},
        ],
        "lastReconcile": {
            "startedAt": "2024-05-01T10:00:00Z", "durationMs": 60.5,
            "steps": [
                {"name": "fetch", "ms": 12.5, "ok": True, "detail": "git … → bbbbbbb"},
                {"name": "render", "ms": 3.0, "ok": True, "detail": "3 objects from apps/x"},
                {"name": "diff", "ms": 40.0, "ok": True, "detail": "1 of 3 OutOfSync"},
                {"name": "apply", "ms": 0.0, "ok": True, "detail": "skipped: manual sync"},
                {"name": "prune", "ms": 5.0, "ok": False, "detail": "forbidden"},
            ],
        },
    }
    if conditions:
        status["conditions"] = conditions
    return {"apiVersion": "gitopslab.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "guestbook", "namespace": "gitops-lab"},
            "spec": spec, "status": status}


class FakeApps:
    """Records the verbs called; `get` returns the app it holds."""

    namespace = "gitops-lab"

    def __init__(self, app: Obj) -> None:
        self.app = app
        self.calls: list[tuple[Any, ...]] = []

    def get(self, name: str) -> Obj:
        return copy.deepcopy(self.app)

    def sync(self, name: str, revision: str | None = None, prune: bool = False) -> Obj:
        self.calls.append(("sync", name, revision, prune))
        return self.app

    def rollback(self, name: str, history_id: int) -> tuple[Obj, str]:
        self.calls.append(("rollback", name, history_id))
        return self.app, ""

    def refresh(self, name: str) -> Obj:
        self.calls.append(("refresh", name))
        return self.app

    def set_policy(self, name: str, *, automated: bool | None = None,
                   self_heal: bool | None = None, prune: bool | None = None) -> Obj:
        kwargs = {k: v for k, v in (("automated", automated), ("self_heal", self_heal),
                                    ("prune", prune)) if v is not None}
        self.calls.append(("set_policy", name, kwargs))
        return self.app


def dashboard(app: Obj | None = None) -> tuple[AppDashboard, FakeApps]:
    apps = FakeApps(app or make_app())
    return AppDashboard(apps, "guestbook", live=False), apps


# ---- AppDashboard ------------------------------------------------------------------------------
@pytest.mark.parametrize(("sync", "colour", "icon"), [
    ("Synced", "#18be94", "✔"), ("OutOfSync", "#f4c030", "⇅"), ("Unknown", "#8fa4b1", "?"),
])
def test_sync_badge_text_and_colour(sync: str, colour: str, icon: str) -> None:
    dash, _ = dashboard(make_app(sync=sync))
    assert dash.sync_status == sync
    assert sync in dash.badge.value and colour in dash.badge.value and icon in dash.badge.value
    assert "gitops-sync-badge" in dash.badge._dom_classes
    assert "gitops-sync-badge" in dash.badge.value


@pytest.mark.parametrize(("health", "colour", "icon"), [
    ("Healthy", "#18be94", "♥"), ("Progressing", "#0dadea", "◔"), ("Degraded", "#e96d76", "💔"),
    ("Suspended", "#6d7f96", "⏸"), ("Missing", "#f4c030", "👻"), ("Unknown", "#8fa4b1", "?"),
])
def test_health_badge_text_and_colour(health: str, colour: str, icon: str) -> None:
    dash, _ = dashboard(make_app(health=health))
    assert dash.health_status == health
    value = dash.health_badge.value
    assert health in value and colour in value and icon in value


def test_missing_status_is_unknown() -> None:
    dash, _ = dashboard({"metadata": {"name": "guestbook", "namespace": "gitops-lab"},
                         "spec": {}})
    assert (dash.sync_status, dash.health_status, dash.revision) == ("Unknown", "Unknown", "")
    dash.update(make_app(sync="Bogus"))
    assert dash.sync_status == "Unknown"


def test_revision_message_target_and_conditions() -> None:
    dash, _ = dashboard()
    assert dash.revision == SHA_B
    assert "bbbbbbb" in dash.revision_html.value and "scale to 2" in dash.revision_html.value
    assert "main" in dash.header.value and "apps/guestbook" in dash.header.value
    assert dash.conditions_html.value == ""
    dash.update(make_app(conditions=[{"type": "ComparisonError",
                                      "message": "apps/x/web.yaml: bad <yaml>"}]))
    assert "ComparisonError" in dash.conditions_html.value
    assert "bad &lt;yaml&gt;" in dash.conditions_html.value  # escaped
    assert "#e96d76" in dash.conditions_html.value


def test_tree_lists_every_resource_and_children() -> None:
    app = make_app()
    owner = [{"kind": "Deployment", "name": "guestbook-ui"}]
    rs = [{"metadata": {"name": "guestbook-ui-7d9", "namespace": "guestbook",
                        "ownerReferences": owner,
                        "annotations": {"deployment.kubernetes.io/revision": "2"}},
           "spec": {"replicas": 1}, "status": {"replicas": 1, "readyReplicas": 1,
                                               "availableReplicas": 1}},
          {"metadata": {"name": "other-rs", "namespace": "guestbook",
                        "ownerReferences": [{"kind": "Deployment", "name": "other"}]}}]
    pods = [{"metadata": {"name": "guestbook-ui-7d9-x1", "namespace": "guestbook",
                          "ownerReferences": [{"kind": "ReplicaSet", "name": "guestbook-ui-7d9"}]},
             "spec": {"containers": [{"name": "web"}]},
             "status": {"phase": "Running", "containerStatuses": [{"ready": True}],
                        "conditions": [{"type": "Ready", "status": "True"}]}}]
    dash, _ = dashboard(app)
    dash.update(app, replicasets=rs, pods=pods)
    html = dash.tree_html.value
    for res in app["status"]["resources"]:
        assert f'data-name="{res["name"]}"' in html
    assert "guestbook-ui-7d9" in html and "guestbook-ui-7d9-x1" in html
    assert "other-rs" not in html
    assert [(n.kind, n.depth) for n in dash.tree] == [
        ("Application", 0), ("ConfigMap", 1), ("Deployment", 1), ("ReplicaSet", 2), ("Pod", 3),
        ("Service", 1)]
    pod = dash.tree[4]
    assert pod.health == "Healthy" and pod.note == "Running 1/1"
    assert build_tree(app)[-1].note == "requires pruning"


def test_buttons_call_apps_verbs() -> None:
    dash, apps = dashboard()
    dash.sync_button.click()
    dash.refresh_button.click()
    assert ("sync", "guestbook", None, False) in apps.calls
    assert ("refresh", "guestbook") in apps.calls


def test_rollback_goes_to_previous_history_entry() -> None:
    dash, apps = dashboard()
    assert not dash.rollback_button.disabled
    assert "#0" in dash.rollback_button.description
    dash.rollback_button.click()
    assert apps.calls == [("rollback", "guestbook", 0)]


def test_rollback_disabled_without_history() -> None:
    app = make_app()
    app["status"]["history"] = app["status"]["history"][-1:]
    dash, _ = dashboard(app)
    assert dash.rollback_button.disabled


def test_policy_toggles_call_set_policy() -> None:
    dash, apps = dashboard(make_app(automated=True))
    assert apps.calls == []  # rendering the policy does not write it
    assert (dash.auto_sync.value, dash.self_heal.value, dash.prune.value) == (True, False, False)
    dash.self_heal.value = True
    assert apps.calls[-1] == ("set_policy", "guestbook", {"self_heal": True})
    dash.prune.value = True
    assert apps.calls[-1] == ("set_policy", "guestbook", {"prune": True})
    dash.auto_sync.value = False
    assert apps.calls[-1] == ("set_policy", "guestbook", {"automated": False})


def test_manual_app_shows_policy_off() -> None:
    dash, apps = dashboard(make_app(automated=False))
    assert dash.auto_sync.value is False and dash.self_heal.disabled
    dash.auto_sync.value = True
    assert apps.calls == [("set_policy", "guestbook", {"automated": True})]


def test_verb_failure_is_shown_not_raised() -> None:
    dash, apps = dashboard()

    def boom(name: str, revision: str | None = None, prune: bool = False) -> Obj:
        raise RuntimeError("API server unreachable")

    apps.sync = boom  # type: ignore[method-assign]
    dash.sync_button.click()
    assert "unreachable" in dash.message_html.value


# ---- HistoryTimeline ---------------------------------------------------------------------------
def test_history_marks_live_entry_and_buttons_roll_back() -> None:
    apps = FakeApps(make_app())
    timeline = HistoryTimeline(apps, "guestbook", messages={SHA_A[:7]: "first commit"},
                               live=False)
    assert [e["id"] for e in timeline.entries] == [0, 1]
    assert [e["live"] for e in timeline.entries] == [False, True]
    assert timeline.entries[0]["message"] == "first commit"
    assert timeline.entries[1]["message"] == "scale to 2"  # from status.revisionInfo
    assert timeline.entries[0]["short"] == "aaaaaaa"
    assert set(timeline.buttons) == {0, 1}
    assert timeline.buttons[1].disabled and not timeline.buttons[0].disabled
    timeline.buttons[0].click()
    assert apps.calls == [("rollback", "guestbook", 0)]
    cards = [box.children[0].value for box in timeline.timeline.children]
    assert "LIVE" in cards[1] and "LIVE" not in cards[0]


def test_history_after_rollback_marks_newest_matching_entry() -> None:
    app = make_app(revision=SHA_A)
    app["status"]["history"].append({"id": 2, "revision": SHA_A,
                                     "deployedAt": "2024-05-01T11:00:00Z"})
    timeline = HistoryTimeline(FakeApps(app), "guestbook", live=False)
    assert [e["live"] for e in timeline.entries] == [False, False, True]
    dash, apps = dashboard(app)
    dash.rollback_button.click()
    assert apps.calls == [("rollback", "guestbook", 1)]


# ---- DiffView ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FakeDiff:
    key: ResourceKey
    status: SyncStatus
    text: str
    message: str = ""


def test_diff_view_colours_plus_and_minus() -> None:
    cm = ResourceKey("", "ConfigMap", "guestbook", "settings", "v1")
    dep = ResourceKey("apps", "Deployment", "guestbook", "web", "v1")
    text = ("--- live/Deployment.apps guestbook/web\n+++ git/Deployment.apps guestbook/web\n"
            "@@ -1,3 +1,3 @@\n spec:\n-  replicas: 1\n+  replicas: 3\n")
    view = DiffView({cm: FakeDiff(cm, SyncStatus.SYNCED, ""),
                     dep: FakeDiff(dep, SyncStatus.OUT_OF_SYNC, text, "replicas differ")})
    assert [e["key"] for e in view.entries] == [str(dep)]
    assert len(view.accordion.children) == 1
    assert str(dep) in view.accordion.titles[0]
    body = view.accordion.children[0].value
    add = re.search(r'<div class="gitops-diff-add" style="([^"]*)">\+  replicas: 3</div>', body)
    rem = re.search(r'<div class="gitops-diff-del" style="([^"]*)">-  replicas: 1</div>', body)
    assert add and "#1a7f37" in add.group(1)
    assert rem and "#cf222e" in rem.group(1)
    assert "1</b> of 2" in view.summary.value


def test_diff_view_reads_a_reconcile_result() -> None:
    key = ResourceKey("", "ConfigMap", "guestbook", "gone", "v1")

    @dataclass
    class Res:
        key: ResourceKey
        requires_pruning: bool

    @dataclass
    class Result:
        diffs: dict[ResourceKey, FakeDiff]
        resources: list[Res]
        conditions: list[Any]

    view = DiffView(Result({}, [Res(key, True)], []))
    assert view.entries[0]["key"] == str(key) and "pruned" in view.entries[0]["message"]
    assert "equal Git" in DiffView({key: FakeDiff(key, SyncStatus.SYNCED, "")}).summary.value


# ---- ReconcileTrace ----------------------------------------------------------------------------
def test_reconcile_trace_steps_with_ms() -> None:
    trace = ReconcileTrace(FakeApps(make_app()), "guestbook", live=False)
    names = [s["name"] for s in trace.steps]
    assert names == ["fetch", "render", "diff", "apply", "prune", "health"]
    states = {s["name"]: s["state"] for s in trace.steps}
    assert states == {"fetch": "ok", "render": "ok", "diff": "ok", "apply": "skipped",
                      "prune": "failed", "health": "not run"}
    html = trace.html.value
    for ms in ("12.5 ms", "3.0 ms", "40.0 ms", "5.0 ms"):
        assert ms in html
    assert "60.5 ms" in html
    assert re.search(r'gitops-step-failed" data-step="prune"', html)
    assert "#e96d76" in html  # failed step drawn red
    assert re.search(r'gitops-step-skipped" data-step="apply"', html)


# ---- EventLog ----------------------------------------------------------------------------------
def event(reason: str, type_: str, stamp: str, name: str = "guestbook", rv: str = "1") -> Obj:
    return {"metadata": {"name": f"{name}.{rv}", "namespace": "gitops-lab",
                         "resourceVersion": rv},
            "involvedObject": {"apiVersion": "gitopslab.io/v1alpha1", "kind": "Application",
                               "namespace": "gitops-lab", "name": name},
            "type": type_, "reason": reason, "message": f"{reason} happened",
            "lastTimestamp": stamp}


def test_event_log_newest_first_and_drift_highlighted() -> None:
    log = EventLog(None, live=False)
    other = event("Synced", "Normal", "2024-05-01T10:00:09Z", name="other", rv="9")
    pod_event = {**event("Pulled", "Normal", "2024-05-01T10:00:10Z", rv="10"),
                 "involvedObject": {"kind": "Pod", "name": "x"}}
    log.update([
        event("SyncStarted", "Normal", "2024-05-01T10:00:00Z", rv="1"),
        event("DriftDetected", "Warning", "2024-05-01T10:00:05Z", rv="3"),
        event("Synced", "Normal", "2024-05-01T10:00:01Z", rv="2"),
        other, pod_event,
    ])
    assert [r["reason"] for r in log.rows] == ["Synced", "DriftDetected", "Synced",
                                               "SyncStarted"]
    assert set(log.rows[0]) >= {"reason", "type", "message", "time"}
    html = log.table_html.value
    drift = re.search(r'<tr class="([^"]*)" data-reason="DriftDetected" style="([^"]*)"', html)
    assert drift and "gitops-event-drift" in drift.group(1) and "#f4c030" in drift.group(2)
    assert "gitops-event-warning" in drift.group(1)
    normal = re.search(r'<tr class="([^"]*)" data-reason="SyncStarted" style="([^"]*)"', html)
    assert normal and normal.group(1) == "gitops-event" and normal.group(2) == ""

    one = EventLog(None, "guestbook", live=False)
    one.update([other, event("SyncFailed", "Warning", "2024-05-01T10:00:00Z")])
    assert [r["reason"] for r in one.rows] == ["SyncFailed"]
    assert "gitops-event-warning" in one.table_html.value


# ---- ClusterView -------------------------------------------------------------------------------
def test_cluster_view_nodes_and_pods() -> None:
    view = ClusterView(None, live=False)
    view.update(
        [{"metadata": {"name": "kwok-node-0"},
          "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
         {"metadata": {"name": "broken"},
          "status": {"conditions": [{"type": "Ready", "status": "False"}]}}],
        [{"metadata": {"name": "web-1", "namespace": "guestbook"},
          "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "kwok-node-0"},
          "status": {"phase": "Running", "containerStatuses": [{"ready": True},
                                                               {"ready": False}]}},
         {"metadata": {"name": "coredns", "namespace": "kube-system"},
          "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Pending"}}],
    )
    assert [(n["name"], n["ready"]) for n in view.nodes] == [("broken", False),
                                                             ("kwok-node-0", True)]
    assert [(p["namespace"], p["name"], p["phase"], p["ready"]) for p in view.pods] == [
        ("guestbook", "web-1", "Running", "1/2"), ("kube-system", "coredns", "Pending", "0/1")]
    for text in ("kwok-node-0", "NotReady", "web-1", "1/2", "kube-system"):
        assert text in view.html.value


def test_widgets_display_as_ipywidgets() -> None:
    dash, _ = dashboard()
    bundle = dash._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
