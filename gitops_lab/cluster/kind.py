"""The `kind` provider: a real cluster of Docker containers, for learners who have Docker.
Drives the `kind` CLI with a config naming the cluster and the port mappings the lab uses.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import yaml

from gitops_lab.cluster.base import (
    ClusterError,
    ClusterStatus,
    Progress,
    Provider,
    clusters_root,
    write_current,
)
from gitops_lab.cluster.binaries import bin_dir

__all__ = ["KIND_NODE_IMAGE", "KindCluster", "docker_available", "kind_binary"]

KIND_NODE_IMAGE = "kindest/node:v1.35.0"
# The sample app's Service is a NodePort on 30080; mapped to the host's loopback only.
PORT_MAPPINGS = [{"containerPort": 30080, "hostPort": 30080, "listenAddress": "127.0.0.1"}]


def kind_binary() -> str | None:
    cached = bin_dir() / "kind"
    if cached.is_file():
        return str(cached)
    return shutil.which("kind")


def docker_available(timeout: float = 5.0) -> bool:
    """True when a Docker daemon answers (the client alone is not enough)."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        out = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and bool(out.stdout.strip())


def node_image_available(timeout: float = 60.0) -> bool:
    """The kind node image is present locally, or `docker pull` fetches it."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    for args in (["image", "inspect", KIND_NODE_IMAGE], ["pull", KIND_NODE_IMAGE]):
        try:
            out = subprocess.run(
                [docker, *args], capture_output=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0:
            return True
    return False


class KindCluster(Provider):
    kind = "kind"

    def __init__(self, name: str = "gitops-lab") -> None:
        super().__init__(name)
        self.state_dir = clusters_root() / name

    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    def _kind(self) -> str:
        kind = kind_binary()
        if kind is None:
            raise ClusterError(
                "kind is not installed; hint: `make setup` builds it into "
                f"{bin_dir()}, or `go install sigs.k8s.io/kind@latest`"
            )
        if not docker_available():
            raise ClusterError(
                "no Docker daemon answers `docker info`; hint: start Docker, or use "
                "`--provider local` (a real control plane with simulated nodes)"
            )
        return kind

    def _exists(self, kind: str) -> bool:
        out = subprocess.run(
            [kind, "get", "clusters"], capture_output=True, text=True, check=False
        )
        return self.name in out.stdout.split()

    def up(self, progress: Progress | None = None) -> Path:
        say: Progress = progress or (lambda _line: None)
        kind = self._kind()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if not self._exists(kind):
            config = {
                "kind": "Cluster",
                "apiVersion": "kind.x-k8s.io/v1alpha4",
                "name": self.name,
                "networking": {"apiServerAddress": "127.0.0.1"},
                "nodes": [{"role": "control-plane", "extraPortMappings": PORT_MAPPINGS}],
            }
            config_file = self.state_dir / "kind-config.yaml"
            config_file.write_text(yaml.safe_dump(config, sort_keys=False))
            say(f"kind create cluster --name {self.name} (pulls {KIND_NODE_IMAGE} if needed)")
            out = subprocess.run(
                [kind, "create", "cluster", "--name", self.name, "--image", KIND_NODE_IMAGE,
                 "--config", str(config_file), "--wait", "120s",
                 "--kubeconfig", str(self.kubeconfig())],
                text=True, check=False,
            )
            if out.returncode != 0:
                raise ClusterError(
                    f"kind create cluster failed (exit {out.returncode}); hint: check "
                    "`docker info` and that the node image can be pulled"
                )
        export = subprocess.run(
            [kind, "export", "kubeconfig", "--name", self.name,
             "--kubeconfig", str(self.kubeconfig())],
            capture_output=True, text=True, check=False,
        )
        if export.returncode != 0:
            raise ClusterError(f"kind export kubeconfig failed: {export.stderr.strip()}")
        self._wait_nodes_ready(say)
        write_current(self.name, self.kind, self.kubeconfig())
        return self.kubeconfig()

    def _wait_nodes_ready(self, say: Progress, timeout: float = 180) -> None:
        kubectl = str(bin_dir() / "kubectl") if (bin_dir() / "kubectl").exists() else "kubectl"
        deadline = time.monotonic() + timeout
        say("waiting for the kind node to be Ready")
        while time.monotonic() < deadline:
            out = subprocess.run(
                [kubectl, f"--kubeconfig={self.kubeconfig()}", "get", "nodes", "-o", "json"],
                capture_output=True, text=True, check=False,
            )
            if out.returncode == 0:
                nodes = json.loads(out.stdout).get("items", [])
                if nodes and all(
                    any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in n.get("status", {}).get("conditions", []))
                    for n in nodes
                ):
                    return
            time.sleep(2)
        raise ClusterError(f"kind nodes not Ready after {timeout:.0f} s; see `kubectl get nodes`")

    def down(self) -> None:
        kind = kind_binary()
        if kind is not None and docker_available():
            subprocess.run([kind, "delete", "cluster", "--name", self.name], check=False)
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def status(self) -> ClusterStatus:
        kind = kind_binary()
        running = bool(kind) and docker_available() and self._exists(str(kind))
        return ClusterStatus(
            name=self.name,
            provider=self.kind,
            running=running,
            kubeconfig=self.kubeconfig() if self.kubeconfig().exists() else None,
            detail="kind cluster in Docker" if running else "not running",
        )
