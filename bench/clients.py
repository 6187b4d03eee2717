"""gitops_lab/kube.py (the hand-written REST client over urllib3) against the official
`kubernetes` package's DynamicClient, on the work the agent does (issue 12, item 4):

  discovery       a fresh client until ConfigMap, Deployment and Application are resolved
                  (kube.py: every group-version at once; DynamicClient: lazily, with a
                  discovery cache file of its own, fresh each time)
  SSA 1,000       server-side apply of 1,000 ConfigMaps into a fresh namespace, 8 threads
                  (the engine's apply parallelism), results as dicts (what the engine keeps)
  no-op SSA       the same 1,000 applied again, unchanged (the API server writes nothing)
  list 1,000      one LIST of the namespace's 1,000 ConfigMaps, as dicts
  watch           from a PATCH to the watch event's arrival, 10 writes

Both clients run in the bench process with the same admin credentials, alternately, in the
same run; each figure is the p50 of its repetitions.
"""

from __future__ import annotations

import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes import dynamic

from bench.report import Row, fmt_s
from bench.support import clock, configmap, p50, say
from gitops_lab.kube import Kube

if TYPE_CHECKING:
    from bench.scenarios import Bench

Obj = dict[str, Any]
MANAGER = "bench-clients"
APP_GV = "gitopslab.io/v1alpha1"


class Client:
    """The verbs the agent needs, through one of the two clients."""

    name = ""

    def discover(self) -> None:
        raise NotImplementedError

    def apply(self, obj: Obj) -> Obj:
        raise NotImplementedError

    def list(self, namespace: str) -> list[Obj]:
        raise NotImplementedError

    def watch(self, namespace: str, rv: str, stop: threading.Event) -> Iterator[Obj]:
        raise NotImplementedError

    def list_rv(self, namespace: str) -> str:
        raise NotImplementedError


class HandWritten(Client):
    name = "kube.py"

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self.kube = Kube.from_kubeconfig(kubeconfig)

    def discover(self) -> None:
        self.kube = Kube.from_kubeconfig(self.kubeconfig)
        for api_version, kind in (("v1", "ConfigMap"), ("apps/v1", "Deployment"),
                                  (APP_GV, "Application")):
            self.kube.resource_for(api_version, kind)

    def apply(self, obj: Obj) -> Obj:
        return self.kube.apply(obj, field_manager=MANAGER)

    def list(self, namespace: str) -> list[Obj]:
        return list(self.kube.list("v1", "ConfigMap", namespace).get("items") or [])

    def list_rv(self, namespace: str) -> str:
        data = self.kube.list("v1", "ConfigMap", namespace, limit=1)
        return str(data["metadata"]["resourceVersion"])

    def watch(self, namespace: str, rv: str, stop: threading.Event) -> Iterator[Obj]:
        path = f"/api/v1/namespaces/{namespace}/configmaps"
        for event in self.kube.watch(path, resource_version=rv, timeout_seconds=60):
            if stop.is_set():
                return
            yield event


class Dynamic(Client):
    name = "DynamicClient"

    def __init__(self, kubeconfig: Path, tmp: Path) -> None:
        self.kubeconfig = kubeconfig
        self.tmp = tmp
        self.discover()

    def discover(self) -> None:
        cfg = k8s_client.Configuration()
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig), client_configuration=cfg)
        cfg.connection_pool_maxsize = 32  # as kube.py's pool: 8 apply threads never wait
        cache = self.tmp / f"discovery-{secrets.token_hex(4)}.json"
        self.dyn = dynamic.DynamicClient(  # type: ignore[no-untyped-call]
            k8s_client.ApiClient(cfg), cache_file=str(cache))
        self.cm = self.dyn.resources.get(api_version="v1", kind="ConfigMap")
        self.dyn.resources.get(api_version="apps/v1", kind="Deployment")
        self.dyn.resources.get(api_version=APP_GV, kind="Application")

    def apply(self, obj: Obj) -> Obj:
        out = self.cm.server_side_apply(body=obj, namespace=obj["metadata"]["namespace"],
                                        field_manager=MANAGER, force_conflicts=True)
        return dict(out.to_dict())

    def list(self, namespace: str) -> list[Obj]:
        return list(self.cm.get(namespace=namespace).to_dict().get("items") or [])

    def list_rv(self, namespace: str) -> str:
        return str(self.cm.get(namespace=namespace, limit=1).metadata.resourceVersion)

    def watch(self, namespace: str, rv: str, stop: threading.Event) -> Iterator[Obj]:
        for event in self.cm.watch(namespace=namespace, resource_version=rv, timeout=60):
            if stop.is_set():
                return
            yield {"type": event["type"], "object": event["raw_object"]}


def timed(fn: Callable[[], Any]) -> float:
    t0 = clock()
    fn()
    return clock() - t0


class ClientBench:
    def __init__(self, bench: Bench) -> None:
        self.b = bench
        self.size = max(bench.opts.sizes)
        self.reps = 2 if bench.opts.quick else 3
        self.tmp = Path(tempfile.mkdtemp(prefix="clients-", dir=bench.tmp))
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="bench-apply")

    def apply_all(self, client: Client, namespace: str, value: str) -> None:
        objs = [configmap(f"cm-{i:04d}", value, namespace) for i in range(self.size)]
        for _ in self.pool.map(client.apply, objs):
            pass

    def watch_latency(self, client: Client, writer: Kube, namespace: str, n: int) -> list[float]:
        stop = threading.Event()
        seen: dict[str, float] = {}
        cond = threading.Condition()
        rv = client.list_rv(namespace)

        def run() -> None:
            for event in client.watch(namespace, rv, stop):
                obj = event.get("object") or {}
                value = str((obj.get("data") or {}).get("value", ""))
                with cond:
                    seen.setdefault(value, clock())
                    cond.notify_all()

        thread = threading.Thread(target=run, daemon=True, name=f"bench-watch {client.name}")
        thread.start()
        time.sleep(0.5)  # the watch is open
        out: list[float] = []
        for i in range(n):
            value = f"w{i}-{secrets.token_hex(3)}"
            t0 = clock()
            writer.patch("v1", "ConfigMap", "cm-0000", {"data": {"value": value}}, namespace)
            with cond:
                if cond.wait_for(lambda v=value: v in seen, 10):  # type: ignore[misc]
                    out.append(seen[value] - t0)
            time.sleep(0.05)
        stop.set()
        return out

    def run(self) -> None:
        b = self.b
        say(f"clients: kube.py vs the official DynamicClient ({self.size} ConfigMaps)")
        clients: list[Client] = [HandWritten(b.kubeconfig), Dynamic(b.kubeconfig, self.tmp)]
        res: dict[str, dict[str, list[float]]] = {c.name: {} for c in clients}

        def rec(c: Client, what: str, seconds: float) -> None:
            res[c.name].setdefault(what, []).append(seconds)

        namespaces: list[str] = []
        try:
            for r in range(self.reps):
                order = clients if r % 2 == 0 else clients[::-1]
                for c in order:
                    rec(c, "discovery", timed(c.discover))
                for c in order:
                    ns = f"cl-{'k' if c is clients[0] else 'd'}-{secrets.token_hex(2)}"
                    b.kubectl.run("create", "namespace", ns)
                    namespaces.append(ns)
                    rec(c, "ssa", timed(partial(self.apply_all, c, ns, "0")))
                    rec(c, "noop", timed(partial(self.apply_all, c, ns, "0")))
                    rec(c, "list", timed(partial(c.list, ns)))
                    say(f"  {c.name}: {', '.join(f'{k} {fmt_s(v[-1])}' for k, v in res[c.name].items())}")
            for c in clients:
                res[c.name]["watch"] = self.watch_latency(c, b.admin, namespaces[-1], 10)
        finally:
            self.pool.shutdown(wait=False)
            for ns in namespaces:
                b.kubectl.run("delete", "namespace", ns, "--wait=false", check=False)
        k, d = res["kube.py"], res["DynamicClient"]
        rows = (("discovery (ConfigMap, Deployment, Application resolved)", "discovery"),
                (f"server-side apply of {self.size:,} ConfigMaps, 8 threads", "ssa"),
                (f"no-op re-apply of the same {self.size:,} (unchanged)", "noop"),
                (f"LIST of {self.size:,} ConfigMaps, as dicts", "list"),
                ("watch: PATCH → event arrives, n=10", "watch"))
        for label, key in rows:
            kv, dv = p50(k.get(key, [])), p50(d.get(key, []))
            ratio = kv / dv if dv else float("nan")
            lead = ("kube.py clearly faster" if ratio <= 0.8 else
                    "DynamicClient clearly faster" if ratio >= 1.25 else "within ±25 %: a tie")
            b.report.add(Row(f"client: {label}", f"{fmt_s(kv)} kube.py",
                             f"{fmt_s(dv)} official DynamicClient (same run)",
                             f"{ratio:.2f}×", lead, ""))
        b.report.note(f"clients: p50 of {self.reps} repetitions (alternating which client goes "
                      "first); DynamicClient results converted with to_dict() as the engine keeps "
                      "dicts; both with a 32-connection pool")
