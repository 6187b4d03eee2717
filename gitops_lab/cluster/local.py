"""The `local` provider: a real control plane from binaries, with kwok's simulated nodes.
etcd + kube-apiserver (RBAC, ServiceAccount tokens) + controller-manager + scheduler + kwok,
all on loopback, state under ~/.cache/gitops-lab/clusters/NAME. Needs no container runtime.

Why a small launcher rather than `kwokctl --runtime binary`: kwokctl downloads whatever it is
not handed and wants its own layout; here every flag that matters to the lab (RBAC on,
TokenRequest signing keys, loopback only, a fake node that takes untolerated pods) is visible
in one function a learner can read, and `down` can prove it left no process behind.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from gitops_lab.cluster.base import (
    ClusterError,
    ClusterStatus,
    Progress,
    Provider,
    write_current,
)
from gitops_lab.cluster.binaries import Toolchain, ensure_binaries
from gitops_lab.cluster.pki import Pki, make_pki
from gitops_lab.paths import cluster_state_dir

__all__ = ["FAKE_NODE_ANNOTATION", "KWOK_STAGES", "LocalCluster"]

FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
SERVICE_CIDR = "10.96.0.0/16"  # addresses handed to Services; nothing is ever sent there

# kwok decides pod lifecycles with Stage rules. Besides its default "pods become Ready", the
# lab adds two rules so that a bad release can make an app Degraded without a container
# runtime: a pod whose image tag ends with "-broken" runs but never becomes Ready (what a
# failing readiness probe does on kind), and one whose image ends with ":does-not-exist" gets
# ImagePullBackOff, the status a kubelet reports when the registry has no such tag.
KWOK_STAGES = Path(__file__).with_name("kwok-stages.yaml")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _proc_start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat: tells a live process from a recycled pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _proc_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _pids_mentioning(marker: str, programs: tuple[str, ...] = COMPONENTS) -> list[int]:
    """Every process of `programs` whose command line names `marker` (the cluster's state dir).

    Only the control-plane programs: a learner's `tail -f .../logs/etcd.log` is left alone.
    """
    found = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        cmdline = _proc_cmdline(int(entry.name))
        if marker in cmdline and Path(cmdline.split(" ", 1)[0]).name in programs:
            found.append(int(entry.name))
    return found


class LocalCluster(Provider):
    """A control plane of real Kubernetes binaries on 127.0.0.1 with kwok fake nodes."""

    kind = "local"

    def __init__(
        self, name: str = "gitops-lab", *, nodes: int = 1, toolchain: Toolchain | None = None
    ) -> None:
        super().__init__(name)
        self.nodes = nodes
        self._toolchain = toolchain
        self.state_dir = cluster_state_dir(name)

    # ---- paths -------------------------------------------------------------------------
    @property
    def _state_file(self) -> Path:
        return self.state_dir / "state.json"

    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    def log_file(self, component: str) -> Path:
        return self.state_dir / "logs" / f"{component}.log"

    def _read_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self._state_file.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _write_state(self, state: dict[str, Any]) -> None:
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        os.replace(tmp, self._state_file)

    # ---- status ------------------------------------------------------------------------
    def _alive(self, record: dict[str, Any]) -> bool:
        pid = int(record.get("pid", 0))
        return pid > 0 and _proc_start_time(pid) == record.get("start")

    def _ssl_context(self) -> ssl.SSLContext:
        pki = Pki(self.state_dir / "pki")
        ctx = ssl.create_default_context(cafile=str(pki.ca_crt))
        ctx.load_cert_chain(str(pki.admin_crt), str(pki.admin_key))
        return ctx

    def _get(self, port: int, path: str, timeout: float = 2.0) -> tuple[int, str]:
        conn = http.client.HTTPSConnection(
            "127.0.0.1", port, context=self._ssl_context(), timeout=timeout
        )
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read().decode(errors="replace")
        finally:
            conn.close()

    def _ready(self, state: dict[str, Any]) -> bool:
        port = state.get("ports", {}).get("apiserver")
        if not port:
            return False
        try:
            code, _ = self._get(int(port), "/readyz")
        except (OSError, ssl.SSLError, http.client.HTTPException):
            return False
        return code == 200

    def status(self) -> ClusterStatus:
        state = self._read_state()
        procs = state.get("processes", {})
        components = {
            name: ("running" if self._alive(procs[name]) else "stopped") if name in procs
            else "absent"
            for name in COMPONENTS
        }
        running = bool(procs) and all(v == "running" for v in components.values())
        running = running and self._ready(state)
        port = state.get("ports", {}).get("apiserver")
        return ClusterStatus(
            name=self.name,
            provider=self.kind,
            running=running,
            kubeconfig=self.kubeconfig() if self.kubeconfig().exists() else None,
            server=f"https://127.0.0.1:{port}" if port else None,
            detail=f"state in {self.state_dir}",
            components=components,
        )

    # ---- up ------------------------------------------------------------------------------
    def up(self, progress: Progress | None = None) -> Path:
        say: Progress = progress or (lambda _line: None)
        if self.status().running:
            say(f"local cluster {self.name!r} is already up")
            write_current(self.name, self.kind, self.kubeconfig())
            return self.kubeconfig()
        if self.state_dir.exists():
            say(f"cleaning up a stopped or partial cluster in {self.state_dir}")
            self.down()
        tools = self._toolchain or ensure_binaries(say)
        start = time.monotonic()
        try:
            self._start(tools, say)
        except BaseException:
            self.down()
            raise
        say(f"local cluster {self.name!r} up in {time.monotonic() - start:.1f} s")
        write_current(self.name, self.kind, self.kubeconfig())
        return self.kubeconfig()

    def _spawn(self, state: dict[str, Any], component: str, argv: list[str]) -> None:
        log = self.log_file(component)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as sink:
            # A session of its own: the cluster outlives the `cluster up` command that made it;
            # `down` finds every process again by pid+start time and by its state dir.
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.state_dir,
            )
        state.setdefault("processes", {})[component] = {
            "pid": proc.pid,
            "start": _proc_start_time(proc.pid),
            "argv": argv,
        }
        self._write_state(state)

    def _wait(self, what: str, check: Any, timeout: float, component: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            record = self._read_state().get("processes", {}).get(component)
            if record and not self._alive(record):
                raise ClusterError(
                    f"{component} exited while waiting for {what}; log: "
                    f"{self.log_file(component)}\n{self._log_tail(component)}"
                )
            time.sleep(0.1)
        raise ClusterError(
            f"timed out after {timeout:.0f} s waiting for {what}; log: "
            f"{self.log_file(component)}\n{self._log_tail(component)}"
        )

    def _log_tail(self, component: str, lines: int = 12) -> str:
        try:
            text = self.log_file(component).read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        except OSError:
            return ""

    def _start(self, tools: Toolchain, say: Progress) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        pki = make_pki(self.state_dir / "pki")
        ports = {
            "etcd": _free_port(),
            "etcd-peer": _free_port(),
            "apiserver": _free_port(),
            "kwok": _free_port(),
        }
        state: dict[str, Any] = {"name": self.name, "ports": ports, "processes": {}}
        self._write_state(state)
        self._write_kubeconfig(pki, ports["apiserver"])
        kubeconfig = str(self.kubeconfig())

        say("starting etcd")
        etcd_url = f"http://127.0.0.1:{ports['etcd']}"
        peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
        self._spawn(state, "etcd", [
            str(tools.path("etcd")),
            "--name=lab",
            f"--data-dir={self.state_dir / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=lab={peer_url}",
            "--listen-metrics-urls=",
            "--unsafe-no-fsync=true",  # a lab cluster: speed over durability
            "--log-level=warn",
        ])

        say("starting kube-apiserver (RBAC on, ServiceAccount tokens signed by the lab's key)")
        self._spawn(state, "kube-apiserver", [
            str(tools.path("kube-apiserver")),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports['apiserver']}",
            f"--cert-dir={self.state_dir / 'pki'}",
            f"--tls-cert-file={pki.apiserver_crt}",
            f"--tls-private-key-file={pki.apiserver_key}",
            f"--client-ca-file={pki.ca_crt}",
            "--authorization-mode=RBAC",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            "--api-audiences=https://kubernetes.default.svc.cluster.local",
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            "--v=1",
        ])
        self._wait(
            "the API server's /readyz",
            lambda: self._ready(state),
            timeout=90,
            component="kube-apiserver",
        )

        say("starting kube-controller-manager and kube-scheduler")
        # Both run as the lab's admin, serve nothing (secure-port 0) and need no leader lease.
        controller_flags = [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--leader-elect=false",
            "--v=1",
        ]
        self._spawn(state, "kube-controller-manager", [
            str(tools.path("kube-controller-manager")),
            *controller_flags,
            f"--service-account-private-key-file={pki.sa_key}",
            f"--root-ca-file={pki.ca_crt}",
            "--use-service-account-credentials=false",
            "--controllers=*,-nodeipam,-service-lb-controller,-cloud-node-lifecycle",
            "--concurrent-deployment-syncs=10",
            "--concurrent-replicaset-syncs=10",
        ])
        self._spawn(state, "kube-scheduler", [str(tools.path("kube-scheduler")), *controller_flags])

        say(f"starting kwok with {self.nodes} simulated node(s)")
        self._spawn(state, "kwok", [
            str(tools.path("kwok")),
            f"--kubeconfig={kubeconfig}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
            "--manage-nodes-with-label-selector=",
            f"--server-address=127.0.0.1:{ports['kwok']}",
            "--node-ip=127.0.0.1",
            "--cidr=10.244.0.0/16",
            f"--config={KWOK_STAGES}",
        ])
        self._create_nodes(tools)
        self._wait(
            "the simulated node(s) to be Ready",
            lambda: self._nodes_ready(tools),
            timeout=60,
            component="kwok",
        )
        self._wait(
            "the default ServiceAccount (controller-manager)",
            lambda: self._kubectl_ok(tools, "get", "serviceaccount", "default", "-n", "default"),
            timeout=60,
            component="kube-controller-manager",
        )

    def _write_kubeconfig(self, pki: Pki, port: int) -> None:
        def b64(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{
                "name": self.name,
                "cluster": {
                    "server": f"https://127.0.0.1:{port}",
                    "certificate-authority-data": b64(pki.ca_crt),
                },
            }],
            "users": [{
                "name": f"{self.name}-admin",
                "user": {
                    "client-certificate-data": b64(pki.admin_crt),
                    "client-key-data": b64(pki.admin_key),
                },
            }],
            "contexts": [{
                "name": self.name,
                "context": {"cluster": self.name, "user": f"{self.name}-admin"},
            }],
            "current-context": self.name,
        }
        path = self.kubeconfig()
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)

    def _kubectl(
        self, tools: Toolchain, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(tools.path("kubectl")), f"--kubeconfig={self.kubeconfig()}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def _kubectl_ok(self, tools: Toolchain, *args: str) -> bool:
        return self._kubectl(tools, *args).returncode == 0

    def _create_nodes(self, tools: Toolchain) -> None:
        docs = []
        for i in range(self.nodes):
            name = f"kwok-node-{i}"
            docs.append({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {FAKE_NODE_ANNOTATION: "fake"},
                    "labels": {
                        "type": "kwok",
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "node-role.kubernetes.io/agent": "",
                    },
                },
                # No taints: plain pods with no tolerations land here.
                "spec": {},
                "status": {
                    "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "250"},
                    "capacity": {"cpu": "32", "memory": "256Gi", "pods": "250"},
                    "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux",
                                 "kubeletVersion": "fake", "kubeProxyVersion": "fake"},
                },
            })
        manifest = yaml.safe_dump_all(docs)
        out = self._kubectl(tools, "apply", "-f", "-", stdin=manifest)
        if out.returncode != 0:
            raise ClusterError(f"could not create the simulated nodes: {out.stderr.strip()}")

    def _nodes_ready(self, tools: Toolchain) -> bool:
        out = self._kubectl(tools, "get", "nodes", "-o", "json")
        if out.returncode != 0:
            return False
        items = json.loads(out.stdout).get("items", [])
        ready = 0
        for node in items:
            for cond in node.get("status", {}).get("conditions", []) or []:
                if cond.get("type") == "Ready" and cond.get("status") == "True":
                    ready += 1
        return ready >= self.nodes

    # ---- down ----------------------------------------------------------------------------
    def down(self) -> None:
        """Stop every process of this cluster (recorded or found by its state dir), remove state.

        `down` throws the cluster's data away, so nothing needs a graceful shutdown: SIGKILL.
        (SIGTERM to etcd and kube-apiserver at once stalls both for 7-10 s, each waiting on the
        other's connections.) The /proc scan also finds processes whose `up` was killed before
        it could record them.
        """
        pids: set[int] = set()
        for record in self._read_state().get("processes", {}).values():
            if self._alive(record):
                pids.add(int(record["pid"]))
        pids.update(_pids_mentioning(str(self.state_dir) + "/"))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10.0
        while pids and time.monotonic() < deadline:
            pids = {p for p in pids if _is_running(p)}
            time.sleep(0.02)
        shutil.rmtree(self.state_dir, ignore_errors=True)
        if pids:
            raise ClusterError(
                f"processes {sorted(pids)} of cluster {self.name!r} survived SIGKILL; "
                "hint: `ps -o pid,stat,cmd -p PID` (a process stuck in state D needs a reboot)"
            )

    def restart(self, component: str) -> None:
        """Stop and start one component with the same flags (used to test API-server restarts)."""
        state = self._read_state()
        record = state.get("processes", {}).get(component)
        if not record:
            raise ClusterError(f"{component} is not part of cluster {self.name!r}")
        if self._alive(record):
            os.kill(int(record["pid"]), signal.SIGTERM)
            deadline = time.monotonic() + 15
            while _is_running(int(record["pid"])) and time.monotonic() < deadline:
                time.sleep(0.05)
        self._spawn(state, component, list(record["argv"]))
        if component == "kube-apiserver":
            self._wait("the API server's /readyz", lambda: self._ready(state), 90, component)


def _is_running(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    if state == "Z":
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True
