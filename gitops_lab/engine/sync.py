"""One reconcile of one Application: fetch → render → diff → apply → prune → health.
The core of the agent (agent/controller.py calls it); each step is timed into a Trace, and any
failure sets one condition and stops before pruning.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from gitops_lab.api.types import (
    TRACKING_ANNOTATION,
    Action,
    Health,
    HealthStatus,
    ResourceKey,
    SyncStatus,
    worst_health,
)
from gitops_lab.engine.apply import ChangeSet, ResourceManager
from gitops_lab.engine.diff import ResourceDiff, compare
from gitops_lab.engine.health import assess_health
from gitops_lab.engine.inventory import Pair, is_owned, pair, prune_candidates
from gitops_lab.kube import Kube, KubeError
from gitops_lab.source import (
    CommitInfo,
    Manifest,
    RenderError,
    RepoCache,
    SourceError,
    render_revision,
)

__all__ = [
    "AppSpec",
    "Condition",
    "DirectLive",
    "LiveView",
    "ReconcileResult",
    "Reconciler",
    "ResourceStatus",
    "SpecError",
    "Step",
    "SyncRequest",
    "Trace",
]

Obj = dict[str, Any]


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
        limit = spec.get("revisionHistoryLimit", 10)
        if not isinstance(limit, int) or limit < 1:
            raise SpecError(f"spec.revisionHistoryLimit must be a positive integer, not {limit!r}")
        return cls(
            namespace=str(meta.get("namespace") or "default"),
            name=str(meta.get("name")),
            repo_url=repo,
            target_revision=str(source.get("targetRevision") or "HEAD"),
            path=str(source.get("path") or "."),
            dest_namespace=str(dest.get("namespace") or ""),
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
    def tracking_prefix(self) -> str:
        return f"{self.namespace}_{self.name}:"


@dataclass(frozen=True)
class SyncRequest:
    """A sync asked for by a user (`operation.sync`): which revision, and whether to prune."""

    revision: str | None = None
    prune: bool = False


@dataclass(frozen=True)
class Condition:
    type: str
    message: str


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


def _hash(obj: Mapping[str, Any]) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _rv(obj: Mapping[str, Any] | None) -> str | None:
    return None if obj is None else str((obj.get("metadata") or {}).get("resourceVersion"))


def _where(manifest: Manifest | None, key: ResourceKey) -> str:
    return f"{manifest.path}: {key}" if manifest is not None else str(key)


class Reconciler:
    """Runs reconciles; keeps render and dry-run caches so a no-op reconcile makes no requests."""

    def __init__(self, kube: Kube, repos: RepoCache, live: LiveView | None = None,
                 kubectl: str | None = None) -> None:
        self.kube = kube
        self.repos = repos
        self.live: LiveView = live or DirectLive(kube)
        self.manager = ResourceManager(kube)
        self.kubectl = kubectl
        self._render_cache: dict[tuple[str, str, str], list[Manifest]] = {}
        self._dry_runs: dict[ResourceKey, tuple[str, str | None, Obj]] = {}
        self.fetch_errors: dict[str, str] = {}  # repo URL -> why its last fetch failed
        self._resolved: dict[tuple[str, str], str] = {}  # (url, revision) -> sha, until a fetch
        self._commits: dict[tuple[str, str], CommitInfo] = {}
        self._lock = threading.Lock()

    # ---- fetch + render --------------------------------------------------------------------
    def fetch(self, url: str, timeout: float = 30) -> None:
        """Fetch from Git. When Git cannot be reached but a mirror exists, remember why and
        carry on with the mirror (the reconcile then says so in a SourceError condition)."""
        try:
            self.repos.fetch(url, timeout=timeout)
        except SourceError as exc:
            self.fetch_errors[url] = str(exc)
            if not (self.repos.mirror_path(url) / "HEAD").exists():
                raise
        else:
            self.fetch_errors.pop(url, None)
        with self._lock:  # refs may have moved: resolve again from now on
            self._resolved = {k: v for k, v in self._resolved.items() if k[0] != url}

    def resolve(self, spec: AppSpec, revision: str | None, fetch: bool) -> str:
        """The full SHA to compare against (the repo is fetched first when asked, or never seen).
        Remembered until the next fetch of that repo, so drift reconciles start no git process."""
        if fetch:
            self.fetch(spec.repo_url)
        key = (spec.repo_url, revision or spec.target_revision)
        sha = self._resolved.get(key)
        if sha is None:
            sha = self.repos.resolve(*key)
            with self._lock:
                self._resolved[key] = sha
        return sha

    def commit_info(self, url: str, sha: str) -> CommitInfo:
        """A commit never changes: read it from Git once."""
        info = self._commits.get((url, sha))
        if info is None:
            info = self.repos.commit_info(url, sha)
            with self._lock:
                if len(self._commits) > 1024:
                    self._commits.clear()
                self._commits[(url, sha)] = info
        return info

    def manifests(self, spec: AppSpec, sha: str) -> list[Manifest]:
        cache_key = (spec.repo_url, sha, spec.path)
        with self._lock:
            cached = self._render_cache.get(cache_key)
        if cached is not None:
            return cached
        rendered = render_revision(self.repos, spec.repo_url, sha, spec.path,
                                   kubectl=self.kubectl)
        with self._lock:
            if len(self._render_cache) > 256:
                self._render_cache.clear()
            self._render_cache[cache_key] = rendered
        return rendered

    # ---- desired state -----------------------------------------------------------------------
    def _desired(
        self, spec: AppSpec, manifests: list[Manifest]
    ) -> tuple[list[Obj], dict[ResourceKey, Manifest], list[str]]:
        """Namespace defaulting, tracking annotation; unknown kinds are reported, not guessed."""
        crd_scopes: dict[tuple[str, str], bool] = {}
        for m in manifests:
            if m.obj.get("kind") == "CustomResourceDefinition":
                crd = m.obj.get("spec") or {}
                crd_scopes[(str(crd.get("group")), str((crd.get("names") or {}).get("kind")))] = (
                    crd.get("scope", "Namespaced") == "Namespaced"
                )
        desired: list[Obj] = []
        origin: dict[ResourceKey, Manifest] = {}
        errors: list[str] = []
        for m in manifests:
            obj = json.loads(json.dumps(m.obj))  # a private copy
            api_version = str(obj["apiVersion"])
            group = api_version.rpartition("/")[0]
            try:
                namespaced = self.kube.resource_for(api_version, str(obj["kind"])).namespaced
            except KubeError as exc:
                if exc.status != 404:
                    raise
                if (group, obj["kind"]) not in crd_scopes:
                    errors.append(
                        f"{m.path}: {obj['kind']} {obj['metadata'].get('name')}: unknown kind "
                        f"{obj['kind']!r} in {api_version!r} (no such resource type on the "
                        "API server, and no CRD for it in this app)"
                    )
                    continue
                namespaced = crd_scopes[(group, obj["kind"])]
            meta = obj["metadata"]
            if namespaced:
                meta["namespace"] = meta.get("namespace") or spec.dest_namespace or "default"
            else:
                meta.pop("namespace", None)
            key = ResourceKey.from_object(obj)
            annotations = meta.setdefault("annotations", {})
            annotations[TRACKING_ANNOTATION] = key.tracking_id(spec.namespace, spec.name)
            desired.append(obj)
            origin[key] = m
        return desired, origin, errors

    # ---- diff -------------------------------------------------------------------------------
    def _predict(self, key: ResourceKey, obj: Obj, live: Obj | None,
                 pending_namespaces: set[str], pending_kinds: set[tuple[str, str]]) -> Obj:
        """Dry-run apply, memoised on (desired hash, live resourceVersion)."""
        digest = _hash(obj)
        rv = _rv(live)
        memo = self._dry_runs.get(key)
        if memo is not None and memo[0] == digest and memo[1] == rv:
            return memo[2]
        if (key.namespace in pending_namespaces and live is None) or (
            (key.group, key.kind) in pending_kinds
        ):
            return obj  # its Namespace or CRD is created by this same sync: nothing to ask yet
        predicted = self.manager.dry_run(obj)
        self._dry_runs[key] = (digest, rv, predicted)
        return predicted

    def forget(self, key: ResourceKey) -> None:
        self._dry_runs.pop(key, None)

    # ---- the reconcile ------------------------------------------------------------------------
    def reconcile(
        self,
        app: Mapping[str, Any],
        *,
        fetch: bool = True,
        sync: SyncRequest | None = None,
        previous: Mapping[str, Any] | None = None,
        on_sync_start: Callable[[str], None] | None = None,
    ) -> ReconcileResult:
        """Compare (and, by policy or request, sync) one Application. Never raises for bad input."""
        status = previous if previous is not None else (app.get("status") or {})
        trace = Trace()
        try:
            spec = AppSpec.from_object(app)
        except SpecError as exc:
            result = ReconcileResult(None, trace=trace)
            result.conditions.append(Condition("InvalidSpecError", str(exc)))
            return result
        result = ReconcileResult(spec, trace=trace)
        inventory = _inventory(status)

        # 1. fetch: resolve the revision to a full SHA (fetching from Git when asked to)
        try:
            with trace.step("fetch") as step:
                revision = sync.revision if sync and sync.revision else None
                sha = self.resolve(spec, revision, fetch)
                result.revision = sha
                result.commit = self.commit_info(spec.repo_url, sha)
                step.detail = f"{spec.repo_url} {revision or spec.target_revision} → {sha[:7]}"
        except SourceError as exc:
            result.conditions.append(Condition("SourceError", str(exc)))
            self._health_only(result, spec, inventory)
            return result
        stale = self.fetch_errors.get(spec.repo_url)
        if stale:
            result.conditions.append(Condition(
                "SourceError", f"{stale}; comparing with the last fetched revision {sha[:7]}"))

        # 2. render: the manifests at that SHA
        try:
            with trace.step("render") as step:
                manifests = self.manifests(spec, sha)
                step.detail = f"{len(manifests)} objects from {spec.path}"
        except (RenderError, SourceError) as exc:
            kind = "SourceError" if isinstance(exc, SourceError) else "ComparisonError"
            result.conditions.append(Condition(kind, str(exc)))
            self._health_only(result, spec, inventory)
            return result

        # 3. diff: server-side-apply dry run of each object against the live one
        with trace.step("diff") as step:
            desired, origin, errors = self._desired(spec, manifests)
            keys = [ResourceKey.from_object(o) for o in desired]
            live: dict[ResourceKey, Obj | None] = {}
            unreadable: set[ResourceKey] = set()
            for k in [*keys, *inventory]:
                if k in live or k in unreadable:
                    continue
                try:
                    live[k] = self.live.get(k)
                except KubeError as exc:  # e.g. Forbidden: the agent's RBAC does not cover it
                    unreadable.add(k)
                    errors.append(f"{_where(origin.get(k), k)}: cannot read the live object: "
                                  f"{exc.message}")
            # namespaces this sync will create: objects in them cannot be dry-run yet
            pending_ns = {
                str(o["metadata"]["name"]) for o, k in zip(desired, keys, strict=True)
                if o["kind"] == "Namespace" and live.get(k) is None
            }
            if spec.create_namespace and spec.dest_namespace and self.live.get(
                    ResourceKey("", "Namespace", "", spec.dest_namespace, "v1")) is None:
                pending_ns.add(spec.dest_namespace)
            pending_kinds = {
                (str((o.get("spec") or {}).get("group")),
                 str(((o.get("spec") or {}).get("names") or {}).get("kind")))
                for o, k in zip(desired, keys, strict=True)
                if o["kind"] == "CustomResourceDefinition" and live.get(k) is None
            }
            pairs = pair(desired, live, inventory)
            shared: list[str] = []
            to_compare: list[Pair] = []
            for p in pairs:
                if p.desired is None or p.key in unreadable:
                    continue
                owner = ((p.live or {}).get("metadata", {}).get("annotations") or {}).get(
                    TRACKING_ANNOTATION, "")
                if p.live is not None and owner and not owner.startswith(spec.tracking_prefix):
                    shared.append(f"{_where(origin.get(p.key), p.key)} is already managed by "
                                  f"{owner.split(':', 1)[0].replace('_', '/')}; not touching it")
                    continue
                to_compare.append(p)

            def predict(p: Pair) -> Obj | KubeError:
                assert p.desired is not None
                try:
                    return self._predict(p.key, p.desired, p.live, pending_ns, pending_kinds)
                except KubeError as exc:
                    return exc

            for p, predicted in zip(to_compare, self.manager.map(predict, to_compare),
                                    strict=True):
                if isinstance(predicted, KubeError):
                    errors.append(f"{_where(origin.get(p.key), p.key)}: {predicted.message}")
                    continue
                result.diffs[p.key] = compare(p.key, predicted, p.live)
            step.detail = (f"{sum(d.status is SyncStatus.OUT_OF_SYNC for d in result.diffs.values())}"
                           f" of {len(desired)} out of sync")
            if errors:
                step.ok = False
        if shared:
            result.conditions.append(Condition("SharedResourceWarning", "; ".join(shared)))
        if errors:
            result.conditions.append(Condition("ComparisonError", "; ".join(errors)))

        out_of_sync = [d for d in result.diffs.values() if d.status is SyncStatus.OUT_OF_SYNC]
        result.compared_out_of_sync = list(out_of_sync)  # before any apply: what drifted
        to_prune = prune_candidates(pairs, spec.namespace, spec.name)
        last_synced = str(((status.get("operationState") or {}).get("syncResult") or {})
                          .get("revision", ""))

        # 4. apply: by request, or by policy (new revision, or drift with selfHeal)
        wants_sync = sync is not None or (
            spec.automated and (sha != last_synced or (spec.self_heal and bool(out_of_sync)))
        )
        prune = (sync.prune if sync is not None else False) or (
            spec.automated and spec.prune and sync is None
        )
        empty_guard = (sync is None and spec.automated and not desired and not errors
                       and not spec.allow_empty)
        if errors:
            trace.skip("apply", "comparison errors; nothing applied, nothing pruned")
            if sync is not None:
                result.sync_error = "not synced: " + "; ".join(errors)
                result.changes = ChangeSet()
        elif empty_guard and (inventory or sha != last_synced):
            msg = (f"{spec.path} at {sha[:7]} renders no objects; an automated sync that would "
                   "leave the app empty needs syncPolicy.automated.allowEmpty: true")
            result.conditions.append(Condition("SyncError", msg))
            trace.skip("apply", "empty render without allowEmpty")
        elif wants_sync:
            changes = ChangeSet()
            if on_sync_start is not None:
                on_sync_start(sha)
            with trace.step("apply") as step:
                if spec.create_namespace and spec.dest_namespace:
                    self._ensure_namespace(spec.dest_namespace)
                todo = [(p.desired, p.live is not None) for p in pairs
                        if p.desired is not None and p.key in result.diffs
                        and result.diffs[p.key].status is SyncStatus.OUT_OF_SYNC]
                applied, objs = self.manager.apply_all(
                    (d, exists) for d, exists in todo if d is not None
                )
                changes.extend(applied)
                desired_by_key = {ResourceKey.from_object(d): d for d, _ in todo if d}
                for k, o in objs.items():
                    live[k] = o
                    # applying the same object again would give this very result
                    self._dry_runs[k] = (_hash(desired_by_key[k]), _rv(o), o)
                for d in result.diffs.values():
                    if d.status is SyncStatus.SYNCED:
                        changes.add(d.key, Action.UNCHANGED)
                step.detail = applied.summary()
                step.ok = not applied.failed

            # 5. prune: only owned objects that left Git, and only when allowed
            if to_prune and prune and not changes.failed:
                with trace.step("prune") as step:
                    pruned = self.manager.delete_all(p.live for p in to_prune if p.live)
                    changes.extend(pruned)
                    for c in pruned:
                        if c.action is Action.PRUNED:
                            live[c.key] = None
                    step.detail = pruned.summary()
            elif to_prune:
                trace.skip("prune", "prune is off" if not prune else "apply failed")
                for p in to_prune:
                    changes.add(p.key, Action.SKIPPED, "requires pruning")
            else:
                trace.skip("prune", "nothing left Git")
            result.changes = changes
            if changes.failed:
                result.sync_error = "; ".join(
                    f"{_where(origin.get(c.key), c.key)}: {c.message}" for c in changes.failed
                )
                result.conditions.append(Condition("SyncError", result.sync_error))
            # re-compare what was applied: the cluster now equals Git for those objects
            for k, o in objs.items():
                result.diffs[k] = compare(k, o, o)
        else:
            trace.skip("apply", "in sync" if not out_of_sync else "automated sync is off")

        # 6. health: each object's own rules; the app is the worst of them
        with trace.step("health") as step:
            self._statuses(result, pairs, live, origin, spec)
            step.detail = f"{result.health.status.value}: {result.health.message}".rstrip(": ")
        result.live = {k: v for k, v in live.items() if v is not None}
        return result

    def _ensure_namespace(self, name: str) -> None:
        if self.kube.get_or_none("v1", "Namespace", name) is None:
            self.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def _statuses(self, result: ReconcileResult, pairs: list[Pair],
                  live: dict[ResourceKey, Obj | None], origin: dict[ResourceKey, Manifest],
                  spec: AppSpec) -> None:
        healths: list[Health] = []
        resources: list[ResourceStatus] = []
        for p in pairs:
            obj = live.get(p.key)
            if p.desired is None:
                if obj is None or not is_owned(obj, spec.namespace, spec.name):
                    continue  # gone, or no longer ours: not part of the app any more
                resources.append(ResourceStatus(p.key, SyncStatus.OUT_OF_SYNC, None, True,
                                                "requires pruning"))
                continue
            diff = result.diffs.get(p.key)
            health = assess_health(obj) if obj is not None else Health(
                HealthStatus.MISSING, "not found in the cluster")
            healths.append(health)
            sync_status = diff.status if diff else SyncStatus.OUT_OF_SYNC
            m = origin.get(p.key)
            resources.append(ResourceStatus(
                p.key, sync_status, health, False,
                diff.message if diff else "could not be compared",
                m.path if m else "",
            ))
        result.resources = resources
        result.health = worst_health(healths)
        if result.health.status is not HealthStatus.HEALTHY:
            worst = next(r for r in resources
                         if r.health and r.health.status is result.health.status)
            result.health = Health(result.health.status, f"{worst.key}: "
                                   f"{worst.health.message if worst.health else ''}".rstrip(": "))
        has_comparison_error = any(c.type in ("ComparisonError",) for c in result.conditions)
        if any(r.status is SyncStatus.OUT_OF_SYNC for r in resources) or has_comparison_error:
            result.sync_status = SyncStatus.OUT_OF_SYNC
        else:
            result.sync_status = SyncStatus.SYNCED

    def _health_only(self, result: ReconcileResult, spec: AppSpec,
                     inventory: list[ResourceKey]) -> None:
        """When Git cannot be read: keep the last inventory, report its live health, change nothing."""
        with result.trace.step("health") as step:
            live: dict[ResourceKey, Obj | None] = {}
            for k in inventory:
                try:
                    live[k] = self.live.get(k)
                except KubeError:
                    live[k] = None
            healths = [assess_health(o) if o is not None else Health(HealthStatus.MISSING)
                       for o in live.values()]
            result.resources = [
                ResourceStatus(k, SyncStatus.UNKNOWN, h) for k, h in zip(live, healths, strict=True)
            ]
            result.health = worst_health(healths) if healths else Health(HealthStatus.UNKNOWN)
            result.sync_status = SyncStatus.UNKNOWN
            result.live = {k: v for k, v in live.items() if v is not None}
            step.detail = "Git unreadable: last known objects only"


def _inventory(status: Mapping[str, Any]) -> list[ResourceKey]:
    """The app's inventory: the objects its last status listed."""
    keys = []
    for r in status.get("resources") or []:
        keys.append(ResourceKey(str(r.get("group", "")), str(r.get("kind", "")),
                                str(r.get("namespace", "")), str(r.get("name", "")),
                                str(r.get("version", ""))))
    return keys
