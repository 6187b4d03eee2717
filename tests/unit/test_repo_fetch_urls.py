"""Compares on the host reach the in-cluster Git server through its NodePort, and never ask
the machine's DNS for a cluster-internal name (a real bare repository, fetched by file://)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gitops_lab.source import RepoCache
from gitops_lab.source.errors import SourceError

IN_CLUSTER = "git://git-server.gitops-lab:9418/lab.git"


def _bare_repo(tmp_path: Path) -> tuple[Path, str]:
    work = tmp_path / "work"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "a.yaml").write_text("kind: ConfigMap\n")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}
    subprocess.run(["git", "-C", str(work), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(work), "commit", "-qm", "one"], check=True, env=env)
    sha = subprocess.run(["git", "-C", str(work), "rev-parse", "HEAD"], check=True,
                         capture_output=True, text=True).stdout.strip()
    served = tmp_path / "served"
    served.mkdir()
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(served / "lab.git")],
                   check=True)
    return served, sha


def test_a_mapped_in_cluster_url_is_fetched_from_its_host_address(tmp_path: Path) -> None:
    served, sha = _bare_repo(tmp_path)
    cache = RepoCache(tmp_path / "cache",
                      fetch_urls={"git://git-server.gitops-lab:9418/": f"file://{served}/"})
    cache.fetch(IN_CLUSTER)
    assert cache.resolve(IN_CLUSTER, "main") == sha
    # the mirror is keyed by the URL the Application names, not by where it came from
    assert cache.mirror_path(IN_CLUSTER).is_dir()
    # the NodePort moved (a new cluster): the next fetch follows the new address
    moved = tmp_path / "moved"
    served.rename(moved)
    cache.fetch_urls = {"git://git-server.gitops-lab:9418/": f"file://{moved}/"}
    cache.fetch(IN_CLUSTER)
    assert cache.resolve(IN_CLUSTER, "main") == sha


@pytest.mark.parametrize("url", [IN_CLUSTER, "git://git-server.gitops-lab.svc:9418/x.git",
                                 "http://gitea.tools.svc.cluster.local/a/b.git"])
def test_a_cluster_internal_name_is_refused_on_the_host(tmp_path: Path, url: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    cache = RepoCache(tmp_path / "cache")
    with pytest.raises(SourceError, match="a name inside the cluster"):
        cache.fetch(url)
    assert not cache.mirror_path(url).exists()
