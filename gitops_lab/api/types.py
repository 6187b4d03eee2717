"""Value objects of the Application contract (shared/API.md §1): statuses, keys, results.
The bottom layer: pure data, no I/O; source/, engine/, agent/ and widgets/ all speak it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "API_VERSION",
    "GROUP",
    "KIND",
    "PLURAL",
    "RESOURCES_FINALIZER",
    "VERSION",
    "Action",
    "Health",
    "HealthStatus",
    "ResourceKey",
    "SyncStatus",
    "worst_health",
]

GROUP = "gitopslab.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Application"
PLURAL = "applications"

TRACKING_ANNOTATION = "gitopslab.io/tracking-id"
REFRESH_ANNOTATION = "gitopslab.io/refresh"
SYNC_WAVE_ANNOTATION = "gitopslab.io/sync-wave"
FIELD_MANAGER = "gitops-lab"
# On an Application: deleting it deletes its objects first (cascade), like Argo CD's
# `resources-finalizer.argocd.argoproj.io`. Without it, its objects are left (orphaned).
RESOURCES_FINALIZER = "resources-finalizer.gitopslab.io"


class SyncStatus(str, enum.Enum):
    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    UNKNOWN = "Unknown"

    def __str__(self) -> str:
        return self.value


class HealthStatus(str, enum.Enum):
    """Argo CD's health values; `severity` orders them, worst last."""

    HEALTHY = "Healthy"
    SUSPENDED = "Suspended"
    PROGRESSING = "Progressing"
    MISSING = "Missing"
    DEGRADED = "Degraded"
    UNKNOWN = "Unknown"

    def __str__(self) -> str:
        return self.value

    @property
    def severity(self) -> int:
        return _HEALTH_ORDER.index(self)


_HEALTH_ORDER = list(HealthStatus)


@dataclass(frozen=True)
class Health:
    """The health of one object or of an app: a status and a sentence saying why."""

    status: HealthStatus
    message: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"status": self.status.value, "message": self.message}


def worst_health(healths: list[Health]) -> Health:
    """App health = the worst of its resources (Healthy < Suspended < ... < Unknown)."""
    if not healths:
        return Health(HealthStatus.HEALTHY)
    return max(healths, key=lambda h: h.status.severity)


class Action(str, enum.Enum):
    """What a sync did to one object (the ChangeSet vocabulary of API.md)."""

    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"
    PRUNED = "pruned"
    SKIPPED = "skipped"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, order=True)
class ResourceKey:
    """Identity of one Kubernetes object: group, kind, namespace ('' if cluster-scoped), name."""

    group: str
    kind: str
    namespace: str
    name: str
    version: str = field(default="", compare=False)

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> ResourceKey:
        api_version = str(obj.get("apiVersion", ""))
        group, _, version = api_version.rpartition("/")
        meta = obj.get("metadata") or {}
        return cls(
            group=group,
            kind=str(obj.get("kind", "")),
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            version=version,
        )

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def tracking_id(self, app_namespace: str, app_name: str) -> str:
        """`<app-namespace>_<app-name>:<group>/<kind>:<namespace>/<name>` (API.md §1)."""
        return f"{app_namespace}_{app_name}:{self.group}/{self.kind}:{self.namespace}/{self.name}"

    def __str__(self) -> str:
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{kind} {where}{self.name}"
