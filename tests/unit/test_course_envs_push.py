"""The pure parts of chapters 06–08's checkers: the push credential's verdict, the ImagePolicy
range judge, and the environments' overlays as kustomize renders them (real kubectl, no cluster).
The checkers themselves run against the real lab in tests/notebooks (nbval, solutions on)."""

from __future__ import annotations

import pytest

from gitops_lab.course import environments as envs
from gitops_lab.course import push
from gitops_lab.course.ch07 import judge_range
from gitops_lab.source import find_kubectl, render


@pytest.mark.parametrize("text", [">=1.1.0 <1.2.0", "~1.1", "1.1.x", ">=1.0.0 <1.2.0"])
def test_a_range_that_takes_every_1_1_patch_and_no_1_2_passes(text: str) -> None:
    assert judge_range(text) is None


@pytest.mark.parametrize(("text", "hint"), [
    (">=1.0.0 <2.0.0", "admits 1.2.0"),
    ("^1.1.0", "admits 1.2.0"),
    ("1.1.1", "does not admit 1.1.9"),
    ("<1.1.0", "does not admit 1.1.1"),
    (">=1.1.0 <1.2.0 !!", "not valid"),
])
def test_a_wrong_range_gets_a_hint_naming_the_tag(text: str, hint: str) -> None:
    verdict = judge_range(text)
    assert verdict is not None and not verdict.ok and not verdict.pending
    assert hint in verdict.message and text in verdict.message


def _allowed(value: bool) -> dict[tuple[str, str], bool]:
    return {(verb, res): value for verb, res in push.MUST}


def _forbidden(**may: bool) -> dict[str, bool]:
    return {label: may.get(label, False) for label, _ in push.MUST_NOT}


def test_the_push_credential_verdict() -> None:
    assert "no ServiceAccount" in push.verdict_for(_allowed(True), _forbidden(), False).message
    empty = push.verdict_for(_allowed(False), _forbidden(), True)
    assert not empty.ok and "may not yet use deployments.apps (get, create, patch)" in empty.message
    greedy = push.verdict_for(_allowed(True), _forbidden(**{"read Secrets in payments": True}),
                              True)
    assert not greedy.ok and "read Secrets in payments" in greedy.message
    assert push.verdict_for(_allowed(True), _forbidden(), True).ok


def test_the_overlays_keep_the_nodeport_for_the_sample() -> None:
    files = envs.env_files()
    service = files[f"{envs.ROOT}/base/service.yaml"]
    assert "ClusterIP" in service and "nodePort" not in service and "NodePort" not in service
    assert set(files) >= {f"{envs.ROOT}/overlays/{e}/{f}" for e in envs.ENVS
                          for f in ("kustomization.yaml", "config.yaml")}


@pytest.mark.skipif(find_kubectl() is None, reason="no kubectl (kustomize) found")
def test_each_overlay_renders_its_environment() -> None:
    files = {p: t.encode() for p, t in envs.env_files().items()}
    got = {env: envs.summary([m.obj for m in render(files, root=envs.overlay(env))])
           for env in envs.ENVS}
    assert got["staging"] == {"namespace": "guestbook-staging", "replicas": 1, "THEME": "dark",
                              "image": "gitops-lab/guestbook:1.0.0", "GREETING": envs.GREETING}
    assert got["production"] == {"namespace": "guestbook-production", "replicas": 2,
                                 "THEME": "light", "image": "gitops-lab/guestbook:1.0.0",
                                 "GREETING": envs.GREETING}
