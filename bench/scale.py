"""The agent at 1, 10 and 100 Applications (issue 12, item 3): one Git repository, one path of
100 ConfigMaps per app, `gitops-lab agent run` as a subprocess (a fresh one per scale).

Per scale: time from creating the N Applications to all Synced at the commit; the agent's peak
and current RSS; at rest (a window with nothing changing): CPU seconds per minute (the agent
and the git processes it waited for), API requests per minute (the API server's own
`apiserver_request_total`, minus the same window measured with no agent running), and Git
invocations per minute (counted by a `git` shim on the agent's PATH, so also GitPython's);
then commit → Synced p50 for app 0 while the others are idle (polling every 1 s, no webhook).
The growth is plotted (`bench/scale.png`, matplotlib's Agg backend) when matplotlib is there.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from bench.report import Row, fmt_s, table
from bench.support import Labels, clock, configmap, p50, proc_memory, say, st, terminate
from gitops_lab.agent import AgentOptions
from gitops_lab.apps import application
from gitops_lab.kube import KubeError
from gitops_lab.labgit import WorkingCopy

HEARTBEAT = AgentOptions().status_heartbeat  # the agent's default, what `agent run` uses

if TYPE_CHECKING:
    from bench.scenarios import Bench

PLOT = Path(__file__).resolve().parent / "scale.png"
OBJECTS = 100  # per application
# what the API server's other clients (kwok, the controllers, the bench's own watches) do is
# measured in a window with no agent and subtracted; these are listed apart in the note
BACKGROUND = frozenset({"leases", "nodes", "pods", "endpoints", "endpointslices"})


@dataclass
class Scale:
    apps: int
    sync_s: float = float("nan")
    peak_kb: int = 0
    rss_kb: int = 0
    cpu_per_min: float = float("nan")  # the agent's own CPU seconds per minute at rest
    git_cpu_per_min: float = float("nan")  # its (waited-for) git children
    api_per_min: float = float("nan")  # requests per minute at rest, background subtracted
    api_detail: str = ""
    git_per_min: float = float("nan")  # git invocations per minute at rest
    ls_remote_per_min: float = float("nan")
    fetch_per_min: float = float("nan")
    latency: list[float] = field(default_factory=list)


def cpu_ticks(pid: int) -> tuple[float, float]:
    """(own utime+stime, waited-for children's cutime+cstime) of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = float(os.sysconf("SC_CLK_TCK"))
    return ((int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick)


def request_rates(before: dict[Labels, float], after: dict[Labels, float],
                  ) -> dict[tuple[str, str], float]:
    """Requests between two /metrics snapshots by (verb, resource[/subresource])."""
    out: dict[tuple[str, str], float] = {}
    for labels, value in after.items():
        delta = value - before.get(labels, 0.0)
        if delta <= 0:
            continue
        lab = dict(labels)
        res = lab.get("resource", "") + (f"/{lab['subresource']}" if lab.get("subresource") else "")
        key = (lab.get("verb", ""), res)
        out[key] = out.get(key, 0.0) + delta
    return out


def git_shim(folder: Path, log: Path) -> Path:
    """A `git` that appends its arguments to `log`, then runs the real git."""
    real = shutil.which("git")
    if real is None:
        raise RuntimeError("git is not on PATH")
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / "git"
    shim.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{real}" "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return shim


class ScaleBench:
    def __init__(self, bench: Bench) -> None:
        self.b = bench
        self.quick = bench.opts.quick
        self.counts = (1, 10) if self.quick else (1, 10, 100)
        # full: two resync intervals (60 s each). The status heartbeat (reconciledAt re-stamped
        # when nothing changed) is every 600 s now, so the fresh apps of a window send none:
        # the note below states its long-run rate (N/10 PATCHes per minute)
        self.rest = 20.0 if self.quick else 120.0
        self.trials = 5 if self.quick else 10
        self.tmp = bench.tmp / "scale"
        self.gitlog = self.tmp / "git-calls.log"
        self.shim = git_shim(self.tmp / "shim", self.gitlog)
        self.proc: subprocess.Popen[bytes] | None = None
        self.results: list[Scale] = []

    # ---- the agent subprocess -------------------------------------------------------------------
    def start_agent(self, tag: str) -> str:
        from bench.scenarios import REPO, _free_port

        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = self.tmp / f"agent-{tag}.log"
        env = dict(os.environ, GITOPS_LAB_CACHE=str(self.tmp / f"cache-{tag}"),
                   PATH=f"{self.shim.parent}{os.pathsep}{os.environ.get('PATH', '')}",
                   GIT_PYTHON_GIT_EXECUTABLE=str(self.shim))
        with log.open("wb") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gitops_lab", "agent", "run", "--kubeconfig",
                 str(self.b.kubeconfig), "--http-address", f"127.0.0.1:{port}",
                 "--poll-interval", "1"],
                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=REPO)
        deadline = clock() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return url
            except OSError:
                pass
            if self.proc.poll() is not None or clock() > deadline:
                raise RuntimeError("the agent subprocess did not become healthy; log:\n"
                                   + log.read_text(errors="replace")[-1500:])
            time.sleep(0.1)

    def stop_agent(self) -> None:
        terminate(self.proc)
        self.proc = None

    # ---- helpers ------------------------------------------------------------------------------
    def git_calls(self) -> list[str]:
        try:
            return self.gitlog.read_text().splitlines()
        except FileNotFoundError:
            return []

    def synced(self, names: list[str], sha: str) -> int:
        items = self.b.apps.list()
        ok = {i["metadata"]["name"] for i in items
              if st(i, "sync", "status") == "Synced" and st(i, "sync", "revision") == sha}
        return sum(n in ok for n in names)

    def wait_all_synced(self, names: list[str], sha: str, timeout: float) -> float:
        deadline = clock() + timeout
        while clock() < deadline:
            if self.synced(names, sha) == len(names):
                return clock()
            time.sleep(0.25)
        raise TimeoutError(f"only {self.synced(names, sha)} of {len(names)} apps Synced at "
                           f"{sha[:7]} within {timeout:.0f} s")

    def window(self) -> tuple[dict[Labels, float], float, tuple[float, float], int]:
        pid = self.proc.pid if self.proc is not None else 0
        return (self.b.raw.request_counts(), clock(), cpu_ticks(pid) if pid else (0.0, 0.0),
                len(self.git_calls()))

    # ---- the phase --------------------------------------------------------------------------------
    def run(self) -> None:
        b = self.b
        b.stop_agent()
        b.stop_subprocess()
        for app in b.apps.list():
            b.delete_app(app["metadata"]["name"], wait=False)
        n_max = max(self.counts)
        say(f"scale: one repo, {n_max} paths × {OBJECTS} ConfigMaps")
        files = {f"app-{a:03d}/{i:03d}-configmap.yaml":
                 yaml.safe_dump(configmap(f"cm-{i:03d}", str(i)), sort_keys=False)
                 for a in range(n_max) for i in range(OBJECTS)}
        url, sha = b.create_repo("scale", files)
        wc = WorkingCopy(url, self.tmp / "wc")
        b.quiesce()
        # the API server's requests at rest with no agent: subtracted from every scale's window
        say(f"scale: {self.rest:.0f} s at rest with no agent (the API server's background)")
        before, t0, _, _ = self.window()
        time.sleep(self.rest)
        base = request_rates(before, b.raw.request_counts())
        base_minutes = (clock() - t0) / 60
        try:
            for n in self.counts:
                sha = self.one(n, url, sha, wc, base, base_minutes)
        finally:
            self.stop_agent()
            wc.close()
        self.report()

    def one(self, n: int, url: str, sha: str, wc: WorkingCopy,
            base: dict[tuple[str, str], float], base_minutes: float) -> str:
        b = self.b
        tag = f"s{n}-{secrets.token_hex(2)}"
        res = Scale(n)
        names = [f"scale-{n}-{a:03d}" for a in range(n)]
        self.start_agent(tag)
        assert self.proc is not None
        say(f"scale {n}: creating {n} apps × {OBJECTS} ConfigMaps")
        t0 = clock()
        for a, name in enumerate(names):
            b.apps.apply(application(name, url, f"app-{a:03d}", dest_namespace=f"{tag}-{a:03d}"))
        res.sync_s = self.wait_all_synced(names, sha, timeout=120 + 6 * n) - t0
        say(f"scale {n}: all Synced in {fmt_s(res.sync_s)}")
        time.sleep(5)  # let the last status writes and events land
        b.quiesce()
        before, w0, cpu0, git0 = self.window()
        time.sleep(self.rest)
        after, w1, cpu1, _ = self.window()
        calls = self.git_calls()[git0:]
        minutes = (w1 - w0) / 60
        mem = proc_memory(self.proc.pid)
        res.peak_kb, res.rss_kb = mem["VmHWM"], mem["VmRSS"]
        res.cpu_per_min = (cpu1[0] - cpu0[0]) / minutes
        res.git_cpu_per_min = (cpu1[1] - cpu0[1]) / minutes
        res.git_per_min = len(calls) / minutes
        res.ls_remote_per_min = sum(" ls-remote " in f" {c} " for c in calls) / minutes
        res.fetch_per_min = sum(" fetch " in f" {c} " for c in calls) / minutes
        rates = request_rates(before, after)
        agent: dict[str, float] = {}
        for (verb, resource), count in rates.items():
            if resource.split("/")[0] in BACKGROUND:
                continue
            extra = count / minutes - base.get((verb, resource), 0.0) / base_minutes
            if extra > 0.05:  # counts, not noise: the no-agent window is as long
                agent[f"{verb} {resource}"] = extra
        res.api_per_min = sum(agent.values())
        res.api_detail = ", ".join(f"{v:.0f} {k}" for k, v in sorted(agent.items(), key=lambda x: -x[1])[:6])
        say(f"scale {n}: at rest {res.cpu_per_min:.2f} CPU s/min (+{res.git_cpu_per_min:.2f} git), "
            f"{res.api_per_min:.0f} API req/min ({res.api_detail or 'none'}), "
            f"{res.git_per_min:.0f} git calls/min ({res.ls_remote_per_min:.0f} ls-remote, "
            f"{res.fetch_per_min:.0f} fetch); RSS {res.rss_kb / 1024:.0f} MB "
            f"(peak {res.peak_kb / 1024:.0f} MB)")
        # commit → Synced for app 0 while the others are idle (polling, 1 s)
        for i in range(self.trials):
            value = f"scale-{n}-{i}-{secrets.token_hex(2)}"
            wc.write({"app-000/000-configmap.yaml":
                      yaml.safe_dump(configmap("cm-000", value), sort_keys=False)})
            sha = wc.commit(f"scale {n} trial {i}")
            t0 = clock()
            wc.push()
            t1, _ = b.wait_synced(names[0], sha, t0, timeout=60)
            res.latency.append(t1 - t0)
            # the commit moved every app's revision: the next one starts when all are idle
            try:
                self.wait_all_synced(names, sha, timeout=60 + 2 * n)
            except TimeoutError as exc:
                say(f"warning: {exc}")
            time.sleep(0.5 + (i % 4) * 0.25)  # de-phase from the 1 s poll ticker
        say(f"scale {n}: commit → Synced p50 {fmt_s(p50(res.latency))} "
            f"({', '.join(fmt_s(x) for x in res.latency)})")
        self.stop_agent()
        for name in names:
            try:
                b.apps.delete(name)
            except KubeError as exc:
                say(f"warning: delete {name}: {exc.message}")
        for a in range(n):
            with contextlib.suppress(KubeError):
                b.admin.delete("v1", "Namespace", f"{tag}-{a:03d}", propagation="Background")
        self.results.append(res)
        return sha

    # ---- the table, the note, the plot -------------------------------------------------------------
    def report(self) -> None:
        rep = self.b.report
        first = self.results[0]
        last = self.results[-1]
        rep.add(Row(
            f"scale: 1 → {last.apps} apps × {OBJECTS} ConfigMaps (growth table below)",
            f"{last.apps} apps: all Synced {fmt_s(last.sync_s)}, RSS {last.rss_kb / 1024:.0f} MB, "
            f"{last.cpu_per_min:.2f} CPU s/min at rest, commit→Synced p50 {fmt_s(p50(last.latency))}",
            f"1 app: {fmt_s(first.sync_s)}, {first.rss_kb / 1024:.0f} MB, "
            f"{first.cpu_per_min:.2f} CPU s/min, p50 {fmt_s(p50(first.latency))}",
            f"RSS {_ratio(last.rss_kb, first.rss_kb)} · CPU {_ratio(last.cpu_per_min, first.cpu_per_min)}"))
        head = ["apps", "all Synced", "RSS MB", "peak MB", "CPU s/min", "git CPU s/min",
                "API req/min", "git calls/min", "ls-remote/min", "fetch/min", "commit→Synced p50"]
        rows = [[str(r.apps), fmt_s(r.sync_s), f"{r.rss_kb / 1024:.0f}", f"{r.peak_kb / 1024:.0f}",
                 f"{r.cpu_per_min:.2f}", f"{r.git_cpu_per_min:.2f}", f"{r.api_per_min:.0f}",
                 f"{r.git_per_min:.0f}", f"{r.ls_remote_per_min:.0f}", f"{r.fetch_per_min:.0f}",
                 fmt_s(p50(r.latency))] for r in self.results]
        rep.tables.append(table(
            f"growth: N Applications × {OBJECTS} ConfigMaps, one Git repo (one path per app), "
            "`gitops-lab agent run` as a subprocess, poll 1 s; per minute = at rest", head, rows))
        for r in self.results:
            if r.api_detail:
                rep.note(f"scale {r.apps}: API requests/min at rest above the no-agent window: "
                         f"{r.api_detail}")
        if len(self.results) > 1:
            span = last.apps - first.apps
            rep.note(
                f"scale: cost per extra application (1 → {last.apps} apps, {OBJECTS} objects "
                f"each): {(last.sync_s - first.sync_s) / span:.2f} s of initial sync, "
                f"{(last.rss_kb - first.rss_kb) / 1024 / span:.2f} MB RSS, "
                f"{(last.cpu_per_min - first.cpu_per_min) / span:.3f} CPU s/min at rest, "
                f"{(last.api_per_min - first.api_per_min) / span:.2f} API req/min at rest, "
                f"{(last.ls_remote_per_min - first.ls_remote_per_min) / span:.2f} ls-remote/min")
        rep.note(f"scale: the agent's status heartbeat is every {HEARTBEAT:.0f} s, so a window of "
                 f"{self.rest:.0f} s after the apps were created has none; in the long run it adds "
                 f"N × {60 / HEARTBEAT:.1f} applications/status PATCHes per minute "
                 f"({last.apps} apps: {last.apps * 60 / HEARTBEAT:.0f}/min)")
        rep.note(f"scale: at-rest windows {self.rest:.0f} s each (the resync interval is 60 s); "
                 f"commit→Synced n={self.trials} per scale, for app 0, polling every 1 s, "
                 "no webhook; a commit to the shared repo moves every app's revision, so all N apps "
                 "reconcile after each commit (the next trial waits until all are Synced)")
        # a --quick run (1 and 10 apps) must not replace the committed plot of a full run
        wrote = plot(self.results, PLOT.with_name("scale-quick.png") if self.quick else PLOT)
        rep.note(f"scale plot: {wrote}")


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.1f}×" if base > 0 else "n/a"


def plot(results: list[Scale], path: Path) -> str:
    """The growth, four panels, as a PNG; a sentence saying where, or why not."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "not written: matplotlib is not installed (pip install -e '.[test]')"
    x = [r.apps for r in results]
    panels: list[tuple[str, list[list[float]], list[str]]] = [
        ("time to all Synced (s)", [[r.sync_s for r in results]], ["initial sync"]),
        ("agent memory (MB)", [[r.rss_kb / 1024 for r in results],
                               [r.peak_kb / 1024 for r in results]], ["RSS at rest", "peak"]),
        ("at rest, per minute", [[r.cpu_per_min for r in results],
                                 [r.git_cpu_per_min for r in results]],
         ["agent CPU s", "git CPU s"]),
        ("at rest, per minute", [[r.api_per_min for r in results],
                                 [r.ls_remote_per_min for r in results],
                                 [r.fetch_per_min for r in results]],
         ["API requests", "git ls-remote", "git fetch"]),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for ax, (title, series, labels) in zip(axes.flat, panels, strict=True):
        for ys, label in zip(series, labels, strict=True):
            ax.plot(x, ys, marker="o", label=label)
        ax.set_xscale("log")
        ax.set_xticks(x, [str(v) for v in x])
        ax.set_xlabel(f"Applications (× {OBJECTS} ConfigMaps, one repo)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("gitops-lab agent: cost as the number of Applications grows")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return f"written to {path}"
