"""Flux (source-controller + kustomize-controller) measured on the bench's cluster, on the same
scenarios as the agent (issue 12, item 2).

Both controllers run as host processes with the bench cluster's admin kubeconfig, metrics and
health on 127.0.0.1 free ports, the artifact server on 127.0.0.1, leader election off (the
default) and no notification-controller (`--events-addr` empty: Kubernetes Events only). The
repositories are the bench's `git daemon` ones, read through smart HTTP on 127.0.0.1
(bench/githttp.py), because a GitRepository URL must be http(s):// or ssh://.

Settings, the fastest honest ones:
- polling: GitRepository `interval: 1s` (the agent polls every 1 s too); the
  Kustomization follows the new artifact through its watch on the GitRepository;
- "webhook": the `reconcile.fluxcd.io/requestedAt` annotation on the GitRepository right after
  the push — exactly what notification-controller's Receiver does on a Git host's POST (that
  third binary is not built; the HTTP hop it would add is a few ms on loopback);
- drift: a Kustomization corrects drift only when it runs, at its `interval` (here 1 s,
  `force: false`); it does not watch the objects it applied;
- initial sync and no-op re-sync: GitRepository + Kustomization (`prune: true`, `wait: false`,
  `force: false`) created together; the no-op is a requestedAt on the Kustomization.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bench.githttp import GitHTTP
from bench.peerbase import PeerBench, cm_yaml
from bench.peerbuild import FLUX_VERSION, flux_dir
from bench.report import Row, fmt_ratio, fmt_s
from bench.support import (
    Kubectl,
    Watcher,
    WriteCount,
    clock,
    count_requests,
    deployment,
    object_set,
    p50,
    p95,
    say,
    st,
    terminate,
)
from gitops_lab.kube import KubeError
from gitops_lab.labgit import WorkingCopy

if TYPE_CHECKING:
    from bench.scenarios import Bench

NS = "flux-system"
SRC = "source.toolkit.fluxcd.io/v1"
KS = "kustomize.toolkit.fluxcd.io/v1"
KS_PATH = f"/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/{NS}/kustomizations"
POLL = "1s"
DRIFT_INTERVAL = "1s"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http_ok(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = clock() + timeout
    while clock() < deadline:
        if proc.poll() is not None:
            lines = log.read_text(errors="replace").splitlines()
            errors = [line for line in lines if "error" in line.lower()] or lines
            raise RuntimeError(f"{log.stem} exited {proc.returncode}: "
                               + " | ".join(errors[-3:])[-600:])
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 in {timeout:.0f} s; log {log}")


def wait_established(kubectl: Kubectl, crds: Path, timeout: float = 60) -> None:
    """`kubectl wait` fails at once while a fresh CRD has no status.conditions yet: retry."""
    deadline = clock() + timeout
    while True:
        out = kubectl.run("wait", "--for", "condition=Established", "--timeout=20s", "-f",
                          str(crds), check=False)
        if out.returncode == 0:
            return
        if clock() > deadline:
            raise RuntimeError(f"CRDs in {crds} not Established: {out.stderr.strip()[:300]}")
        time.sleep(0.5)


def applied(name: str, sha: str) -> Any:
    def pred(n: str, obj: dict[str, Any]) -> bool:
        return n == name and str(st(obj, "lastAppliedRevision") or "").endswith(sha)
    return pred


class FluxBench(PeerBench):
    peer = "Flux"
    version = FLUX_VERSION
    build_note = ("; source-controller with github.com/fluxcd/pkg/artifact v0.18.0 in place of "
                  "v0.18.3 (that zip is not served here)")

    def __init__(self, bench: Bench) -> None:
        super().__init__(bench, flux_dir())
        self.http: GitHTTP | None = None
        self.ks: Watcher | None = None

    # ---- lifecycle ---------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self.start()
            self.latency(webhook=False)
            self.latency(webhook=True)
            self.drift()
            self.initial_and_noop(1000 if not self.b.opts.quick else 100)
            self.rss()
        finally:
            self.stop()

    def start(self) -> None:
        kubectl = self.b.kubectl
        kubectl.run("apply", "--server-side", "-f", str(self.folder / "crds"))
        wait_established(kubectl, self.folder / "crds")
        kubectl.run("create", "namespace", NS, check=False)
        assert self.b.git is not None
        self.http = GitHTTP(self.b.git.root).start()
        storage = self.b.tmp / "flux-storage"
        storage.mkdir(exist_ok=True)
        env = dict(os.environ, KUBECONFIG=str(self.b.kubeconfig), RUNTIME_NAMESPACE=NS)
        storage_addr = f"127.0.0.1:{free_port()}"
        for name, extra in (
            ("source-controller", [f"--storage-path={storage}", f"--storage-addr={storage_addr}",
                                   f"--storage-adv-addr={storage_addr}"]),
            ("kustomize-controller", []),
        ):
            health = free_port()
            log = self.b.tmp / f"{name}.log"
            args = [str(self.folder / "bin" / name), f"--metrics-addr=127.0.0.1:{free_port()}",
                    f"--health-addr=127.0.0.1:{health}", "--events-addr=",
                    "--watch-all-namespaces=true", "--enable-leader-election=false",
                    "--log-level=error", *extra]
            with log.open("wb") as sink:
                self.procs[name] = subprocess.Popen(args, env=env, stdout=sink,
                                                    stderr=subprocess.STDOUT,
                                                    stdin=subprocess.DEVNULL, cwd=self.b.tmp)
            wait_http_ok(f"http://127.0.0.1:{health}/readyz", self.procs[name], log)
        say(f"{self.label}: source-controller and kustomize-controller ready")
        self.ks = Watcher(self.b.admin, KS_PATH).start()
        self.b.watchers.append(self.ks)

    def stop(self) -> None:
        for proc in self.procs.values():
            terminate(proc)
        self.procs.clear()
        if self.ks is not None:
            self.ks.stop()
        if self.http is not None:
            self.http.stop()
        for ns in self.namespaces:
            with contextlib.suppress(KubeError):
                self.b.admin.delete("v1", "Namespace", ns, propagation="Background")

    # ---- objects -------------------------------------------------------------------------------
    def source(self, name: str, interval: str) -> None:
        assert self.http is not None
        self.b.admin.apply({
            "apiVersion": SRC, "kind": "GitRepository",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"url": self.http.url(name), "interval": interval, "timeout": "20s",
                     "ref": {"branch": "main"}}})

    def kustomization(self, name: str, interval: str, target: str) -> None:
        self.b.admin.apply({
            "apiVersion": KS, "kind": "Kustomization",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"interval": interval, "retryInterval": "1s", "timeout": "5m",
                     "path": "./app", "prune": True, "force": False, "wait": False,
                     "targetNamespace": target,
                     "sourceRef": {"kind": "GitRepository", "name": name}}})

    def namespace(self, name: str) -> str:
        self.b.kubectl.run("create", "namespace", name)
        self.namespaces.append(name)
        return name

    def app(self, name: str, files: dict[str, str], *, poll: str, interval: str,
            timeout: float = 120) -> tuple[str, str, float]:
        """Repo + namespace + GitRepository + Kustomization; returns (git:// url, sha,
        seconds from creating the two objects to the commit applied)."""
        url, sha = self.b.create_repo(name, files)
        ns = self.namespace(f"{name}-{secrets.token_hex(2)}")
        assert self.ks is not None
        t0 = clock()
        self.source(name, poll)
        self.kustomization(name, interval, ns)
        t1, _ = self.ks.wait(applied(name, sha), t0, timeout, f"Flux {name} applied {sha[:7]}")
        return url, sha, t1 - t0

    def request_reconcile(self, api_version: str, kind: str, name: str) -> str:
        token = f"{time.time():.6f}"
        self.b.admin.patch(api_version, kind, name,
                           {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}},
                           NS)
        return token

    # ---- scenarios -------------------------------------------------------------------------------
    def latency(self, webhook: bool) -> None:
        name = "flux-hook" if webhook else "flux-poll"
        say(f"{self.label}: commit → applied by {'requestedAt (Receiver)' if webhook else 'polling'}")
        url, _sha, _ = self.app(name, {"app/configmap.yaml": cm_yaml("initial")},
                                poll="1h" if webhook else POLL, interval="10m")
        wc = WorkingCopy(url, self.b.tmp / f"wc-{name}")
        assert self.ks is not None
        lat: list[float] = []
        for i in range(self.b.opts.trials):
            wc.write({"app/configmap.yaml": cm_yaml(f"{name}-{i}-{secrets.token_hex(2)}")})
            sha = wc.commit(f"trial {i}")
            t0 = clock()
            wc.push()
            if webhook:
                self.request_reconcile(SRC, "GitRepository", name)
            t1, _ = self.ks.wait(applied(name, sha), t0, 60, f"Flux {name} applied {sha[:7]}")
            lat.append(t1 - t0)
            say(f"  {name} trial {i + 1}/{self.b.opts.trials}: {fmt_s(t1 - t0)}")
            time.sleep(0.2 + (1.0 * (i % 5) / 5 if not webhook else 0.0))  # de-phase the poll
        wc.close()
        self.sample_rss()
        key = "webhook" if webhook else "poll"
        ours = self.b.figures.get(f"{key}_p50"), self.b.figures.get(f"{key}_p95")
        how = ("requestedAt on the GitRepository after the push (what a Receiver does; "
               "GitRepository interval 1h)" if webhook else
               f"polling (GitRepository interval {POLL}; the agent: poll 1 s)")
        self.b.report.add(self.row(
            f"commit → applied, {how}, n={len(lat)}",
            ours, (p50(lat), p95(lat))))
        self.b.figures[f"flux_{key}_p50"] = p50(lat)

    def drift(self) -> None:
        name = "flux-drift"
        say(f"{self.label}: drift → corrected (Kustomization interval {DRIFT_INTERVAL})")
        desired = 2
        _url, _sha, _ = self.app(name, {"app/deployment.yaml": yaml.safe_dump(
            deployment("web", desired), sort_keys=False)}, poll="1h", interval=DRIFT_INTERVAL)
        ns = self.namespaces[-1]
        heal = self.heal_trials(ns, desired)
        self.sample_rss()
        # no more 1 s reconciles from here on
        self.b.admin.patch(KS, "Kustomization", name, {"spec": {"suspend": True}}, NS)
        self.b.report.add(self.row(
            f"drift → corrected (Kustomization interval {DRIFT_INTERVAL}, force: false; "
            f"the agent: selfHeal on a watch), n={len(heal)}",
            (self.b.figures.get("heal_p50"), self.b.figures.get("heal_p95")),
            (p50(heal), p95(heal))))

    def initial_and_noop(self, size: int) -> None:
        name = f"flux-init-{size}"
        say(f"{self.label}: initial sync of {size} ConfigMaps, then no-op re-syncs")
        files = object_set("configmaps", size)
        self.b.quiesce()
        _url, _sha, took = self.app(name, {f"app/{f}": t for f, t in files.items()},
                                    poll="1h", interval="1h", timeout=600)
        self.sample_rss()
        ours = self.b.figures.get(f"initial_{size}")
        kubectl = self.b.figures.get(f"kubectl_{size}")
        vs_kubectl = f"; Flux ÷ kubectl {fmt_ratio(took, kubectl)}" if kubectl else ""
        self.b.report.add(self.row(
            f"initial sync, {size:,} ConfigMaps (GitRepository + Kustomization created{vs_kubectl})",
            (ours, None), (took, None)))
        # no-op: requestedAt on the Kustomization → lastHandledReconcileAt = the token
        assert self.ks is not None
        time.sleep(2)
        self.b.quiesce()
        wall: list[float] = []
        writes = WriteCount()
        for _ in range(self.b.opts.noop_trials):
            before = self.b.raw.request_counts()
            t0 = clock()
            token = self.request_reconcile(KS, "Kustomization", name)
            t1, _ = self.ks.wait(lambda n, o, tok=token: n == name and  # type: ignore[misc]
                                 st(o, "lastHandledReconcileAt") == tok, t0, 120,
                                 f"Flux {name} handled {token}")
            time.sleep(0.3)
            delta = count_requests(before, self.b.raw.request_counts(), {"configmaps"},
                                   apps=("kustomizations", "gitrepositories"))
            writes.add(delta)
            wall.append(t1 - t0)
            say(f"  no-op: {fmt_s(t1 - t0)}, requests: {delta.detail or 'no writes'}; "
                f"{delta.dry_runs} dry runs, {delta.reads} reads")
            time.sleep(0.5)
        self.sample_rss()
        n = len(wall)
        # the app writes include the bench's own trigger (one requestedAt PATCH per trial)
        flux_writes = writes.objects + max(writes.app - n, 0) + writes.events
        ours_w = self.b.figures.get("noop_writes")
        ours_t = self.b.figures.get("noop_p50")
        self.b.report.add(Row(
            f"vs {self.label}: no-op re-sync, {size:,} ConfigMaps (requestedAt on the "
            f"Kustomization), n={n}",
            (f"{fmt_s(ours_t)} · {ours_w:.0f} writes" if ours_t is not None and ours_w is not None
             else "n/a (agent phase not run)"),
            f"Flux {fmt_s(p50(wall))} · {flux_writes} writes (+{writes.app_status} status, "
            f"{writes.dry_runs} dry runs)",
            fmt_ratio(ours_t, p50(wall)) if ours_t is not None else "n/a"))
        self.b.report.note(
            f"{self.label} no-op re-sync of {size}: over {n} trials {writes.objects} object "
            f"writes, {writes.app} Kustomization/GitRepository writes, {writes.events} Events, "
            f"{writes.app_status} status writes, {writes.dry_runs} dry runs, {writes.reads} reads "
            f"(of the Kustomization writes, {n} are the bench's requestedAt PATCHes)")
