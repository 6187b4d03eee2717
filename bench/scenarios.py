"""The benchmark's scenarios, in the order they run against one bench cluster.

1. cluster warm start          LocalCluster up, vs etcd + kube-apiserver to /readyz
2. commit → Synced, webhook    in-process agent with polling off; POST /webhook after push
3. commit → Synced, polling    in-process agent polling every 1 s (the lab's setting)
4. drift → detected / healed   scale a selfHeal Deployment; vs a plain watch seeing the write
5. initial sync 100 / 1,000    ConfigMaps, and a mix; vs `kubectl apply --server-side -f DIR`
6. no-op re-sync of 1,000      webhook → reconcile done; writes from the API server's /metrics
7. image update automation    tag push → updater commit → Synced (registry notification; scan);
                               a scan of 1,000 tags; vs the bare registry API calls (bench/images.py)
8. agent peak RSS              `gitops-lab agent run` as a subprocess managing 1,000 objects
9. clients                     gitops_lab/kube.py vs the official DynamicClient (bench/clients.py)
10. peers                      Flux and Argo CD, or a skip row saying why (bench/peers.py)
11. scale                      1 / 10 / 100 apps × 100 objects, at rest and busy (bench/scale.py)
12. notebooks                   nbval total, read from a file if the notebook tests wrote one
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.report import Report, Row, fmt_mb, fmt_ratio, fmt_s, machine, verdict
from bench.support import (
    Kubectl,
    RawClient,
    Watcher,
    WriteCount,
    agent_reconciles,
    bare_import_peak_rss,
    clock,
    configmap,
    count_requests,
    deployment,
    object_set,
    p50,
    p95,
    post_webhook,
    proc_memory,
    say,
    st,
    terminate,
    wait_idle,
    wait_reconciled,
)
from gitops_lab.agent import Agent, AgentOptions
from gitops_lab.apps import Apps, application
from gitops_lab.cluster.base import preserve_current
from gitops_lab.cluster.local import LocalCluster
from gitops_lab.install import agent_token, install
from gitops_lab.kube import Kube, KubeError
from gitops_lab.labgit import GitServer, WorkingCopy
from gitops_lab.paths import bin_dir, cache_root

CLUSTER = os.environ.get("GITOPS_LAB_BENCH_CLUSTER", "gitops-lab-bench")
APP_NS = "gitops-lab"
APPS_PATH = f"/apis/gitopslab.io/v1alpha1/namespaces/{APP_NS}/applications"
LAB_POLL = 1.0  # the agent's default poll interval (`--poll-interval`), also what the lab runs
REPO = Path(__file__).resolve().parents[1]

TARGET_LATENCY = 1.0
TARGET_HEAL = 1.0
TARGET_INITIAL_RATIO = 1.3
TARGET_NOOP = 1.0
TARGET_RSS_MB = 150


@dataclass
class Options:
    quick: bool = False
    keep_cluster: bool = False
    only: str = ""  # run only the phases whose name contains this (e.g. "image")

    @property
    def trials(self) -> int:
        return 5 if self.quick else 20

    @property
    def noop_trials(self) -> int:
        return 3 if self.quick else 5

    @property
    def sizes(self) -> tuple[int, ...]:
        return (100,) if self.quick else (100, 1000)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cm_yaml(value: str, namespace: str | None = None) -> str:
    return yaml.safe_dump(configmap("latency", value, namespace), sort_keys=False)


class Bench:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.report = Report(f"gitops-lab benchmark ({'quick' if opts.quick else 'full'}) at "
                             f"{source_revision()} — {machine()}")
        self.tmp = Path(tempfile.mkdtemp(prefix="gitops-lab-bench-"))
        self.cluster = LocalCluster(CLUSTER)
        self.agent: Agent | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.git: GitServer | None = None
        self.watchers: list[Watcher] = []
        # the agent's figures, for the peers' rows (bench/flux.py, bench/argocd.py)
        self.figures: dict[str, float] = {}
        self.kubectl_initial: dict[tuple[str, int], float] = {}
        self.started = clock()

    # ---- lifecycle -------------------------------------------------------------------------
    def run(self) -> Report:
        try:
            self.cluster_up()
            self.prepare()
            for name, phase in (
                ("commit → Synced (webhook)", self.webhook_latency),
                ("commit → Synced (polling)", self.poll_latency),
                ("drift", self.drift),
                ("initial sync", self.initial_syncs),
                ("image update automation", self.images),
                ("agent peak RSS", self.rss),
                ("clients: kube.py vs DynamicClient", self.clients),
                ("peers: Flux, Argo CD (flux, argo)", self.peers),
                ("scale: 1/10/100 apps", self.scale),
            ):
                if self.opts.only and not any(o.strip() and o.strip() in name
                                              for o in self.opts.only.split(",")):
                    continue
                try:
                    phase()
                except Exception as exc:  # one broken phase must not hide the others
                    say(f"{name} failed: {exc!r}")
                    import traceback

                    traceback.print_exc(file=sys.stderr)
                    self.report.error(name, exc)
                    self.stop_agent()
            if not self.opts.only:
                self.notebooks()
        finally:
            self.cleanup()
        self.report.note(f"whole run {fmt_s(clock() - self.started)}; load avg after: "
                         f"{os.getloadavg()[0]:.1f} (other test sessions share these 2 cores)")
        return self.report

    def cleanup(self) -> None:
        say("cleaning up")
        # stopped agents' watch threads linger until their streams end; the cluster going
        # down ends them, which they would log as warnings
        logging.getLogger("gitops_lab").setLevel(logging.ERROR)
        self.stop_agent()
        self.stop_subprocess()
        for w in self.watchers:
            w.stop()
        if self.git is not None:
            self.git.stop()
        if not self.opts.keep_cluster:
            try:
                self.cluster.down()
            except Exception as exc:
                say(f"warning: cluster down: {exc}")
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- 1. cluster -------------------------------------------------------------------------
    def cluster_up(self) -> None:
        if self.cluster.state_dir.exists():
            say(f"removing a leftover {CLUSTER!r} cluster")
            self.cluster.down()
        samples: list[tuple[float, float]] = []
        for i in range(1 if self.opts.quick else 2):
            if i:
                self.cluster.down()
            marks: dict[str, float] = {}

            def progress(line: str, marks: dict[str, float] = marks) -> None:
                for key in ("starting etcd", "starting kube-controller-manager"):
                    if line.startswith(key):
                        marks.setdefault(key, clock())

            with preserve_current():
                t0 = clock()
                self.kubeconfig = self.cluster.up(progress)
                total = clock() - t0
            api = marks["starting kube-controller-manager"] - marks["starting etcd"]
            samples.append((total, api))
            say(f"cluster up in {fmt_s(total)} (etcd + apiserver to /readyz {fmt_s(api)})")
        total, api = samples[-1]
        self.report.add(Row(
            "local control plane warm start (LocalCluster.up)"
            + (f", run 2 of 2 (run 1: {fmt_s(samples[0][0])})" if len(samples) > 1 else ""),
            fmt_s(total), f"{fmt_s(api)} etcd+apiserver→/readyz", fmt_ratio(total, api)))

    def prepare(self) -> None:
        self.admin = Kube.from_kubeconfig(self.kubeconfig)
        install(self.admin)
        self.agent_kube = self.admin.with_token(agent_token(self.admin), "gitops-lab-agent")
        self.apps = Apps(self.admin)
        self.raw = RawClient(self.kubeconfig)
        self.kubectl = Kubectl(bin_dir() / "kubectl", self.kubeconfig, self.tmp / "kube-cache")
        self.kubectl.run("create", "namespace", "bench-floor")
        self.kubectl.run("apply", "--server-side", "-f", "-", stdin=cm_yaml("warm", "bench-floor"))
        self.git = GitServer(self.tmp / "git").start()
        self.app_watch = self._watch(APPS_PATH)

    def _watch(self, path: str) -> Watcher:
        w = Watcher(self.admin, path).start()
        self.watchers.append(w)
        return w

    # ---- agents -------------------------------------------------------------------------------
    def start_agent(self, poll: float) -> Agent:
        self.stop_agent()
        opts = AgentOptions(poll_interval=poll, http_address="127.0.0.1:0",
                            cache_dir=self.tmp / f"agent-repos-{secrets.token_hex(3)}")
        self.agent = Agent(self.agent_kube, opts).start()
        if not self.agent.wait_ready(30):
            raise RuntimeError("the in-process agent did not list Applications in 30 s")
        return self.agent

    def stop_agent(self) -> None:
        if self.agent is not None:
            self.agent.stop()
            self.agent = None

    # ---- apps ---------------------------------------------------------------------------------
    def create_repo(self, name: str, files: dict[str, str]) -> tuple[str, str]:
        assert self.git is not None
        self.git.create_repo(name, files, message=f"{name}: initial")
        url = self.git.url(name)
        out = subprocess.run(["git", "ls-remote", url, "refs/heads/main"], capture_output=True,
                             text=True, check=True, timeout=30)
        return url, out.stdout.split()[0]

    def create_app(self, name: str, url: str, dest: str, *, self_heal: bool = False) -> None:
        self.apps.apply(application(name, url, "app", dest_namespace=dest, self_heal=self_heal))

    def wait_synced(self, name: str, sha: str, after: float, timeout: float = 60,
                    healthy: bool = False) -> tuple[float, dict[str, Any]]:
        def done(n: str, obj: dict[str, Any]) -> bool:
            return (n == name and st(obj, "sync", "status") == "Synced"
                    and st(obj, "sync", "revision") == sha
                    and (not healthy or st(obj, "health", "status") == "Healthy"))

        return self.app_watch.wait(done, after, timeout, f"{name} Synced at {sha[:7]}")

    def delete_app(self, name: str, *namespaces: str, wait: bool = True) -> None:
        self.apps.delete(name)
        for ns in namespaces:
            with contextlib.suppress(KubeError):
                self.admin.delete("v1", "Namespace", ns, propagation="Background")
        if wait:
            deadline = clock() + 120
            for ns in namespaces:
                while clock() < deadline and self.admin.get_or_none("v1", "Namespace", ns):
                    time.sleep(0.25)

    # ---- 2 + 3. commit → Synced ---------------------------------------------------------------
    def _latency(self, name: str, webhook: bool) -> None:
        agent = self.agent
        assert agent is not None
        url, sha = self.create_repo(name, {"app/configmap.yaml": cm_yaml("initial")})
        wc = WorkingCopy(url, self.tmp / f"wc-{name}")
        t0 = clock()
        self.create_app(name, url, name)
        self.wait_synced(name, sha, t0, timeout=60)
        wait_idle(agent.url, f"{APP_NS}/{name}", quiet=0.5)
        latencies, pushes, floors = [], [], []
        for i in range(self.opts.trials):
            value = f"{name}-{i}-{secrets.token_hex(2)}"
            wc.write({"app/configmap.yaml": cm_yaml(value)})
            sha = wc.commit(f"trial {i}")
            t0 = clock()
            wc.push()
            t_push = clock()
            if webhook and post_webhook(agent.url, url) < 1:
                raise RuntimeError("the agent's /webhook refreshed no app")
            t1, _ = self.wait_synced(name, sha, t0, timeout=30)
            latencies.append(t1 - t0)
            pushes.append(t_push - t0)
            # the physical floor: this push, plus a direct server-side apply of the same change
            t_apply = self.kubectl.timed("apply", "--server-side", "-f", "-",
                                         stdin=cm_yaml(value, "bench-floor"))
            floors.append((t_push - t0) + t_apply)
            say(f"{name} trial {i + 1}/{self.opts.trials}: {fmt_s(t1 - t0)} "
                f"(push {fmt_s(t_push - t0)}, kubectl apply {fmt_s(t_apply)})")
            # de-phase from the poll ticker: sample every phase of the interval
            time.sleep(random.uniform(0, LAB_POLL) if not webhook else random.uniform(0.1, 0.3))
        wc.close()
        self.delete_app(name, name, wait=False)
        key = "webhook" if webhook else "poll"
        self.figures[f"{key}_p50"], self.figures[f"{key}_p95"] = p50(latencies), p95(latencies)
        how = ("by webhook (POST /webhook after push; agent polling off)" if webhook else
               f"by polling (interval {LAB_POLL:g} s = the default of the CLI and the lab)")
        self.report.add(Row(
            f"commit → Synced {how}, n={len(latencies)}",
            f"p50 {fmt_s(p50(latencies))} · p95 {fmt_s(p95(latencies))}",
            f"p50 {fmt_s(p50(floors))} · p95 {fmt_s(p95(floors))} push+kubectl SSA "
            f"(push alone p50 {fmt_s(p50(pushes))})",
            f"{fmt_ratio(p50(latencies), p50(floors))} · {fmt_ratio(p95(latencies), p95(floors))}",
            f"p50 ≤ {fmt_s(TARGET_LATENCY)}", verdict(p50(latencies) <= TARGET_LATENCY)))

    def webhook_latency(self) -> None:
        say("commit → Synced by webhook (in-process agent, polling off)")
        self.start_agent(poll=3600)  # effectively no polling: the webhook alone
        try:
            self._latency("lat-webhook", webhook=True)
        finally:
            self.stop_agent()

    def poll_latency(self) -> None:
        say(f"commit → Synced by polling every {LAB_POLL:g} s (in-process agent)")
        self.start_agent(poll=LAB_POLL)  # stays up for the drift and initial-sync phases
        self._latency("lat-poll", webhook=False)

    # ---- 4. drift -------------------------------------------------------------------------------
    def drift(self) -> None:
        agent = self.agent or self.start_agent(poll=LAB_POLL)
        name = ns = "drift"
        desired = 2
        say("drift → DriftDetected / healed (selfHeal)")
        url, sha = self.create_repo(name, {"app/deployment.yaml": yaml.safe_dump(
            deployment("web", desired), sort_keys=False)})
        t0 = clock()
        self.create_app(name, url, ns, self_heal=True)
        self.wait_synced(name, sha, t0, timeout=90, healthy=True)
        deps = self._watch(f"/apis/apps/v1/namespaces/{ns}/deployments")
        self.quiesce()
        wait_idle(agent.url, f"{APP_NS}/{name}", quiet=1.0)
        detected: list[float] = []

        def on_event(rec: Any) -> None:
            if rec.reason == "DriftDetected" and rec.app == f"{APP_NS}/{name}":
                detected.append(clock())

        agent.recorder.subscribe(on_event)
        seen_l, detect_l, heal_l, via_status = [], [], [], 0
        try:
            for i in range(self.opts.trials):
                replicas = desired + 1 + i % 3
                t0 = clock()
                self.admin.request(
                    "PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/web/scale",
                    body={"spec": {"replicas": replicas}},
                    content_type="application/merge-patch+json")
                def scaled(n: str, o: dict[str, Any], r: int = replicas) -> bool:
                    return n == "web" and o["spec"].get("replicas") == r

                t_seen, _ = deps.wait(scaled, t0, 10, "the scale")
                t_heal, _ = deps.wait(lambda n, o: n == "web" and
                                      o["spec"].get("replicas") == desired, t_seen, 20, "the heal")
                # detected: the DriftDetected event, or status OutOfSync, whichever came first
                t_event = self._first_after(detected, t0, timeout=10)
                try:
                    t_status, _ = self.app_watch.wait(
                        lambda n, o: n == name and st(o, "sync", "status") == "OutOfSync",
                        t0, 0.01)
                except TimeoutError:
                    t_status = float("inf")
                via_status += t_status < t_event
                seen_l.append(t_seen - t0)
                detect_l.append(min(t_event, t_status) - t0)
                heal_l.append(t_heal - t0)
                say(f"drift trial {i + 1}/{self.opts.trials}: watch {fmt_s(t_seen - t0)}, "
                    f"detected {fmt_s(detect_l[-1])}, healed {fmt_s(t_heal - t0)}")
                wait_idle(agent.url, f"{APP_NS}/{name}", quiet=0.3, timeout=20)
                time.sleep(random.uniform(0.1, 0.3))
        finally:
            agent.recorder.unsubscribe(on_event)
            deps.stop()
        base = f"p50 {fmt_s(p50(seen_l))} · p95 {fmt_s(p95(seen_l))} plain watch sees the write"
        self.figures["heal_p50"], self.figures["heal_p95"] = p50(heal_l), p95(heal_l)
        self.report.add(Row(
            f"drift → DriftDetected (event; status OutOfSync first in {via_status}), n={len(detect_l)}",
            f"p50 {fmt_s(p50(detect_l))} · p95 {fmt_s(p95(detect_l))}", base,
            f"{fmt_ratio(p50(detect_l), p50(seen_l))} · {fmt_ratio(p95(detect_l), p95(seen_l))}"))
        self.report.add(Row(
            f"drift → healed (selfHeal; spec.replicas back), n={len(heal_l)}",
            f"p50 {fmt_s(p50(heal_l))} · p95 {fmt_s(p95(heal_l))}", base,
            f"{fmt_ratio(p50(heal_l), p50(seen_l))} · {fmt_ratio(p95(heal_l), p95(seen_l))}",
            f"p50 ≤ {fmt_s(TARGET_HEAL)}", verdict(p50(heal_l) <= TARGET_HEAL)))
        self.delete_app(name, ns, wait=False)

    @staticmethod
    def _first_after(times: list[float], after: float, timeout: float) -> float:
        deadline = clock() + timeout
        while clock() < deadline:
            hits = [t for t in list(times) if t >= after]
            if hits:
                return min(hits)
            time.sleep(0.005)
        return float("inf")

    # ---- 5 + 6. initial sync, no-op re-sync -----------------------------------------------------
    def initial_syncs(self) -> None:
        agent = self.agent or self.start_agent(poll=LAB_POLL)
        for size in self.opts.sizes:
            for mix in ("configmaps", "mix"):
                self._initial(agent, mix, size)

    def _initial(self, agent: Agent, mix: str, size: int) -> None:
        label = "ConfigMaps" if mix == "configmaps" else "mixed: ½ ConfigMap, ¼ Deployment, ¼ Service"
        name = f"init-{'cm' if mix == 'configmaps' else 'mix'}-{size}"
        say(f"initial sync of {size} objects ({mix})")
        files = object_set(mix, size)
        url, sha = self.create_repo(name, {f"app/{f}": t for f, t in files.items()})
        self.quiesce()
        suffix = secrets.token_hex(2)
        ns_agent, ns_kubectl = f"a-{name}-{suffix}", f"k-{name}-{suffix}"
        # the agent: Application created → status Synced at the commit (clone + render + apply)
        t0 = clock()
        self.create_app(name, url, ns_agent)
        t1, app = self.wait_synced(name, sha, t0, timeout=600)
        t_agent = t1 - t0
        steps = {s["name"]: s["ms"] for s in (st(app, "lastReconcile", "steps") or [])}
        wait_idle(agent.url, f"{APP_NS}/{name}", quiet=1.0, timeout=120)
        # kubectl: the same files, a fresh namespace, one server-side apply
        folder = self.tmp / name
        folder.mkdir()
        for f, text in files.items():
            (folder / f).write_text(text)
        self.kubectl.run("create", "namespace", ns_kubectl)
        t_kubectl = self.kubectl.timed("apply", "--server-side", "-n", ns_kubectl, "-f", str(folder))
        self.kubectl_initial[(mix, size)] = t_kubectl
        if mix == "configmaps":
            self.figures[f"initial_{size}"], self.figures[f"kubectl_{size}"] = t_agent, t_kubectl
        say(f"  agent {fmt_s(t_agent)} (steps {steps}), kubectl {fmt_s(t_kubectl)}")
        target = size >= 1000
        ratio = t_agent / t_kubectl
        self.report.add(Row(
            f"initial sync, {size:,} objects ({label})",
            f"{fmt_s(t_agent)}", f"{fmt_s(t_kubectl)} kubectl apply --server-side -f DIR",
            fmt_ratio(t_agent, t_kubectl),
            f"≤ {TARGET_INITIAL_RATIO}× kubectl" if target else "—",
            verdict(ratio <= TARGET_INITIAL_RATIO) if target else ""))
        self.report.note(f"initial sync {size} {mix}: agent reconcile steps (ms) {steps}")
        if mix == "configmaps" and size == max(self.opts.sizes):
            self._noop(agent, name, url, size, folder, ns_kubectl)
        self.delete_app(name, ns_agent, ns_kubectl)

    def quiesce(self, timeout: float = 120) -> None:
        """Wait until no namespace is Terminating: the namespace controller's deletes and the
        root-CA publisher's writes would otherwise land in the request counts."""
        deadline = clock() + timeout
        while clock() < deadline:
            items = self.admin.request("GET", "/api/v1/namespaces").get("items") or []
            if not any(st(ns, "phase") == "Terminating" for ns in items):
                return
            time.sleep(0.25)
        say("warning: namespaces still Terminating; write counts may include their deletion")

    def _noop(self, agent: Agent, name: str, url: str, size: int, folder: Path,
              ns_kubectl: str) -> None:
        label = f"{APP_NS}/{name}"
        say(f"no-op re-sync of {size} objects ({self.opts.noop_trials} webhook trials)")
        self.quiesce()
        wall, measured, writes = [], [], WriteCount()
        for i in range(self.opts.noop_trials):
            wait_idle(agent.url, label, quiet=1.0, timeout=60)
            before = self.raw.request_counts()
            count0, sum0 = agent_reconciles(agent.url, label)
            t0 = clock()
            post_webhook(agent.url, url)
            t1, count1, sum1 = wait_reconciled(agent.url, label, count0, timeout=60)
            time.sleep(0.3)  # anything the reconcile wrote has landed (it writes before it ends)
            delta = count_requests(before, self.raw.request_counts(), {"configmaps"})
            writes.add(delta)
            wall.append(t1 - t0)
            measured.append((sum1 - sum0) / max(count1 - count0, 1))
            say(f"  no-op {i + 1}: {fmt_s(t1 - t0)} (agent metric {fmt_s(measured[-1])}), "
                f"requests: {delta.detail or 'no writes'}; {delta.dry_runs} dry runs, "
                f"{delta.reads} reads")
        # baseline: kubectl apply --server-side of the same, unchanged files, again
        before = self.raw.request_counts()
        t_k = self.kubectl.timed("apply", "--server-side", "-n", ns_kubectl, "-f", str(folder))
        k_writes = count_requests(before, self.raw.request_counts(), {"configmaps"})
        n = len(wall)
        agent_writes = writes.objects + writes.app + writes.events
        ok = agent_writes == 0 and p50(wall) <= TARGET_NOOP
        self.figures["noop_p50"], self.figures["noop_writes"] = p50(wall), agent_writes
        self.report.add(Row(
            f"no-op re-sync, {size:,} ConfigMaps (webhook → reconcile done), n={n}",
            f"p50 {fmt_s(p50(wall))} (agent metric {fmt_s(p50(measured))}) · "
            f"{agent_writes} writes (+{writes.app_status} status)",
            f"{fmt_s(t_k)} · {k_writes.objects} writes: kubectl apply --server-side again",
            fmt_ratio(p50(wall), t_k),
            f"0 writes, ≤ {fmt_s(TARGET_NOOP)}", verdict(ok)))
        self.report.note(
            f"no-op re-sync: over {n} trials {writes.objects} object writes, {writes.app} "
            f"Application writes, {writes.events} Events, {writes.app_status} status writes (counted "
            f"apart), {writes.dry_runs} dry runs, {writes.reads} reads; {writes.background} "
            "writes by other components in the same windows (kwok/controller leases, nodes) excluded")

    # ---- 7. image update automation -------------------------------------------------------------
    def images(self) -> None:
        from bench.images import ImageBench

        ImageBench(self).run()

    # ---- 8. RSS ------------------------------------------------------------------------------------
    def stop_subprocess(self) -> None:
        terminate(self.proc)
        self.proc = None

    def rss(self) -> None:
        self.stop_agent()  # one agent per namespace: two would fight over the same apps
        for app in self.apps.list():
            self.delete_app(app["metadata"]["name"], wait=False)
        size = max(self.opts.sizes)
        say(f"agent peak RSS: `gitops-lab agent run` as a subprocess, {size} ConfigMaps")
        port = _free_port()
        agent_url = f"http://127.0.0.1:{port}"
        log = self.tmp / "agent-subprocess.log"
        env = dict(os.environ, GITOPS_LAB_CACHE=str(self.tmp / "agent-cache"))
        with log.open("wb") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gitops_lab", "agent", "run", "--kubeconfig",
                 str(self.kubeconfig), "--http-address", f"127.0.0.1:{port}",
                 "--poll-interval", f"{LAB_POLL:g}"],
                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                cwd=REPO)
        deadline = clock() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{agent_url}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or clock() > deadline:
                raise RuntimeError("the agent subprocess did not become healthy; log:\n"
                                   + log.read_text(errors="replace")[-1500:])
            time.sleep(0.1)
        name = f"rss-{size}"
        files = object_set("configmaps", size)
        url, sha = self.create_repo(name, {f"app/{f}": t for f, t in files.items()})
        ns = f"{name}-{secrets.token_hex(2)}"
        t0 = clock()
        self.create_app(name, url, ns)
        t1, _ = self.wait_synced(name, sha, t0, timeout=600)
        label = f"{APP_NS}/{name}"
        wait_idle(agent_url, label, quiet=1.0, timeout=120)
        for _ in range(2):  # and two no-op re-syncs, so the peak covers steady state too
            count0, _sum = agent_reconciles(agent_url, label)
            post_webhook(agent_url, url)
            wait_reconciled(agent_url, label, count0)
        mem = proc_memory(self.proc.pid)
        self.stop_subprocess()
        bare = bare_import_peak_rss()
        peak_mb = mem["VmHWM"] / 1024
        self.figures["rss_kb"] = mem["VmHWM"]
        self.report.add(Row(
            f"agent peak RSS (VmHWM), subprocess managing {size:,} objects",
            f"{fmt_mb(mem['VmHWM'])} (now {fmt_mb(mem['VmRSS'])})",
            f"{fmt_mb(bare)} bare `import gitops_lab.agent.controller`",
            fmt_ratio(mem["VmHWM"], bare),
            f"≤ {TARGET_RSS_MB} MB", verdict(peak_mb <= TARGET_RSS_MB)))
        t_k = self.kubectl_initial.get(("configmaps", size), float("nan"))
        self.report.add(Row(
            f"initial sync, {size:,} ConfigMaps, agent as a subprocess (as the lab runs it)",
            fmt_s(t1 - t0), f"{fmt_s(t_k)} kubectl (row above)", fmt_ratio(t1 - t0, t_k),
            f"≤ {TARGET_INITIAL_RATIO}× kubectl" if size >= 1000 else "—",
            verdict((t1 - t0) / t_k <= TARGET_INITIAL_RATIO) if size >= 1000 else ""))
        self.delete_app(name, ns, wait=False)

    # ---- 9-11. the hand-written client vs the official one; peers; the agent at scale ---------
    def clients(self) -> None:
        from bench.clients import ClientBench

        ClientBench(self).run()

    def peers(self) -> None:
        from bench.peers import peer_rows

        self.stop_agent()  # the peers manage their own apps; no agent reconciling meanwhile
        peer_rows(self)

    def scale(self) -> None:
        from bench.scale import ScaleBench

        ScaleBench(self).run()

    # ---- 12. notebooks -------------------------------------------------------------------------------
    def notebooks(self) -> None:
        found = notebook_seconds()
        if found is None:
            self.report.add(Row("nbval notebooks, total", "n/a (run make test)", "—", "—"))
            self.report.note(f"notebook time is read from {notebook_times_file()} "
                             '({"total_seconds": …}), which the notebook tests can write')
        else:
            total, age = found
            ago = f"{age / 60:.0f} min" if age < 7200 else f"{age / 3600:.1f} h"
            self.report.add(Row(f"nbval notebooks, total (from a run {ago} ago)",
                                fmt_s(total), "—", "—"))


def notebook_times_file() -> Path:
    """Where the notebook tests may leave their timings for the bench:
    `{"total_seconds": 123.4, "notebooks": {"00-welcome": 8.1, ...}}`."""
    return cache_root() / "notebook-times.json"


def notebook_seconds() -> tuple[float, float] | None:
    """(total seconds, age of the file in seconds), if the notebook tests wrote one."""
    path = notebook_times_file()
    try:
        data = json.loads(path.read_text())
        age = time.time() - path.stat().st_mtime
    except (OSError, ValueError):
        return None
    total = data.get("total_seconds") if isinstance(data, dict) else None
    return (float(total), age) if isinstance(total, (int, float)) else None


def source_revision() -> str:
    """The commit measured, and whether gitops_lab/ had uncommitted changes (read-only git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                              capture_output=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "gitops_lab"], cwd=REPO,
                               text=True, capture_output=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown revision"
    return f"{head}{' + uncommitted changes in gitops_lab/' if dirty.strip() else ''}"
