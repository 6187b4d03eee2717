"""The agent and the lab's Git server as pods of a kind cluster.

`deploy_agent` builds the agent image on this machine (labimages.py), loads it into the kind
node, applies the install manifests with the agent Deployment and waits for it to be ready.
`deploy_git_server` does the same for the lab's `git daemon`. Both are idempotent: a second
call with nothing changed is a few API requests.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gitops_lab.cluster.kind import KindCluster
from gitops_lab.install import InstallError, install, install_git_server
from gitops_lab.kube import Kube

__all__ = ["deploy_agent", "deploy_git_server", "wait_rollout"]

Progress = Callable[[str], None]
NAMESPACE = "gitops-lab"


def _image(cluster: KindCluster, say: Progress, *, base: bool = False) -> tuple[str, str]:
    """The agent image (or its base: python3 + git, for the Git server) loaded into the node,
    with its inputs hash (a new build rolls the pods that use it)."""
    from gitops_lab.cluster.imagebuild import INPUTS_LABEL, image_label
    from gitops_lab.cluster.labimages import agent_image, base_image

    image = base_image(say) if base else agent_image(say)
    cluster.load_images([image], say)
    return image, image_label(image, INPUTS_LABEL) or ""


def deploy_agent(kube: Kube, cluster: KindCluster, progress: Progress | None = None,
                 *, namespace: str = NAMESPACE, timeout: float = 120.0,
                 env: dict[str, str] | None = None) -> list[str]:
    say: Progress = progress or (lambda _line: None)
    image, revision = _image(cluster, say)
    if env is None:
        env = registry_env(cluster)
    done = install(kube, "in-cluster", namespace=namespace, image=image,
                   image_revision=revision, env=env)
    wait_rollout(kube, "gitops-lab-agent", namespace=namespace, timeout=timeout, progress=say)
    return done


def registry_env(cluster: KindCluster) -> dict[str, str]:
    """The agent pod scans the lab registry by the name the node pulls from (127.0.0.1:PORT),
    reached through the Service in front of the registry container; empty without one."""
    from gitops_lab.images.kind_registry import SERVICE_URL, KindRegistry
    from gitops_lab.images.registry import ENDPOINTS_ENV

    address = KindRegistry(cluster.name).address
    return {ENDPOINTS_ENV: f"{address}={SERVICE_URL}"} if address else {}


def deploy_git_server(kube: Kube, cluster: KindCluster, progress: Progress | None = None,
                      *, timeout: float = 120.0) -> list[str]:
    say: Progress = progress or (lambda _line: None)
    image, revision = _image(cluster, say, base=True)
    done = install_git_server(kube, image=image, image_revision=revision)
    wait_rollout(kube, "git-server", timeout=timeout, progress=say)
    return done


def wait_rollout(kube: Kube, name: str, *, namespace: str = NAMESPACE, timeout: float = 120.0,
                 progress: Progress | None = None) -> None:
    """Wait until Deployment NAME has all its replicas updated and ready."""
    say: Progress = progress or (lambda _line: None)
    deadline = time.monotonic() + timeout
    said = ""
    while time.monotonic() < deadline:
        dep = kube.get_or_none("apps/v1", "Deployment", name, namespace) or {}
        spec, status = dep.get("spec") or {}, dep.get("status") or {}
        want = int(spec.get("replicas", 1))
        generation = (dep.get("metadata") or {}).get("generation")
        ready = (status.get("observedGeneration") == generation
                 and int(status.get("updatedReplicas", 0)) == want
                 and int(status.get("readyReplicas", 0)) == want
                 and int(status.get("replicas", 0)) == want)
        if ready:
            return
        line = f"{name}: {status.get('readyReplicas', 0)}/{want} ready"
        if line != said:
            say(line)
            said = line
        time.sleep(0.5)
    raise InstallError(
        f"Deployment {namespace}/{name} was not ready within {timeout:.0f} s; hint: "
        f"`kubectl -n {namespace} describe deployment {name}` and `kubectl -n {namespace} "
        f"logs deployment/{name}`"
    )


class ClusterGitServer:
    """The lab's Git server running in the kind cluster (git-server.yaml): the agent pulls
    from `url()`, the learner (and the lab's working copy) pushes to `push_url()`."""

    def __init__(self, cluster: KindCluster) -> None:
        self.cluster = cluster

    def url(self, name: str) -> str:
        return f"git://git-server.{NAMESPACE}:9418/{name}.git"

    def push_url(self, name: str) -> str:
        from gitops_lab.cluster.kind import GIT_NODE_PORT

        return f"git://127.0.0.1:{self.cluster.host_port(GIT_NODE_PORT)}/{name}.git"

    def running(self) -> bool:
        import socket

        from gitops_lab.cluster.kind import GIT_NODE_PORT

        try:
            with socket.create_connection(("127.0.0.1", self.cluster.host_port(GIT_NODE_PORT)),
                                          timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """Nothing to stop on the host: the server goes away with the cluster."""


def kubeconfig_kind_cluster(kubeconfig: str | None = None) -> str | None:
    """The kind cluster the kubeconfig's current context names (kind names its contexts
    `kind-NAME`): `kubeconfig`, else the first file of $KUBECONFIG. None for any other."""
    import os
    from pathlib import Path

    import yaml

    path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    if not path:
        return None
    try:
        data = yaml.safe_load(Path(path).expanduser().read_text())
    except (OSError, yaml.YAMLError):
        return None
    context = str((data or {}).get("current-context") or "") if isinstance(data, dict) else ""
    return context.removeprefix("kind-") if context.startswith("kind-") else None


def host_git_urls(cluster_name: str | None = None) -> dict[str, str]:
    """For compares run on this machine (`app diff`, the DiffView widget): the in-cluster Git
    server's URL prefix → its NodePort on 127.0.0.1, when the lab's cluster is kind.

    Which lab: `cluster_name`, else the kind cluster $KUBECONFIG points at (what a notebook's
    `Lab.connect()` and `gitops-lab env` set), else the lab brought up last. Every kind lab's
    Git server has the same in-cluster URL, so with several labs on one machine the last one
    brought up may be another learner's."""
    from gitops_lab.cluster.base import read_current
    from gitops_lab.cluster.kind import GIT_NODE_PORT

    if cluster_name is None:
        cluster_name = kubeconfig_kind_cluster()
    if cluster_name is None:
        current = read_current() or {}
        if current.get("provider") != "kind":
            return {}
        cluster_name = current.get("name", "")
    cluster = KindCluster(cluster_name)
    if not cluster.config_file.exists():
        return {}
    return {f"git://git-server.{NAMESPACE}:9418/":
            f"git://127.0.0.1:{cluster.host_port(GIT_NODE_PORT)}/"}
