"""Install the agent: the Application and ImagePolicy CRDs, the gitops-lab namespace, ServiceAccount and RBAC,
and (mode in-cluster) the agent Deployment whose image is built and loaded into kind.
Used by `gitops-lab agent install`, the Lab facade and the tests.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from importlib import resources
from typing import Any

import yaml

from gitops_lab.kube import Kube, KubeError, TokenSource

__all__ = [
    "AGENT_SERVICE_ACCOUNT",
    "DEFAULT_NAMESPACE",
    "TOKEN_SECONDS",
    "InstallError",
    "agent_token",
    "agent_token_source",
    "cluster_role_name",
    "install",
    "install_git_server",
    "manifests",
]

AGENT_SERVICE_ACCOUNT = "gitops-lab-agent"
DEFAULT_NAMESPACE = "gitops-lab"
# Lifetime asked for the agent's token (local mode); renewed at 80 % of it. The API server's
# minimum for TokenRequest is 600 s.
TOKEN_SECONDS = 3600
INSTALL_MANAGER = "gitops-lab-install"


class InstallError(RuntimeError):
    """The agent could not be installed; the message names the object and a hint."""


def cluster_role_name(namespace: str = DEFAULT_NAMESPACE) -> str:
    """The agent's ClusterRole/ClusterRoleBinding: one per install namespace (they are
    cluster-wide, so two installs must not overwrite each other's binding)."""
    if namespace == DEFAULT_NAMESPACE:
        return AGENT_SERVICE_ACCOUNT
    return f"{AGENT_SERVICE_ACCOUNT}-{namespace}"


def _in_namespace(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    """One install object moved to `namespace` (objects, subjects, the agent's arguments)."""
    meta = obj["metadata"]
    if obj["kind"] == "Namespace":
        meta["name"] = namespace
    elif obj["kind"] in ("ClusterRole", "ClusterRoleBinding"):
        meta["name"] = cluster_role_name(namespace)
    elif "namespace" in meta:
        meta["namespace"] = namespace
    if obj["kind"] == "ClusterRoleBinding":
        obj["roleRef"]["name"] = cluster_role_name(namespace)
    for subject in obj.get("subjects") or []:
        if subject.get("kind") == "ServiceAccount":
            subject["namespace"] = namespace
    if obj["kind"] == "Deployment":
        for container in obj["spec"]["template"]["spec"]["containers"]:
            args = container.get("args") or []
            for i, arg in enumerate(args[:-1]):
                if arg == "--namespace":
                    args[i + 1] = namespace
    return obj


def manifests(mode: str = "local", namespace: str = DEFAULT_NAMESPACE) -> list[dict[str, Any]]:
    """The install objects in apply order: CRD, namespace, RBAC, then (in-cluster) the agent.

    `namespace` is where the agent lives and which Applications it watches: its Namespace,
    ServiceAccount, Role/RoleBinding, the subjects of its bindings and its Deployment.
    """
    names = ["crd.yaml", "imagepolicy-crd.yaml", "namespace.yaml", "rbac.yaml"]
    if mode == "in-cluster":
        names.append("agent-deployment.yaml")
    return [_in_namespace(d, namespace) for d in _load(*names)]


def _load(*names: str) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    folder = resources.files("gitops_lab.install") / "manifests"
    for name in names:
        docs.extend(d for d in yaml.safe_load_all((folder / name).read_text()) if d)
    return docs


def _use_image(objs: list[dict[str, Any]], image: str | None, revision: str | None,
               env: dict[str, str] | None = None) -> None:
    """Point every pod template at IMAGE; REVISION (the image's inputs hash) goes into the
    template's annotations so a rebuilt image under the same tag rolls the pods; ENV is set
    on the containers."""
    for obj in objs:
        template = (obj.get("spec") or {}).get("template")
        if not template:
            continue
        spec = template["spec"]
        for container in spec.get("initContainers", []) + spec.get("containers", []):
            if image:
                container["image"] = image
            for key, value in (env or {}).items():
                entries = [e for e in container.get("env", []) if e.get("name") != key]
                container["env"] = [*entries, {"name": key, "value": value}]
        if revision:
            template.setdefault("metadata", {}).setdefault("annotations", {})[
                "gitopslab.io/image-revision"] = revision


def install(kube: Kube, mode: str = "local", *, namespace: str = DEFAULT_NAMESPACE,
            timeout: float = 30.0, image: str | None = None,
            image_revision: str | None = None, env: dict[str, str] | None = None) -> list[str]:
    """Apply the manifests (idempotent, server-side apply); wait for the CRD to be served.
    In-cluster, IMAGE (default gitops-lab/agent:dev) must already be on the nodes."""
    if mode not in ("local", "in-cluster"):
        raise InstallError(f"unknown mode {mode!r}; hint: local or in-cluster")
    objs = manifests(mode, namespace)
    _use_image(objs, image, image_revision, env)
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


def _token_request(kube: Kube, namespace: str, service_account: str,
                   seconds: int) -> tuple[str, float]:
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token"
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": seconds}}
    try:
        out = kube.request("POST", path, body=body)
    except KubeError as exc:
        hint = "run `gitops-lab agent install" + (
            f" --namespace {namespace}`" if namespace != DEFAULT_NAMESPACE else "`")
        raise InstallError(
            f"TokenRequest for {namespace}/{service_account} failed: {exc.message}; "
            f"hint: {hint} first"
        ) from exc
    lifetime = float(seconds)
    expires = str((out.get("status") or {}).get("expirationTimestamp") or "")
    with contextlib.suppress(ValueError):
        until = dt.datetime.strptime(expires, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        lifetime = min(lifetime, max((until - dt.datetime.now(dt.UTC)).total_seconds(), 1.0))
    return str(out["status"]["token"]), lifetime


def agent_token(kube: Kube, namespace: str = DEFAULT_NAMESPACE,
                service_account: str = AGENT_SERVICE_ACCOUNT,
                seconds: int = 86400) -> str:
    """A token for the agent's ServiceAccount from the TokenRequest API (local mode)."""
    return _token_request(kube, namespace, service_account, seconds)[0]


def agent_token_source(kube: Kube, namespace: str = DEFAULT_NAMESPACE,
                       service_account: str = AGENT_SERVICE_ACCOUNT, *,
                       seconds: int = TOKEN_SECONDS,
                       renew_fraction: float = 0.8) -> TokenSource:
    """The agent's ServiceAccount token (TokenRequest, as `kube`), renewed at `renew_fraction`
    of its lifetime and requested again when the API server rejects it (the ServiceAccount was
    deleted and re-created, the token revoked): `Kube.with_token_source` uses it."""
    return TokenSource(lambda: _token_request(kube, namespace, service_account, seconds),
                       renew_fraction=renew_fraction,
                       what=f"token for ServiceAccount {namespace}/{service_account}")
