"""Turn a ReconcileResult into the Application's `status` (API.md §1), keeping history.
Pure functions used by agent/controller.py; what changed between two statuses drives events.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from typing import Any

from gitops_lab.engine.api import ReconcileResult

__all__ = ["Phase", "build_status", "last_synced_revision", "now", "status_changed"]

Obj = dict[str, Any]


class Phase(enum.StrEnum):
    """`status.operationState.phase`: a sync that ran, or an operation that never reached it."""

    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"


def _iso(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _conditions(prev: Mapping[str, Any], result: ReconcileResult, stamp: str) -> list[Obj]:
    before = {c.get("type"): c for c in prev.get("conditions") or []}
    out = []
    for cond in result.conditions:
        old = before.get(cond.type)
        out.append({
            "type": str(cond.type),
            "message": cond.message,
            "lastTransitionTime": old.get("lastTransitionTime", stamp) if old else stamp,
        })
    return out


def last_synced_revision(status: Mapping[str, Any]) -> str:
    """The revision of the app's last sync, as its status records it ("" = never synced)."""
    return str(((status.get("operationState") or {}).get("syncResult") or {})
               .get("revision", ""))


def build_status(
    prev: Mapping[str, Any],
    result: ReconcileResult,
    *,
    started_at: str,
    operation: Mapping[str, Any] | None = None,
) -> Obj:
    """The next status: comparison, health, resources, conditions, operation state, history."""
    stamp = now()
    status: Obj = {"reconciledAt": stamp}
    spec = result.spec
    if result.revision:
        status["sync"] = {"status": result.sync_status.value, "revision": result.revision}
    else:
        old_sync = dict(prev.get("sync") or {})
        old_sync["status"] = result.sync_status.value
        status["sync"] = old_sync
    if spec is not None:
        status["sync"]["comparedTo"] = {
            "source": {"repoURL": spec.repo_url, "path": spec.path,
                       "targetRevision": spec.target_revision},
        }
    status["health"] = result.health.to_dict()
    if result.commit is not None:
        status["revisionInfo"] = {
            "revision": result.commit.sha,
            "message": result.commit.message.strip().splitlines()[0] if result.commit.message else "",
            "author": result.commit.author,
            "date": _iso(result.commit.date),
        }
    elif prev.get("revisionInfo"):
        status["revisionInfo"] = prev["revisionInfo"]
    status["resources"] = [r.to_dict() for r in result.resources]
    if result.resources == [] and prev.get("resources") and result.conditions:
        status["resources"] = prev["resources"]  # keep the inventory when Git is unreadable
    conditions = _conditions(prev, result, stamp)
    if conditions:
        status["conditions"] = conditions

    history: list[Obj] = list(prev.get("history") or [])
    if result.changes is not None:
        failed = bool(result.sync_error)
        status["operationState"] = {
            "phase": (Phase.FAILED if failed else Phase.SUCCEEDED).value,
            "message": result.sync_error if failed else
            f"successfully synced ({result.changes.summary()})",
            "startedAt": started_at,
            "finishedAt": stamp,
            "syncResult": {
                "revision": result.revision,
                "resources": [c.to_dict() for c in result.changes if c.action.value != "unchanged"],
            },
        }
        if operation is not None:
            status["operationState"]["operation"] = dict(operation)
        if not failed and spec is not None and result.revision:
            last = history[-1] if history else None
            if last is None or last.get("revision") != result.revision or operation is not None:
                next_id = max((int(h.get("id", 0)) for h in history), default=-1) + 1
                history.append({
                    "id": next_id,
                    "revision": result.revision,
                    "deployedAt": stamp,
                    "source": {"repoURL": spec.repo_url, "path": spec.path,
                               "targetRevision": spec.target_revision},
                })
                history = history[-spec.history_limit:]
    elif operation is not None:
        # The operation never reached the sync (bad revision, render error, invalid spec):
        # record that, for *this* operation, so no one reads the previous state as its result.
        # syncResult stays that of the last sync that ran (the last synced revision).
        causes = "; ".join(f"{c.type}: {c.message}" for c in result.conditions)
        status["operationState"] = {
            "phase": Phase.ERROR.value,
            "message": f"not synced: {causes or 'the comparison failed'}",
            "startedAt": started_at,
            "finishedAt": stamp,
            "operation": dict(operation),
        }
        last = (prev.get("operationState") or {}).get("syncResult")
        if last:
            status["operationState"]["syncResult"] = last
    elif prev.get("operationState"):
        status["operationState"] = prev["operationState"]
    if history:
        status["history"] = history
    if result.trace.steps:
        status["lastReconcile"] = {
            "startedAt": started_at,
            "durationMs": round(result.trace.total * 1000, 1),
            "steps": result.trace.to_list(),
        }
    return status


_VOLATILE = ("reconciledAt", "lastReconcile")


def _stable(status: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if k not in _VOLATILE}


def status_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether a status write is worth it: anything but timestamps and timings changed."""
    return _stable(old) != _stable(new)
