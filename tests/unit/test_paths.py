"""gitops_lab.paths: one rule for the cache root, and the only place that spells it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from gitops_lab import paths

PACKAGE = Path(paths.__file__).parent


def test_the_cache_root_rule(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GITOPS_LAB_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert paths.cache_root() == tmp_path / "home" / ".cache" / "gitops-lab"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.cache_root() == tmp_path / "xdg" / "gitops-lab"
    monkeypatch.setenv("GITOPS_LAB_CACHE", "~/elsewhere")
    assert paths.cache_root() == tmp_path / "home" / "elsewhere"


def test_every_directory_sits_under_the_root(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.setenv("GITOPS_LAB_CACHE", str(tmp_path))
    assert paths.bin_dir() == tmp_path / f"k8s-{paths.KUBERNETES_VERSION}" / "bin"
    assert paths.node_bin_dir() == tmp_path / f"k8s-{paths.KUBERNETES_VERSION}" / "node-bin"
    assert paths.cluster_state_dir("a") == paths.clusters_root() / "a" == tmp_path / "clusters/a"
    assert paths.current_cluster_file() == tmp_path / "current.json"
    assert paths.lab_state_dir("a") == tmp_path / "lab" / "a"
    assert paths.registry_dir("a") == tmp_path / "registry" / "a"
    assert paths.dockerd_dir() == tmp_path / "dockerd"
    assert paths.peers_dir() == tmp_path / "peers"
    assert paths.build_dir("etcd") == tmp_path / "build" / "etcd"


def test_only_paths_reads_the_cache_variables() -> None:
    """A second copy of the rule (widgets had one) would drift: only paths.py may read
    GITOPS_LAB_CACHE or XDG_CACHE_HOME, and paths.py imports nothing of gitops_lab."""
    read = re.compile(r"""(environ\.get\(|environ\[|getenv\()\s*["'](GITOPS_LAB_CACHE|XDG_CACHE_HOME)""")
    readers = [str(source.relative_to(PACKAGE)) for source in sorted(PACKAGE.rglob("*.py"))
               if source.name != "paths.py" and read.search(source.read_text())]
    assert readers == []
    assert read.search((PACKAGE / "paths.py").read_text())
    tree = ast.parse((PACKAGE / "paths.py").read_text())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [m for m in imported if m and m.startswith("gitops_lab")]
