"""One reconcile of one Application: fetch → render → diff → plan → apply → prune → health.
The core of the agent (agent/controller.py calls it). Each stage is a module of its own —
source/cache.py (Git), engine/inventory.py (desired state, ownership), engine/diff.py (dry
runs), engine/sync.py (the decisions, pure), engine/apply.py (writes) — and this file only
strings them together. Each step is timed into a Trace; any failure sets one condition and
stops before pruning.

Two calls, so the agent can say "sync started" before the writes: `compare` (fetch, render,
diff, plan) and `sync` (apply, prune, health); `reconcile` is both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gitops_lab.api.types import Action, ResourceKey, SyncStatus
from gitops_lab.engine.api import (
    AppSpec,
    Condition,
    ConditionType,
    DirectLive,
    LiveView,
    ReconcileResult,
    SpecError,
    SyncRequest,
    Trace,
)
from gitops_lab.engine.apply import ChangeSet, ResourceManager
from gitops_lab.engine.diff import Differ
from gitops_lab.engine.inventory import Desired, Pair, claim, inventory_keys, pair, prepare
from gitops_lab.engine.report import health_only, resource_statuses
from gitops_lab.engine.sync import Skip, SyncPlan, is_rollback, plan_sync, prune_skip, settled
from gitops_lab.kube import Kube, KubeError
from gitops_lab.source.cache import GitCache
from gitops_lab.source.errors import RenderError, SourceError
from gitops_lab.source.git import RepoCache

__all__ = ["Compared", "Reconciler", "compare_app"]

Obj = dict[str, Any]
NAMESPACE_KINDS = ("Namespace", "CustomResourceDefinition")


def _crd_kind(obj: Mapping[str, Any]) -> tuple[str, str]:
    spec = obj.get("spec") or {}
    return str(spec.get("group")), str((spec.get("names") or {}).get("kind"))


@dataclass
class Compared:
    """A reconcile after its comparison: the result so far and, unless it ended early
    (`plan` None: bad spec, Git unreadable), what the sync will do."""

    result: ReconcileResult
    plan: SyncPlan | None = None
    request: SyncRequest | None = None
    desired: Desired = field(default_factory=Desired)
    pairs: list[Pair] = field(default_factory=list)
    live: dict[ResourceKey, Obj | None] = field(default_factory=dict)
    waiting: list[Pair] = field(default_factory=list)  # need a Namespace/CRD of this sync
    dest_missing: bool = False  # CreateNamespace=true and the destination does not exist

    @property
    def syncs(self) -> bool:
        return self.plan is not None and self.plan.syncs


class Reconciler:
    """Runs reconciles; Git memos (GitCache) and the dry-run memo (Differ) make a no-op
    reconcile ask nothing of Git or the API server."""

    def __init__(self, kube: Kube, git: GitCache, live: LiveView | None = None) -> None:
        self.kube = kube
        self.git = git
        self.live: LiveView = live or DirectLive(kube)
        self.manager = ResourceManager(kube)
        self.differ = Differ(self.manager)

    def reconcile(self, app: Mapping[str, Any], *, inventory: Sequence[ResourceKey] = (),
                  last_synced: str = "", fetch: bool = True,
                  request: SyncRequest | None = None) -> ReconcileResult:
        """Compare (and, by policy or request, sync) one Application. Never raises for bad
        input. `inventory`: the objects the app had (its last status.resources);
        `last_synced`: the revision of its last sync ("" = never synced)."""
        return self.sync(self.compare(app, inventory=inventory, last_synced=last_synced,
                                      fetch=fetch, request=request))

    # ---- fetch, render, diff, plan -------------------------------------------------------------
    def compare(self, app: Mapping[str, Any], *, inventory: Sequence[ResourceKey] = (),
                last_synced: str = "", fetch: bool = True,
                request: SyncRequest | None = None) -> Compared:
        trace = Trace()
        try:
            spec = AppSpec.from_object(app)
        except SpecError as exc:
            result = ReconcileResult(None, trace=trace)
            result.conditions.append(Condition(ConditionType.INVALID_SPEC, str(exc), ("spec",)))
            return Compared(result)
        result = ReconcileResult(spec, trace=trace)

        # 1. fetch: resolve the revision to a full SHA (fetching from Git when asked to)
        try:
            with trace.step("fetch") as step:
                revision = request.revision if request and request.revision else None
                sha = self.git.resolve(spec.repo_url, revision or spec.target_revision,
                                       fetch=fetch)
                result.revision = sha
                result.commit = self.git.commit_info(spec.repo_url, sha)
                step.detail = f"{spec.repo_url} {revision or spec.target_revision} → {sha[:7]}"
        except SourceError as exc:
            result.conditions.append(Condition(ConditionType.SOURCE, str(exc), (spec.repo_url,)))
            health_only(result, self.live, inventory)
            return Compared(result, request=request)
        result.head = sha if revision is None else self._head(spec)
        result.rollback = is_rollback(request, sha, result.head)
        stale = self.git.fetch_errors.get(spec.repo_url)
        if stale:
            result.conditions.append(Condition(
                ConditionType.SOURCE, f"{stale}; comparing with the last fetched revision "
                f"{sha[:7]}", (spec.repo_url,)))

        # 2. render: the manifests at that SHA
        try:
            with trace.step("render") as step:
                manifests = self.git.manifests(spec.repo_url, sha, spec.path)
                step.detail = f"{len(manifests)} objects from {spec.path}"
        except (RenderError, SourceError) as exc:
            kind = ConditionType.SOURCE if isinstance(exc, SourceError) else \
                ConditionType.COMPARISON
            subject = (exc.path if isinstance(exc, RenderError) else None) or spec.path
            result.conditions.append(Condition(kind, str(exc), (subject,)))
            health_only(result, self.live, inventory)
            return Compared(result, request=request)

        # 3. diff: server-side-apply dry run of each object against the live one
        with trace.step("diff") as step:
            compared = self._diff(spec, manifests, inventory, result, request)
            errors = compared.desired.errors
            step.detail = (f"{len(result.compared_out_of_sync)} of "
                           f"{len(compared.desired.objects)} out of sync")
            if compared.waiting:
                step.detail += (f"; {len(compared.waiting)} wait for their Namespace or CRD (a "
                                "sync creates those first, then dry-runs them)")
            step.ok = not errors
        if errors:
            result.conditions.append(_errors_condition(ConditionType.COMPARISON, errors))

        # 4. plan: what to apply, prune and leave, and why (engine/sync.py)
        compared.plan = plan = plan_sync(
            spec, request=request, revision=sha, last_synced=last_synced, inventory=inventory,
            pairs=compared.pairs, diffs=result.diffs, errors=bool(errors))
        if plan.condition is not None:
            result.conditions.append(plan.condition)
        return compared

    def _head(self, spec: AppSpec) -> str:
        try:
            return self.git.resolve(spec.repo_url, spec.target_revision)
        except SourceError:
            return ""

    def _diff(self, spec: AppSpec, manifests: list[Any], inventory: Sequence[ResourceKey],
              result: ReconcileResult, request: SyncRequest | None) -> Compared:
        """Desired state, live state, ownership, dry runs: into `result.diffs`."""
        desired = prepare(self.kube, spec, manifests)
        keys = [ResourceKey.from_object(o) for o in desired.objects]
        # kinds whose CRD this app ships: until it is applied, their objects do not exist
        crd_kinds = {_crd_kind(o) for o in desired.objects
                     if o["kind"] == "CustomResourceDefinition"}
        live: dict[ResourceKey, Obj | None] = {}
        unreadable: set[ResourceKey] = set()
        for k in [*keys, *inventory]:
            if k in live or k in unreadable:
                continue
            try:
                live[k] = self.live.get(k)
            except KubeError as exc:  # e.g. Forbidden: the agent's RBAC does not cover it
                if exc.status == 404 and (k.group, k.kind) in crd_kinds:
                    live[k] = None  # the kind is not served yet: its CRD comes with us
                    continue
                unreadable.add(k)
                desired.errors.append((desired.where(k),
                                       f"cannot read the live object: {exc.message}"))
        # namespaces and kinds this sync will create: objects in them cannot be dry-run yet
        new = [o for o, k in zip(desired.objects, keys, strict=True) if live.get(k) is None]
        pending_ns = {str(o["metadata"]["name"]) for o in new if o["kind"] == "Namespace"}
        pending_kinds = {_crd_kind(o) for o in new if o["kind"] == "CustomResourceDefinition"}
        dest_missing = bool(spec.create_namespace and spec.dest_namespace and self.live.get(
            ResourceKey("", "Namespace", "", spec.dest_namespace, "v1")) is None)
        if dest_missing:
            pending_ns.add(spec.dest_namespace)
        pairs = pair(desired.objects, live, inventory)
        shared: list[str] = []
        to_compare: list[Pair] = []
        for p in pairs:
            if p.desired is None or p.key in unreadable:
                continue
            refused = claim(p.key, p.live, spec)
            if refused is None:
                to_compare.append(p)
            elif refused[0]:
                desired.errors.append((desired.where(p.key), refused[1]))
            else:
                shared.append(f"{desired.where(p.key)} {refused[1]}")
        found = self.differ.compare_all([(p.key, p.desired, p.live) for p in to_compare
                                         if p.desired is not None], pending_ns, pending_kinds)
        result.diffs.update(found.diffs)
        desired.errors.extend((desired.where(k), m) for k, m in found.errors)
        waiting = [Pair(k, d, lv) for k, d, lv in found.waiting]
        if shared:
            result.conditions.append(Condition(ConditionType.SHARED_RESOURCE, "; ".join(shared)))
        result.compared_out_of_sync = [d for d in result.diffs.values()
                                       if d.status is SyncStatus.OUT_OF_SYNC]
        return Compared(result, None, request, desired, pairs, live, waiting, dest_missing)

    # ---- apply, prune, health --------------------------------------------------------------
    def sync(self, compared: Compared) -> ReconcileResult:
        """Act on the plan, then assess health. A comparison that ended early is returned as is."""
        result, plan = compared.result, compared.plan
        if plan is None or result.spec is None:
            return result
        trace, origin = result.trace, compared.desired.origin
        if plan.skip is not None:
            trace.skip("apply", plan.skip.value)
            if plan.skip is Skip.ERRORS and compared.request is not None:
                result.sync_error = "not synced: " + "; ".join(
                    f"{s}: {c}" for s, c in compared.desired.errors)
                result.changes = ChangeSet()
        else:
            changes = result.changes = self._apply(compared)
            # prune: only owned objects that left Git, and only when allowed
            why_not = prune_skip(plan, bool(changes.failed or result.sync_error))
            if plan.prune and why_not is None:
                with trace.step("prune") as step:
                    pruned = self.manager.delete_all(p.live for p in plan.prune if p.live)
                    changes.extend(pruned)
                    for c in pruned:
                        if c.action is Action.PRUNED:
                            compared.live[c.key] = None
                    step.detail = pruned.summary()
            elif plan.prune:
                trace.skip("prune", str(why_not))
                for p in plan.prune:
                    changes.add(p.key, Action.SKIPPED, "requires pruning")
            else:
                trace.skip("prune", "nothing left Git")
            if changes.failed:
                result.sync_error = "; ".join(
                    f"{compared.desired.where(c.key)}: {c.message}" for c in changes.failed)
                result.conditions.append(Condition(
                    ConditionType.SYNC, result.sync_error,
                    tuple(compared.desired.where(c.key) for c in changes.failed)))

        # health: each object's own rules; the app is the worst of them
        with trace.step("health") as step:
            resource_statuses(result, compared.pairs, compared.live, origin,
                              result.spec.namespace, result.spec.name)
            step.detail = f"{result.health.status.value}: {result.health.message}".rstrip(": ")
        result.live = {k: v for k, v in compared.live.items() if v is not None}
        return result

    def _apply(self, compared: Compared) -> ChangeSet:
        """Apply the plan: first what the rest needs when some of it is missing (the
        destination namespace, the app's Namespaces and CRDs), then dry-run what waited for
        them, then apply the rest."""
        result, plan, live = compared.result, compared.plan, compared.live
        assert plan is not None and result.spec is not None
        changes = ChangeSet()
        applied: dict[ResourceKey, Obj] = {}
        todo = list(plan.apply)
        with result.trace.step("apply") as step:
            if compared.dest_missing or compared.waiting:
                first = [p for p in todo if p.key.kind in NAMESPACE_KINDS]
                todo = [p for p in todo if p.key.kind not in NAMESPACE_KINDS]
                self._apply_stage(first, changes, applied, live,
                                  result.spec.dest_namespace if compared.dest_missing else "")
                if not changes.failed and compared.waiting:
                    found = self.differ.compare_all([(p.key, p.desired, live.get(p.key))
                                                     for p in compared.waiting if p.desired])
                    result.diffs.update(found.diffs)
                    late = [(compared.desired.where(k), m) for k, m in found.errors]
                    if late:  # one ComparisonError, as if the namespace had been there
                        result.conditions.append(
                            _errors_condition(ConditionType.COMPARISON, late))
                        result.sync_error = "not synced: " + "; ".join(
                            f"{s}: {c}" for s, c in late)
                        step.ok = False
                        todo = []
                    else:
                        todo = [p for p in todo if p.key not in result.diffs or
                                result.diffs[p.key].status is SyncStatus.OUT_OF_SYNC]
            unchanged = [k for k in plan.unchanged if k not in applied]
            if changes.failed or result.sync_error:
                todo = []
            self._apply_stage(todo, changes, applied, live, "", unchanged)
            result.diffs = settled(result.diffs, changes, applied)
            step.detail = changes.summary()
            step.ok = step.ok and not changes.failed
        return changes

    def _apply_stage(self, todo: list[Pair], changes: ChangeSet, applied: dict[ResourceKey, Obj],
                     live: dict[ResourceKey, Obj | None], create_ns: str,
                     unchanged: Sequence[ResourceKey] = ()) -> None:
        """Apply `todo` (staged: Namespaces and CRDs first, CRDs waited for until Established);
        with `create_ns`, first that destination namespace (CreateNamespace=true)."""
        if create_ns:
            try:
                self.manager.ensure_namespace(create_ns)
            except KubeError as exc:
                changes.add(ResourceKey("", "Namespace", "", create_ns, "v1"), Action.FAILED,
                            f"CreateNamespace=true: {exc.message}")
                return
        desired = {p.key: p.desired for p in todo if p.desired is not None}
        done_changes, done = self.manager.apply_all(
            ((p.desired, p.live is not None) for p in todo if p.desired is not None), unchanged)
        changes.extend(done_changes)
        for k, o in done.items():
            live[k] = o
            applied[k] = o
            self.differ.remember(k, desired[k], o)


def _errors_condition(ctype: str, errors: list[tuple[str, str]]) -> Condition:
    return Condition(ctype, "; ".join(f"{s}: {c}" for s, c in errors),
                     tuple(sorted({s for s, _ in errors})))


def compare_app(kube: Kube, app: Mapping[str, Any], repos: RepoCache) -> ReconcileResult:
    """Compare Git with the live cluster here, without the agent and without writing (like
    `argocd app diff --local`): the app's sync policy and operation are left out, so nothing
    is applied or pruned. Used by `gitops-lab app diff` and the DiffView widget."""
    compare_only = dict(app)
    compare_only["spec"] = {**(app.get("spec") or {}), "syncPolicy": None}
    compare_only.pop("operation", None)
    return Reconciler(kube, GitCache(repos)).reconcile(
        compare_only, inventory=inventory_keys(app.get("status") or {}))
