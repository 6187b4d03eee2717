"""Host-side compares (`app diff`, DiffView) reach the in-cluster Git server of the kind lab the
kubeconfig points at — not the lab brought up last, which on a shared machine may be another
learner's. Real files in a temporary cache; no cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gitops_lab.install.incluster import host_git_urls, kubeconfig_kind_cluster


def _kind_lab(cache: Path, name: str, git_port: int) -> Path:
    state = cache / "clusters" / name
    state.mkdir(parents=True)
    (state / "kind-config.yaml").write_text(yaml.safe_dump({"nodes": [{"extraPortMappings": [
        {"containerPort": 30418, "hostPort": git_port, "listenAddress": "127.0.0.1"}]}]}))
    kubeconfig = state / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config",
                                          "current-context": f"kind-{name}"}))
    return kubeconfig


@pytest.fixture()
def two_kind_labs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setenv("GITOPS_LAB_CACHE", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    ada = _kind_lab(tmp_path, "lab-ada", 31001)
    bob = _kind_lab(tmp_path, "lab-bob", 31002)
    # Bob brought his lab up last
    (tmp_path / "current.json").write_text(json.dumps(
        {"name": "lab-bob", "provider": "kind", "kubeconfig": str(bob)}))
    return ada, bob


def test_the_kubeconfigs_kind_lab_wins_over_the_last_one_brought_up(
        two_kind_labs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    ada, _ = two_kind_labs
    monkeypatch.setenv("KUBECONFIG", str(ada))
    assert kubeconfig_kind_cluster() == "lab-ada"
    assert host_git_urls() == {"git://git-server.gitops-lab:9418/": "git://127.0.0.1:31001/"}


def test_without_a_kind_kubeconfig_the_last_lab_brought_up_is_used(
        two_kind_labs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert host_git_urls() == {"git://git-server.gitops-lab:9418/": "git://127.0.0.1:31002/"}
    local = tmp_path / "local-kubeconfig"
    local.write_text(yaml.safe_dump({"current-context": "lab-carol"}))  # a local lab's context
    monkeypatch.setenv("KUBECONFIG", f"{local}:{tmp_path / 'other'}")
    assert kubeconfig_kind_cluster() is None
    assert host_git_urls()["git://git-server.gitops-lab:9418/"] == "git://127.0.0.1:31002/"
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    assert kubeconfig_kind_cluster() is None
    assert host_git_urls(cluster_name="lab-ada") == {
        "git://git-server.gitops-lab:9418/": "git://127.0.0.1:31001/"}
