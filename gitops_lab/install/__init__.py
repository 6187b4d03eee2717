"""Install the agent: the Application CRD, the gitops-lab namespace, ServiceAccount and RBAC,
and (mode in-cluster) the agent Deployment whose image is built and loaded into kind.
Used by `gitops-lab agent install`, the Lab facade and the tests.
"""

from __future__ import annotations

import time
from importlib import resources
from typing import Any

import yaml

from gitops_lab.kube import Kube, KubeError

__all__ = [
    "AGENT_SERVICE_ACCOUNT",
    "InstallError",
    "agent_token",
    "install",
    "install_git_server",
    "manifests",
]

AGENT_SERVICE_ACCOUNT = "gitops-lab-agent"
INSTALL_MANAGER = "gitops-lab-install"


class InstallError(RuntimeError):
    """The agent could not be installed; the message names the object and a hint."""


def manifests(mode: str = "local") -> list[dict[str, Any]]:
    """The install objects in apply order: CRD, namespace, RBAC, then (in-cluster) the agent."""
    names = ["crd.yaml", "namespace.yaml", "rbac.yaml"]
    if mode == "in-cluster":
        names.append("agent-deployment.yaml")
    return _load(*names)


def _load(*names: str) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    folder = resources.files("gitops_lab.install") / "manifests"
    for name in names:
        docs.extend(d for d in yaml.safe_load_all((folder / name).read_text()) if d)
    return docs


def _use_image(objs: list[dict[str, Any]], image: str | None, revision: str | None) -> None:
    """Point every pod template at IMAGE; REVISION (the image's inputs hash) goes into the
    template's annotations so a rebuilt image under the same tag rolls the pods."""
    for obj in objs:
        template = (obj.get("spec") or {}).get("template")
        if not template:
            continue
        spec = template["spec"]
        for container in spec.get("initContainers", []) + spec.get("containers", []):
            if image:
                container["image"] = image
        if revision:
            template.setdefault("metadata", {}).setdefault("annotations", {})[
                "gitopslab.io/image-revision"] = revision


def install(kube: Kube, mode: str = "local", *, timeout: float = 30.0,
            image: str | None = None, image_revision: str | None = None) -> list[str]:
    """Apply the manifests (idempotent, server-side apply); wait for the CRD to be served.
    In-cluster, IMAGE (default gitops-lab/agent:dev) must already be on the nodes."""
    if mode not in ("local", "in-cluster"):
        raise InstallError(f"unknown mode {mode!r}; hint: local or in-cluster")
    objs = manifests(mode)
    _use_image(objs, image, image_revision)
    return _apply_all(kube, objs, timeout)


def install_git_server(kube: Kube, *, image: str | None = None,
                       image_revision: str | None = None, timeout: float = 30.0) -> list[str]:
    """The lab's in-cluster Git server (kind): a `git daemon` Deployment and its NodePort."""
    objs = _load("namespace.yaml", "git-server.yaml")
    _use_image(objs, image, image_revision)
    return _apply_all(kube, objs, timeout)


def _apply_all(kube: Kube, objs: list[dict[str, Any]], timeout: float) -> list[str]:
    done = []
    for obj in objs:
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
