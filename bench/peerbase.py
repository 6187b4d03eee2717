"""What the Flux and Argo CD phases share: the side-by-side row, the latency ConfigMap, and a
base class holding the peer's processes, their peak RSS and the RSS row with the build note."""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from bench.peerbuild import build_record
from bench.report import Row, fmt_mb, fmt_ratio, fmt_s
from bench.support import Watcher, clock, configmap, proc_memory, say

if TYPE_CHECKING:
    from bench.scenarios import Bench

Pair = tuple[float | None, float | None]


def peer_row(label: str, peer: str, what: str, ours: Pair, theirs: Pair) -> Row:
    """One side-by-side row: gitops-lab in the value column, the peer as the baseline, and
    the ratio gitops-lab ÷ peer (below 1× = gitops-lab leads), p50 · p95 where both exist."""
    def two(p: Pair) -> str:
        if p[0] is None:
            return "n/a (phase not run)"
        return f"p50 {fmt_s(p[0])} · p95 {fmt_s(p[1])}" if p[1] is not None else fmt_s(p[0])

    ratio = "n/a"
    if ours[0] is not None and theirs[0] is not None:
        ratio = fmt_ratio(ours[0], theirs[0])
        if ours[1] is not None and theirs[1] is not None:
            ratio += f" · {fmt_ratio(ours[1], theirs[1])}"
    return Row(f"vs {label}: {what}", two(ours), f"{peer} {two(theirs)}", ratio)


def cm_yaml(value: str) -> str:
    """The ConfigMap the latency scenarios commit, as YAML."""
    return yaml.safe_dump(configmap("latency", value), sort_keys=False)


class PeerBench:
    """One peer's phase: `peer` ("Flux"), `version`, its processes in `procs`."""

    peer = ""
    version = ""
    build_note = ""  # what the RSS row's build note adds after the build times

    def __init__(self, bench: Bench, folder: Path) -> None:
        self.b = bench
        self.folder = folder
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.namespaces: list[str] = []
        self.peak: dict[str, int] = {}

    @property
    def label(self) -> str:
        return f"{self.peer} {self.version}"

    def row(self, what: str, ours: Pair, theirs: Pair) -> Row:
        return peer_row(self.label, self.peer, what, ours, theirs)

    def sample_rss(self) -> None:
        for name, proc in self.procs.items():
            with contextlib.suppress(OSError):
                self.peak[name] = max(self.peak.get(name, 0), proc_memory(proc.pid)["VmHWM"])

    def heal_trials(self, ns: str, desired: int) -> list[float]:
        """Scale the Deployment `web` in `ns` away from `desired`, `trials` times; seconds from
        each scale to the peer putting `desired` back."""
        deps = Watcher(self.b.admin, f"/apis/apps/v1/namespaces/{ns}/deployments").start()
        heal: list[float] = []
        try:
            for i in range(self.b.opts.trials):
                replicas = desired + 1 + i % 3
                t0 = clock()
                self.b.admin.request(
                    "PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/web/scale",
                    body={"spec": {"replicas": replicas}},
                    content_type="application/merge-patch+json")
                t_seen, _ = deps.wait(lambda n, o, r=replicas: n == "web" and  # type: ignore[misc]
                                      o["spec"].get("replicas") == r, t0, 10, "the scale")
                t_heal, _ = deps.wait(lambda n, o: n == "web" and
                                      o["spec"].get("replicas") == desired, t_seen, 60, "the heal")
                heal.append(t_heal - t0)
                say(f"  drift trial {i + 1}/{self.b.opts.trials}: healed {fmt_s(t_heal - t0)}")
                time.sleep(0.1 + 0.2 * (i % 5))
        finally:
            deps.stop()
        return heal

    def rss(self) -> None:
        self.sample_rss()
        total = sum(self.peak.values())
        ours = self.b.figures.get("rss_kb")
        parts = " + ".join(f"{n} {fmt_mb(v)}" for n, v in self.peak.items())
        self.b.report.add(Row(
            f"vs {self.label}: peak RSS (VmHWM) of all the peer's processes ({parts}), "
            "through its scenarios incl. 1,000 objects",
            fmt_mb(ours) if ours else "n/a (phase not run)",
            f"{self.peer} {fmt_mb(total)}", fmt_ratio(ours, total) if ours else "n/a"))
        built = build_record(self.folder)
        if built:
            self.b.report.note(
                f"{self.label} was built here from the module proxy (go build, nice 19, 2 shared "
                "cores): " + ", ".join(f"{k} {fmt_s(v)}" for k, v in built.items())
                + f" cold{self.build_note}")
