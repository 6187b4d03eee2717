"""One reconcile of one Application: fetch → render → diff → apply → prune → health.
The core of the agent (agent/controller.py calls it); each step is timed into a Trace, and any
failure sets one condition and stops before pruning.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from gitops_lab.api.types import (
    GROUP,
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
from gitops_lab.engine.guard import APP_OF_APPS_OPTION, refusal
from gitops_lab.engine.health import assess_health
from gitops_lab.engine.inventory import Pair, inventory_keys, is_owned, pair, prune_candidates
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

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# The cluster the agent runs in, as Argo CD names it; any other server is not supported.
IN_CLUSTER_SERVERS = ("", "https://kubernetes.default.svc")
# etcd's default --max-request-bytes: a larger object passes a dry run but never stores.
MAX_OBJECT_BYTES = 1536 * 1024
# With a background fetcher: how long a reconcile waits for a fetch it asked for.
FETCH_WAIT = 3.0
CLONE_WAIT = 5.0


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
    type: str
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
        # The agent sets this to fetch on a repo's own thread (agent/fetcher.py): called with
        # (url, seconds to wait for it), True when that fetch finished. None: fetch inline.
        self.background_fetch: Callable[[str, float], bool] | None = None

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
        url = spec.repo_url
        if self.background_fetch is not None:
            have_mirror = (self.repos.mirror_path(url) / "HEAD").exists()
            if fetch or not have_mirror:
                # a repo that never answers holds this worker for seconds, not for the
                # whole fetch timeout; the fetch goes on in the background and re-queues
                self.background_fetch(url, FETCH_WAIT if have_mirror else CLONE_WAIT)
                if not (self.repos.mirror_path(url) / "HEAD").exists():
                    raise SourceError(self.fetch_errors.get(url) or (
                        f"cannot fetch {url}: no answer within {CLONE_WAIT:g}s yet; still "
                        "trying in the background"), url=url)
        elif fetch:
            self.fetch(url)
        key = (url, revision or spec.target_revision)
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
    ) -> tuple[list[Obj], dict[ResourceKey, Manifest], list[tuple[str, str]]]:
        """Namespace defaulting, tracking annotation; unknown kinds are reported, not guessed,
        and the agent's own objects (engine/guard.py) are refused. Errors are
        (subject, cause) pairs, the subject naming the file and the object."""
        crd_scopes: dict[tuple[str, str], bool] = {}
        for m in manifests:
            if m.obj.get("kind") == "CustomResourceDefinition":
                crd = m.obj.get("spec") or {}
                crd_scopes[(str(crd.get("group")), str((crd.get("names") or {}).get("kind")))] = (
                    crd.get("scope", "Namespaced") == "Namespaced"
                )
        desired: list[Obj] = []
        origin: dict[ResourceKey, Manifest] = {}
        errors: list[tuple[str, str]] = []
        for m in manifests:
            text = json.dumps(m.obj)
            obj = json.loads(text)  # a private copy
            api_version = str(obj["apiVersion"])
            group = api_version.rpartition("/")[0]
            try:
                namespaced = self.kube.resource_for(api_version, str(obj["kind"])).namespaced
            except KubeError as exc:
                if exc.status != 404:
                    raise
                if (group, obj["kind"]) not in crd_scopes:
                    errors.append((
                        f"{m.path}: {obj['kind']} {obj['metadata'].get('name')}",
                        f"unknown kind {obj['kind']!r} in {api_version!r} (no such resource "
                        "type on the API server, and no CRD for it in this app)"))
                    continue
                namespaced = crd_scopes[(group, obj["kind"])]
            meta = obj["metadata"]
            if namespaced:
                meta["namespace"] = meta.get("namespace") or spec.dest_namespace or "default"
            else:
                meta.pop("namespace", None)
            key = ResourceKey.from_object(obj)
            why = refusal(key, obj, spec.namespace, spec.app_of_apps)
            if why is not None:
                errors.append((_where(m, key), f"refused: {why}; nothing of this commit is "
                               "applied or pruned until it is removed from Git"))
                continue
            if len(text) > MAX_OBJECT_BYTES:
                errors.append((_where(m, key), f"the object is {len(text) // 1024} KiB; the API "
                               f"server stores at most {MAX_OBJECT_BYTES // 1024} KiB per object"))
                continue
            annotations = meta.setdefault("annotations", {})
            annotations[TRACKING_ANNOTATION] = key.tracking_id(spec.namespace, spec.name)
            desired.append(obj)
            origin[key] = m
        return desired, origin, errors

    # ---- diff -------------------------------------------------------------------------------
    def _predict(self, key: ResourceKey, obj: Obj, live: Obj | None,
                 pending_namespaces: set[str], pending_kinds: set[tuple[str, str]]) -> Obj | None:
        """Dry-run apply, memoised on (desired hash, live resourceVersion). None: it cannot be
        asked yet, as its Namespace or CRD is created by this same sync (a sync creates
        those first, then dry-runs it before applying anything else)."""
        digest = _hash(obj)
        rv = _rv(live)
        memo = self._dry_runs.get(key)
        if memo is not None and memo[0] == digest and memo[1] == rv:
            return memo[2]
        if (key.namespace in pending_namespaces and live is None) or (
            (key.group, key.kind) in pending_kinds
        ):
            return None
        predicted = self.manager.dry_run(obj)
        self._dry_runs[key] = (digest, rv, predicted)
        return predicted

    def forget(self, key: ResourceKey) -> None:
        self._dry_runs.pop(key, None)

    def _compare_all(self, pairs: list[Pair], origin: dict[ResourceKey, Manifest],
                     result: ReconcileResult, errors: list[tuple[str, str]],
                     pending_ns: set[str], pending_kinds: set[tuple[str, str]]) -> list[Pair]:
        """Dry-run and compare `pairs` into result.diffs; failures go to `errors`. Returns the
        pairs that could not be asked yet (their Namespace or CRD does not exist yet)."""

        def predict(p: Pair) -> Obj | KubeError | None:
            assert p.desired is not None
            try:
                return self._predict(p.key, p.desired, p.live, pending_ns, pending_kinds)
            except KubeError as exc:
                return exc

        waiting: list[Pair] = []
        for p, predicted in zip(pairs, self.manager.map(predict, pairs), strict=True):
            if isinstance(predicted, KubeError):
                errors.append((_where(origin.get(p.key), p.key), predicted.message))
                continue
            if predicted is None:
                waiting.append(p)
                assert p.desired is not None
                result.diffs[p.key] = compare(p.key, p.desired, None)
                continue
            result.diffs[p.key] = compare(p.key, predicted, p.live)
        return waiting

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
            result.conditions.append(Condition("InvalidSpecError", str(exc), ("spec",)))
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
            result.conditions.append(Condition("SourceError", str(exc), (spec.repo_url,)))
            self._health_only(result, spec, inventory)
            return result
        stale = self.fetch_errors.get(spec.repo_url)
        if stale:
            result.conditions.append(Condition(
                "SourceError", f"{stale}; comparing with the last fetched revision {sha[:7]}",
                (spec.repo_url,)))

        # 2. render: the manifests at that SHA
        try:
            with trace.step("render") as step:
                manifests = self.manifests(spec, sha)
                step.detail = f"{len(manifests)} objects from {spec.path}"
        except (RenderError, SourceError) as exc:
            kind = "SourceError" if isinstance(exc, SourceError) else "ComparisonError"
            subject = (exc.path if isinstance(exc, RenderError) else None) or spec.path
            result.conditions.append(Condition(kind, str(exc), (subject,)))
            self._health_only(result, spec, inventory)
            return result

        # 3. diff: server-side-apply dry run of each object against the live one
        with trace.step("diff") as step:
            desired, origin, errors = self._desired(spec, manifests)
            keys = [ResourceKey.from_object(o) for o in desired]
            # kinds whose CRD this app ships: until it is applied, their objects do not exist
            crd_kinds = {
                (str((o.get("spec") or {}).get("group")),
                 str(((o.get("spec") or {}).get("names") or {}).get("kind")))
                for o in desired if o["kind"] == "CustomResourceDefinition"
            }
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
                    errors.append((_where(origin.get(k), k),
                                   f"cannot read the live object: {exc.message}"))
            # namespaces this sync will create: objects in them cannot be dry-run yet
            pending_ns = {
                str(o["metadata"]["name"]) for o, k in zip(desired, keys, strict=True)
                if o["kind"] == "Namespace" and live.get(k) is None
            }
            dest_missing = bool(spec.create_namespace and spec.dest_namespace and self.live.get(
                ResourceKey("", "Namespace", "", spec.dest_namespace, "v1")) is None)
            if dest_missing:
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
                if p.live is not None and p.key.group == GROUP and \
                        not is_owned(p.live, spec.namespace, spec.name):
                    # an app of apps manages only the Applications it created
                    by = f"managed by {owner.split(':', 1)[0]}" if owner else \
                        "it has no tracking annotation"
                    errors.append((_where(origin.get(p.key), p.key),
                                   f"refused: it exists and was not created by this app ({by}); "
                                   "an app of apps never adopts an existing Application"))
                    continue
                if p.live is not None and owner and not owner.startswith(spec.tracking_prefix):
                    shared.append(f"{_where(origin.get(p.key), p.key)} is already managed by "
                                  f"{owner.split(':', 1)[0].replace('_', '/')}; not touching it")
                    continue
                to_compare.append(p)
            waiting = self._compare_all(to_compare, origin, result, errors, pending_ns,
                                        pending_kinds)
            step.detail = (f"{sum(d.status is SyncStatus.OUT_OF_SYNC for d in result.diffs.values())}"
                           f" of {len(desired)} out of sync")
            if waiting:
                step.detail += (f"; {len(waiting)} wait for their Namespace or CRD (a sync "
                                "creates those first, then dry-runs them)")
            if errors:
                step.ok = False
        if shared:
            result.conditions.append(Condition("SharedResourceWarning", "; ".join(shared)))
        if errors:
            result.conditions.append(_errors_condition("ComparisonError", errors))

        out_of_sync = [d for d in result.diffs.values() if d.status is SyncStatus.OUT_OF_SYNC]
        result.compared_out_of_sync = list(out_of_sync)  # before any apply: what drifted
        to_prune = prune_candidates(pairs, spec.namespace, spec.name, spec.app_of_apps)
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
                result.sync_error = "not synced: " + "; ".join(f"{s}: {c}" for s, c in errors)
                result.changes = ChangeSet()
        elif empty_guard and (inventory or sha != last_synced):
            msg = (f"{spec.path} at {sha[:7]} renders no objects; an automated sync that would "
                   "leave the app empty needs syncPolicy.automated.allowEmpty: true")
            result.conditions.append(Condition("SyncError", msg, (spec.path,)))
            trace.skip("apply", "empty render without allowEmpty")
        elif wants_sync:
            changes = ChangeSet()
            if on_sync_start is not None:
                on_sync_start(sha)
            with trace.step("apply") as step:
                objs: dict[ResourceKey, Obj] = {}
                todo = [p for p in pairs
                        if p.desired is not None and p.key in result.diffs
                        and result.diffs[p.key].status is SyncStatus.OUT_OF_SYNC]
                if dest_missing or waiting:
                    # preflight: first what the rest needs (the destination namespace, the
                    # app's Namespaces and CRDs), then dry-run the rest, then apply it
                    first = [p for p in todo
                             if p.key.kind in ("Namespace", "CustomResourceDefinition")]
                    self._apply_stage(first, changes, objs, live, spec if dest_missing else None)
                    first_keys = {p.key for p in first}
                    todo = [p for p in todo if p.key not in first_keys]
                    if not changes.failed and waiting:
                        recheck = [Pair(p.key, p.desired, live.get(p.key)) for p in waiting]
                        late: list[tuple[str, str]] = []
                        self._compare_all(recheck, origin, result, late, set(), set())
                        if late:  # one ComparisonError, as if the namespace had been there
                            result.conditions.append(_errors_condition("ComparisonError", late))
                            result.sync_error = "not synced: " + "; ".join(
                                f"{s}: {c}" for s, c in late)
                            step.ok = False
                            todo = []
                        else:
                            todo = [p for p in todo if p.key not in result.diffs or
                                    result.diffs[p.key].status is SyncStatus.OUT_OF_SYNC]
                if not changes.failed and not result.sync_error:
                    self._apply_stage(todo, changes, objs, live, None)
                for d in result.diffs.values():
                    if d.status is SyncStatus.SYNCED and d.key not in objs:
                        changes.add(d.key, Action.UNCHANGED)
                step.detail = changes.summary()
                step.ok = step.ok and not changes.failed

            # 5. prune: only owned objects that left Git, and only when allowed
            if to_prune and prune and not changes.failed and not result.sync_error:
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
                result.conditions.append(Condition(
                    "SyncError", result.sync_error,
                    tuple(_where(origin.get(c.key), c.key) for c in changes.failed)))
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

    def _apply_stage(self, todo: list[Pair], changes: ChangeSet, objs: dict[ResourceKey, Obj],
                     live: dict[ResourceKey, Obj | None], create_ns: AppSpec | None) -> None:
        """Apply `todo` (staged: Namespaces and CRDs first, CRDs waited for until Established);
        with `create_ns`, first its destination namespace (CreateNamespace=true)."""
        if create_ns is not None:
            key = ResourceKey("", "Namespace", "", create_ns.dest_namespace, "v1")
            try:
                self._ensure_namespace(create_ns.dest_namespace)
            except KubeError as exc:
                changes.add(key, Action.FAILED, f"CreateNamespace=true: {exc.message}")
                return
        desired = {p.key: p.desired for p in todo if p.desired is not None}
        applied, done = self.manager.apply_all(
            (p.desired, p.live is not None) for p in todo if p.desired is not None)
        changes.extend(applied)
        for k, o in done.items():
            live[k] = o
            objs[k] = o
            # applying the same object again would give this very result
            self._dry_runs[k] = (_hash(desired[k]), _rv(o), o)

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


def _errors_condition(ctype: str, errors: list[tuple[str, str]]) -> Condition:
    return Condition(ctype, "; ".join(f"{s}: {c}" for s, c in errors),
                     tuple(sorted({s for s, _ in errors})))


def _inventory(status: Mapping[str, Any]) -> list[ResourceKey]:
    """The app's inventory: the objects its last status listed."""
    return inventory_keys(status)
