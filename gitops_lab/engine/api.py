"""The reconcile's inputs and outputs: the Application's spec, a sync request, conditions, the
trace, and the result. Value types only (no I/O but DirectLive's GETs); every engine stage and
the agent speak them.
"""

from __future__ import annotations

import enum
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from gitops_lab.api.types import Health, HealthStatus, ResourceKey, SyncStatus
from gitops_lab.engine.apply import ChangeSet
from gitops_lab.engine.diff import ResourceDiff
from gitops_lab.engine.guard import APP_OF_APPS_OPTION
from gitops_lab.kube import Kube
from gitops_lab.source.git import CommitInfo

__all__ = [
    "AppSpec",
    "Condition",
    "ConditionType",
    "DirectLive",
    "LiveView",
    "ReconcileResult",
    "ResourceStatus",
    "SpecError",
    "Step",
    "SyncRequest",
    "Trace",
]

Obj = dict[str, Any]

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# The cluster the agent runs in, as Argo CD names it; any other server is not supported.
IN_CLUSTER_SERVERS = ("", "https://kubernetes.default.svc")


class ConditionType(enum.StrEnum):
    """`status.conditions[].type` (API.md §1); the first five stop a sync, the warning does not."""

    INVALID_SPEC = "InvalidSpecError"
    SOURCE = "SourceError"
    COMPARISON = "ComparisonError"
    SYNC = "SyncError"
    DELETION = "DeletionError"
    SHARED_RESOURCE = "SharedResourceWarning"


class SpecError(ValueError):
    """The Application's spec cannot be used (InvalidSpecError)."""


@dataclass(frozen=True)
class AppSpec:
    """The Application's spec with API.md's defaults filled in."""

    namespace: str
    name: str
    repo_url: str
    target_revision: str
    path: str
    dest_namespace: str
    automated: bool
    prune: bool
    self_heal: bool
    allow_empty: bool
    sync_options: frozenset[str]
    history_limit: int

    @classmethod
    def from_object(cls, app: Mapping[str, Any]) -> AppSpec:
        meta = app.get("metadata") or {}
        spec = app.get("spec") or {}
        source = spec.get("source") or {}
        dest = spec.get("destination") or {}
        policy = spec.get("syncPolicy") or {}
        automated = policy.get("automated")
        repo = str(source.get("repoURL") or "").strip()
        if not repo:
            raise SpecError("spec.source.repoURL is empty")
        if repo.startswith("file://") and not repo[len("file://"):].startswith("/"):
            raise SpecError(f"spec.source.repoURL {repo!r}: file:// needs an absolute path")
        dest_ns = str(dest.get("namespace") or "")
        if dest_ns and (len(dest_ns) > 63 or not _DNS1123_LABEL.match(dest_ns)):
            raise SpecError(f"spec.destination.namespace {dest_ns!r} is not a valid namespace "
                            "name (lowercase letters, digits and '-', at most 63, RFC 1123)")
        server = str(dest.get("server") or "")
        if server not in IN_CLUSTER_SERVERS:
            raise SpecError(f"spec.destination.server {server!r}: only the agent's own cluster "
                            f"is supported (omit it, or {IN_CLUSTER_SERVERS[1]!r})")
        limit = spec.get("revisionHistoryLimit", 10)
        if not isinstance(limit, int) or limit < 1:
            raise SpecError(f"spec.revisionHistoryLimit must be a positive integer, not {limit!r}")
        return cls(
            namespace=str(meta.get("namespace") or "default"),
            name=str(meta.get("name")),
            repo_url=repo,
            target_revision=str(source.get("targetRevision") or "HEAD"),
            path=str(source.get("path") or "."),
            dest_namespace=dest_ns,
            automated=automated is not None,
            prune=bool((automated or {}).get("prune", False)),
            self_heal=bool((automated or {}).get("selfHeal", False)),
            allow_empty=bool((automated or {}).get("allowEmpty", False)),
            sync_options=frozenset(str(o) for o in policy.get("syncOptions") or []),
            history_limit=limit,
        )

    @property
    def create_namespace(self) -> bool:
        return "CreateNamespace=true" in self.sync_options

    @property
    def app_of_apps(self) -> bool:
        """`AppOfApps=true`: the app may manage the Applications (and ImagePolicies) it created."""
        return APP_OF_APPS_OPTION in self.sync_options

    @property
    def tracking_prefix(self) -> str:
        return f"{self.namespace}_{self.name}:"


@dataclass(frozen=True)
class SyncRequest:
    """A sync asked for by a user (`operation.sync`): which revision, and whether to prune."""

    revision: str | None = None
    prune: bool = False


@dataclass(frozen=True)
class Condition:
    type: str  # a ConditionType
    message: str
    # what the message is about (files, objects, repo URLs): events and alerts are
    # de-duplicated on these, not on the message text, which may vary from try to try
    objects: tuple[str, ...] = ()


@dataclass
class Step:
    name: str
    seconds: float = 0.0
    ok: bool = True
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ms": round(self.seconds * 1000, 1), "ok": self.ok,
                "detail": self.detail}


@dataclass
class Trace:
    """The reconcile step by step, with timings: what the ReconcileTrace widget shows."""

    steps: list[Step] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    @contextmanager
    def step(self, name: str) -> Iterator[Step]:
        step = Step(name)
        start = time.perf_counter()
        try:
            yield step
        except BaseException as exc:
            step.ok = False
            step.detail = step.detail or str(exc)
            raise
        finally:
            step.seconds = time.perf_counter() - start
            self.steps.append(step)

    def skip(self, name: str, why: str) -> None:
        self.steps.append(Step(name, 0.0, True, f"skipped: {why}"))

    @property
    def total(self) -> float:
        return sum(s.seconds for s in self.steps)

    def to_list(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.steps]


@dataclass
class ResourceStatus:
    key: ResourceKey
    status: SyncStatus
    health: Health | None = None
    requires_pruning: bool = False
    message: str = ""
    source: str = ""  # file in Git, for messages and the widgets

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "group": self.key.group, "version": self.key.version, "kind": self.key.kind,
            "namespace": self.key.namespace, "name": self.key.name,
            "status": self.status.value, "requiresPruning": self.requires_pruning,
        }
        if self.health is not None:
            out["health"] = self.health.to_dict()
        return out


@dataclass
class ReconcileResult:
    spec: AppSpec | None
    revision: str | None = None
    commit: CommitInfo | None = None
    sync_status: SyncStatus = SyncStatus.UNKNOWN
    health: Health = field(default_factory=lambda: Health(HealthStatus.UNKNOWN))
    resources: list[ResourceStatus] = field(default_factory=list)
    diffs: dict[ResourceKey, ResourceDiff] = field(default_factory=dict)
    conditions: list[Condition] = field(default_factory=list)
    changes: ChangeSet | None = None  # None: no sync was run
    compared_out_of_sync: list[ResourceDiff] = field(default_factory=list)
    sync_error: str = ""
    trace: Trace = field(default_factory=Trace)
    live: dict[ResourceKey, Obj] = field(default_factory=dict)
    # what spec.source.targetRevision resolves to now ("" = unknown); a sync to another
    # revision by request is a rollback
    head: str = ""
    rollback: bool = False

    @property
    def out_of_sync(self) -> list[ResourceStatus]:
        return [r for r in self.resources if r.status is SyncStatus.OUT_OF_SYNC]

    @property
    def ok(self) -> bool:
        return not self.conditions


class LiveView(Protocol):
    """Where the reconciler reads live objects: a watch cache in the agent, GETs elsewhere."""

    def get(self, key: ResourceKey) -> Obj | None: ...


class DirectLive:
    """A LiveView that asks the API server every time (CLI, tests, first reconciles)."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    def get(self, key: ResourceKey) -> Obj | None:
        return self.kube.get_by_key(key)
