"""Fixture-driven tests of engine/health: one Kubernetes object per file in testdata/health/.
Each file opens with `# expect: <Status>` and optionally `# message: <substring>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops_lab.api.types import Health, HealthStatus, worst_health
from gitops_lab.engine.health import assess_health

TESTDATA = Path(__file__).parent / "testdata" / "health"
FIXTURES = sorted(TESTDATA.glob("*.yaml"))

# Every kind with a built-in check, by the fixture-name prefix that covers it.
CHECKED_KINDS = [
    "apiservice",
    "daemonset",
    "deployment",
    "hpa",
    "ingress",
    "job",
    "pod",
    "pvc",
    "replicaset",
    "service",
    "statefulset",
]


@dataclass(frozen=True)
class Fixture:
    obj: dict[str, Any]
    status: HealthStatus
    message: str | None


def load_fixture(path: Path) -> Fixture:
    text = path.read_text()
    status: HealthStatus | None = None
    message: str | None = None
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        key, _, value = line.lstrip("#").strip().partition(":")
        if key == "expect":
            status = HealthStatus(value.strip())
        elif key == "message":
            message = value.strip()
    assert status is not None, f"{path.name}: no leading '# expect: <Status>' line"
    obj = yaml.safe_load(text)
    assert isinstance(obj, dict) and obj.get("kind"), f"{path.name}: not a Kubernetes object"
    return Fixture(obj, status, message)


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_fixture(path: Path) -> None:
    fixture = load_fixture(path)
    health = assess_health(fixture.obj)
    assert isinstance(health, Health)
    assert health.status == fixture.status, health.message
    if fixture.message is not None:
        assert fixture.message in health.message


def test_fixture_set_covers_every_kind() -> None:
    assert len(FIXTURES) >= 40
    for kind in CHECKED_KINDS:
        cases = [p for p in FIXTURES if p.stem.startswith(f"{kind}-")]
        assert len(cases) >= 2, f"only {len(cases)} fixture(s) for {kind}"


def test_fixtures_cover_every_status_but_missing() -> None:
    # Missing is for objects absent from the cluster; a live object is never Missing.
    seen = {load_fixture(p).status for p in FIXTURES}
    assert seen == set(HealthStatus) - {HealthStatus.MISSING}


def test_unknown_kind_is_healthy_once_it_exists() -> None:
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
    assert assess_health(obj) == Health(HealthStatus.HEALTHY)
    assert assess_health({}).status == HealthStatus.HEALTHY


def test_deletion_timestamp_wins_over_the_kind_check() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "deletionTimestamp": "2024-05-01T10:00:00Z"},
        "status": {"phase": "Lost"},
    }
    assert assess_health(obj) == Health(HealthStatus.PROGRESSING, "Pending deletion")


def test_dispatch_is_by_group_not_version() -> None:
    for api_version in ("apps/v1", "apps/v1beta2", "extensions/v1beta1"):
        obj = {"apiVersion": api_version, "kind": "Deployment", "spec": {"paused": True}}
        assert assess_health(obj).status == HealthStatus.SUSPENDED, api_version


def test_deployment_messages_are_exact() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "generation": 2},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 1},
    }
    assert assess_health(obj).message == (
        "Waiting for rollout to finish: observed deployment generation less than desired generation"
    )
    obj["status"] = {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2}
    assert assess_health(obj).message == (
        "Waiting for rollout to finish: 0 of 2 updated replicas are available..."
    )


def test_worst_health_orders_like_argo_cd() -> None:
    order = [
        HealthStatus.HEALTHY,
        HealthStatus.SUSPENDED,
        HealthStatus.PROGRESSING,
        HealthStatus.MISSING,
        HealthStatus.DEGRADED,
        HealthStatus.UNKNOWN,
    ]
    assert sorted(HealthStatus, key=lambda s: s.severity) == order
    for i, worse in enumerate(order):
        for better in order[:i]:
            pair = [Health(better, "b"), Health(worse, "w")]
            assert worst_health(pair) == Health(worse, "w")
            assert worst_health(pair[::-1]) == Health(worse, "w")


def test_worst_health_of_assessed_objects() -> None:
    by_name = {p.stem: load_fixture(p).obj for p in FIXTURES}
    app = [
        assess_health(by_name["deployment-healthy"]),
        assess_health(by_name["pvc-progressing-pending"]),
        assess_health(by_name["pod-degraded-crashloop"]),
        assess_health(by_name["job-suspended"]),
    ]
    assert worst_health(app).status == HealthStatus.DEGRADED
    assert worst_health(app[:2]).status == HealthStatus.PROGRESSING
    assert worst_health([app[0], app[3]]).status == HealthStatus.SUSPENDED
    assert worst_health([]) == Health(HealthStatus.HEALTHY)


def _hpa(api_version: str, conditions: list[dict[str, str]]) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"}, "status": {"conditions": conditions}}


ABLE = {"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale", "message": "able"}
FAILING = {"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric",
           "message": "no metrics"}


@pytest.mark.parametrize(("conditions", "status", "message"), [
    ([ABLE, FAILING], HealthStatus.HEALTHY, "able"),     # the first decisive condition wins
    ([FAILING, ABLE], HealthStatus.DEGRADED, "no metrics"),
    ([{**FAILING, "status": "True"}], HealthStatus.DEGRADED, "no metrics"),  # status not read
    ([{**ABLE, "status": "False"}], HealthStatus.PROGRESSING, "Waiting to Autoscale"),
    ([], HealthStatus.PROGRESSING, "Waiting to Autoscale"),
])
def test_hpa_conditions_are_read_in_order(conditions: list[dict[str, str]],
                                          status: HealthStatus, message: str) -> None:
    for version in ("autoscaling/v2", "autoscaling/v2beta1", "autoscaling/v2beta2"):
        assert assess_health(_hpa(version, conditions)) == Health(status, message)


def test_hpa_of_an_unknown_version_is_unknown() -> None:
    health = assess_health(_hpa("autoscaling/v3", [ABLE]))
    assert health.status == HealthStatus.UNKNOWN
    assert "unsupported HPA version 'autoscaling/v3'" in health.message
