"""Lab clusters by name: which provider made each, and up / down / status / kubeconfig of one.
cluster/: over the providers; the CLI and the Lab facade's teardown come through here.

`cluster up` records the provider in the cluster's state directory (`provider.json`), so that
`down`, `status` and `env` need no `--provider`; clusters made before that record are told
apart by the files their provider leaves.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from gitops_lab.cluster import PROVIDERS, get_provider
from gitops_lab.cluster.base import ClusterError, ClusterStatus, Progress, Provider, read_current
from gitops_lab.cluster.existing import ExistingCluster
from gitops_lab.cluster.kind import KindCluster
from gitops_lab.cluster.local import LocalCluster
from gitops_lab.paths import cluster_state_dir, current_cluster_file

__all__ = [
    "DEFAULT_NAME",
    "PROVIDER_MARKER",
    "choose_provider",
    "current_name",
    "open_cluster",
    "record",
    "recorded_provider",
    "running_kubeconfig",
    "status_of",
    "take_down",
]

DEFAULT_NAME = "gitops-lab"
# Written by `cluster up` so that `down`/`status`/`env` know which provider made a name.
PROVIDER_MARKER = "provider.json"


def _ignore(_line: str) -> None:
    pass


def recorded_provider(name: str) -> str | None:
    """The provider a cluster NAME was brought up with, or None when nothing is known of it."""
    state = cluster_state_dir(name)
    try:
        data = json.loads((state / PROVIDER_MARKER).read_text())
        if isinstance(data, dict) and data.get("provider") in PROVIDERS:
            return str(data["provider"])
    except (OSError, ValueError):
        pass
    if (state / "state.json").exists():
        return "local"
    if (state / "kind-config.yaml").exists():
        return "kind"
    if state.is_dir():
        return "local"  # a partial local state dir (e.g. `up` killed before state.json)
    return None


def record(name: str, provider: Provider) -> None:
    """Remember which provider (and, for `existing`, which kubeconfig) made cluster NAME."""
    state = cluster_state_dir(name)
    state.mkdir(parents=True, exist_ok=True)
    data: dict[str, str] = {"provider": provider.kind}
    if isinstance(provider, ExistingCluster):
        data["kubeconfig"] = str(provider.kubeconfig())
        if provider.context:
            data["context"] = provider.context
    (state / PROVIDER_MARKER).write_text(json.dumps(data) + "\n")


def open_cluster(name: str, kind: str) -> Provider:
    """A provider object for an existing record (no `auto`: the record says which)."""
    if kind == "existing":
        try:
            data = json.loads((cluster_state_dir(name) / PROVIDER_MARKER).read_text())
        except (OSError, ValueError):
            data = {}
        kubeconfig = data.get("kubeconfig")
        return ExistingCluster(
            name, Path(kubeconfig) if kubeconfig else None, data.get("context") or None
        )
    if kind == "kind":
        return KindCluster(name)
    return LocalCluster(name)


def choose_provider(
    name: str,
    requested: str | None = None,
    *,
    kubeconfig: Path | None = None,
    context: str | None = None,
    node_image: str | None = None,
    say: Progress = _ignore,
) -> Provider:
    """The provider `cluster up` brings NAME up with: the one asked for, else the one NAME was
    made with, else `auto`. Asking for another than the recorded one is a ClusterError."""
    recorded = recorded_provider(name)
    wanted = requested or recorded or "auto"
    if recorded and wanted not in ("auto", recorded):
        raise ClusterError(
            f"cluster {name!r} was brought up with provider {recorded!r}, not {wanted!r}; "
            f"hint: `gitops-lab cluster down --name {name}` first, or pick another --name"
        )
    if wanted == "existing":
        return ExistingCluster(name, kubeconfig, context)
    if wanted == "auto" and recorded:
        return open_cluster(name, recorded)
    if wanted == "auto":
        say("provider auto: checking for a Docker daemon (kind) …")
    provider = get_provider(wanted, name)
    if isinstance(provider, KindCluster) and node_image:
        provider.node_image = node_image
    if wanted == "auto":
        why = "a Docker daemon answers" if provider.kind == "kind" else (
            "no Docker daemon (or kind node image) here"
        )
        say(f"provider auto → {provider.kind} ({why})")
    return provider


def take_down(name: str, kind: str | None = None) -> Provider | None:
    """Stop cluster NAME and forget it (also as the current cluster); None when there is no
    such cluster. `kind` overrides the recorded provider."""
    kind = kind or recorded_provider(name)
    if kind is None:
        return None
    provider = open_cluster(name, kind)
    provider.down()
    if provider.kind == "existing":
        shutil.rmtree(cluster_state_dir(name), ignore_errors=True)
    current = read_current() if current_cluster_file().exists() else None
    if current is None or current.get("name") == name:
        current_cluster_file().unlink(missing_ok=True)
    return provider


def status_of(name: str, kind: str | None = None) -> ClusterStatus:
    """The status of cluster NAME; `running` False with "no such cluster" when unknown."""
    kind = kind or recorded_provider(name)
    if kind is None:
        return ClusterStatus(name, "none", False, None, detail="no such cluster")
    return open_cluster(name, kind).status()


def running_kubeconfig(name: str) -> Path | None:
    """The kubeconfig of cluster NAME while it runs, else None."""
    kind = recorded_provider(name)
    if kind is None:
        return None
    status = open_cluster(name, kind).status()
    return status.kubeconfig if status.running and status.kubeconfig else None


def current_name() -> str:
    """The lab's current cluster (the last one brought up), else the default name."""
    current = read_current()
    return current["name"] if current else DEFAULT_NAME
