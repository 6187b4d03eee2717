"""What an app may never apply or prune: the agent's own kinds, namespace, identity and CRDs.
Pure rules used by engine/inventory.py (desired objects; prune and cascade candidates).

A Git repo must never reach outside its app. The agent's own objects are refused whatever
the commit says (Argo CD lets a commit prune its own namespace, argo-cd #17440; we do not):

- objects of the agent's API group `gitopslab.io` (Application, ImagePolicy) — unless the app
  is an *app of apps* (`syncOptions: [AppOfApps=true]`), and then only Applications and
  ImagePolicies that do not exist yet or that carry this app's tracking annotation;
- CustomResourceDefinitions of that group;
- the namespace the Applications live in (the agent's own), and the agent's identity in it:
  its ServiceAccount, Role, RoleBinding, Deployment and Service (in-cluster), and its
  ClusterRole/ClusterRoleBinding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops_lab.api.types import GROUP, ResourceKey

__all__ = ["AGENT_NAME", "APP_OF_APPS_KINDS", "APP_OF_APPS_OPTION", "is_protected", "refusal"]

AGENT_NAME = "gitops-lab-agent"  # the name of the agent's ServiceAccount, RBAC and Deployment
APP_OF_APPS_OPTION = "AppOfApps=true"
APP_OF_APPS_KINDS = frozenset({"Application", "ImagePolicy"})

_IDENTITY_NAMESPACED = frozenset({
    ("", "ServiceAccount"), ("", "Service"), ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"), ("apps", "Deployment"),
})
_IDENTITY_CLUSTER = frozenset({
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
})


def _crd_group(obj: Mapping[str, Any] | None, key: ResourceKey) -> str:
    spec = (obj or {}).get("spec") or {}
    group = spec.get("group")
    if group:
        return str(group)
    return key.name.partition(".")[2]  # <plural>.<group>


def refusal(key: ResourceKey, obj: Mapping[str, Any] | None, agent_namespace: str,
            app_of_apps: bool = False) -> str | None:
    """Why an app may not apply or prune this object, or None when it may.

    `agent_namespace` is the namespace of the Applications (the Application's own namespace).
    """
    if key.group == GROUP:
        if app_of_apps and key.kind in APP_OF_APPS_KINDS:
            return None
        if key.kind in APP_OF_APPS_KINDS:
            return (f"{key.kind} is the agent's own kind ({GROUP}): an app may create and "
                    f"change {key.kind}s only as an app of apps "
                    f"(spec.syncPolicy.syncOptions: [{APP_OF_APPS_OPTION}]), and then only "
                    "the ones it created")
        return f"{key.kind} belongs to the agent's own API group {GROUP}"
    if key.kind == "CustomResourceDefinition" and key.group == "apiextensions.k8s.io":
        group = _crd_group(obj, key)
        if group == GROUP or group.endswith("." + GROUP):
            return f"the CustomResourceDefinition of the agent's own API group {group}"
        return None
    if key.group == "" and key.kind == "Namespace" and key.name == agent_namespace:
        return (f"namespace {agent_namespace} is the agent's own: it holds every Application, "
                "the agent's ServiceAccount and RBAC")
    if key.name == AGENT_NAME and (
        ((key.group, key.kind) in _IDENTITY_NAMESPACED and key.namespace == agent_namespace)
        or (key.group, key.kind) in _IDENTITY_CLUSTER
    ):
        return f"{key.kind} {AGENT_NAME} is the agent's own identity"
    return None


def is_protected(key: ResourceKey, obj: Mapping[str, Any] | None, agent_namespace: str,
                 app_of_apps: bool = False) -> bool:
    return refusal(key, obj, agent_namespace, app_of_apps) is not None
