"""Where the lab keeps things on this machine: the cache root and every directory under it.
The ground floor of the package: imports nothing of gitops_lab, so any layer may ask here.

One rule for the root (`$GITOPS_LAB_CACHE`, else `$XDG_CACHE_HOME/gitops-lab`, else
`~/.cache/gitops-lab`), read afresh at every call so tests and benchmarks can point it away.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "KUBERNETES_VERSION",
    "bin_dir",
    "build_dir",
    "cache_root",
    "cluster_state_dir",
    "clusters_root",
    "current_cluster_file",
    "dockerd_dir",
    "lab_state_dir",
    "node_bin_dir",
    "peers_dir",
    "registry_dir",
]

# The Kubernetes release the lab pins; its binaries live in a directory named after it.
KUBERNETES_VERSION = "v1.35.4"


def cache_root() -> Path:
    """`$GITOPS_LAB_CACHE`, else `$XDG_CACHE_HOME/gitops-lab`, else `~/.cache/gitops-lab`."""
    env = os.environ.get("GITOPS_LAB_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "gitops-lab"


def bin_dir() -> Path:
    """The control-plane binaries (kube-apiserver, …, kubectl, etcd, kwok, kind)."""
    return cache_root() / f"k8s-{KUBERNETES_VERSION}" / "bin"


def node_bin_dir() -> Path:
    """The node binaries (kubelet, kubeadm, …) baked into the lab's kind node image."""
    return cache_root() / f"k8s-{KUBERNETES_VERSION}" / "node-bin"


def build_dir(what: str) -> Path:
    """A scratch directory for one build (Go wrapper modules, root filesystems)."""
    return cache_root() / "build" / what


def clusters_root() -> Path:
    """Where every lab cluster keeps its state, one directory a name."""
    return cache_root() / "clusters"


def cluster_state_dir(name: str) -> Path:
    """The state of lab cluster NAME (its provider record, kubeconfig, pids, PKI)."""
    return clusters_root() / name


def current_cluster_file() -> Path:
    """The lab's current cluster, the one `gitops-lab env` and the CLI use by default."""
    return cache_root() / "current.json"


def lab_state_dir(name: str) -> Path:
    """What `Lab.connect()` keeps for lab NAME: its Git server and the agent's record."""
    return cache_root() / "lab" / name


def registry_dir(name: str) -> Path:
    """The state and blobs of the lab's OCI registry NAME."""
    return cache_root() / "registry" / name


def dockerd_dir() -> Path:
    """The state of the Docker daemon `gitops-lab docker start` runs, and the host sysctls."""
    return cache_root() / "dockerd"


def peers_dir() -> Path:
    """The peer tools `make bench` builds to compare with (Argo CD, Flux)."""
    return cache_root() / "peers"
