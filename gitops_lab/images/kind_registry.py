"""The lab registry on kind: the same Distribution registry, as a container on kind's Docker
network, so that the node's containerd can pull what CI pushed.

One name works everywhere: images are `127.0.0.1:PORT/guestbook:TAG`.
- CI on the host pushes to 127.0.0.1:PORT (the container's port, published on loopback only);
- the node's containerd pulls `127.0.0.1:PORT/…` from `http://<cluster>-registry:5000`
  (a `hosts.toml` in /etc/containerd/certs.d; Docker's DNS on the kind network);
- the agent, a pod, scans it through the Service `registry.gitops-lab:5000`, whose Endpoints
  name the container's address ($GITOPS_LAB_REGISTRY_ENDPOINTS maps the name);
- push notifications go from the container to the agent's NodePort on the node container.
The container goes with the cluster (`KindCluster.down`); its storage stays in the lab's cache.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from gitops_lab.cluster.kind import AGENT_NODE_PORT, KindCluster
from gitops_lab.images.registry_server import (
    DEFAULT_PORT,
    HOST,
    LabRegistry,
    RegistryServerError,
    RegistryStatus,
    _answers,
    _free_port,
    registry_binary,
)

__all__ = ["REGISTRY_IMAGE", "SERVICE_URL", "KindRegistry", "registry_for", "registry_image"]

REGISTRY_IMAGE = "gitops-lab/registry:dev"
SERVICE_URL = "http://registry.gitops-lab:5000"
LABEL = "io.gitops-lab.registry-for"


def _docker(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, input=input,
                          timeout=120, check=False)


def registry_image() -> str:
    """Debian's Distribution binary on the lab's bookworm base image (built here)."""
    from gitops_lab.cluster.imagebuild import INPUTS_LABEL, image_label
    from gitops_lab.cluster.labimages import base_image

    binary = Path(registry_binary())
    base = base_image()
    import hashlib

    inputs = hashlib.sha256(binary.read_bytes() + base.encode()).hexdigest()[:16]
    if image_label(REGISTRY_IMAGE, INPUTS_LABEL) == inputs:
        return REGISTRY_IMAGE
    with tempfile.TemporaryDirectory(prefix="gitops-lab-registry-") as tmp:
        shutil.copy2(binary, Path(tmp) / "registry")
        (Path(tmp) / "Dockerfile").write_text(
            f"FROM {base}\nCOPY registry /usr/local/bin/registry\nEXPOSE 5000\n"
            'ENTRYPOINT ["/usr/local/bin/registry", "serve", "/etc/registry/config.yml"]\n'
            f"LABEL {INPUTS_LABEL}={inputs}\n")
        out = _docker("build", "-q", "-t", REGISTRY_IMAGE, tmp)
    if out.returncode != 0:
        raise RegistryServerError(f"docker build {REGISTRY_IMAGE} failed: {out.stderr.strip()}")
    return REGISTRY_IMAGE


class KindRegistry(LabRegistry):
    """The registry of kind cluster NAME: container `<NAME>-registry` on the `kind` network."""

    def __init__(self, name: str = "gitops-lab", root: Path | None = None) -> None:
        super().__init__(name, root)
        self.container = f"{name}-registry"

    @property
    def notify_url(self) -> str:
        """The in-cluster agent's /registry-webhook, as the registry container reaches it."""
        return f"http://{self.name}-control-plane:{AGENT_NODE_PORT}/registry-webhook"

    def _inspect(self) -> dict[str, Any]:
        out = _docker("inspect", self.container)
        if out.returncode != 0:
            return {}
        items = json.loads(out.stdout or "[]")
        return items[0] if items else {}

    def address_on_network(self) -> str:
        networks = ((self._inspect().get("NetworkSettings") or {}).get("Networks") or {})
        return str((networks.get("kind") or {}).get("IPAddress") or "")

    def status(self) -> RegistryStatus:
        state = self._state()
        port = int(state.get("port") or 0)
        info = self._inspect()
        running = bool((info.get("State") or {}).get("Running")) and _answers(port)
        return RegistryStatus(self.name, running, f"{HOST}:{port}" if running else "",
                              int((info.get("State") or {}).get("Pid") or 0),
                              str(state.get("notify") or ""), str(self.root),
                              f"docker logs {self.container}")

    def _config(self, port: int, notify: str) -> dict[str, Any]:
        config = super()._config(port, notify)
        config["http"]["addr"] = ":5000"
        config["storage"]["filesystem"]["rootdirectory"] = "/var/lib/registry"
        return config

    def _start(self, port: int | None, notify: str, timeout: float) -> str:
        image = registry_image()
        _docker("rm", "-f", self.container)
        if port is None:
            port = DEFAULT_PORT if not _answers(DEFAULT_PORT) else _free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(yaml.safe_dump(self._config(port, notify), sort_keys=False))
        out = _docker("run", "-d", "--name", self.container, "--restart", "unless-stopped",
                      "--network", "kind", "--label", f"{LABEL}={self.name}",
                      "-p", f"{HOST}:{port}:5000",
                      "-v", f"{self.data_dir}:/var/lib/registry",
                      "-v", f"{self.config_file}:/etc/registry/config.yml:ro", image)
        if out.returncode != 0:
            raise RegistryServerError(f"docker run {self.container} failed: {out.stderr.strip()}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _answers(port, 0.2):
                state = {"port": port, "notify": notify, "root": str(self.root),
                         "container": self.container}
                self.state_file.write_text(json.dumps(state))
                return f"{HOST}:{port}"
            time.sleep(0.1)
        logs = _docker("logs", "--tail", "5", self.container)
        raise RegistryServerError(f"the registry container did not answer on {HOST}:{port}: "
                                  f"{(logs.stdout + logs.stderr).strip()}")

    def down(self) -> bool:
        was = bool(self._inspect())
        _docker("rm", "-f", self.container)
        self.state_file.unlink(missing_ok=True)
        return was

    def connect(self, cluster: KindCluster, kube: Any) -> str:
        """Start (or keep) the registry, let the node pull from it and the agent scan it;
        returns its `host:port`, the image-name prefix used everywhere."""
        address = self.up(notify=self.notify_url)
        node = f"{cluster.name}-control-plane"
        hosts = (f'server = "http://{self.container}:5000"\n\n'
                 f'[host."http://{self.container}:5000"]\n  capabilities = ["pull", "resolve"]\n')
        out = _docker("exec", "-i", node, "sh", "-c",
                      f"mkdir -p '/etc/containerd/certs.d/{address}' && "
                      f"cat > '/etc/containerd/certs.d/{address}/hosts.toml'", input=hosts)
        if out.returncode != 0:
            raise RegistryServerError(f"could not point {node}'s containerd at the registry: "
                                      f"{out.stderr.strip()}")
        ip = self.address_on_network()
        for obj in _service(ip):
            kube.apply(obj, field_manager="gitops-lab-install")
        return address


def _service(ip: str) -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": "registry", "app.kubernetes.io/part-of": "gitops-lab"}
    return [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "registry", "namespace": "gitops-lab", "labels": labels},
         "spec": {"ports": [{"name": "http", "port": 5000, "targetPort": 5000}]}},
        {"apiVersion": "v1", "kind": "Endpoints",
         "metadata": {"name": "registry", "namespace": "gitops-lab", "labels": labels},
         "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "http", "port": 5000}]}]},
    ]


def registry_for(name: str) -> LabRegistry:
    """The registry of lab NAME: the container beside its kind cluster, else the host process."""
    if KindCluster(name).config_file.exists():
        return KindRegistry(name)
    return LabRegistry(name)
