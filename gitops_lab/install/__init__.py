"""Install the agent: the Application and ImagePolicy CRDs, the gitops-lab namespace, ServiceAccount and RBAC,
and (mode in-cluster) the agent Deployment whose image is built and loaded into kind.
Used by `gitops-lab agent install`, the Lab facade and the tests.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from gitops_lab.kube import Kube, KubeError

__all__ = [
    "AGENT_IMAGE",
    "AGENT_SERVICE_ACCOUNT",
    "InstallError",
    "agent_token",
    "build_image",
    "install",
    "manifests",
]

AGENT_SERVICE_ACCOUNT = "gitops-lab-agent"
AGENT_IMAGE = "gitops-lab-agent:dev"
INSTALL_MANAGER = "gitops-lab-install"
REPO_ROOT = Path(__file__).resolve().parents[2]


class InstallError(RuntimeError):
    """The agent could not be installed; the message names the object and a hint."""


def manifests(mode: str = "local") -> list[dict[str, Any]]:
    """The install objects in apply order: CRD, namespace, RBAC, then (in-cluster) the agent."""
    names = ["crd.yaml", "imagepolicy-crd.yaml", "namespace.yaml", "rbac.yaml"]
    if mode == "in-cluster":
        names.append("deployment.yaml")
    docs: list[dict[str, Any]] = []
    folder = resources.files("gitops_lab.install") / "manifests"
    for name in names:
        docs.extend(d for d in yaml.safe_load_all((folder / name).read_text()) if d)
    return docs


def install(kube: Kube, mode: str = "local", *, timeout: float = 30.0) -> list[str]:
    """Apply the manifests (idempotent, server-side apply); wait for the CRD to be served."""
    if mode not in ("local", "in-cluster"):
        raise InstallError(f"unknown mode {mode!r}; hint: local or in-cluster")
    done = []
    for obj in manifests(mode):
        name = f"{obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
        try:
            kube.apply(obj, field_manager=INSTALL_MANAGER)
        except KubeError as exc:
            raise InstallError(f"could not apply {name}: {exc.message}") from exc
        done.append(name.replace(" /", " "))
        if obj["kind"] == "CustomResourceDefinition":
            _wait_established(kube, obj["metadata"]["name"], timeout)
    return done


def _wait_established(kube: Kube, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        crd = kube.get_or_none("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
        conds = ((crd or {}).get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Established" and c.get("status") == "True" for c in conds):
            kube.refresh_discovery()
            return
        time.sleep(0.1)
    raise InstallError(f"CustomResourceDefinition {name} was not established in {timeout:.0f} s")


def agent_token(kube: Kube, namespace: str = "gitops-lab",
                service_account: str = AGENT_SERVICE_ACCOUNT,
                seconds: int = 86400) -> str:
    """A token for the agent's ServiceAccount from the TokenRequest API (local mode)."""
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token"
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": seconds}}
    try:
        out = kube.request("POST", path, body=body)
    except KubeError as exc:
        raise InstallError(
            f"TokenRequest for {namespace}/{service_account} failed: {exc.message}; "
            "hint: run `gitops-lab agent install` first"
        ) from exc
    return str(out["status"]["token"])


def build_image(cluster_name: str = "gitops-lab") -> None:
    """`docker build` the agent image from this checkout and `kind load` it (kind only)."""
    docker = shutil.which("docker")
    if docker is None:
        raise InstallError("docker is not installed; hint: in-cluster mode needs kind + Docker, "
                           "use --mode local on the local control plane")
    dockerfile = REPO_ROOT / "Dockerfile"
    if not dockerfile.exists():
        raise InstallError(f"{dockerfile} not found; hint: build from a source checkout")
    for cmd in (
        [docker, "build", "-t", AGENT_IMAGE, str(REPO_ROOT)],
        ["kind", "load", "docker-image", AGENT_IMAGE, "--name", cluster_name],
    ):
        out = subprocess.run(cmd, check=False)
        if out.returncode != 0:
            raise InstallError(f"{' '.join(cmd[:3])} failed (exit {out.returncode})")
