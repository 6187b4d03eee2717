"""The agent end to end: real API server, real `git daemon`, agent as its ServiceAccount."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import pytest
import yaml
from agent_helpers import LabApp, conditions, st

from gitops_lab.kube import Kube

pytestmark = pytest.mark.cluster


def configmap(name: str, **data: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": name, "labels": {"app": "demo"}},
                           "data": data or {"k": "v"}})


def deployment(name: str, replicas: int = 2, image: str = "nginx:1.27-alpine",
               selector: str = "demo") -> str:
    return yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": 10,
            "selector": {"matchLabels": {"app": selector}},
            "template": {"metadata": {"labels": {"app": selector}},
                         "spec": {"containers": [{"name": "web", "image": image}]}},
        },
    })


def synced_healthy(revision: str | None = None) -> Any:
    def check(app: dict[str, Any]) -> bool:
        ok = st(app, "sync", "status") == "Synced" and st(app, "health", "status") == "Healthy"
        return ok and (revision is None or st(app, "sync", "revision") == revision)
    return check


def live_replicas(admin: Kube, ns: str, name: str) -> int:
    return int(admin.get("apps/v1", "Deployment", name, ns)["spec"]["replicas"])


def test_create_then_synced_and_healthy(lab_app: LabApp, admin: Kube) -> None:
    head = lab_app.init({"app/cm.yaml": configmap("settings"),
                         "app/web.yaml": deployment("web")})
    lab_app.create()
    app = lab_app.wait(synced_healthy(head), "Synced/Healthy at the first commit")
    kinds = sorted(r["kind"] for r in st(app, "resources"))
    assert kinds == ["ConfigMap", "Deployment"]
    cm = admin.get("v1", "ConfigMap", "settings", lab_app.namespace)
    assert cm["metadata"]["annotations"]["gitopslab.io/tracking-id"] == (
        f"gitops-lab_{lab_app.name}:/ConfigMap:{lab_app.namespace}/settings")
    assert [h["revision"] for h in st(app, "history")] == [head]
    assert st(app, "revisionInfo", "message") == "initial"
    reasons = {e["reason"] for e in lab_app.events()}
    assert {"SyncStarted", "Synced", "HealthChanged"} <= reasons


def test_new_commit_is_synced(lab_app: LabApp, admin: Kube) -> None:
    lab_app.init({"app/web.yaml": deployment("web", replicas=1)})
    lab_app.create()
    lab_app.wait(synced_healthy(), "the first sync")
    sha = lab_app.commit({"app/web.yaml": deployment("web", replicas=3)}, message="scale to 3")
    app = lab_app.wait(synced_healthy(sha), "the new commit to be synced")
    assert live_replicas(admin, lab_app.namespace, "web") == 3
    assert [h["id"] for h in st(app, "history")] == [0, 1]
    assert st(app, "revisionInfo", "message") == "scale to 3"


def test_drift_without_self_heal_is_reported(lab_app: LabApp, admin: Kube, alerts: Any,
                                             lab_cluster: Any) -> None:
    lab_app.init({"app/web.yaml": deployment("web", replicas=2)})
    lab_app.create(self_heal=False)
    lab_app.wait(synced_healthy(), "the first sync")
    out = lab_cluster.kubectl("scale", "deployment/web", "--replicas=5", "-n", lab_app.namespace)
    assert out.returncode == 0, out.stderr
    app = lab_app.wait(lambda a: st(a, "sync", "status") == "OutOfSync", "drift to show")
    web = next(r for r in st(app, "resources") if r["kind"] == "Deployment")
    assert web["status"] == "OutOfSync"
    alert = alerts.wait_for(lambda a: a["reason"] == "DriftDetected"
                            and a["app"] == f"gitops-lab/{lab_app.name}")
    assert "spec.replicas" in alert["message"]
    assert alert["resources"] == [f"Deployment.apps {lab_app.namespace}/web"]
    time.sleep(1.0)  # no self-heal: the drift stays
    assert live_replicas(admin, lab_app.namespace, "web") == 5
    assert any(e["reason"] == "DriftDetected" and e["type"] == "Warning"
               for e in lab_app.events())


def test_self_heal_reverts_drift(lab_app: LabApp, admin: Kube, lab_cluster: Any) -> None:
    lab_app.init({"app/web.yaml": deployment("web", replicas=2),
                  "app/cm.yaml": configmap("settings", color="blue")})
    lab_app.create(self_heal=True)
    lab_app.wait(synced_healthy(), "the first sync")
    lab_cluster.kubectl("scale", "deployment/web", "--replicas=7", "-n", lab_app.namespace)
    deadline = time.monotonic() + 10
    while live_replicas(admin, lab_app.namespace, "web") != 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live_replicas(admin, lab_app.namespace, "web") == 2
    # deleting a managed object is drift too
    admin.delete("v1", "ConfigMap", "settings", lab_app.namespace, propagation="Background")
    deadline = time.monotonic() + 15
    while admin.get_or_none("v1", "ConfigMap", "settings", lab_app.namespace) is None and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    assert admin.get("v1", "ConfigMap", "settings", lab_app.namespace)["data"] == {"color": "blue"}
    lab_app.wait(synced_healthy(), "Synced again after self-heal")
    reasons = [e["reason"] for e in lab_app.events()]
    assert reasons.count("SelfHealed") >= 2 and reasons.count("DriftDetected") >= 2, reasons


def test_prune_removes_only_owned_objects(lab_app: LabApp, admin: Kube) -> None:
    lab_app.init({"app/a.yaml": configmap("a"), "app/b.yaml": configmap("b")})
    lab_app.create(prune=True)
    lab_app.wait(synced_healthy(), "the first sync")
    # an object with the same labels in the same namespace that nobody declared in Git
    admin.apply({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "bystander", "namespace": lab_app.namespace,
                              "labels": {"app": "demo"}}, "data": {"mine": "yes"}},
                field_manager="someone-else")
    sha = lab_app.commit(delete=("app/b.yaml",), message="remove b")
    app = lab_app.wait(synced_healthy(sha), "the removal to be synced")
    assert admin.get_or_none("v1", "ConfigMap", "b", lab_app.namespace) is None
    assert admin.get_or_none("v1", "ConfigMap", "a", lab_app.namespace) is not None
    assert admin.get_or_none("v1", "ConfigMap", "bystander", lab_app.namespace) is not None
    assert [r["name"] for r in st(app, "resources")] == ["a"]
    assert "Pruned" in {e["reason"] for e in lab_app.events()}


def test_without_prune_objects_are_flagged_not_deleted(lab_app: LabApp, admin: Kube) -> None:
    lab_app.init({"app/a.yaml": configmap("a"), "app/b.yaml": configmap("b")})
    lab_app.create(prune=False)
    lab_app.wait(synced_healthy(), "the first sync")
    sha = lab_app.commit(delete=("app/b.yaml",), message="remove b")
    app = lab_app.wait(lambda a: st(a, "sync", "revision") == sha
                       and st(a, "sync", "status") == "OutOfSync", "b to require pruning")
    b = next(r for r in st(app, "resources") if r["name"] == "b")
    assert b["requiresPruning"] is True
    assert admin.get_or_none("v1", "ConfigMap", "b", lab_app.namespace) is not None


def test_rollback_by_operation_revision(lab_app: LabApp, admin: Kube) -> None:
    first = lab_app.init({"app/web.yaml": deployment("web", replicas=1)})
    lab_app.create()
    lab_app.wait(synced_healthy(first), "the first sync")
    second = lab_app.commit({"app/web.yaml": deployment("web", replicas=4)}, message="4 replicas")
    lab_app.wait(synced_healthy(second), "the second commit")
    lab_app.apps.sync(lab_app.name, revision=first[:8])
    app = lab_app.apps.wait_operation(lab_app.name, timeout=20)
    assert st(app, "operationState", "phase") == "Succeeded"
    assert st(app, "operationState", "syncResult", "revision") == first
    assert live_replicas(admin, lab_app.namespace, "web") == 1
    # compared with the branch head again, the rolled-back app is OutOfSync, and it stays so
    app = lab_app.wait(lambda a: st(a, "sync", "status") == "OutOfSync"
                       and st(a, "sync", "revision") == second, "OutOfSync against main")
    time.sleep(1.5)
    assert live_replicas(admin, lab_app.namespace, "web") == 1, "automated sync undid the rollback"
    assert "automated" not in (app["spec"].get("syncPolicy") or {}), \
        "a rollback must turn automated sync off"
    assert [h["revision"] for h in st(app, "history")] == [first, second, first]


def test_rollback_by_history_id_with_the_cli(lab_app: LabApp, admin: Kube, lab_cluster: Any) -> None:
    first = lab_app.init({"app/cm.yaml": configmap("settings", color="blue")})
    lab_app.create()
    lab_app.wait(synced_healthy(first), "the first sync")
    second = lab_app.commit({"app/cm.yaml": configmap("settings", color="red")}, message="red")
    lab_app.wait(synced_healthy(second), "the second commit")
    env = {"KUBECONFIG": str(lab_cluster.kubeconfig), "PATH": "/usr/bin:/bin",
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-m", "gitops_lab", "app", "history", lab_app.name],
                         capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr
    assert first in out.stdout and second in out.stdout
    out = subprocess.run([sys.executable, "-m", "gitops_lab", "app", "rollback", lab_app.name, "0"],
                         capture_output=True, text=True, env=env, check=False, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Last Sync:     Succeeded" in out.stdout, out.stdout
    cm = admin.get("v1", "ConfigMap", "settings", lab_app.namespace)
    assert cm["data"] == {"color": "blue"}


def test_manual_sync_policy_waits_for_sync(lab_app: LabApp, admin: Kube) -> None:
    lab_app.init({"app/cm.yaml": configmap("settings")})
    lab_app.create(automated=False)
    app = lab_app.wait(lambda a: st(a, "sync", "status") == "OutOfSync"
                       and st(a, "health", "status") == "Missing", "OutOfSync/Missing")
    assert admin.get_or_none("v1", "ConfigMap", "settings", lab_app.namespace) is None
    lab_app.apps.sync(lab_app.name)
    app = lab_app.apps.wait_operation(lab_app.name)
    assert st(app, "sync", "status") == "Synced"
    assert admin.get_or_none("v1", "ConfigMap", "settings", lab_app.namespace) is not None


def test_no_op_reconcile_writes_nothing(lab_app: LabApp, admin: Kube, agent: Any) -> None:
    lab_app.init({"app/cm.yaml": configmap("settings")})
    lab_app.create(self_heal=True)
    lab_app.wait(synced_healthy(), "the first sync")
    before = admin.get("v1", "ConfigMap", "settings", lab_app.namespace)
    lab_app.apps.refresh(lab_app.name)
    lab_app.wait(lambda a: "gitopslab.io/refresh" not in
                 (a["metadata"].get("annotations") or {}), "the refresh")
    after = admin.get("v1", "ConfigMap", "settings", lab_app.namespace)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


# ---- bad input: a condition naming the file/object and the cause; nothing pruned; recovers ----
BAD_INPUTS: list[tuple[str, dict[str, str | bytes], str, str]] = [
    ("malformed-yaml", {"app/bad.yaml": "kind: ConfigMap\n  metadata: [oops\n"},
     "ComparisonError", "app/bad.yaml"),
    ("no-kind", {"app/bad.yaml": "apiVersion: v1\nmetadata: {name: x}\n"},
     "ComparisonError", "app/bad.yaml"),
    ("unknown-kind", {"app/bad.yaml": "apiVersion: example.com/v1\nkind: Gizmo\n"
                      "metadata: {name: x}\n"}, "ComparisonError", "Gizmo"),
    ("rejected-value", {"app/bad.yaml": deployment("bad", replicas=-1)},
     "ComparisonError", "replicas"),
    ("duplicate", {"app/dup.yaml": configmap("keep")}, "ComparisonError", "app/dup.yaml"),
    # the agent's RBAC does not cover Secrets: refused, by name, instead of retried forever
    ("forbidden-kind", {"app/secret.yaml": "apiVersion: v1\nkind: Secret\n"
                        "metadata: {name: creds}\nstringData: {password: hunter2}\n"},
     "ComparisonError", "app/secret.yaml: Secret"),
    ("alias-bomb", {"app/bomb.yaml": "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a]\n"
                    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c]\n"
                    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e]\n"
                    "g: [*f,*f,*f,*f,*f,*f,*f,*f]\n"}, "ComparisonError", "app/bomb.yaml"),
]


@pytest.mark.parametrize(("case", "files", "ctype", "needle"), BAD_INPUTS,
                         ids=[c[0] for c in BAD_INPUTS])
def test_bad_commit_sets_condition_prunes_nothing_and_recovers(
        lab_app: LabApp, admin: Kube, case: str, files: dict[str, str | bytes], ctype: str,
        needle: str) -> None:
    good = lab_app.init({"app/keep.yaml": configmap("keep"), "app/other.yaml": configmap("other")})
    lab_app.create(prune=True)
    lab_app.wait(synced_healthy(good), "the good commit")
    bad = lab_app.commit(files, delete=("app/other.yaml",), message=f"bad: {case}")
    app = lab_app.wait(lambda a: ctype in conditions(a) and st(a, "sync", "revision") == bad,
                       f"{ctype} for {case}")
    message = conditions(app)[ctype]
    assert needle in message, message
    # nothing was pruned, nothing changed: the last good live state stays
    assert admin.get_or_none("v1", "ConfigMap", "other", lab_app.namespace) is not None
    assert admin.get_or_none("v1", "ConfigMap", "keep", lab_app.namespace) is not None
    # fix Git: the condition clears and the app converges (now pruning `other` legitimately)
    fixed_files = {k: configmap("fixed") for k in files if k != "app/dup.yaml"}
    fixed = lab_app.commit(fixed_files or None,
                           delete=tuple(k for k in files if k == "app/dup.yaml"),
                           message="fix")
    app = lab_app.wait(lambda a: synced_healthy(fixed)(a) and not conditions(a), "recovery")
    assert admin.get_or_none("v1", "ConfigMap", "other", lab_app.namespace) is None


def test_immutable_field_change_is_reported(lab_app: LabApp, admin: Kube) -> None:
    good = lab_app.init({"app/web.yaml": deployment("web", selector="v1")})
    lab_app.create()
    lab_app.wait(synced_healthy(good), "the good commit")
    lab_app.commit({"app/web.yaml": deployment("web", selector="v2")}, message="new selector")
    app = lab_app.wait(lambda a: "ComparisonError" in conditions(a), "the immutable-field error")
    msg = conditions(app)["ComparisonError"]
    assert "app/web.yaml" in msg and "immutable" in msg, msg
    live = admin.get("apps/v1", "Deployment", "web", lab_app.namespace)
    assert live["spec"]["selector"]["matchLabels"] == {"app": "v1"}


@pytest.mark.parametrize("case", ["missing-path", "bad-revision", "unreachable-repo"])
def test_source_errors(lab_app: LabApp, admin: Kube, case: str) -> None:
    good = lab_app.init({"app/keep.yaml": configmap("keep")})
    lab_app.create(prune=True)
    lab_app.wait(synced_healthy(good), "the good commit")
    app = lab_app.get()
    spec = app["spec"]
    if case == "missing-path":
        patch = {"source": {**spec["source"], "path": "nope/here"}}
        needle = "nope/here"
    elif case == "bad-revision":
        patch = {"source": {**spec["source"], "targetRevision": "no-such-branch"}}
        needle = "no-such-branch"
    else:
        patch = {"source": {**spec["source"], "repoURL": "git://127.0.0.1:1/nothing.git"}}
        needle = "127.0.0.1:1"
    admin.patch("gitopslab.io/v1alpha1", "Application", lab_app.name, {"spec": patch},
                "gitops-lab")
    app = lab_app.wait(lambda a: "SourceError" in conditions(a), f"SourceError for {case}")
    assert needle in conditions(app)["SourceError"]
    assert st(app, "sync", "status") == "Unknown"
    assert [r["name"] for r in st(app, "resources")] == ["keep"], "the inventory is kept"
    assert admin.get_or_none("v1", "ConfigMap", "keep", lab_app.namespace) is not None
    admin.patch("gitopslab.io/v1alpha1", "Application", lab_app.name, {"spec": spec},
                "gitops-lab")
    lab_app.wait(lambda a: synced_healthy(good)(a) and not conditions(a), "recovery")


def test_empty_directory_needs_allow_empty(lab_app: LabApp, admin: Kube) -> None:
    good = lab_app.init({"app/keep.yaml": configmap("keep")})
    lab_app.create(prune=True)
    lab_app.wait(synced_healthy(good), "the good commit")
    lab_app.commit({"app/README.md": "nothing here\n"}, delete=("app/keep.yaml",),
                   message="empty the app")
    app = lab_app.wait(lambda a: "SyncError" in conditions(a), "the empty-app guard")
    assert "allowEmpty" in conditions(app)["SyncError"]
    assert admin.get_or_none("v1", "ConfigMap", "keep", lab_app.namespace) is not None


def test_symlink_escaping_repo_is_refused(lab_app: LabApp, admin: Kube) -> None:
    good = lab_app.init({"app/keep.yaml": configmap("keep")})
    lab_app.create(prune=True)
    lab_app.wait(synced_healthy(good), "the good commit")
    assert lab_app.repo is not None
    lab_app.repo.symlink("app/evil.yaml", "../../../../etc/passwd")
    lab_app.repo.commit("symlink out of the repo")
    lab_app.repo.push()
    app = lab_app.wait(lambda a: "ComparisonError" in conditions(a) or
                       "SourceError" in conditions(a), "the symlink refusal")
    msg = " ".join(conditions(app).values())
    assert "app/evil.yaml" in msg
    assert admin.get_or_none("v1", "ConfigMap", "keep", lab_app.namespace) is not None


def test_unowned_object_is_not_taken_over_from_another_app(lab_app: LabApp, admin: Kube) -> None:
    lab_app.init({"app/cm.yaml": configmap("shared")})
    admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": lab_app.namespace}})
    admin.apply({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "shared", "namespace": lab_app.namespace,
                              "annotations": {"gitopslab.io/tracking-id":
                                              f"gitops-lab_other:/ConfigMap:{lab_app.namespace}/shared"}},
                 "data": {"owner": "other"}}, field_manager="other")
    lab_app.create()
    app = lab_app.wait(lambda a: "SharedResourceWarning" in conditions(a), "the shared warning")
    assert "gitops-lab/other" in conditions(app)["SharedResourceWarning"]
    assert admin.get("v1", "ConfigMap", "shared", lab_app.namespace)["data"] == {"owner": "other"}


def test_git_going_away_is_reported_and_the_mirror_keeps_serving(
        lab_app: LabApp, admin: Kube, git_server: Any) -> None:
    good = lab_app.init({"app/keep.yaml": configmap("keep")})
    lab_app.create(prune=True, self_heal=True)
    lab_app.wait(synced_healthy(good), "the good commit")
    repo = git_server.repo_path(lab_app.name)
    hidden = repo.with_name(repo.name + ".away")
    repo.rename(hidden)  # the Git server no longer has the repo
    try:
        app = lab_app.wait(lambda a: "SourceError" in conditions(a), "the fetch failure")
        assert "last fetched revision" in conditions(app)["SourceError"]
        assert st(app, "sync", "revision") == good
        # Git is unreachable, yet drift is still healed from the last fetched revision
        admin.delete("v1", "ConfigMap", "keep", lab_app.namespace, propagation="Background")
        deadline = time.monotonic() + 15
        while admin.get_or_none("v1", "ConfigMap", "keep", lab_app.namespace) is None:
            assert time.monotonic() < deadline, "self-heal stopped while Git was away"
            time.sleep(0.1)
    finally:
        hidden.rename(repo)
    lab_app.wait(lambda a: synced_healthy(good)(a) and not conditions(a), "recovery")
