"""`python -m bench.profile [--top N] [--save DIR]`: where a reconcile's time goes.

Runs the scenarios of the benchmark that matter for latency against the bench cluster, with
the in-process agent's `Agent._process` (one reconcile, in a worker thread) wrapped in
cProfile — per call, because cProfile only sees the thread it is enabled in. Prints, per
scenario, the reconcile's wall time and the functions with the most cumulative and own time.
With --save, writes one .pstats file per scenario (open with `python -m pstats FILE` or
snakeviz). Nothing in gitops_lab is changed: the wrapper is installed on the class here.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import secrets
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bench.scenarios import APP_NS, Bench, Options, cm_yaml
from bench.support import (
    agent_reconciles,
    clock,
    deployment,
    object_set,
    post_webhook,
    say,
    wait_idle,
    wait_reconciled,
)
from gitops_lab.agent.controller import Agent
from gitops_lab.labgit import WorkingCopy


class Profiler:
    """Collects a cProfile of every `Agent._process` call, filed under the current scenario."""

    def __init__(self) -> None:
        self.scenario = ""
        self.stats: dict[str, pstats.Stats] = {}
        self.calls: dict[str, list[float]] = {}
        self.lock = threading.Lock()
        self._orig: Callable[..., Any] = Agent._process

    def install(self) -> None:
        orig, me = self._orig, self

        def _process(agent: Agent, app_key: Any, fetch: bool) -> None:
            scenario = me.scenario
            if not scenario:
                orig(agent, app_key, fetch)
                return
            prof = cProfile.Profile()
            t0 = time.perf_counter()
            prof.enable()
            try:
                orig(agent, app_key, fetch)
            finally:
                prof.disable()
                with me.lock:
                    me.calls.setdefault(scenario, []).append(time.perf_counter() - t0)
                    if scenario in me.stats:
                        me.stats[scenario].add(prof)
                    else:
                        me.stats[scenario] = pstats.Stats(prof)

        Agent._process = _process  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        Agent._process = self._orig  # type: ignore[method-assign]

    def report(self, top: int, save: Path | None) -> str:
        out = io.StringIO()
        for scenario, stats in self.stats.items():
            calls = self.calls[scenario]
            print(f"\n=== {scenario}: {len(calls)} reconciles, {sum(calls):.3f} s in "
                  f"Agent._process (mean {sum(calls) / len(calls) * 1000:.1f} ms)", file=out)
            for key in ("cumulative", "tottime"):
                buf = io.StringIO()
                stats.stream = buf  # type: ignore[attr-defined]
                stats.sort_stats(key).print_stats(top)
                lines = buf.getvalue().splitlines()
                start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
                print(f"--- by {key}", file=out)
                print("\n".join(lines[start:]), file=out)
            if save is not None:
                save.mkdir(parents=True, exist_ok=True)
                stats.dump_stats(str(save / f"{scenario}.pstats"))
        return out.getvalue()


class ProfileBench(Bench):
    def __init__(self, opts: Options, profiler: Profiler, trials: int) -> None:
        super().__init__(opts)
        self.profiler = profiler
        self.n = trials

    def run_profiles(self) -> None:
        try:
            self.cluster_up()
            self.prepare()
            agent = self.start_agent(poll=3600)  # polling off: only what we trigger runs
            self.webhook_commits(agent)
            self.drifts(agent)
            self.thousand(agent)
        finally:
            self.profiler.scenario = ""
            self.cleanup()

    def webhook_commits(self, agent: Agent) -> None:
        name = "prof-webhook"
        url, sha = self.create_repo(name, {"app/configmap.yaml": cm_yaml("initial")})
        wc = WorkingCopy(url, self.tmp / f"wc-{name}")
        t0 = clock()
        self.create_app(name, url, name)
        self.wait_synced(name, sha, t0)
        wait_idle(agent.url, f"{APP_NS}/{name}", quiet=0.5)
        say(f"profiling {self.n} webhook commits")
        self.profiler.scenario = "webhook-commit"
        for i in range(self.n):
            wc.write({"app/configmap.yaml": cm_yaml(f"v{i}-{secrets.token_hex(2)}")})
            sha = wc.commit(f"trial {i}")
            t0 = clock()
            wc.push()
            post_webhook(agent.url, url)
            t1, app = self.wait_synced(name, sha, t0, timeout=30)
            steps = {s["name"]: s["ms"] for s in (app["status"].get("lastReconcile") or {}).get("steps", [])}
            say(f"  {(t1 - t0) * 1000:.0f} ms commit→Synced; steps {steps}")
            wait_idle(agent.url, f"{APP_NS}/{name}", quiet=0.3)
        self.profiler.scenario = ""
        self.delete_app(name, name, wait=False)

    def drifts(self, agent: Agent) -> None:
        name = ns = "prof-drift"
        url, sha = self.create_repo(name, {"app/deployment.yaml": yaml.safe_dump(
            deployment("web", 2), sort_keys=False)})
        t0 = clock()
        self.create_app(name, url, ns, self_heal=True)
        self.wait_synced(name, sha, t0, timeout=90, healthy=True)
        deps = self._watch(f"/apis/apps/v1/namespaces/{ns}/deployments")
        self.quiesce()
        wait_idle(agent.url, f"{APP_NS}/{name}", quiet=1.0)
        say(f"profiling {self.n} drifts")
        self.profiler.scenario = "drift-selfheal"
        for i in range(self.n):
            replicas = 3 + i % 3
            t0 = clock()
            self.admin.request("PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/web/scale",
                               body={"spec": {"replicas": replicas}},
                               content_type="application/merge-patch+json")
            t_heal, _ = deps.wait(lambda n, o: n == "web" and o["spec"].get("replicas") == 2,
                                  t0 + 0.001, 20, "the heal")
            say(f"  healed in {(t_heal - t0) * 1000:.0f} ms")
            wait_idle(agent.url, f"{APP_NS}/{name}", quiet=0.3, timeout=20)
            time.sleep(random.uniform(0.1, 0.3))
        self.profiler.scenario = ""
        deps.stop()
        self.delete_app(name, ns, wait=False)

    def thousand(self, agent: Agent) -> None:
        name = "prof-1000"
        files = object_set("configmaps", 1000)
        url, sha = self.create_repo(name, {f"app/{f}": t for f, t in files.items()})
        self.quiesce()
        say("profiling the initial sync of 1,000 ConfigMaps")
        self.profiler.scenario = "initial-1000"
        t0 = clock()
        self.create_app(name, url, f"{name}-{secrets.token_hex(2)}")
        t1, app = self.wait_synced(name, sha, t0, timeout=300)
        say(f"  Synced in {t1 - t0:.2f} s; steps "
            f"{ {s['name']: s['ms'] for s in app['status']['lastReconcile']['steps']} }")
        self.profiler.scenario = "after-initial-1000"  # the re-compare the 1,000 watch events cause
        wait_idle(agent.url, f"{APP_NS}/{name}", quiet=1.5, timeout=120)
        say(f"profiling {self.n // 2} no-op re-syncs of 1,000 objects")
        self.profiler.scenario = "noop-1000"
        label = f"{APP_NS}/{name}"
        for _ in range(max(self.n // 2, 3)):
            count0, _sum = agent_reconciles(agent.url, label)
            t0 = clock()
            post_webhook(agent.url, url)
            t1, *_ = wait_reconciled(agent.url, label, count0)
            say(f"  no-op {(t1 - t0) * 1000:.0f} ms")
            wait_idle(agent.url, label, quiet=0.5)
        self.profiler.scenario = ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--top", type=int, default=25, help="functions per table")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--save", type=Path, help="write <scenario>.pstats files here")
    args = parser.parse_args(argv)
    profiler = Profiler()
    profiler.install()
    try:
        ProfileBench(Options(quick=True), profiler, args.trials).run_profiles()
    finally:
        profiler.uninstall()
    print(profiler.report(args.top, args.save))
    return 0


if __name__ == "__main__":
    sys.exit(main())

