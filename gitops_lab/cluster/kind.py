"""The `kind` provider: a real cluster of Docker containers, where containers really run.

Needs a Docker daemon (`gitops-lab docker start` on a bare Debian machine). The node image is
the stock `kindest/node` where a registry answers, else `gitops-lab/node:<version>`, built
here from Debian packages and Go modules (nodeimage.py); `--node-image` overrides both.

The cluster is one node, as the lab needs: a static bridge CNI (the node image's), the
kubelet allowed on cgroup v1 hosts, cluster DNS answering for cluster names only (the lab
removes CoreDNS's `forward`), and three NodePorts mapped to the host's loopback:
30080 the sample app, 30081 the in-cluster agent's HTTP (/healthz, /metrics, /webhook), 30418
the in-cluster Git server. Where one of those host ports is taken, another free one is used
and recorded (`host_port()`).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
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
from gitops_lab.cluster.binaries import KUBERNETES_VERSION
from gitops_lab.cluster.docker import docker_available, record_host_sysctls, restore_host_sysctls
from gitops_lab.paths import bin_dir, cluster_state_dir

__all__ = [
    "AGENT_NODE_PORT",
    "APP_NODE_PORT",
    "GIT_NODE_PORT",
    "STOCK_NODE_IMAGE",
    "KindCluster",
    "docker_available",
    "kind_binary",
    "local_only_corefile",
    "node_image_available",
]

STOCK_NODE_IMAGE = f"kindest/node:{KUBERNETES_VERSION}"
APP_NODE_PORT = 30080
AGENT_NODE_PORT = 30081
GIT_NODE_PORT = 30418
NODE_PORTS = (APP_NODE_PORT, AGENT_NODE_PORT, GIT_NODE_PORT)


def kind_binary() -> str | None:
    cached = bin_dir() / "kind"
    if cached.is_file():
        return str(cached)
    return shutil.which("kind")


def _docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


def node_image_available(timeout: float = 60.0) -> bool:
    """A kind node image is here or can be had: present locally, pullable, or buildable
    (Docker answers; the lab builds its own node image then)."""
    return docker_available(timeout=min(timeout, 5.0))


def _can_build_node_image() -> bool:
    """The lab builds its own node image on Linux with debootstrap and Go (a Debian host)."""
    return all(shutil.which(tool) for tool in ("debootstrap", "go", "containerd", "chroot"))


def local_only_corefile(corefile: str) -> str:
    """CoreDNS's Corefile without `forward` (blocks included) and `loop`: cluster DNS then
    answers for cluster names only and never sends a query off the machine."""
    lines, skipping = [], False
    for line in corefile.splitlines():
        stripped = line.strip()
        if skipping:
            skipping = stripped != "}"
            continue
        if stripped.startswith("forward "):
            skipping = stripped.endswith("{")
            continue
        if stripped == "loop":
            continue
        lines.append(line)
    return "\n".join(lines) + "\n"


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class KindCluster(Provider):
    kind = "kind"

    def __init__(self, name: str = "gitops-lab", node_image: str | None = None) -> None:
        super().__init__(name)
        self.state_dir = cluster_state_dir(name)
        self.node_image = node_image

    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def config_file(self) -> Path:
        return self.state_dir / "kind-config.yaml"

    def _kind(self) -> str:
        kind = kind_binary()
        if kind is None:
            raise ClusterError(
                "kind is not installed; hint: `make setup` builds it into "
                f"{bin_dir()}, or `go install sigs.k8s.io/kind@latest`"
            )
        if not docker_available():
            raise ClusterError(
                "no Docker daemon answers `docker info`; hint: `gitops-lab docker start` "
                "(Debian: apt-get install docker.io first), or use `--provider local` "
                "(a real control plane with simulated nodes)"
            )
        return kind

    def _exists(self, kind: str) -> bool:
        out = subprocess.run([kind, "get", "clusters"], capture_output=True, text=True,
                             check=False)
        return self.name in out.stdout.split()

    # ---- ports ---------------------------------------------------------------------------------
    def host_port(self, node_port: int) -> int:
        """The host port on 127.0.0.1 that NODE_PORT (30080, 30081 or 30418) is mapped to."""
        try:
            config = yaml.safe_load(self.config_file.read_text())
            for mapping in config["nodes"][0]["extraPortMappings"]:
                if mapping["containerPort"] == node_port:
                    return int(mapping["hostPort"])
        except (OSError, KeyError, IndexError, TypeError, yaml.YAMLError):
            pass
        return node_port

    def _config(self) -> dict[str, Any]:
        mappings = [{"containerPort": port,
                     "hostPort": port if _port_free(port) else _free_port(),
                     "listenAddress": "127.0.0.1"} for port in NODE_PORTS]
        return {
            "kind": "Cluster",
            "apiVersion": "kind.x-k8s.io/v1alpha4",
            "name": self.name,
            # kindnetd cannot be had offline: the lab's node image carries a bridge CNI config
            "networking": {"apiServerAddress": "127.0.0.1", "disableDefaultCNI": True},
            "kubeadmConfigPatches": [
                # kubelet 1.35 refuses cgroup v1 hosts unless told; harmless on cgroup v2.
                # syncFrequency: mounted ConfigMaps reach running pods within seconds, so a
                # GREETING committed to Git shows on the sample app's page without a restart.
                "kind: KubeletConfiguration\nfailCgroupV1: false\nsyncFrequency: 5s\n",
            ],
            "nodes": [{"role": "control-plane", "extraPortMappings": mappings}],
        }

    # ---- lifecycle -------------------------------------------------------------------------------
    def _choose_image(self, say: Progress) -> str:
        """`--node-image` / $GITOPS_LAB_NODE_IMAGE; else the lab's own node image where it can
        be built here (a Linux host with debootstrap and Go: nothing is pulled, no registry
        needed); else the stock kindest/node, which Docker pulls (macOS, Windows)."""
        import os

        chosen = self.node_image or os.environ.get("GITOPS_LAB_NODE_IMAGE")
        if chosen:
            return chosen
        if not _can_build_node_image():
            say(f"using the stock {STOCK_NODE_IMAGE} (Docker pulls it if it is not here)")
            return STOCK_NODE_IMAGE
        from gitops_lab.cluster.nodeimage import ensure_node_image

        return ensure_node_image(say)

    def up(self, progress: Progress | None = None) -> Path:
        say: Progress = progress or (lambda _line: None)
        kind = self._kind()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if not self._exists(kind):
            image = self._choose_image(say)
            config = self._config()
            self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))
            (self.state_dir / "node-image").write_text(image)
            record_host_sysctls()
            say(f"kind create cluster --name {self.name} --image {image}")
            started = time.monotonic()
            out = subprocess.run(
                [kind, "create", "cluster", "--name", self.name, "--image", image,
                 "--config", str(self.config_file), "--wait", "0s",
                 "--kubeconfig", str(self.kubeconfig())],
                capture_output=True, text=True, check=False,
            )
            if out.returncode != 0:
                tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-15:])
                subprocess.run([kind, "delete", "cluster", "--name", self.name],
                               capture_output=True, check=False)
                raise ClusterError(
                    f"kind create cluster failed (exit {out.returncode}):\n{tail}\nhint: "
                    "check `docker info`; `gitops-lab doctor` lists what is missing"
                )
            say(f"kind node container started in {time.monotonic() - started:.0f} s")
        export = subprocess.run(
            [kind, "export", "kubeconfig", "--name", self.name,
             "--kubeconfig", str(self.kubeconfig())],
            capture_output=True, text=True, check=False,
        )
        if export.returncode != 0:
            raise ClusterError(f"kind export kubeconfig failed: {export.stderr.strip()}")
        self._wait_nodes_ready(say)
        self._local_dns_only(say)
        write_current(self.name, self.kind, self.kubeconfig())
        return self.kubeconfig()

    def kubectl(self, *args: str, input: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        kubectl = str(bin_dir() / "kubectl") if (bin_dir() / "kubectl").exists() else "kubectl"
        return subprocess.run([kubectl, f"--kubeconfig={self.kubeconfig()}", *args],
                              capture_output=True, text=True, input=input, timeout=timeout,
                              check=False)

    def _wait_nodes_ready(self, say: Progress, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        say("waiting for the kind node to be Ready")
        while time.monotonic() < deadline:
            out = self.kubectl("get", "nodes", "-o", "json")
            if out.returncode == 0:
                nodes = json.loads(out.stdout).get("items", [])
                if nodes and all(
                    any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in n.get("status", {}).get("conditions", []))
                    for n in nodes
                ):
                    return
            time.sleep(1)
        raise ClusterError(f"kind nodes not Ready after {timeout:.0f} s; see `kubectl get nodes`")

    def _local_dns_only(self, say: Progress) -> None:
        """Drop `forward` and `loop` from CoreDNS's Corefile: cluster DNS answers for cluster
        names and never sends a query off the machine."""
        out = self.kubectl("get", "configmap", "coredns", "-n", "kube-system", "-o", "json")
        if out.returncode != 0:
            return
        cm = json.loads(out.stdout)
        corefile = cm.get("data", {}).get("Corefile", "")
        new = local_only_corefile(corefile)
        if new.strip() == corefile.strip():
            return
        say("CoreDNS: answering for cluster names only (no forwarding off the machine)")
        patch = json.dumps({"data": {"Corefile": new}})
        self.kubectl("patch", "configmap", "coredns", "-n", "kube-system", "--type=merge",
                     "-p", patch)
        self.kubectl("rollout", "restart", "deployment/coredns", "-n", "kube-system")

    def load_images(self, images: list[str], progress: Progress | None = None) -> None:
        """`kind load docker-image` IMAGES that this cluster's node does not hold yet (what
        was loaded is recorded by image ID in the cluster's state, which `down` removes)."""
        say: Progress = progress or (lambda _line: None)
        kind = self._kind()
        record = self.state_dir / "loaded-images.json"
        try:
            loaded: dict[str, str] = json.loads(record.read_text())
        except (OSError, ValueError):
            loaded = {}
        for image in images:
            want = _docker("image", "inspect", image, "--format", "{{.Id}}").stdout.strip()
            if not want:
                raise ClusterError(f"image {image} is not in Docker; hint: build it first")
            if loaded.get(image) == want:
                continue
            started = time.monotonic()
            out = subprocess.run([kind, "load", "docker-image", image, "--name", self.name],
                                 capture_output=True, text=True, check=False)
            if out.returncode != 0:
                raise ClusterError(f"kind load docker-image {image} failed: {out.stderr.strip()}")
            loaded[image] = want
            record.write_text(json.dumps(loaded, indent=1))
            say(f"loaded {image} into the node in {time.monotonic() - started:.1f} s")

    def down(self) -> None:
        kind = kind_binary()
        last = True
        if kind is not None and docker_available():
            subprocess.run([kind, "delete", "cluster", "--name", self.name],
                           capture_output=True, check=False)
            _docker("rm", "-f", f"{self.name}-registry")  # the lab registry (its storage stays)
            others = _docker("ps", "-aq", "--filter", "label=io.x-k8s.kind.cluster").stdout
            last = not others.strip()
            if last:  # kind leaves its Docker network (a bridge) behind
                _docker("network", "rm", "kind")
        if last:  # another kind node's kubelet still relies on them otherwise
            restore_host_sysctls()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def status(self) -> ClusterStatus:
        kind = kind_binary()
        running = bool(kind) and docker_available() and self._exists(str(kind))
        image = ""
        with contextlib.suppress(OSError):
            image = (self.state_dir / "node-image").read_text().strip()
        return ClusterStatus(
            name=self.name,
            provider=self.kind,
            running=running,
            kubeconfig=self.kubeconfig() if self.kubeconfig().exists() else None,
            detail=f"kind cluster in Docker (node image {image})" if running else "not running",
        )
