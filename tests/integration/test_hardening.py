"""Issue 13, part B: a Git repo never reaches outside its app, and no failure spins, floods
or lies. Real API server, real `git daemon`, the agent in-process as its ServiceAccount."""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from agent_helpers import AlertReceiver, LabApp, conditions, st

from gitops_lab.agent import Agent
from gitops_lab.apps import Apps, application
from gitops_lab.kube import Kube, KubeError
from gitops_lab.labgit import GitServer

pytestmark = pytest.mark.cluster


def configmap(name: str, namespace: str | None = None, **data: str) -> str:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                           "data": data or {"k": "v"}})


def synced(revision: str | None = None) -> Any:
    def check(app: dict[str, Any]) -> bool:
        return st(app, "sync", "status") == "Synced" and not conditions(app) and (
            revision is None or st(app, "sync", "revision") == revision)
    return check


def reconciles(agent: Agent, app: str) -> float:
    """The agent's /metrics reconcile counter for one app (both results)."""
    total = 0.0
    for result in ("ok", "error"):
        value = agent.metrics.registry.get_sample_value(
            "gitopslab_reconcile_total", {"app": f"gitops-lab/{app}", "result": result})
        total += value or 0.0
    return total


@pytest.fixture
def other_app(agent: Agent, git_server: GitServer, apps: Apps, admin: Kube,
              tmp_path: Path) -> Iterator[LabApp]:
    """A second app of the same test, with its own repo and namespace."""
    name = f"o-{uuid.uuid4().hex[:6]}"
    app = LabApp(name, git_server, tmp_path / "wc2", apps, admin)
    yield app
    apps.delete(name)
    with contextlib.suppress(KubeError):
        admin.delete("v1", "Namespace", name, propagation="Background")


# ---- 2. one app's Git must not rewrite another Application -----------------------------------

def test_an_app_cannot_rewrite_another_application(lab_app: LabApp, other_app: LabApp,
                                                   admin: Kube, apps: Apps) -> None:
    other_app.init({"app/cm.yaml": configmap("theirs")})
    victim = other_app.create()
    original_spec = victim["spec"]
    hijack = application(other_app.name, lab_app.url, "elsewhere", dest_namespace="kube-system",
                         prune=True)
    lab_app.init({"app/cm.yaml": configmap("mine"), "app/evil.yaml": yaml.safe_dump(hijack)})
    lab_app.create()
    app = lab_app.wait(lambda a: "ComparisonError" in conditions(a), "the refusal")
    message = conditions(app)["ComparisonError"]
    assert "app/evil.yaml" in message and f"Application.gitopslab.io gitops-lab/{other_app.name}" \
        in message and "AppOfApps=true" in message, message
    time.sleep(1.0)
    after = apps.get(other_app.name)
    assert after["spec"] == original_spec, "another app's Git rewrote this Application"
    assert "gitopslab.io/tracking-id" not in (after["metadata"].get("annotations") or {})
    # the whole sync is refused: nothing of the commit is applied
    assert admin.get_or_none("v1", "ConfigMap", "mine", lab_app.namespace) is None
    # removing it from Git recovers
    sha = lab_app.commit(delete=("app/evil.yaml",), message="drop the hijack")
    lab_app.wait(synced(sha), "recovery once the Application left Git")
    assert admin.get_or_none("v1", "ConfigMap", "mine", lab_app.namespace) is not None


def test_app_of_apps_manages_only_the_children_it_created(lab_app: LabApp, other_app: LabApp,
                                                          admin: Kube, apps: Apps) -> None:
    other_app.init({"app/cm.yaml": configmap("theirs")})
    other_app.create()
    children = [f"{lab_app.name}-a", f"{lab_app.name}-b"]
    lab_app.init({f"apps/{c}.yaml": yaml.safe_dump(
        application(c, other_app.url, "app", dest_namespace=c)) for c in children})
    parent = application(lab_app.name, lab_app.url, "apps", dest_namespace="gitops-lab",
                         prune=True, create_namespace=False)
    parent["spec"]["syncPolicy"]["syncOptions"] = ["AppOfApps=true"]
    # the admin's opt-in: the agent may create and delete Applications
    grant = [d for d in yaml.safe_load_all(
        (resources.files("gitops_lab.install") / "manifests" / "app-of-apps-rbac.yaml")
        .read_text()) if d]
    for obj in grant:
        admin.apply(obj, field_manager="test-admin")
    try:
        apps.apply(parent)
        lab_app.wait(synced(), "the parent to create its children")
        for c in children:
            made = apps.get(c)
            assert made["metadata"]["annotations"]["gitopslab.io/tracking-id"] == (
                f"gitops-lab_{lab_app.name}:gitopslab.io/Application:gitops-lab/{c}")
        apps.wait(children[0], lambda a: st(a, "sync", "status") == "Synced", timeout=30,
                  what="a child to sync")
        # an existing Application it did not create is never adopted, even as an app of apps
        stolen = application(other_app.name, lab_app.url, "nowhere", dest_namespace="default")
        lab_app.commit({"apps/stolen.yaml": yaml.safe_dump(stolen)}, message="adopt")
        app = lab_app.wait(lambda a: "ComparisonError" in conditions(a), "the refusal")
        assert "not created by this app" in conditions(app)["ComparisonError"]
        assert apps.get(other_app.name)["spec"]["source"]["path"] == "app"
        # a child leaves Git: the parent prunes it, and only it
        sha = lab_app.commit(delete=("apps/stolen.yaml", f"apps/{children[1]}.yaml"),
                             message="drop a child")
        lab_app.wait(synced(sha), "the prune")
        assert apps.delete(children[1], wait=0) is True, "the child was not pruned"
        assert apps.get(children[0])["metadata"]["name"] == children[0]
        assert apps.get(other_app.name)["metadata"]["name"] == other_app.name
    finally:
        for c in children:
            apps.delete(c)
            with contextlib.suppress(KubeError):
                admin.delete("v1", "Namespace", c, propagation="Background")
        for obj in grant:
            admin.delete(obj["apiVersion"], obj["kind"], obj["metadata"]["name"],
                         obj["metadata"]["namespace"])


# ---- 14. self-destruction -----------------------------------------------------------------

def test_the_agents_own_namespace_and_identity_are_never_applied(lab_app: LabApp,
                                                                 admin: Kube) -> None:
    good = lab_app.init({"app/cm.yaml": configmap("keep")})
    lab_app.create(prune=True)
    lab_app.wait(synced(good), "the first sync")
    own = "\n---\n".join([
        yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": "gitops-lab"}}),
        yaml.safe_dump({"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": {"name": "gitops-lab-agent", "namespace": "gitops-lab"}}),
    ])
    bad = lab_app.commit({"app/own.yaml": own}, message="adopt the agent's namespace")
    app = lab_app.wait(lambda a: st(a, "sync", "revision") == bad
                       and "ComparisonError" in conditions(a), "the refusal")
    message = conditions(app)["ComparisonError"]
    assert "app/own.yaml: Namespace gitops-lab" in message, message
    assert "ServiceAccount gitops-lab/gitops-lab-agent" in message, message
    ns = admin.get("v1", "Namespace", "gitops-lab")
    assert (ns["metadata"].get("annotations") or {}).get("gitopslab.io/tracking-id") != \
        f"gitops-lab_{lab_app.name}:/Namespace:/gitops-lab", "the app adopted the namespace"
    # ... and removing it again prunes nothing of the agent
    fixed = lab_app.commit(delete=("app/own.yaml",), message="remove it again")
    lab_app.wait(synced(fixed), "recovery")
    assert admin.get("v1", "Namespace", "gitops-lab")["status"]["phase"] == "Active"
    assert admin.get_or_none("v1", "ServiceAccount", "gitops-lab-agent", "gitops-lab")


# ---- 3. a shared resource must not spin the second app --------------------------------------

def test_shared_resource_does_not_spin(lab_app: LabApp, other_app: LabApp, agent: Agent,
                                       admin: Kube) -> None:
    shared = configmap("shared", namespace=lab_app.namespace)
    lab_app.init({"app/cm.yaml": shared})
    lab_app.create()
    lab_app.wait(synced(), "the first app to own the object")
    other_app.init({"app/cm.yaml": shared})
    other_app.create(dest_namespace=lab_app.namespace)
    app = other_app.wait(lambda a: "SharedResourceWarning" in conditions(a), "the warning")
    assert f"gitops-lab/{lab_app.name}" in conditions(app)["SharedResourceWarning"]
    time.sleep(1.0)
    before = reconciles(agent, other_app.name)
    time.sleep(5.0)
    spent = reconciles(agent, other_app.name) - before
    assert spent <= 5, f"{spent:.0f} reconciles in 5 s for an app that only has a warning"
    # same once the owner is gone and its leftover object is declared by a new app
    lab_app.apps.delete(lab_app.name, wait=10)
    other_app.commit({"app/cm.yaml": shared, "app/x.yaml": configmap("x")}, message="poke")
    time.sleep(2.0)
    before = reconciles(agent, other_app.name)
    time.sleep(5.0)
    spent = reconciles(agent, other_app.name) - before
    assert spent <= 5, f"{spent:.0f} reconciles in 5 s after the owner was deleted"


# ---- 5. a partly invalid first sync into a new namespace writes nothing else -------------------

def test_partly_invalid_commit_into_a_new_namespace_applies_nothing(lab_app: LabApp,
                                                                    admin: Kube) -> None:
    service = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 99999}]}})
    lab_app.init({"app/good.yaml": configmap("good"), "app/svc.yaml": service,
                  "app/name.yaml": configmap("Not_A_Name"),
                  "app/big.yaml": configmap("big", blob="x" * 1_600_000)})
    assert admin.get_or_none("v1", "Namespace", lab_app.namespace) is None
    lab_app.create()  # CreateNamespace=true
    # an object too large to store is refused before anything is asked or written
    app = lab_app.wait(lambda a: "ComparisonError" in conditions(a), "the size refusal")
    message = conditions(app)["ComparisonError"]
    assert "app/big.yaml: ConfigMap" in message and "at most 1536 KiB" in message, message
    assert admin.get_or_none("v1", "Namespace", lab_app.namespace) is None
    # without it: the namespace is created first, then every object is dry-run, and the
    # invalid ones stop the valid one from being written
    second = lab_app.commit(delete=("app/big.yaml",), message="drop the big one")
    app = lab_app.wait(lambda a: st(a, "sync", "revision") == second
                       and "ComparisonError" in conditions(a), "the dry-run failure")
    message = conditions(app)["ComparisonError"]
    assert "app/svc.yaml: Service" in message and "99999" in message, message
    assert "app/name.yaml" in message and "Not_A_Name" in message, message
    assert admin.get_or_none("v1", "ConfigMap", "good", lab_app.namespace) is None, \
        "a partly invalid commit wrote its valid objects"
    assert st(app, "sync", "status") == "OutOfSync"
    fixed = lab_app.commit({"app/svc.yaml": service.replace("99999", "8080")},
                           delete=("app/name.yaml",), message="fix")
    lab_app.wait(synced(fixed), "the fixed commit")
    assert admin.get_or_none("v1", "ConfigMap", "good", lab_app.namespace) is not None


# ---- 6. a CRD and its custom resource in one commit ------------------------------------------

def test_crd_and_custom_resource_in_one_commit(lab_app: LabApp, admin: Kube) -> None:
    suffix = uuid.uuid4().hex[:6]
    plural, kind = f"crontabs{suffix}", f"CronTab{suffix.upper()}"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.stable.example.com"},
        "spec": {
            "group": "stable.example.com", "scope": "Namespaced",
            "names": {"plural": plural, "singular": f"crontab{suffix}", "kind": kind},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                    "type": "object",
                    "properties": {"cronSpec": {"type": "string"},
                                   "replicas": {"type": "integer"}}}}}}}],
        },
    }
    cr = {"apiVersion": "stable.example.com/v1", "kind": kind,
          "metadata": {"name": "nightly"}, "spec": {"cronSpec": "0 3 * * *", "replicas": 1}}
    try:
        head = lab_app.init({"app/crd.yaml": yaml.safe_dump(crd),
                             "app/cr.yaml": yaml.safe_dump(cr)})
        lab_app.create()
        app = lab_app.wait(synced(head), "the CRD and its custom resource to sync", timeout=40)
        assert sorted(r["kind"] for r in st(app, "resources")) == sorted(
            ["CustomResourceDefinition", kind])
        live = admin.get("stable.example.com/v1", kind, "nightly", lab_app.namespace)
        assert live["spec"]["cronSpec"] == "0 3 * * *"
    finally:
        with contextlib.suppress(KubeError):
            admin.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition",
                         f"{plural}.stable.example.com", propagation="Background")


# ---- 7. an unreachable repository does not slow the others -----------------------------------

def test_a_silent_repository_does_not_slow_other_apps(lab_app: LabApp, apps: Apps,
                                                      agent: Agent) -> None:
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        silent = [f"{lab_app.name}-silent-{i}" for i in range(2)]
        try:
            for i, name in enumerate(silent):
                apps.apply(application(name, f"git://127.0.0.1:{port}/r{i}.git", "app",
                                       dest_namespace=name))
            head = lab_app.init({"app/cm.yaml": configmap("one")})
            lab_app.create()
            lab_app.wait(synced(head), "the healthy app's first sync")
            time.sleep(1.5)  # the silent repos are being fetched (and never answer)
            times = []
            for n in range(2):
                started = time.monotonic()
                sha = lab_app.commit({"app/cm.yaml": configmap("one", v=str(n))},
                                     message=f"change {n}")
                lab_app.wait(synced(sha), "the new commit", timeout=30)
                times.append(time.monotonic() - started)
            assert max(times) < 5.0, f"commit → Synced took {times} s next to a silent repo"
        finally:
            for name in silent:
                apps.delete(name)


# ---- 8. invalid spec --------------------------------------------------------------------------

@pytest.mark.parametrize("patch, field", [
    ({"destination": {"namespace": "Bad_NS!"}}, "spec.destination.namespace"),
    ({"destination": {"namespace": "ok", "server": "https://elsewhere:6443"}},
     "spec.destination.server"),
    ({"syncPolicy": {"syncOptions": ["CreateNamespace=yes"]}}, "spec.syncPolicy.syncOptions"),
])
def test_invalid_spec_is_refused_by_the_crd(apps: Apps, patch: dict[str, Any],
                                           field: str) -> None:
    app = application(f"bad-{uuid.uuid4().hex[:6]}", "git://127.0.0.1:1/x.git", "app")
    app["spec"].update({k: {**app["spec"].get(k, {}), **v} for k, v in patch.items()})
    with pytest.raises(KubeError) as err:
        apps.apply(app)
    assert err.value.status == 422 and field in err.value.message, err.value.message


def test_invalid_spec_the_schema_cannot_see_gets_a_condition_and_no_spin(
        apps: Apps, agent: Agent, lab_app: LabApp) -> None:
    app = application(lab_app.name, "file://relative/path.git", "app")
    apps.apply(app)
    got = lab_app.wait(lambda a: "InvalidSpecError" in conditions(a), "InvalidSpecError")
    assert "file:// needs an absolute path" in conditions(got)["InvalidSpecError"]
    before = reconciles(agent, lab_app.name)
    time.sleep(4.0)
    assert reconciles(agent, lab_app.name) - before <= 1
    assert [e["reason"] for e in lab_app.events()].count("SyncStarted") == 0


# ---- 9. a failing app backs off, and alerts once ----------------------------------------------

def test_a_failing_app_backs_off_and_alerts_once(lab_app: LabApp, agent: Agent,
                                                 alerts: AlertReceiver) -> None:
    bad = yaml.safe_dump({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                          "spec": {"ports": [{"port": 99999}]}})
    lab_app.init({"app/cm.yaml": configmap("ok"), "app/svc.yaml": bad})
    lab_app.create()
    lab_app.wait(lambda a: "ComparisonError" in conditions(a), "the failure")
    before = reconciles(agent, lab_app.name)
    time.sleep(8.0)
    spent = reconciles(agent, lab_app.name) - before
    assert spent <= 4, f"{spent:.0f} reconciles in 8 s at one failing revision: no backoff"
    label = f"gitops-lab/{lab_app.name}"
    failed = [a for a in list(alerts.received) if a["app"] == label and a["reason"] == "SyncFailed"]
    assert len(failed) == 1, failed
    events = [e for e in lab_app.events() if e["reason"] == "SyncFailed"]
    assert len(events) == 1 and events[0]["count"] == 1, events
    # a new revision resets the backoff: the fix is seen at once
    started = time.monotonic()
    fixed = lab_app.commit({"app/svc.yaml": bad.replace("99999", "80")}, message="fix")
    lab_app.wait(synced(fixed), "the fix", timeout=15)
    assert time.monotonic() - started < 5


def test_sync_failed_alerts_are_keyed_by_objects_not_text(agent: Agent) -> None:
    """Same condition type, revision and objects with another text: no second alert."""
    from gitops_lab.engine.api import AppSpec, Condition, ReconcileResult

    app = application(f"ghost-{uuid.uuid4().hex[:6]}", "git://127.0.0.1:1/x.git", "app")
    result = ReconcileResult(AppSpec.from_object(app), revision="a" * 40)
    sent = len(agent.alerter.sent)
    for stamp in ("12:00:01", "12:00:03", "12:00:09"):  # e.g. a timestamp in a kustomize error
        result.conditions[:] = [Condition("ComparisonError", f"app/k.yaml: failed at {stamp}",
                                          ("app/k.yaml",))]
        agent._emit(app, {}, result)
    assert len(agent.alerter.sent) - sent == 1
    result.conditions[:] = [Condition("ComparisonError", "app/other.yaml: broken",
                                      ("app/other.yaml",))]
    agent._emit(app, {}, result)
    assert len(agent.alerter.sent) - sent == 2


# ---- 15. deleting an Application ----------------------------------------------------------------

def test_deleting_an_app_with_the_finalizer_deletes_its_objects(lab_app: LabApp, apps: Apps,
                                                                admin: Kube) -> None:
    head = lab_app.init({"app/a.yaml": configmap("a"), "app/b.yaml": configmap("b")})
    lab_app.create(cascade=True)
    lab_app.wait(synced(head), "the first sync")
    admin.apply({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "bystander", "namespace": lab_app.namespace},
                 "data": {"mine": "yes"}}, field_manager="someone-else")
    assert apps.delete(lab_app.name, wait=20), "the finalizer was never removed"
    for name in ("a", "b"):
        assert admin.get_or_none("v1", "ConfigMap", name, lab_app.namespace) is None
    assert admin.get_or_none("v1", "ConfigMap", "bystander", lab_app.namespace) is not None
    events = admin.request("GET", "/api/v1/namespaces/gitops-lab/events")["items"]
    assert any(e["reason"] == "Deleted" and e["involvedObject"]["name"] == lab_app.name
               for e in events)


def test_deleting_an_app_without_the_finalizer_orphans_its_objects(lab_app: LabApp, apps: Apps,
                                                                   admin: Kube) -> None:
    head = lab_app.init({"app/a.yaml": configmap("a")})
    lab_app.create()
    lab_app.wait(synced(head), "the first sync")
    assert apps.delete(lab_app.name, wait=10)
    time.sleep(1.0)
    assert admin.get_or_none("v1", "ConfigMap", "a", lab_app.namespace) is not None


def test_a_retried_sync_counts_up_one_event(admin: Kube) -> None:
    """SyncStarted of a retry aggregates into one Event (count, lastTimestamp), like kubectl."""
    from gitops_lab.agent.events import Recorder

    recorder = Recorder(admin)
    name = f"ghost-{uuid.uuid4().hex[:6]}"
    app = {"metadata": {"namespace": "gitops-lab", "name": name, "uid": str(uuid.uuid4())}}
    for n in range(3):
        recorder.record(app, "Normal", "SyncStarted", f"automated sync: syncing to abc (retry {n})",
                        revision="abc", aggregate=("SyncStarted", "abc"))
    recorder.record(app, "Normal", "SyncStarted", "automated sync: syncing to def",
                    revision="def", aggregate=("SyncStarted", "def"))
    events = [e for e in admin.request("GET", "/api/v1/namespaces/gitops-lab/events")["items"]
              if e["involvedObject"]["name"] == name]
    counts = sorted((e["message"], e["count"]) for e in events)
    assert counts == [("automated sync: syncing to abc (retry 2)", 3),
                      ("automated sync: syncing to def", 1)], counts


def test_an_app_deleted_while_the_agent_was_away_is_finalized_when_it_is_back(
        admin: Kube, git_server: GitServer, tmp_path: Path) -> None:
    """The chapter-03 catch-up: delete with the agent paused, then start it again."""
    from gitops_lab.agent import AgentOptions

    ns = f"away-{uuid.uuid4().hex[:6]}"
    admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    name = "cascade"
    git_server.create_repo(ns, {"app/cm.yaml": configmap("a")}, message="initial")
    local_apps = Apps(admin, namespace=ns)

    def agent() -> Agent:
        started = Agent(admin, AgentOptions(namespace=ns, poll_interval=0.5,
                                            cache_dir=tmp_path / "repos")).start()
        assert started.wait_ready(30)
        return started

    first = agent()
    try:
        local_apps.apply(application(name, git_server.url(ns), "app", namespace=ns,
                                     dest_namespace=ns, cascade=True))
        local_apps.wait(name, synced(), timeout=30, what="the first sync")
    finally:
        first.stop()
    try:
        assert local_apps.delete(name, wait=1.0) is False, "deleted without the finalizer"
        assert admin.get_or_none("v1", "ConfigMap", "a", ns) is not None
        second = agent()
        try:
            assert local_apps.delete(name, wait=15.0) is True, "the finalizer never ran"
            assert admin.get_or_none("v1", "ConfigMap", "a", ns) is None
        finally:
            second.stop()
    finally:
        local_apps.remove_finalizers(name)
        admin.delete("v1", "Namespace", ns, propagation="Background")
