"""The agent's writes to an Application: its status, the end of an operation, the refresh
annotation, the resources finalizer. Each tolerates an Application deleted meanwhile.
Used by agent/work.py.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from gitops_lab.api.types import GROUP, PLURAL, REFRESH_ANNOTATION, VERSION
from gitops_lab.kube import Kube, KubeError, ResourceInfo

__all__ = ["APP_INFO", "clear_refresh", "finish_operation", "older", "remove_finalizer",
           "stale", "write_status"]

APP_INFO = ResourceInfo(GROUP, VERSION, "Application", PLURAL, True, ("list", "watch"))
MERGE = "application/merge-patch+json"


def _path(app: Mapping[str, Any]) -> str:
    meta = app["metadata"]
    return APP_INFO.path(meta["namespace"], meta["name"])


def _patch(kube: Kube, path: str, body: Any,
           content_type: str = MERGE) -> dict[str, Any] | None:
    try:
        return kube.request("PATCH", path, body=body, content_type=content_type)
    except KubeError as exc:
        if not exc.not_found:
            raise
    return None


def write_status(kube: Kube, app: Mapping[str, Any], status: dict[str, Any]) -> None:
    """A merge patch with the full status: lists are replaced, absent keys are removed."""
    body = {"status": {**{k: None for k in (app.get("status") or {}) if k not in status},
                       **status}}
    _patch(kube, _path(app) + "/status", body)


def finish_operation(kube: Kube, app: Mapping[str, Any],
                     stop_automation: bool) -> dict[str, Any] | None:
    """Clear `operation` (and, after a rollback, `spec.syncPolicy.automated`); the result."""
    patch: dict[str, Any] = {"operation": None}
    if stop_automation:
        patch["spec"] = {"syncPolicy": {"automated": None}}
    return _patch(kube, _path(app), patch)


def clear_refresh(kube: Kube, app: Mapping[str, Any]) -> None:
    _patch(kube, _path(app), {"metadata": {"annotations": {REFRESH_ANNOTATION: None}}})


def remove_finalizer(kube: Kube, app: Mapping[str, Any], finalizers: list[str],
                     remaining: list[str]) -> None:
    """Set the finalizers to `remaining` if they still are `finalizers` (a JSON-patch test).
    Raises KubeError unless the Application is gone."""
    _patch(kube, _path(app),
           [{"op": "test", "path": "/metadata/finalizers", "value": finalizers},
            {"op": "replace", "path": "/metadata/finalizers", "value": remaining}],
           "application/json-patch+json")


def older(obj: Mapping[str, Any], than: Mapping[str, Any] | None) -> bool:
    """True when `obj` is an older version of `than` (resourceVersions of one API server)."""
    if than is None:
        return False
    try:
        return int(obj["metadata"]["resourceVersion"]) < int(than["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return False


def stale(prev: Mapping[str, Any], max_age: float) -> bool:
    stamp = prev.get("reconciledAt")
    if not stamp:
        return True
    try:
        then = time.mktime(time.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    except ValueError:
        return True
    return time.time() - then > max_age
