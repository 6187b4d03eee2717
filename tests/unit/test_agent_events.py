"""agent/events.py's decisions as data: which Events and alerts a reconcile gives, given the
previous status. Pure functions; no cluster."""

from __future__ import annotations

from typing import Any

from gitops_lab.agent.events import EventType, Reason, decide, sync_started
from gitops_lab.api.types import Action, Health, HealthStatus, ResourceKey, SyncStatus
from gitops_lab.engine.api import AppSpec, Condition, ConditionType, ReconcileResult, ResourceStatus
from gitops_lab.engine.apply import ChangeSet
from gitops_lab.engine.diff import compare

REV, OLD = "c" * 40, "a" * 40
KEY = ResourceKey("apps", "Deployment", "demo", "ui", "v1")


def _spec(self_heal: bool) -> AppSpec:
    return AppSpec.from_object({
        "metadata": {"namespace": "gitops-lab", "name": "app"},
        "spec": {"source": {"repoURL": "file:///repo"},
                 "syncPolicy": {"automated": {"selfHeal": self_heal}}}})


def _prev(sync: str = "Synced", health: str = "Healthy", synced_at: str = REV,
          phase: str = "Succeeded") -> dict[str, Any]:
    return {"sync": {"status": sync, "revision": synced_at}, "health": {"status": health},
            "operationState": {"phase": phase, "syncResult": {"revision": synced_at}}}


def _drifted(self_heal: bool, healed: bool) -> ReconcileResult:
    result = ReconcileResult(_spec(self_heal), revision=REV,
                             health=Health(HealthStatus.HEALTHY))
    live = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "ui", "namespace": "demo"}, "spec": {"replicas": 5}}
    result.compared_out_of_sync = [compare(KEY, {**live, "spec": {"replicas": 1}}, live)]
    if healed:
        result.changes = ChangeSet()
        result.changes.add(KEY, Action.CONFIGURED)
    return result


def _said(emits: list[Any]) -> list[tuple[str, str, bool]]:
    return [(e.type.value, e.reason.value, e.alert) for e in emits]


def test_drift_with_self_heal_is_alerted_then_reverted() -> None:
    emits, _ = decide(_prev(), _drifted(self_heal=True, healed=True), set())
    assert _said(emits) == [("Warning", "DriftDetected", True), ("Normal", "SelfHealed", False),
                            ("Normal", "Synced", False)]
    assert emits[0].message.endswith("— self-heal reverts it")
    assert emits[0].resources == (str(KEY),) and "differs at spec.replicas" in emits[0].message
    assert emits[2].message == f"synced to {REV[:7]}: 1 configured"


def test_drift_without_self_heal_is_only_alerted() -> None:
    emits, _ = decide(_prev(), _drifted(self_heal=False, healed=False), set())
    assert _said(emits) == [("Warning", "DriftDetected", True)]
    assert emits[0].message.endswith("— self-heal is off: sync to revert")


def test_a_new_revision_or_an_app_not_synced_before_is_not_drift() -> None:
    for prev in (_prev(synced_at=OLD), _prev(sync="OutOfSync")):
        emits, _ = decide(prev, _drifted(self_heal=True, healed=False), set())
        assert Reason.DRIFT_DETECTED not in [e.reason for e in emits]


def test_a_failure_is_alerted_once_and_again_when_it_names_other_objects() -> None:
    result = ReconcileResult(_spec(False), revision=REV, health=Health(HealthStatus.HEALTHY))
    result.conditions = [Condition(ConditionType.COMPARISON, "bad at 10:00", ("a.yaml",)),
                         Condition(ConditionType.SHARED_RESOURCE, "not an error")]
    first, alerted = decide(_prev(), result, set())
    assert _said(first) == [("Warning", "SyncFailed", True)]
    assert first[0].message == "ComparisonError: bad at 10:00"
    result.conditions[0] = Condition(ConditionType.COMPARISON, "bad at 10:01", ("a.yaml",))
    again, alerted = decide(_prev(), result, alerted)
    assert again == []  # the same failure, another message text: not alerted again
    result.conditions[0] = Condition(ConditionType.COMPARISON, "bad", ("b.yaml",))
    other, _ = decide(_prev(), result, alerted)
    assert _said(other) == [("Warning", "SyncFailed", True)]


def test_a_failed_sync_names_the_objects_and_says_no_synced() -> None:
    result = ReconcileResult(_spec(False), revision=REV, health=Health(HealthStatus.HEALTHY))
    result.changes = ChangeSet()
    result.changes.add(KEY, Action.FAILED, "forbidden")
    result.sync_error = "app/ui.yaml: forbidden"
    result.conditions = [Condition(ConditionType.SYNC, result.sync_error, ("app/ui.yaml",))]
    emits, _ = decide(_prev(), result, set())
    assert _said(emits) == [("Warning", "SyncFailed", True)]
    assert emits[0].message == "app/ui.yaml: forbidden" and emits[0].resources == (str(KEY),)


def test_degraded_health_is_an_event_and_an_alert_without_a_second_event() -> None:
    result = ReconcileResult(_spec(False), revision=REV,
                             health=Health(HealthStatus.DEGRADED, f"{KEY}: crash loop"))
    result.resources = [ResourceStatus(KEY, SyncStatus.SYNCED,
                                       Health(HealthStatus.DEGRADED, "crash loop"))]
    emits, _ = decide(_prev(), result, set())
    assert [(e.type, e.reason, e.alert, e.event) for e in emits] == [
        (EventType.WARNING, Reason.HEALTH_CHANGED, False, True),
        (EventType.WARNING, Reason.HEALTH_DEGRADED, True, False)]
    assert emits[0].message == f"health Healthy → Degraded: {KEY}: crash loop"
    assert emits[1].resources == (str(KEY),)


def test_sync_started_counts_up_a_retry_of_a_failed_sync() -> None:
    retry = sync_started(_prev(phase="Failed"), REV, by_request=False)
    assert retry.message == f"automated sync: syncing to {REV[:7]} (retry)"
    assert retry.aggregate == ("SyncStarted", REV)
    fresh = sync_started(_prev(phase="Failed", synced_at=OLD), REV, by_request=False)
    assert fresh.message == f"automated sync: syncing to {REV[:7]}" and fresh.aggregate is None
    asked = sync_started(_prev(phase="Failed"), REV, by_request=True)
    assert asked.message == f"operation: syncing to {REV[:7]}" and asked.aggregate is None


def test_reasons_are_the_strings_of_the_contract() -> None:
    assert {r.value for r in Reason} >= {"SyncStarted", "Synced", "SyncFailed", "DriftDetected",
                                         "SelfHealed", "Pruned", "HealthChanged"}
    assert f"{Reason.SYNC_FAILED}" == "SyncFailed" and Reason.SYNC_FAILED == "SyncFailed"
