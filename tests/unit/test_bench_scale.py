"""The bench's scale and peer helpers (bench/scale.py, bench/peers.py, bench/report.py): what
they count is what the growth table shows, so each is checked on real input here."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench.githttp import GitHTTP
from bench.peerbuild import GoCommand, go_directive_problem, replace_lines
from bench.peers import peer_rows, run_peer
from bench.report import Report, Row, table
from bench.scale import Scale, cpu_ticks, git_shim, plot, request_rates


def test_request_rates_split_by_verb_and_resource_with_subresource() -> None:
    before = {(("resource", "applications"), ("subresource", "status"), ("verb", "PATCH")): 3.0,
              (("resource", "configmaps"), ("verb", "LIST")): 10.0}
    after = {(("resource", "applications"), ("subresource", "status"), ("verb", "PATCH")): 8.0,
             (("resource", "configmaps"), ("verb", "LIST")): 10.0,
             (("resource", "leases"), ("verb", "PUT")): 4.0}
    rates = request_rates(before, after)
    assert rates == {("PATCH", "applications/status"): 5.0, ("PUT", "leases"): 4.0}


def test_git_shim_logs_every_call_and_runs_the_real_git(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    shim = git_shim(tmp_path / "shim", log)
    out = subprocess.run([str(shim), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("git version")
    subprocess.run([str(shim), "ls-remote", str(tmp_path / "missing")], capture_output=True,
                   check=False)
    calls = log.read_text().splitlines()
    assert calls == ["--version", f"ls-remote {tmp_path / 'missing'}"]


def test_cpu_ticks_grow_with_work() -> None:
    own0, _ = cpu_ticks(os.getpid())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    own1, children = cpu_ticks(os.getpid())
    assert own1 - own0 >= 0.2
    assert children >= 0.0


def test_table_aligns_every_column() -> None:
    text = table("title", ["apps", "RSS MB"], [["1", "69"], ["100", "279"]])
    lines = text.splitlines()
    assert lines[0] == "title"
    assert len({len(line) for line in lines[1:]}) == 1
    assert "| 100  |    279 |" in text


def _bench(report: Report, only: str = "") -> Any:
    from bench.scenarios import Options

    return SimpleNamespace(report=report, opts=Options(only=only))


def test_peer_rows_are_explicit_skips_naming_the_reason(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # nothing built and no module proxy to build from: one SKIP row per peer, saying why,
    # and nothing is fetched (GOPROXY=off never reaches the network)
    monkeypatch.setenv("GITOPS_LAB_CACHE", str(tmp_path))
    monkeypatch.setenv("GOPROXY", "off")
    report = Report("t")
    peer_rows(_bench(report))
    assert [r.verdict for r in report.rows] == ["SKIP", "SKIP"]
    assert "Flux v1.9.6" in report.rows[0].measure and "Argo CD v3.5.3" in report.rows[1].measure
    assert all("cannot be built here" in r.baseline and "GOPROXY" in r.baseline
               for r in report.rows)
    assert not (tmp_path / "peers" / "flux-v1.9.6" / "bin").exists()


def test_only_names_one_peer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_LAB_CACHE", str(tmp_path))
    monkeypatch.setenv("GOPROXY", "off")
    report = Report("t")
    peer_rows(_bench(report, only="argo"))
    assert [r.measure.split(" (")[0] for r in report.rows] == ["peer Argo CD v3.5.3"]


def test_a_peer_that_fails_to_run_is_a_skip_row_not_a_crash(tmp_path: Path) -> None:
    folder = tmp_path / "peer"
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "ctl").write_text("")  # "built": ensure_built builds nothing
    cmd = GoCommand("ctl", "example.com/ctl", "v1.0.0", "example.com/ctl")
    report = Report("t")

    def measure(bench: Any) -> None:
        bench.report.add(Row("vs Peer: first row", "1 s", "2 s", "0.5×"))
        raise RuntimeError("ctl exited 1: flag provided but not defined: -x\nmore")

    run_peer(_bench(report), "Peer v1", folder, (cmd,), measure)
    assert [r.verdict for r in report.rows] == ["", "SKIP"]
    assert report.rows[1].baseline == ("could not be measured past 1 rows: RuntimeError: "
                                       "ctl exited 1: flag provided but not defined: -x")
    report = Report("t")
    run_peer(_bench(report), "Peer v1", folder, (cmd,), measure, lambda: "no redis-server")
    assert [(r.verdict, r.baseline) for r in report.rows] == [
        ("SKIP", "cannot run here: no redis-server")]


def test_go_mod_replaces_are_copied_without_local_paths() -> None:
    gomod = """module github.com/fluxcd/kustomize-controller

go 1.26.0

replace github.com/fluxcd/kustomize-controller/api => ./api

// comment
replace github.com/opencontainers/go-digest => github.com/opencontainers/go-digest v1.0.1-0.2022

replace (
\tsigs.k8s.io/kustomize/api => sigs.k8s.io/kustomize/api v0.21.1 // pinned
\tgithub.com/argoproj/argo-cd/gitops-engine => ./gitops-engine
)
"""
    assert replace_lines(gomod) == [
        "github.com/opencontainers/go-digest => github.com/opencontainers/go-digest v1.0.1-0.2022",
        "sigs.k8s.io/kustomize/api => sigs.k8s.io/kustomize/api v0.21.1"]
    assert go_directive_problem("module x\n\ngo 1.20\n") == ""
    problem = go_directive_problem("module x\n\ngo 1.99.0\n")
    assert problem.startswith("needs Go ≥ 1.99.0 (go.mod), this machine has 1.")


def test_git_http_serves_the_daemon_repos_read_only(tmp_path: Path) -> None:
    root = tmp_path / "repos"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(root / "r.git")], check=True)
    work = tmp_path / "w"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "a.yaml").write_text("a: 1\n")
    git = ["git", "-C", str(work), "-c", "user.email=b@e", "-c", "user.name=b"]
    subprocess.run([*git, "add", "a.yaml"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    subprocess.run([*git, "push", "-q", str(root / "r.git"), "main"], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                         check=True).stdout.strip()
    server = GitHTTP(root).start()
    try:
        assert server.url("r").startswith("http://127.0.0.1:")
        out = subprocess.run(["git", "ls-remote", server.url("r"), "refs/heads/main"],
                             capture_output=True, text=True, check=True, timeout=30)
        assert out.stdout.split() == [sha, "refs/heads/main"]
        subprocess.run(["git", "clone", "-q", server.url("r"), str(tmp_path / "c")], check=True,
                       timeout=30)
        assert (tmp_path / "c" / "a.yaml").read_text() == "a: 1\n"
        push = subprocess.run([*git, "push", server.url("r"), "main:other"],
                              capture_output=True, text=True, timeout=30, check=False)
        assert push.returncode != 0
        missing = subprocess.run(["git", "ls-remote", server.url("nope")], capture_output=True,
                                 text=True, timeout=30, check=False)
        assert missing.returncode != 0
    finally:
        server.stop()


def test_plot_writes_a_png_or_says_why_not(tmp_path: Path) -> None:
    results = [Scale(1, 1.0, 70_000, 69_000, 0.3, 0.3, 0.0, "", 120, 60, 0, [1.0]),
               Scale(10, 8.0, 90_000, 89_000, 0.4, 0.3, 5.0, "", 120, 60, 0, [1.1])]
    path = tmp_path / "scale.png"
    said = plot(results, path)
    if said.startswith("not written"):
        assert "matplotlib" in said
    else:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_peer_build_in_progress_elsewhere_is_not_started_twice(tmp_path: Path) -> None:
    from bench.peerbuild import ensure_built
    from gitops_lab.cluster.binaries import BinaryError

    folder = tmp_path / "peer"
    folder.mkdir()
    (folder / "build.lock").write_text(str(os.getppid()))  # a live process, not this one
    cmd = GoCommand("ctl", "example.com/ctl", "v1.0.0", "example.com/ctl")
    with pytest.raises(BinaryError, match=rf"another build of peer is running \(pid {os.getppid()}\)"):
        ensure_built(folder, (cmd,), lambda line: None)
    (folder / "bin").mkdir()
    (folder / "bin" / "ctl").write_text("")
    assert ensure_built(folder, (cmd,), lambda line: None) == {}  # built: the lock is not read
