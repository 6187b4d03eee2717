"""The sync decisions, as one pure function: given what the comparison found, what to apply,
what to prune, what to leave, and why. No I/O: engine/reconcile.py acts on the plan, and
tests/unit/test_sync_plan.py drives every rule with plain data.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gitops_lab.api.types import Action, ResourceKey, SyncStatus
from gitops_lab.engine.api import AppSpec, Condition, ConditionType, SyncRequest
from gitops_lab.engine.apply import ChangeSet
from gitops_lab.engine.diff import ResourceDiff, normalize
from gitops_lab.engine.inventory import Pair, prune_candidates

__all__ = ["PruneSkip", "Skip", "SyncPlan", "is_rollback", "plan_sync", "prune_skip", "settled"]

Obj = dict[str, Any]


class Skip(enum.StrEnum):
    """Why a reconcile applies nothing (the `apply` step's detail says `skipped: <this>`)."""

    ERRORS = "comparison errors; nothing applied, nothing pruned"
    EMPTY = "empty render without allowEmpty"
    IN_SYNC = "in sync"
    MANUAL = "automated sync is off"


class PruneSkip(enum.StrEnum):
    """Why objects that left Git stay (they are listed `requires pruning`)."""

    OFF = "prune is off"
    APPLY_FAILED = "apply failed"


@dataclass(frozen=True)
class SyncPlan:
    """What one reconcile does: `skip` None means sync — apply `apply`, then prune `prune`
    if `prune_allowed` (else each is listed as requiring pruning)."""

    skip: Skip | None
    apply: list[Pair] = field(default_factory=list)
    unchanged: list[ResourceKey] = field(default_factory=list)
    prune: list[Pair] = field(default_factory=list)
    prune_allowed: bool = False
    condition: Condition | None = None  # a SyncError this plan raises (empty render)

    @property
    def syncs(self) -> bool:
        return self.skip is None


def plan_sync(
    spec: AppSpec,
    *,
    request: SyncRequest | None,
    revision: str,
    last_synced: str,
    inventory: Sequence[ResourceKey],
    pairs: Sequence[Pair],
    diffs: Mapping[ResourceKey, ResourceDiff],
    errors: bool,
) -> SyncPlan:
    """Sync by request, or by policy: a new revision, or drift with selfHeal. Never with
    comparison errors; never an automated sync to an empty render without allowEmpty. Prune
    only owned objects that left Git, and only when the request or the policy allows it."""
    out_of_sync = any(d.status is SyncStatus.OUT_OF_SYNC for d in diffs.values())
    desired = [p for p in pairs if p.desired is not None]
    wants_sync = request is not None or (
        spec.automated and (revision != last_synced or (spec.self_heal and out_of_sync))
    )
    prune_allowed = request.prune if request is not None else (spec.automated and spec.prune)
    to_prune = prune_candidates(pairs, spec.namespace, spec.name, spec.app_of_apps)
    if errors:
        return SyncPlan(Skip.ERRORS, prune=to_prune)
    if request is None and spec.automated and not desired and not spec.allow_empty and (
            inventory or revision != last_synced):
        msg = (f"{spec.path} at {revision[:7]} renders no objects; an automated sync that would "
               "leave the app empty needs syncPolicy.automated.allowEmpty: true")
        return SyncPlan(Skip.EMPTY, prune=to_prune,
                        condition=Condition(ConditionType.SYNC, msg, (spec.path,)))
    if not wants_sync:
        return SyncPlan(Skip.IN_SYNC if not out_of_sync else Skip.MANUAL, prune=to_prune)
    return SyncPlan(
        None,
        apply=[p for p in desired if p.key in diffs
               and diffs[p.key].status is SyncStatus.OUT_OF_SYNC],
        unchanged=[k for k, d in diffs.items() if d.status is SyncStatus.SYNCED],
        prune=to_prune,
        prune_allowed=prune_allowed,
    )


def prune_skip(plan: SyncPlan, apply_failed: bool) -> PruneSkip | None:
    """After the apply: None = prune `plan.prune` now; else why they stay."""
    if not plan.prune_allowed:
        return PruneSkip.OFF
    return PruneSkip.APPLY_FAILED if apply_failed else None


def settled(diffs: Mapping[ResourceKey, ResourceDiff], changes: ChangeSet,
            applied: Mapping[ResourceKey, Obj]) -> dict[ResourceKey, ResourceDiff]:
    """The diffs after a sync: an object the API server took (created or configured) now
    equals Git — server-side apply of the same object again would leave it as it is — so it is
    Synced, its live side the API server's answer. Any other keeps the diff it had."""
    took = {c.key for c in changes if c.action in (Action.CREATED, Action.CONFIGURED)}
    out = dict(diffs)
    for key, obj in applied.items():
        if key in took:
            have = normalize(obj)
            out[key] = ResourceDiff(key, SyncStatus.SYNCED, have, have)
    return out


def is_rollback(request: SyncRequest | None, revision: str, head: str) -> bool:
    """A sync asked for at a revision other than where targetRevision points now."""
    return request is not None and bool(request.revision) and bool(head) and head != revision
