"""Chapters 00, 01 and 03 (gitops_lab/course/ch00, ch01, ch03): the pure parts of their
checkers — each learner mistake gets its own hint — and the notebooks' shape: doctor and the
ideas before anything is deployed, every glossary link lands on an entry.

The checkers' cluster side runs against the real lab in tests/notebooks (nbval, solutions on)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops_lab.course import ch00, ch01, ch03

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
IMAGE = "gitops-lab/guestbook:1.0.0"
REPO = "git://127.0.0.1:9418/lab.git"


# ---- 00: record the running image in Git ----------------------------------------------------------
def test_record_wants_the_live_image_in_the_pushed_note() -> None:
    assert ch00.judge_record(None, IMAGE) is None  # not on the server: the caller finds out why
    missing = ch00.judge_record("anything", None)
    assert missing is not None and not missing.ok and "catch-up" in missing.message
    empty = ch00.judge_record("\n", IMAGE)
    assert empty is not None and not empty.ok and "empty" in empty.message
    wrong = ch00.judge_record("gitops-lab/guestbook:1.1.0\n", IMAGE)
    assert wrong is not None and not wrong.ok and not wrong.pending
    assert "1.1.0" in wrong.message and "jsonpath" in wrong.message
    right = ch00.judge_record(f"{IMAGE}\n", IMAGE)
    assert right is not None and right.ok and IMAGE in right.message
    assert ch00.judge_record(f"running: {IMAGE}", IMAGE).ok  # type: ignore[union-attr]


# ---- 01: a labelled namespace with 3 pods ---------------------------------------------------------
def _ns(labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "playground", "labels": labels or {}}}


def _deploy(replicas: int, ready: int | None = None) -> dict[str, Any]:
    return {"spec": {"replicas": replicas}, "status": {"readyReplicas": ready} if ready else {}}


def test_playground_hints_follow_the_steps_in_order() -> None:
    verdict = ch01.judge_playground(None, None, [])
    assert not verdict.ok and "kubectl create namespace playground" in verdict.message
    verdict = ch01.judge_playground(_ns(), None, [])
    assert "no purpose label" in verdict.message and "label namespace" in verdict.message
    verdict = ch01.judge_playground(_ns({"purpose": "fun"}), None, [])
    assert "'fun'" in verdict.message and "--overwrite" in verdict.message
    good_ns = _ns({"purpose": "learning"})
    verdict = ch01.judge_playground(good_ns, None, [])
    assert "no Deployment hello in playground" in verdict.message and IMAGE in verdict.message
    verdict = ch01.judge_playground(good_ns, _deploy(2), [])
    assert not verdict.pending and "--replicas=3" in verdict.message
    verdict = ch01.judge_playground(good_ns, _deploy(3, 1), [])
    assert verdict.pending and "1 ready" in verdict.message
    assert ch01.judge_playground(good_ns, _deploy(3, 3), []).ok


def test_playground_names_an_image_that_cannot_be_pulled() -> None:
    pod = {"status": {"containerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff"}}}]}}
    verdict = ch01.judge_playground(_ns({"purpose": "learning"}), _deploy(3, 0), [pod])
    assert not verdict.ok and not verdict.pending
    assert "ImagePullBackOff" in verdict.message and IMAGE in verdict.message


# ---- 03: write an Application for apps/hello -------------------------------------------------------
GOOD: dict[str, Any] = {
    "metadata": {"name": "hello", "namespace": "gitops-lab"},
    "spec": {"source": {"repoURL": REPO, "targetRevision": "main", "path": "apps/hello"},
             "destination": {"namespace": "hello"},
             "syncPolicy": {"automated": {"prune": True},
                            "syncOptions": ["CreateNamespace=true"]}},
    "status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}},
}


def _app(**changes: Any) -> dict[str, Any]:
    app = copy.deepcopy(GOOD)
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = app
        for key in path:
            node = node[key]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return app


def test_hello_done_when_the_spec_is_right_and_the_app_synced_and_healthy() -> None:
    verdict = ch03.judge_hello(GOOD, [], REPO)
    assert verdict.ok, verdict
    assert ch03.judge_hello(_app(spec__source__path="./apps/hello/"), [], REPO).ok


@pytest.mark.parametrize(("app", "elsewhere", "draft", "hint"), [
    (None, ["default"], None, "watches only the namespace gitops-lab"),
    (None, [], "namespace: ???\n", "still has ???"),
    (None, [], None, "!kubectl apply -f"),
    (_app(spec__source__path="apps/helo"), [], None, "lab put the app in apps/hello"),
    (_app(spec__source__repoURL="git://example/lab.git"), [], None, REPO),
    (_app(spec__source__targetRevision="dev"), [], None, "branch main"),
    (_app(spec__destination__namespace="default"), [], None, "asks for hello"),
    (_app(spec__syncPolicy__automated=None), [], None, "gitops-lab app sync hello"),
    (_app(spec__syncPolicy__syncOptions=None,
          status={"conditions": [{"type": "ComparisonError",
                                  "message": 'namespaces "hello" not found'}]}),
     [], None, "CreateNamespace=true"),
], ids=["other-namespace", "draft-unfilled", "not-applied", "wrong-path", "wrong-repo",
        "wrong-revision", "wrong-destination", "manual-sync", "no-create-namespace"])
def test_hello_each_mistake_has_its_own_final_hint(app: dict[str, Any] | None,
                                                   elsewhere: list[str], draft: str | None,
                                                   hint: str) -> None:
    verdict = ch03.judge_hello(app, elsewhere, REPO, draft)
    assert not verdict.ok and not verdict.pending, verdict
    assert hint in verdict.message, verdict.message


def test_hello_waits_while_the_agent_catches_up() -> None:
    fresh = ch03.judge_hello(_app(status=None), [], REPO)
    assert fresh.pending and "not compared" in fresh.message
    syncing = ch03.judge_hello(_app(status={"sync": {"status": "Synced"},
                                            "health": {"status": "Progressing"}}), [], REPO)
    assert syncing.pending and "Progressing" in syncing.message
    flaky = ch03.judge_hello(_app(status={"conditions": [{"type": "SyncError",
                                                          "message": "conflict"}]}), [], REPO)
    assert flaky.pending and "conflict" in flaky.message


def test_hello_sample_is_valid_yaml_without_a_node_port() -> None:
    """apps/hello runs beside the guestbook: no NodePort (30080 is the guestbook's)."""
    kinds = []
    for path, text in ch03.HELLO_FILES.items():
        assert path.startswith(ch03.HELLO_PATH + "/")
        for doc in yaml.safe_load_all(text):
            kinds.append(doc["kind"])
            assert "nodePort" not in text and doc["metadata"]["name"].startswith("hello")
    assert sorted(kinds) == ["ConfigMap", "Deployment"]


# ---- the notebooks ----------------------------------------------------------------------------------
def _sources(name: str) -> list[str]:
    nb = next(NOTEBOOKS.glob(f"{name}-*.ipynb"))
    return ["".join(c["source"]) for c in json.loads(nb.read_text())["cells"]]


def _first(cells: list[str], needle: str) -> int:
    return next(i for i, text in enumerate(cells) if needle in text)


def test_welcome_runs_doctor_and_explains_before_it_connects_or_deploys() -> None:
    cells = _sources("00")
    connect = _first(cells, "lab = Lab.connect()")
    assert _first(cells, "!gitops-lab doctor") < connect
    for idea in ("four [OpenGitOps]", "flowchart LR", "glossary.md#application",
                 "glossary.md#sync", "glossary.md#health", "glossary.md#drift"):
        assert _first(cells, idea) < connect, idea
    assert connect < _first(cells, "catch_up(lab)") < _first(cells, "lab.dashboard(")
    agent_cell = cells[_first(cells, 'lab.agent_mode == "in-cluster"')]
    assert "as a process on this machine" in agent_cell and "as a pod" in agent_cell


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading (JupyterLab opens the file at the top if it differs)."""
    return re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", heading.strip().lower()))


def test_every_glossary_link_lands_on_an_entry() -> None:
    text = (NOTEBOOKS / "glossary.md").read_text()
    anchors = {_slug(h) for h in re.findall(r"^#{2,3} (.+)$", text, re.M)}
    links = set()
    for nb in NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"):
        for source in _sources(nb.stem[:2]):
            links |= set(re.findall(r"\(glossary\.md#([\w-]+)\)", source))
    assert {"rbac", "serviceaccount", "server-side-apply", "jsonpath", "kwok"} <= links
    assert links - anchors == set(), f"links without an entry: {sorted(links - anchors)}"
    for word in ("TokenRequest", "CRD", "Sync wave", "Kustomize", "NodePort", "kind", "Prune"):
        assert f"### {word}\n" in text, word
