"""Pure parts of the engine and agent: diff normalisation, pairing, prune safety, apply order,
status building and the work queue. No cluster, no Git."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops_lab.agent.status import build_status, status_changed
from gitops_lab.agent.workqueue import WorkQueue
from gitops_lab.api.types import Action, Health, HealthStatus, ResourceKey, SyncStatus
from gitops_lab.engine.api import AppSpec, ReconcileResult, ResourceStatus, SpecError
from gitops_lab.engine.apply import ChangeSet, apply_order
from gitops_lab.engine.diff import compare, normalize
from gitops_lab.engine.inventory import is_owned, pair, prune_candidates

DIFF_CASES = sorted((Path(__file__).parent / "testdata" / "diff").glob("*.yaml"))


@pytest.mark.parametrize("case", DIFF_CASES, ids=[c.stem for c in DIFF_CASES])
def test_diff_fixture(case: Path) -> None:
    data = yaml.safe_load(case.read_text())
    key = ResourceKey.from_object(data["predicted"])
    diff = compare(key, data["predicted"], data["live"])
    assert diff.status.value == data["expect"], diff.message
    if "paths" in data:
        assert list(diff.changed_paths) == data["paths"]
    if "message" in data:
        assert data["message"] in diff.message
    if diff.status is SyncStatus.OUT_OF_SYNC:
        assert diff.text.startswith("--- live/")


def test_normalize_does_not_touch_its_input() -> None:
    obj = {"kind": "ConfigMap", "metadata": {"name": "a", "uid": "x"}, "status": {"a": 1}}
    normalize(obj)
    assert obj["metadata"]["uid"] == "x" and "status" in obj


def _cm(name: str, owner: str | None = None, ns: str = "demo") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if owner is not None:
        meta["annotations"] = {"gitopslab.io/tracking-id": owner}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def test_tracking_id_format_matches_the_contract() -> None:
    key = ResourceKey("apps", "Deployment", "guestbook", "ui")
    assert key.tracking_id("gitops-lab", "guestbook") == \
        "gitops-lab_guestbook:apps/Deployment:guestbook/ui"


def test_only_objects_carrying_this_apps_id_are_pruned() -> None:
    mine = _cm("mine", "gitops-lab_app:/ConfigMap:demo/mine")
    other_app = _cm("theirs", "gitops-lab_other:/ConfigMap:demo/theirs")
    copied = _cm("copied", "gitops-lab_app:/ConfigMap:demo/original")  # id of another object
    unowned = _cm("bystander")
    keys = [ResourceKey.from_object(o) for o in (mine, other_app, copied, unowned)]
    live = dict(zip(keys, (mine, other_app, copied, unowned), strict=True))
    pairs = pair([], live, inventory=keys)
    assert [p.key.name for p in prune_candidates(pairs, "gitops-lab", "app")] == ["mine"]
    assert is_owned(mine, "gitops-lab", "app")
    assert not is_owned(copied, "gitops-lab", "app")
    assert not is_owned(None, "gitops-lab", "app")


def test_pair_aligns_desired_live_and_inventory() -> None:
    a, b = _cm("a"), _cm("b")
    ka, kb, kc = (ResourceKey.from_object(o) for o in (a, b, _cm("c")))
    pairs = pair([a, b], {ka: a}, inventory=[kb, kc])
    assert [(p.key.name, p.desired is not None, p.live is not None) for p in pairs] == [
        ("a", True, True), ("b", True, False), ("c", False, False)]
    assert pairs[1].missing and pairs[2].extra


def test_apply_order_namespaces_then_crds_then_waves_then_kinds() -> None:
    def obj(kind: str, name: str, wave: int | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name}
        if wave is not None:
            meta["annotations"] = {"gitopslab.io/sync-wave": str(wave)}
        return {"kind": kind, "metadata": meta}

    objs = [obj("Deployment", "web"), obj("Service", "web"), obj("ConfigMap", "late", wave=2),
            obj("CustomResourceDefinition", "crd"), obj("Namespace", "ns"),
            obj("Job", "migrate", wave=-1), obj("ConfigMap", "cfg")]
    ordered = [o["metadata"]["name"] for o in sorted(objs, key=apply_order)]
    assert ordered == ["ns", "crd", "migrate", "cfg", "web", "web", "late"]
    assert [o["kind"] for o in sorted(objs, key=apply_order)][4:6] == ["Service", "Deployment"]


def test_changeset_counts_and_summary() -> None:
    cs = ChangeSet()
    key = ResourceKey("", "ConfigMap", "demo", "a")
    cs.add(key, Action.CREATED)
    cs.add(key, Action.UNCHANGED)
    cs.add(key, Action.FAILED, "forbidden")
    assert cs.writes == 1 and len(cs.failed) == 1
    assert cs.summary() == "1 created, 1 failed, 1 unchanged"


def _app(**spec: Any) -> dict[str, Any]:
    base = {"source": {"repoURL": "git://127.0.0.1:9418/lab.git"}, "destination": {}}
    base.update(spec)
    return {"metadata": {"name": "demo", "namespace": "gitops-lab"}, "spec": base}


def test_app_spec_defaults_follow_the_contract() -> None:
    spec = AppSpec.from_object(_app())
    assert (spec.target_revision, spec.path, spec.history_limit) == ("HEAD", ".", 10)
    assert not spec.automated and not spec.prune and not spec.self_heal
    auto = AppSpec.from_object(_app(syncPolicy={"automated": {}, "syncOptions":
                                                ["CreateNamespace=true"]}))
    assert auto.automated and not auto.prune and auto.create_namespace


@pytest.mark.parametrize(("spec", "needle"), [
    ({"source": {"repoURL": ""}}, "repoURL"),
    ({"source": {"repoURL": "file://relative/path"}}, "absolute"),
    ({"revisionHistoryLimit": 0}, "revisionHistoryLimit"),
])
def test_invalid_specs_name_the_field(spec: dict[str, Any], needle: str) -> None:
    with pytest.raises(SpecError, match=needle):
        AppSpec.from_object(_app(**spec))


def _result(revision: str, changes: ChangeSet | None, error: str = "") -> ReconcileResult:
    spec = AppSpec.from_object(_app(revisionHistoryLimit=2))
    res = ReconcileResult(spec, revision=revision, sync_status=SyncStatus.SYNCED,
                          health=Health(HealthStatus.HEALTHY), changes=changes, sync_error=error)
    res.resources = [ResourceStatus(ResourceKey("", "ConfigMap", "demo", "a", "v1"),
                                    SyncStatus.SYNCED, Health(HealthStatus.HEALTHY))]
    return res


def test_history_grows_with_ids_never_reused_and_is_trimmed() -> None:
    status: dict[str, Any] = {}
    for rev in ("a" * 40, "b" * 40, "c" * 40):
        status = build_status(status, _result(rev, ChangeSet()), started_at="t")
    assert [h["id"] for h in status["history"]] == [1, 2]  # limit 2: id 0 dropped
    assert [h["revision"][0] for h in status["history"]] == ["b", "c"]
    assert status["operationState"]["phase"] == "Succeeded"
    # a failed sync keeps the history and says why
    failed = build_status(status, _result("d" * 40, ChangeSet(), "boom"), started_at="t")
    assert failed["history"] == status["history"]
    assert failed["operationState"] == {**failed["operationState"], "phase": "Failed",
                                        "message": "boom"}


def test_a_reconcile_without_sync_keeps_the_last_operation() -> None:
    first = build_status({}, _result("a" * 40, ChangeSet()), started_at="t")
    second = build_status(first, _result("a" * 40, None), started_at="t")
    assert second["operationState"] == first["operationState"]
    assert not status_changed(first, second), "only timestamps changed: no write needed"


def test_workqueue_dedupes_and_never_hands_out_a_key_twice_at_once() -> None:
    q = WorkQueue()
    q.add(("ns", "a"))
    q.add(("ns", "a"), fetch=True)
    assert len(q) == 1
    item = q.get(timeout=0.1)
    assert item == (("ns", "a"), True)
    q.add(("ns", "a"))  # while it is being processed
    assert q.get(timeout=0.05) is None
    q.done(("ns", "a"))
    assert q.get(timeout=0.1) == (("ns", "a"), False)


def test_workqueue_delay() -> None:
    q = WorkQueue()
    q.add(("ns", "a"), delay=0.2)
    start = time.monotonic()
    got: list[Any] = []
    t = threading.Thread(target=lambda: got.append(q.get(timeout=1)))
    t.start()
    t.join()
    assert got[0] == (("ns", "a"), False)
    assert time.monotonic() - start >= 0.18


def test_secret_values_are_masked_in_diffs_but_changes_still_show() -> None:
    import base64

    from gitops_lab.engine.diff import SECRET_MASK, hide_secret_data

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    live = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "s"},
            "data": {"password": b64("live-pass"), "user": b64("admin")}}
    desired = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "s"},
               "data": {"password": b64("git-pass"), "user": b64("admin")},
               "stringData": {"token": "plain-token"}}
    diff = compare(ResourceKey.from_object(live), desired, live)
    text = diff.text
    for secret in ("live-pass", "git-pass", "admin", "plain-token"):
        assert secret not in text and b64(secret) not in text, text
    assert f"-  password: {SECRET_MASK}\n" in text  # live: first value of the key
    assert f"+  password: {SECRET_MASK}+\n" in text  # git: another value, another mask
    assert "user:" in text and "-  user" not in text and "+  user" not in text  # unchanged
    assert diff.message == "differs at data.password, stringData"  # paths, never values
    # the same value as stringData (Git) and base64 data (live) masks the same
    same = hide_secret_data({**live, "data": {"k": b64("v")}},
                            {**desired, "data": {}, "stringData": {"k": "v"}})
    assert same[0] and same[1]
    assert same[0]["data"]["k"] == same[1]["stringData"]["k"] == SECRET_MASK
    # other kinds, and Secrets of other groups, are left alone
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    assert hide_secret_data(cm) == [cm]
    assert live["data"]["password"] == b64("live-pass")  # the inputs are not changed


def test_an_operation_that_never_reached_the_sync_gets_its_own_error_state() -> None:
    from gitops_lab.engine.api import Condition

    synced = build_status({}, _result("a" * 40, ChangeSet()), started_at="t0")
    op = {"sync": {"revision": "f" * 40}, "info": [{"name": "operationId", "value": "op-2"}]}
    bad = ReconcileResult(None)
    bad.conditions.append(Condition("SourceError", "revision 'fff' not found in git://x"))
    status = build_status(synced, bad, started_at="t1", operation=op)
    state = status["operationState"]
    assert state["phase"] == "Error"
    assert state["message"] == "not synced: SourceError: revision 'fff' not found in git://x"
    assert state["startedAt"] == "t1" and state["operation"] == op
    # the last sync that ran is still the last synced revision
    assert state["syncResult"] == synced["operationState"]["syncResult"]
    assert status_changed(synced, status)
