"""Client-side verbs on Applications (what `argocd app …` does): create, sync, rollback, refresh.
Used by the CLI, the Lab facade and the widgets. It only writes the Application (its spec,
`operation`, the refresh annotation); the agent does everything else.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from gitops_lab.api.types import (
    API_VERSION,
    GROUP,
    KIND,
    PLURAL,
    REFRESH_ANNOTATION,
    RESOURCES_FINALIZER,
    VERSION,
)
from gitops_lab.kube import Kube, KubeError, ResourceInfo

__all__ = ["OPERATION_ID", "AppError", "Apps", "application", "operation_id"]

Obj = dict[str, Any]
APP_INFO = ResourceInfo(GROUP, VERSION, KIND, PLURAL, True)
CLIENT_MANAGER = "gitops-lab-cli"
OPERATION_ID = "operationId"  # the name of the id the CLI writes into operation.info


class AppError(RuntimeError):
    """An app command failed; the message names the app and a hint."""


def application(
    name: str,
    repo_url: str,
    path: str = ".",
    *,
    namespace: str = "gitops-lab",
    target_revision: str = "main",
    dest_namespace: str = "",
    automated: bool = True,
    prune: bool = True,
    self_heal: bool = False,
    allow_empty: bool = False,
    create_namespace: bool = True,
    cascade: bool = False,
) -> Obj:
    """An Application manifest, as a learner would write it in YAML. With `cascade`, it carries
    the resources finalizer: deleting the Application then deletes the objects it deployed."""
    spec: Obj = {
        "source": {"repoURL": repo_url, "targetRevision": target_revision, "path": path},
        "destination": {"namespace": dest_namespace or name},
        "revisionHistoryLimit": 10,
    }
    policy: Obj = {}
    if automated:
        policy["automated"] = {"prune": prune, "selfHeal": self_heal, "allowEmpty": allow_empty}
    if create_namespace:
        policy["syncOptions"] = ["CreateNamespace=true"]
    if policy:
        spec["syncPolicy"] = policy
    meta: Obj = {"name": name, "namespace": namespace}
    if cascade:
        meta["finalizers"] = [RESOURCES_FINALIZER]
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": spec}


class Apps:
    def __init__(self, kube: Kube, namespace: str = "gitops-lab") -> None:
        self.kube = kube
        self.namespace = namespace

    def _path(self, name: str | None = None) -> str:
        return APP_INFO.path(self.namespace, name)

    def list(self) -> list[Obj]:
        return list(self.kube.request("GET", self._path()).get("items") or [])

    def get(self, name: str) -> Obj:
        try:
            return self.kube.request("GET", self._path(name))
        except KubeError as exc:
            if exc.not_found:
                raise AppError(f"application {self.namespace}/{name} not found; hint: "
                               "`gitops-lab app list`") from exc
            raise

    def apply(self, app: Mapping[str, Any]) -> Obj:
        """Create or update an Application (server-side apply, as `kubectl apply` would)."""
        return self.kube.apply(app, field_manager=CLIENT_MANAGER)

    def delete(self, name: str, *, wait: float = 0.0) -> bool:
        """Delete an Application; with `wait`, wait that long for it to be gone (with the
        resources finalizer, the agent deletes its objects first). True when it is gone."""
        try:
            self.kube.request("DELETE", self._path(name))
        except KubeError as exc:
            if not exc.not_found:
                raise
            return True
        deadline = time.monotonic() + wait
        while True:
            try:
                self.kube.request("GET", self._path(name))
            except KubeError as exc:
                if exc.not_found:
                    return True
                raise
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    def remove_finalizers(self, name: str) -> None:
        """Let a stuck deletion finish (no agent to run the finalizer): objects are orphaned."""
        try:
            self._merge(name, {"metadata": {"finalizers": None}})
        except KubeError as exc:
            if not exc.not_found:
                raise

    def _merge(self, name: str, patch: Mapping[str, Any]) -> Obj:
        return self.kube.request("PATCH", self._path(name), body=patch,
                                 content_type="application/merge-patch+json")

    def sync(self, name: str, revision: str | None = None, prune: bool = False) -> Obj:
        """Ask for a sync (`operation.sync`); the agent runs it and clears `operation`.

        The operation carries a fresh `operationId` in `operation.info`; the agent copies the
        operation into `status.operationState.operation`, so `wait_operation(name, app)` with
        the returned Application waits for the state of *this* operation, never an older one.
        """
        self.get(name)
        op: Obj = {"initiatedBy": {"username": "gitops-lab-cli"}, "sync": {"prune": prune},
                   "info": [{"name": OPERATION_ID, "value": uuid.uuid4().hex}]}
        if revision:
            op["sync"]["revision"] = revision
        return self._merge(name, {"operation": op})

    def rollback(self, name: str, history_id: int) -> tuple[Obj, str]:
        app = self.get(name)
        history = (app.get("status") or {}).get("history") or []
        entry = next((h for h in history if int(h.get("id", -1)) == history_id), None)
        if entry is None:
            ids = ", ".join(str(h.get("id")) for h in history) or "none"
            raise AppError(f"application {name} has no history entry {history_id} "
                           f"(ids: {ids}); hint: `gitops-lab app history {name}`")
        return self.sync(name, revision=str(entry["revision"])), str(entry["revision"])

    def refresh(self, name: str) -> Obj:
        self.get(name)
        return self._merge(name, {"metadata": {"annotations": {REFRESH_ANNOTATION: "normal"}}})

    def set_policy(self, name: str, *, automated: bool | None = None,
                   self_heal: bool | None = None, prune: bool | None = None) -> Obj:
        app = self.get(name)
        current = ((app.get("spec") or {}).get("syncPolicy") or {}).get("automated")
        if automated is False:
            return self._merge(name, {"spec": {"syncPolicy": {"automated": None}}})
        auto = dict(current or {"prune": False, "selfHeal": False, "allowEmpty": False})
        if self_heal is not None:
            auto["selfHeal"] = self_heal
        if prune is not None:
            auto["prune"] = prune
        if automated is None and current is None and self_heal is None and prune is None:
            return app
        return self._merge(name, {"spec": {"syncPolicy": {"automated": auto}}})

    def wait(
        self,
        name: str,
        until: Callable[[Obj], bool],
        *,
        timeout: float = 60.0,
        what: str = "the condition",
        progress: Callable[[Obj, float], None] | None = None,
        interval: float = 0.2,
    ) -> Obj:
        """Poll the Application until `until(app)`; on timeout say what was last seen."""
        deadline = time.monotonic() + timeout
        start = time.monotonic()
        app: Obj = {}
        while time.monotonic() < deadline:
            app = self.get(name)
            if until(app):
                return app
            if progress is not None:
                progress(app, time.monotonic() - start)
            time.sleep(interval)
        status = app.get("status") or {}
        seen = (f"sync={(status.get('sync') or {}).get('status')}, "
                f"health={(status.get('health') or {}).get('status')}, "
                f"conditions={[c.get('message') for c in status.get('conditions') or []]}")
        raise AppError(f"timed out after {timeout:.0f} s waiting for {what} on {name} "
                       f"(last seen: {seen}); hint: is the agent running? `gitops-lab app get "
                       f"{name}` and the agent's log show why")

    def wait_operation(self, name: str, requested: Mapping[str, Any] | None = None, *,
                       timeout: float = 60.0,
                       progress: Callable[[Obj, float], None] | None = None) -> Obj:
        """Wait until the agent has run and cleared `operation`.

        With `requested` (the Application `sync`/`rollback` returned) only the operationState
        of that operation counts: the one carrying its operationId (or, when the CRD is older
        and dropped the id, one that started at or after the request). Without, any finished
        operationState does.
        """
        op_id = operation_id((requested or {}).get("operation") or {})
        asked_at = _patched_at(requested or {})

        def done(app: Obj) -> bool:
            state = (app.get("status") or {}).get("operationState") or {}
            if app.get("operation") or not state.get("finishedAt"):
                return False
            if op_id:
                return operation_id(state.get("operation") or {}) == op_id
            return requested is None or str(state.get("startedAt") or "") >= asked_at

        return self.wait(name, done, timeout=timeout, what="the sync operation to finish",
                         progress=progress)


def _patched_at(app: Mapping[str, Any]) -> str:
    """When the API server last wrote `operation` (its managedFields time), RFC 3339."""
    times = [str(f.get("time") or "") for f in (app.get("metadata") or {}).get("managedFields")
             or [] if "f:operation" in (f.get("fieldsV1") or {})]
    return max(times, default="")


def operation_id(operation: Mapping[str, Any]) -> str:
    """The operationId in an operation's `info` ("" when it has none)."""
    for item in operation.get("info") or []:
        if isinstance(item, Mapping) and item.get("name") == OPERATION_ID:
            return str(item.get("value") or "")
    return ""


def sync_status(app: Mapping[str, Any]) -> str:
    return str(((app.get("status") or {}).get("sync") or {}).get("status") or "Unknown")


def health_status(app: Mapping[str, Any]) -> str:
    return str(((app.get("status") or {}).get("health") or {}).get("status") or "Unknown")


def revision(app: Mapping[str, Any]) -> str:
    return str(((app.get("status") or {}).get("sync") or {}).get("revision") or "")
