"""Lab clusters: pick a provider (kind, local control plane, existing kubeconfig) and use it.
The CLI, the Lab facade and the pytest fixture all come through `get_provider`.
"""

from __future__ import annotations

import os
from pathlib import Path

from gitops_lab.cluster.base import (
    ClusterError,
    ClusterStatus,
    Progress,
    Provider,
    read_current,
)
from gitops_lab.cluster.binaries import BinaryError, ensure_binaries
from gitops_lab.cluster.docker import docker_available
from gitops_lab.cluster.existing import ExistingCluster
from gitops_lab.cluster.kind import KindCluster, node_image_available
from gitops_lab.cluster.local import LocalCluster

__all__ = [
    "PROVIDERS",
    "BinaryError",
    "ClusterError",
    "ClusterStatus",
    "ExistingCluster",
    "KindCluster",
    "LocalCluster",
    "Progress",
    "Provider",
    "ensure_binaries",
    "get_provider",
    "resolve_kubeconfig",
]

PROVIDERS = ("auto", "kind", "local", "existing")


def get_provider(kind: str = "auto", name: str = "gitops-lab") -> Provider:
    """`auto` = kind where a Docker daemon answers and the node image is there, else local."""
    if kind == "auto":
        kind = "kind" if docker_available() and node_image_available() else "local"
    if kind == "kind":
        return KindCluster(name)
    if kind == "local":
        return LocalCluster(name)
    if kind == "existing":
        return ExistingCluster(name)
    raise ClusterError(f"unknown provider {kind!r}; hint: one of {', '.join(PROVIDERS)}")


def resolve_kubeconfig(explicit: str | os.PathLike[str] | None = None) -> Path:
    """`--kubeconfig`, else $KUBECONFIG, else the lab's current cluster, else ~/.kube/config."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("KUBECONFIG")
    if env:
        return Path(env.split(os.pathsep)[0]).expanduser()
    current = read_current()
    if current:
        return Path(current["kubeconfig"])
    default = Path.home() / ".kube" / "config"
    if default.exists():
        return default
    raise ClusterError(
        "no kubeconfig found; hint: run `gitops-lab cluster up` or pass --kubeconfig"
    )
