"""Chapters 04-05's plumbing: the alert receiver (a real HTTP server on 127.0.0.1), the /metrics
parser and sampler arithmetic, the event marks, and the pure parts of the checkers."""

from __future__ import annotations

import json
import math
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from gitops_lab.course import alerts, ch04, ch05, observe
from gitops_lab.course.alerts import MetricsSampler, _server, _Store, _webhook_of, parse_metrics


@pytest.fixture
def receiver() -> Iterator[tuple[str, _Store]]:
    store = _Store()
    server = _server(("127.0.0.1", 0), store)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", store
    finally:
        server.shutdown()
        server.server_close()


def _post(url: str, body: bytes) -> int:
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)


def test_the_receiver_keeps_what_the_agent_posts_and_lists_it(receiver: tuple[str, _Store]) -> None:
    url, _store = receiver
    # the agent's Alerter payload (gitops_lab/agent/events.py)
    payload = {"app": "gitops-lab/guestbook", "reason": "DriftDetected",
               "message": "live state differs from Git at abc1234: spec.replicas",
               "revision": "abc1234" * 5, "resources": ["apps/Deployment:guestbook/guestbook-ui"]}
    assert _post(url + "/alerts", json.dumps(payload).encode()) == 202
    with urllib.request.urlopen(url + "/alerts", timeout=5) as resp:
        items = json.loads(resp.read())["items"]
    assert len(items) == 1
    got = items[0]
    assert {k: got[k] for k in ("app", "reason", "message", "resources")} == {
        k: payload[k] for k in ("app", "reason", "message", "resources")}
    assert got["time"].endswith("Z") and len(got["time"]) == 20


def test_the_receiver_refuses_what_is_not_an_alert(receiver: tuple[str, _Store]) -> None:
    url, store = receiver
    assert _post(url + "/alerts", b"[1, 2]") == 400
    assert _post(url + "/alerts", b"{not json") == 400
    assert _post(url + "/alerts", b"x" * (alerts.MAX_BODY + 1)) == 413
    assert _post(url + "/elsewhere", b"{}") == 404
    assert store.list() == []


def test_the_receiver_bounds_what_it_keeps() -> None:
    store = _Store()
    for i in range(alerts.KEEP + 5):
        store.add({"reason": "SyncFailed", "message": "m" * 5000, "resources": ["r"] * 50,
                   "app": f"a{i}"})
    kept = store.list()
    assert len(kept) == alerts.KEEP and kept[0]["app"] == "a5"
    assert len(kept[-1]["message"]) == 1024 and len(kept[-1]["resources"]) == 20


def test_the_agents_webhook_is_read_from_its_arguments() -> None:
    assert _webhook_of(["agent", "run", "--alert-webhook", "http://x/alerts"]) == "http://x/alerts"
    assert _webhook_of(["agent", "run", "--alert-webhook=http://y/alerts"]) == "http://y/alerts"
    assert _webhook_of(["agent", "run", "--poll-interval", "1"]) == ""


METRICS = """\
# HELP gitopslab_reconcile_total Reconciles run, by app and result
# TYPE gitopslab_reconcile_total counter
gitopslab_reconcile_total{app="gitops-lab/guestbook",result="ok"} 7.0
gitopslab_reconcile_total{app="gitops-lab/guestbook",result="error"} 2.0
gitopslab_reconcile_total{app="gitops-lab/other",result="ok"} 100.0
# TYPE gitopslab_drift_detected_total counter
gitopslab_drift_detected_total{app="gitops-lab/guestbook"} 3.0
# TYPE gitopslab_reconcile_duration_seconds histogram
gitopslab_reconcile_duration_seconds_bucket{app="gitops-lab/guestbook",le="+Inf"} 9.0
gitopslab_reconcile_duration_seconds_count{app="gitops-lab/guestbook"} 9.0
gitopslab_reconcile_duration_seconds_sum{app="gitops-lab/guestbook"} 0.9
"""


def test_metrics_are_summed_for_one_app() -> None:
    got = parse_metrics(METRICS, "gitops-lab/guestbook")
    assert got == {"reconciles": 9.0, "drift": 3.0, "duration_sum": 0.9, "duration_count": 9.0}
    assert parse_metrics(METRICS, "gitops-lab/none")["reconciles"] == 0.0


def test_the_sampler_folds_an_agent_restart_into_rising_counters() -> None:
    sampler = MetricsSampler(lab=None)  # type: ignore[arg-type]  # add() needs no lab
    sampler.add({"reconciles": 5, "drift": 1, "duration_sum": 0.5, "duration_count": 5}, t=0)
    sampler.add({"reconciles": 8, "drift": 2, "duration_sum": 0.8, "duration_count": 8}, t=1)
    sampler.add({"reconciles": 1, "drift": 0, "duration_sum": 0.2, "duration_count": 1}, t=2)
    series = sampler.series()
    assert series["reconciles"] == [5, 8, 9] and series["drift"] == [1, 2, 2]
    assert series["ms"][1] == pytest.approx(100.0) and series["ms"][2] == pytest.approx(200.0)
    sampler.add({"reconciles": 1, "drift": 0, "duration_sum": 0.2, "duration_count": 1}, t=3)
    assert math.isnan(sampler.series()["ms"][-1])  # no reconcile in that interval


def test_the_plot_renders_as_png() -> None:
    pytest.importorskip("matplotlib")
    sampler = MetricsSampler(lab=None)  # type: ignore[arg-type]
    for i in range(5):
        sampler.add({"reconciles": i, "drift": i // 2, "duration_sum": i / 10,
                     "duration_count": i}, t=i)
    sampler.marks.append((2.0, "scale to 5"))
    png = sampler.plot()._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


class _FakeLab:
    """What EventMark needs: provider.name and events(app, reason)."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.provider = type("P", (), {"name": "unit"})()
        self.items = events

    def events(self, app: str = "guestbook", reason: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.items if reason is None or e["reason"] == reason]


def _event(name: str, reason: str, message: str, count: int = 1) -> dict[str, Any]:
    return {"metadata": {"name": name}, "reason": reason, "message": message, "count": count}


def test_a_mark_leaves_out_earlier_events_but_not_a_repeat_of_one() -> None:
    lab = _FakeLab([_event("g.1", "DriftDetected", "spec.replicas — self-heal is off")])
    mark = observe.EventMark(lab, "guestbook")  # type: ignore[arg-type]
    assert mark.new() == [] and observe.latest_mark(lab, "guestbook") is mark  # type: ignore[arg-type]
    lab.items.append(_event("g.2", "SelfHealed", "reverted drift on guestbook-ui"))
    lab.items[0]["count"] = 2  # the same Event counted up: new since the mark
    assert [e["metadata"]["name"] for e in mark.new()] == ["g.1", "g.2"]
    assert [e["metadata"]["name"] for e in mark.new("SelfHealed", about="guestbook-ui")] == ["g.2"]
    assert mark.new("SelfHealed", about="guestbook-config") == []


def test_pod_helpers() -> None:
    pod = {"spec": {"containers": [{"image": "gitops-lab/guestbook:1.0.0"}]},
           "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    deployment = {"spec": {"template": {"spec": {"containers": [{"image": "x:1"}]}}}}
    assert observe.ready(pod) and observe.image_of(pod) == "gitops-lab/guestbook:1.0.0"
    assert not observe.ready({"status": {"conditions": [{"type": "Ready", "status": "False"}]}})
    assert observe.image_of(deployment) == "x:1"


def test_the_broken_image_is_recognised_only_on_an_image_line() -> None:
    assert ch05._broken_image("      - image: gitops-lab/guestbook:1.2.0-broken\n")
    assert not ch05._broken_image("# was 1.2.0-broken\n        image: gitops-lab/guestbook:1.0.0\n")


def test_the_checkers_are_registered() -> None:
    assert set(ch04.EXERCISES) == {"04-self-heal", "04-prune"}
    assert set(ch05.EXERCISES) == {"05-revert"}
    assert all(t.wait > 0 and t.waiting_for for t in [*ch04.EXERCISES.values(),
                                                       *ch05.EXERCISES.values()])


def test_the_grace_lasts_for_one_check_run_only() -> None:
    assert ch04.in_grace("t", 6, clock=100.0)
    assert ch04.in_grace("t", 6, clock=103.0) and ch04.in_grace("t", 6, clock=105.5)
    assert not ch04.in_grace("t", 6, clock=106.5)  # 6.5 s into the same run: final
    assert ch04.in_grace("t", 6, clock=120.0)  # a new run (the learner checks again)
