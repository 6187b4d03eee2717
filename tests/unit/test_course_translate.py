"""Chapter 09's translation of an Application into Argo CD's and Flux's manifests, and the checker
of a learner's Flux Kustomization: pure functions over dicts, no cluster."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from gitops_lab.apps import application
from gitops_lab.course import translate as tr

LIVE = application("guestbook", "git://127.0.0.1:9418/lab.git", "apps/guestbook",
                   dest_namespace="guestbook", prune=True, cascade=True)
LIVE["status"] = {"sync": {"status": "Synced"}}  # what the cluster adds; never translated
PATH = "flux/guestbook.yaml"

GOOD = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: lab, namespace: flux-system}
spec:
  interval: 1m
  url: https://git.example.com/team/lab.git
  ref: {branch: main}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: guestbook, namespace: flux-system}
spec:
  interval: 10m
  sourceRef: {kind: GitRepository, name: lab}
  path: ./apps/guestbook
  prune: true
  targetNamespace: guestbook
"""


def _docs(text: str = GOOD) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def _ks(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == "Kustomization")


def test_argo_application_keeps_source_destination_and_policy_and_adds_what_argo_requires() -> None:
    argo = tr.argo_application(LIVE)
    assert argo["apiVersion"] == "argoproj.io/v1alpha1" and argo["kind"] == "Application"
    assert argo["metadata"] == {"name": "guestbook", "namespace": "argocd",
                                "finalizers": ["resources-finalizer.argocd.argoproj.io"]}
    spec = argo["spec"]
    assert spec["project"] == "default"
    assert spec["source"] == {"repoURL": "git://127.0.0.1:9418/lab.git", "targetRevision": "main",
                              "path": "apps/guestbook"}
    assert spec["destination"] == {"server": "https://kubernetes.default.svc",
                                   "namespace": "guestbook"}
    assert spec["syncPolicy"] == {"automated": {"prune": True, "selfHeal": False,
                                                "allowEmpty": False},
                                  "syncOptions": ["CreateNamespace=true"]}
    assert "status" not in argo


def test_argo_application_of_a_manual_app_has_no_automated_and_drops_the_labs_own_options() -> None:
    app = application("web", "https://git.example.com/x.git", "web", automated=False)
    app["spec"]["syncPolicy"] = {"syncOptions": ["AppOfApps=true"]}
    argo = tr.argo_application(app)
    assert "syncPolicy" not in argo["spec"]
    assert "finalizers" not in argo["metadata"]


def test_flux_objects_split_fetching_from_applying() -> None:
    git_repo, ks = tr.flux_objects(LIVE)
    assert git_repo == {
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "lab", "namespace": "flux-system"},
        # git:// is not accepted by Flux: the HTTPS address stands in
        "spec": {"interval": "1m", "url": "https://git.example.com/team/lab.git",
                 "ref": {"branch": "main"}},
    }
    assert ks["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
    assert ks["spec"] == {"interval": "10m", "sourceRef": {"kind": "GitRepository", "name": "lab"},
                          "path": "./apps/guestbook", "prune": True, "targetNamespace": "guestbook"}
    # the generated pair passes the learner's checker
    assert tr.check_flux_kustomization(LIVE, [git_repo, ks], PATH).ok


def test_flux_objects_keep_an_https_url_pin_a_sha_and_suspend_a_manual_app() -> None:
    app = application("web", "https://git.example.com/team/config.git", "web", automated=False,
                      target_revision="0123456789abcdef0123456789abcdef01234567")
    git_repo, ks = tr.flux_objects(app)
    assert git_repo["spec"]["url"] == "https://git.example.com/team/config.git"
    assert git_repo["spec"]["ref"] == {"commit": "0123456789abcdef0123456789abcdef01234567"}
    assert git_repo["metadata"]["name"] == "config"
    assert ks["spec"]["suspend"] is True and ks["spec"]["prune"] is False
    assert any("suspend" in n for n in tr.notes(app))


def test_notes_name_the_defaults_that_differ() -> None:
    text = " ".join(tr.notes(LIVE))
    assert "180 s" in text and "timeout.reconciliation" in text and "every second" in text
    assert "git://" in text and "CreateNamespace" in text and "selfHeal" in text


def test_comparison_renders_three_columns_escaped() -> None:
    app = copy.deepcopy(LIVE)
    app["spec"]["source"]["path"] = "apps/<b>"
    html = tr.compare(app)._repr_html_()
    assert html.count("<pre") == 3 and "apps/&lt;b&gt;" in html and "<b>" not in html.replace(
        '<div style="font-weight:bold', "")
    text = repr(tr.compare(LIVE))
    assert "# ---- Argo CD" in text and "kind: GitRepository" in text and "status" not in text


def test_a_correct_translation_is_done_with_or_without_its_git_repository() -> None:
    assert tr.check_flux_kustomization(LIVE, _docs(), PATH).ok
    only_ks = [_ks(_docs())]
    only_ks[0]["spec"]["path"] = "apps/guestbook/"  # the same directory, written differently
    verdict = tr.check_flux_kustomization(LIVE, only_ks, PATH)
    assert verdict.ok and "no Flux" in verdict.message


def _break(change: Any) -> str:
    docs = _docs()
    change(docs)
    verdict = tr.check_flux_kustomization(LIVE, docs, PATH)
    assert not verdict.ok and not verdict.pending
    assert PATH in verdict.message
    return verdict.message


@pytest.mark.parametrize(("change", "hint"), [
    (lambda d: d.pop(1), "has no Kustomization"),
    (lambda d: d[1].update(apiVersion="kustomize.config.k8s.io/v1beta1"), "Kustomize's own"),
    (lambda d: d[1].update(apiVersion="kustomize.toolkit.fluxcd.io/v1beta2"), "deprecated"),
    (lambda d: d[1]["spec"].update(path="???"), "spec.path is not set"),
    (lambda d: d[1]["spec"].update(path="./apps/other"), "'apps/guestbook'"),
    (lambda d: d[1]["spec"].pop("prune"), "requires it"),
    (lambda d: d[1]["spec"].update(prune="???"), "requires it"),
    (lambda d: d[1]["spec"].update(prune=False), "automated.prune: true"),
    (lambda d: d[1]["spec"].pop("targetNamespace"), "targetNamespace is not set"),
    (lambda d: d[1]["spec"].update(targetNamespace="default"), "'guestbook'"),
    (lambda d: d[1]["spec"].pop("interval"), "interval is required"),
    (lambda d: d[1]["spec"].update(interval="ten minutes"), "not a duration"),
    (lambda d: d[1]["spec"].pop("sourceRef"), "sourceRef"),
    (lambda d: d[1]["spec"].update(sourceRef={"kind": "Bucket", "name": "lab"}), "sourceRef"),
    (lambda d: d[0]["metadata"].update(name="config"), "called 'config'"),
    (lambda d: d[0]["spec"].update(url="git://127.0.0.1:9418/lab.git"), "only ones Flux accepts"),
    (lambda d: d[0]["spec"].pop("interval"), "needs spec.interval"),
    (lambda d: d[0]["spec"].update(ref={"branch": "master"}), "tracks 'main'"),
    (lambda d: d[0].update(apiVersion="source.toolkit.fluxcd.io/v1beta2"), "GitRepository's apiVersion"),
])
def test_each_mistake_gets_its_own_hint(change: Any, hint: str) -> None:
    assert hint in _break(change)


def test_the_starter_as_given_is_not_yet_with_the_first_blank_named() -> None:
    starter = """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: guestbook, namespace: flux-system}
spec:
  interval: ???
  sourceRef: {kind: GitRepository, name: lab}
  path: ???
  prune: ???
  targetNamespace: ???
"""
    verdict = tr.check_flux_kustomization(LIVE, _docs(starter), PATH)
    assert not verdict.ok and "spec.path is not set" in verdict.message


def test_go_durations_as_flux_accepts_them() -> None:
    assert all(tr.is_go_duration(v) for v in ("30s", "1m", "10m", "1h30m", "1.5h", "500ms"))
    assert not any(tr.is_go_duration(v) for v in ("", "10", "10 m", "1d", None, 10))
    assert tr.normalise_path("./apps/guestbook/") == "apps/guestbook"
    assert tr.repo_name("git://127.0.0.1:9418/lab.git") == "lab"
