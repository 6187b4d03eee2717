"""The bench's scale and peer helpers (bench/scale.py, bench/peers.py, bench/report.py): what
they count is what the growth table shows, so each is checked on real input here."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from bench.peers import PEERS, peer_rows
from bench.report import Report, table
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


def test_peer_rows_are_explicit_skips_naming_the_reason(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # binaries present (no module proxy asked): the row says what is still missing
    monkeypatch.setenv("GITOPS_LAB_CACHE", str(tmp_path))
    for peer in PEERS:
        folder = tmp_path / "peers" / peer.name.lower().replace(" ", "") / "bin"
        folder.mkdir(parents=True)
        for name in peer.binaries:
            (folder / name).write_text("")
    report = Report("t")
    peer_rows(report)
    assert [r.verdict for r in report.rows] == ["SKIP", "SKIP"]
    assert "Flux" in report.rows[0].measure and "Argo CD" in report.rows[1].measure
    assert all("no scenarios" in r.baseline for r in report.rows)


def test_plot_writes_a_png_or_says_why_not(tmp_path: Path) -> None:
    results = [Scale(1, 1.0, 70_000, 69_000, 0.3, 0.3, 0.0, "", 120, 60, 0, [1.0]),
               Scale(10, 8.0, 90_000, 89_000, 0.4, 0.3, 5.0, "", 120, 60, 0, [1.1])]
    path = tmp_path / "scale.png"
    said = plot(results, path)
    if said.startswith("not written"):
        assert "matplotlib" in said
    else:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
