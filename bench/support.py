"""Helpers for the benchmark: percentiles, exact-time watches, API-server metrics, kubectl,
generated manifests, and /proc readings. Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from gitops_lab.kube import Kube, KubeError

Obj = dict[str, Any]

clock = time.perf_counter  # one monotonic clock for every timestamp in the bench process


def say(line: str) -> None:
    """Progress goes to stderr; stdout carries only the table."""
    print(f"[bench] {line}", file=sys.stderr, flush=True)


# ---- statistics ------------------------------------------------------------------------------
def terminate(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM a subprocess agent and wait for it (SIGKILL after 15 s)."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def percentile(values: Iterable[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), q in [0, 100]."""
    data = sorted(values)
    if not data:
        return float("nan")
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def p50(values: Iterable[float]) -> float:
    return percentile(values, 50)


def p95(values: Iterable[float]) -> float:
    return percentile(values, 95)


def st(obj: Mapping[str, Any] | None, *path: str) -> Any:
    """status.<path> of an object, or None."""
    node: Any = (obj or {}).get("status") or {}
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


# ---- watches with arrival times ----------------------------------------------------------------
class Watcher:
    """List, then watch one collection; every event is kept with its arrival time (`clock()`),
    so a wait can return the time of the *first* event after a trigger that satisfies it.
    """

    def __init__(self, kube: Kube, path: str, keep: int = 400) -> None:
        self.kube = kube
        self.path = path
        self.keep = keep
        self.log: list[tuple[float, str, str, Obj]] = []  # (arrival, type, name, object)
        self.cond = threading.Condition()
        self.ready = threading.Event()
        self.stopped = threading.Event()
        self.error = ""
        self.thread = threading.Thread(target=self._run, name=f"bench-watch {path}", daemon=True)

    def start(self, timeout: float = 15.0) -> Watcher:
        self.thread.start()
        if not self.ready.wait(timeout):
            raise RuntimeError(f"watch {self.path} did not list in {timeout:.0f} s: {self.error}")
        return self

    def stop(self) -> None:
        self.stopped.set()

    def _record(self, kind: str, obj: Obj) -> None:
        name = str((obj.get("metadata") or {}).get("name"))
        with self.cond:
            self.log.append((clock(), kind, name, obj))
            if len(self.log) > self.keep * 2:
                del self.log[: len(self.log) - self.keep]
            self.cond.notify_all()

    def _run(self) -> None:
        rv = ""
        while not self.stopped.is_set():
            try:
                if not rv:
                    data = self.kube.request("GET", self.path)
                    for item in data.get("items") or []:
                        self._record("LIST", item)
                    rv = str((data.get("metadata") or {}).get("resourceVersion", ""))
                    self.ready.set()
                for event in self.kube.watch(self.path, resource_version=rv, timeout_seconds=20):
                    if self.stopped.is_set():
                        return
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        rv = ""
                        break
                    rv = str((obj.get("metadata") or {}).get("resourceVersion", rv))
                    if event.get("type") != "BOOKMARK":
                        self._record(str(event.get("type")), obj)
            except KubeError as exc:
                self.error = exc.message
                rv = "" if exc.gone or exc.status == 0 else rv
                self.stopped.wait(0.2)
            except Exception as exc:  # keep watching; a wait reports the timeout
                self.error = str(exc)
                rv = ""
                self.stopped.wait(0.2)

    def wait(self, pred: Callable[[str, Obj], bool], after: float, timeout: float,
             what: str = "") -> tuple[float, Obj]:
        """The first event that arrived at or after `after` and satisfies pred(name, obj)."""
        deadline = clock() + timeout
        with self.cond:
            while True:
                for t, kind, name, obj in self.log:
                    if t >= after and kind != "DELETED" and pred(name, obj):
                        return t, obj
                left = deadline - clock()
                if left <= 0:
                    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for "
                                       f"{what or 'a watch event'} on {self.path}")
                self.cond.wait(min(left, 0.5))

    def latest(self, name: str) -> Obj | None:
        with self.cond:
            for _, kind, n, obj in reversed(self.log):
                if n == name:
                    return None if kind == "DELETED" else obj
        return None


# ---- the API server's own request counters -----------------------------------------------------
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY"})
READ_VERBS = frozenset({"GET", "LIST"})
_SAMPLE = re.compile(r"^apiserver_request_total\{(.*)\} (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

Labels = tuple[tuple[str, str], ...]


class RawClient:
    """GETs that are not JSON (the API server's /metrics), with the admin kubeconfig."""

    def __init__(self, kubeconfig: Path) -> None:
        cfg = k8s_client.Configuration()
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig), client_configuration=cfg)
        self.host = cfg.host.rstrip("/")
        self.pool = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=cfg.ssl_ca_cert,
                                        cert_file=cfg.cert_file, key_file=cfg.key_file,
                                        retries=False)

    def text(self, path: str) -> str:
        resp = self.pool.request("GET", self.host + path, timeout=30.0)
        if resp.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {resp.status}")
        return resp.data.decode()

    def request_counts(self) -> dict[Labels, float]:
        """apiserver_request_total, one entry per label set."""
        out: dict[Labels, float] = {}
        for line in self.text("/metrics").splitlines():
            m = _SAMPLE.match(line)
            if m:
                out[tuple(sorted(_LABEL.findall(m.group(1))))] = float(m.group(2))
        return out


@dataclass
class WriteCount:
    """Requests in a window, split by who they are attributable to."""

    objects: int = 0  # writes to the kinds under test (the managed objects): should be 0
    app: int = 0  # writes to the Application itself (annotations, operation)
    app_status: int = 0  # writes to applications/status (counted apart, as the brief asks)
    events: int = 0  # Events (the agent records them)
    background: int = 0  # leases, nodes, pods…: other components (kwok, controllers)
    dry_runs: int = 0  # server-side-apply dry runs (writes that persist nothing)
    reads: int = 0  # GET + LIST
    detail: str = ""

    def add(self, other: WriteCount) -> None:
        for name in ("objects", "app", "app_status", "events", "background", "dry_runs", "reads"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def count_requests(before: Mapping[Labels, float], after: Mapping[Labels, float],
                   managed: set[str], apps: tuple[str, ...] = ("applications",)) -> WriteCount:
    """Classify the requests made between two /metrics snapshots; `managed` = resource names
    (plural, e.g. "configmaps") of the objects under test; `apps` = the resources that play
    the Application's part (a peer's: Kustomization + GitRepository)."""
    out = WriteCount()
    parts: dict[str, int] = {}
    for labels, value in after.items():
        delta = round(value - before.get(labels, 0.0))
        if delta <= 0:
            continue
        lab = dict(labels)
        verb, resource, sub = lab.get("verb", ""), lab.get("resource", ""), lab.get("subresource", "")
        if verb in READ_VERBS:
            out.reads += delta
            continue
        if verb not in WRITE_VERBS:
            continue
        if lab.get("dry_run"):
            out.dry_runs += delta
            continue
        where = f"{verb} {resource}{'/' + sub if sub else ''}"
        parts[where] = parts.get(where, 0) + delta
        if resource in apps and sub == "status":
            out.app_status += delta
        elif resource in apps:
            out.app += delta
        elif resource == "events":
            out.events += delta
        elif resource in managed:
            out.objects += delta
        else:
            out.background += delta
    out.detail = ", ".join(f"{n} {w}" for w, n in sorted(parts.items()))
    return out


# ---- the agent's own /metrics ------------------------------------------------------------------
_AGENT_SAMPLE = re.compile(r'^(gitopslab_reconcile_duration_seconds_(?:count|sum))\{app="([^"]*)"\} (\S+)$')


def agent_reconciles(agent_url: str, app_label: str) -> tuple[int, float]:
    """(count, sum of seconds) of gitopslab_reconcile_duration_seconds for one app."""
    with urllib.request.urlopen(f"{agent_url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    count, total = 0, 0.0
    for line in text.splitlines():
        m = _AGENT_SAMPLE.match(line)
        if m and m.group(2) == app_label:
            if m.group(1).endswith("_count"):
                count = int(float(m.group(3)))
            else:
                total = float(m.group(3))
    return count, total


def wait_reconciled(agent_url: str, app_label: str, count_before: int,
                    timeout: float = 60.0) -> tuple[float, int, float]:
    """Poll the agent's metrics until a reconcile of the app finished after `count_before`."""
    deadline = clock() + timeout
    while clock() < deadline:
        count, total = agent_reconciles(agent_url, app_label)
        if count > count_before:
            return clock(), count, total
        time.sleep(0.01)
    raise TimeoutError(f"no reconcile of {app_label} finished within {timeout:.0f} s")


def wait_idle(agent_url: str, app_label: str, quiet: float = 1.0, timeout: float = 60.0) -> None:
    """Until no reconcile of the app has finished for `quiet` seconds."""
    deadline = clock() + timeout
    last = agent_reconciles(agent_url, app_label)[0]
    since = clock()
    while clock() < deadline:
        time.sleep(0.1)
        now = agent_reconciles(agent_url, app_label)[0]
        if now != last:
            last, since = now, clock()
        elif clock() - since >= quiet:
            return
    say(f"warning: {app_label} never went quiet for {quiet:.1f} s (still reconciling)")


def post_webhook(agent_url: str, repo_url: str) -> int:
    """What a Git host sends on push (GitHub-style `repository` fields); returns apps refreshed."""
    body = json.dumps({"ref": "refs/heads/main",
                       "repository": {"url": repo_url, "clone_url": repo_url}}).encode()
    req = urllib.request.Request(f"{agent_url}/webhook", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return int(json.loads(resp.read()).get("refreshed", 0))


# ---- kubectl -------------------------------------------------------------------------------------
class Kubectl:
    """The lab's kubectl against the bench cluster, with a discovery cache of its own."""

    def __init__(self, binary: Path, kubeconfig: Path, cache_dir: Path) -> None:
        self.base = [str(binary), f"--kubeconfig={kubeconfig}", f"--cache-dir={cache_dir}"]

    def run(self, *args: str, stdin: str | None = None, check: bool = True,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([*self.base, *args], input=stdin, capture_output=True, text=True,
                             timeout=timeout, check=False)
        if check and out.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args[:4])} failed: {out.stderr.strip()[:400]}")
        return out

    def timed(self, *args: str, stdin: str | None = None) -> float:
        t0 = clock()
        self.run(*args, stdin=stdin)
        return clock() - t0


# ---- generated manifests -------------------------------------------------------------------------
def configmap(name: str, value: str = "0", namespace: str | None = None) -> Obj:
    meta: Obj = {"name": name, "labels": {"app.kubernetes.io/part-of": "bench"}}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
            "data": {"value": value, "greeting": "hello from the benchmark",
                     "settings.ini": "[server]\nport = 8080\nworkers = 4\n"}}


def deployment(name: str, replicas: int) -> Obj:
    labels = {"app.kubernetes.io/name": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": dict(labels)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"containers": [{
                                      "name": "web", "image": "nginx:1.27-alpine",
                                      "ports": [{"containerPort": 80}]}]}}}}


def service(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app.kubernetes.io/name": name},
                     "ports": [{"port": 80, "targetPort": 80}]}}


def object_set(mix: str, count: int) -> dict[str, str]:
    """`count` objects, one YAML file each: all ConfigMaps, or a mix of 50 % ConfigMaps,
    25 % Deployments (replicas 0: the apply path is the same, and 250 Deployments do not ask
    kwok's one node for 250+ pods) and 25 % Services."""
    files: dict[str, str] = {}
    for i in range(count):
        if mix == "configmaps" or i % 4 in (0, 1):
            obj = configmap(f"cm-{i:04d}", str(i))
        elif i % 4 == 2:
            obj = deployment(f"web-{i:04d}", 0)
        else:
            obj = service(f"web-{i - 1:04d}")  # the Service of the Deployment just before
        files[f"{i:04d}-{obj['kind'].lower()}.yaml"] = yaml.safe_dump(obj, sort_keys=False)
    return files


# ---- /proc -----------------------------------------------------------------------------------------
def proc_memory(pid: int) -> dict[str, int]:
    """VmHWM (peak RSS) and VmRSS of a live process, in kB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0])
    return out


def bare_import_peak_rss(module: str = "gitops_lab.agent.controller") -> int:
    """Peak RSS (kB) of `python -c "import <module>"`, read by that process at its end."""
    code = (f"import {module}\n"
            "for line in open('/proc/self/status'):\n"
            "    if line.startswith('VmHWM:'): print(line.split()[1])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    return int(out.stdout.strip())
