"""The chapters in notebooks/ run top to bottom under nbval: lax (outputs are not compared, the
checks are the notebooks' own asserts), in order, and chapter 03 alone from nothing — on the
local provider, and (marked `kind`) every chapter in order on a real kind cluster.

Each run is a `python -m pytest --nbval-lax …` subprocess against its own lab, named
`gitops-lab-nb` (GITOPS_LAB_NB_CLUSTER) on the local provider and `gitops-lab-nb-kind`
(GITOPS_LAB_NB_KIND_CLUSTER) on kind, so it never touches the learner's `gitops-lab`.
A run in order ends with 99-cleanup; a finalizer tears the lab down whatever happened.
GITOPS_LAB_NB_ALONE=all runs every chapter alone from nothing, not just 03 (slower).
The kind run needs a Docker daemon: skipped without one, unless GITOPS_LAB_KIND_TESTS=1 (CI),
where a missing daemon is a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops_lab.cluster.docker import docker_available
from gitops_lab.lab import teardown
from gitops_lab.paths import cache_root

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
SANITIZE = Path(__file__).resolve().parent / "sanitize.cfg"
NAME = os.environ.get("GITOPS_LAB_NB_CLUSTER", "gitops-lab-nb")
KIND_NAME = os.environ.get("GITOPS_LAB_NB_KIND_CLUSTER", "gitops-lab-nb-kind")
CHAPTERS = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
ALONE = CHAPTERS if os.environ.get("GITOPS_LAB_NB_ALONE") == "all" else ["03-deploy"]
RUN_TIMEOUT = 1200  # seconds for a whole nbval run; a cell has 300 (--nbval-cell-timeout)
KIND_RUN_TIMEOUT = 2400  # on kind: a first run also builds the lab's images and creates the node

pytestmark = [pytest.mark.cluster, pytest.mark.notebooks, pytest.mark.timeout(RUN_TIMEOUT + 120)]


def _env(name: str = NAME, provider: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["GITOPS_LAB_CLUSTER"] = name
    if provider:
        env["GITOPS_LAB_PROVIDER"] = provider
    else:
        env.setdefault("GITOPS_LAB_PROVIDER", "local")
    env.pop("KUBECONFIG", None)  # the kernel's Lab.connect() sets its own
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env["GITOPS_LAB_SOLUTIONS"] = "1"  # the hidden %%solution cells run; every lab.check must pass
    return env


def _leftovers(name: str = NAME) -> list[str]:
    """Processes still running for this lab: cluster components, agent, git daemon."""
    marks = (f"/clusters/{name}/", f"/lab/{name}/")
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(mark in cmdline for mark in marks):
            found.append(f"{proc.name}: {cmdline[:160]}")
    return found


def _kind_leftovers(name: str) -> list[str]:
    """What a kind lab NAME left in Docker: its node container."""
    out = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True,
                         text=True, timeout=60, check=True)
    return [c for c in out.stdout.split() if c == f"{name}-control-plane"]


def _nbval(*paths: Path, junit: Path, name: str = NAME, provider: str | None = None,
           timeout: float = RUN_TIMEOUT) -> tuple[subprocess.CompletedProcess[str], float]:
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-cell-timeout=300",
           "--nbval-sanitize-with", str(SANITIZE), "-p", "no:cacheprovider", "-q",
           f"--junitxml={junit}", *map(str, paths)]
    start = time.monotonic()
    out = subprocess.run(cmd, cwd=ROOT, env=_env(name, provider), capture_output=True,
                         text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    return out, time.monotonic() - start


def _times(junit: Path) -> dict[str, float]:
    """Seconds per notebook (the sum of its cells, kernel start included) from nbval's JUnit XML."""
    times: dict[str, float] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        notebook = str(case.get("classname", "")).removeprefix("notebooks.").removesuffix(".ipynb")
        times[notebook] = times.get(notebook, 0.0) + float(case.get("time") or 0)
    return times


def _report(title: str, times: dict[str, float], wall: float, capsys: pytest.CaptureFixture[str]
            ) -> None:
    lines = [f"{title}: {wall:.1f} s wall"] + [f"  {nb:<28} {sec:6.1f} s" for nb, sec in
                                                times.items()]
    with capsys.disabled():
        print("\n" + "\n".join(lines))


def _failure(out: subprocess.CompletedProcess[str]) -> str:
    return f"nbval failed (exit {out.returncode}):\n{out.stdout[-6000:]}\n{out.stderr[-2000:]}"


@pytest.fixture(scope="module", autouse=True)
def _lab_torn_down_at_the_end() -> Iterator[None]:
    try:
        yield
    finally:
        teardown(NAME)


@pytest.mark.parametrize("chapter", ALONE)
def test_chapter_runs_alone_from_nothing(chapter: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    teardown(NAME)  # no cluster, no agent, no Git server, no config repo
    assert not _leftovers(), _leftovers()
    assert not (cache_root() / "clusters" / NAME).exists()
    out, wall = _nbval(NOTEBOOKS / f"{chapter}.ipynb", junit=tmp_path / "junit.xml")
    assert out.returncode == 0, _failure(out)
    _report(f"{chapter} alone, from nothing", _times(tmp_path / "junit.xml"), wall, capsys)


def test_chapters_in_order_then_nothing_left(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out, wall = _nbval(NOTEBOOKS, junit=tmp_path / "junit.xml")
    assert out.returncode == 0, _failure(out)
    times = _times(tmp_path / "junit.xml")
    assert sorted(times) == CHAPTERS, f"nbval ran {sorted(times)}, expected {CHAPTERS}"
    _report("all chapters in order", times, wall, capsys)
    # for `make bench`, which prints the total beside its other figures
    (cache_root() / "notebook-times.json").write_text(
        json.dumps({"total_seconds": round(wall, 1), "notebooks": times}))
    # 99-cleanup stopped everything: cluster, agent and git daemon
    assert not _leftovers(), "99-cleanup left processes running:\n" + "\n".join(_leftovers())


@pytest.fixture()
def kind_lab_torn_down() -> Iterator[str]:
    """The kind lab's name: Docker must answer; no such lab before, torn down after."""
    if not docker_available():
        if os.environ.get("GITOPS_LAB_KIND_TESTS") == "1":
            pytest.fail("GITOPS_LAB_KIND_TESTS=1 but no Docker daemon answers `docker info`")
        pytest.skip("no Docker daemon answers (`gitops-lab docker start`)")
    teardown(KIND_NAME)
    try:
        yield KIND_NAME
    finally:
        teardown(KIND_NAME)


@pytest.mark.kind
@pytest.mark.timeout(KIND_RUN_TIMEOUT + 300)
def test_chapters_in_order_on_kind_then_nothing_left(kind_lab_torn_down: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    name = kind_lab_torn_down
    assert not _kind_leftovers(name) and not _leftovers(name)
    out, wall = _nbval(NOTEBOOKS, junit=tmp_path / "junit.xml", name=name, provider="kind",
                       timeout=KIND_RUN_TIMEOUT)
    assert out.returncode == 0, _failure(out)
    times = _times(tmp_path / "junit.xml")
    assert sorted(times) == CHAPTERS, f"nbval ran {sorted(times)}, expected {CHAPTERS}"
    _report("all chapters in order on kind", times, wall, capsys)
    # 99-cleanup deleted the cluster: no node container, no process, no state
    assert not _kind_leftovers(name), f"99-cleanup left the node container {name}-control-plane"
    assert not _leftovers(name), "99-cleanup left processes running:\n" + "\n".join(_leftovers(name))
    assert not (cache_root() / "clusters" / name).exists(), "99-cleanup left the cluster's state"
