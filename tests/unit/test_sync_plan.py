"""The sync decisions as data: engine/sync.py's plan_sync (what to apply, prune, leave, and
why), prune_skip, settled (the diffs after an apply), is_rollback, plus ownership (claim) and
the resource statuses (requiresPruning). Table-driven; no cluster, no Git."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from gitops_lab.api.types import TRACKING_ANNOTATION, Action, ResourceKey, SyncStatus
from gitops_lab.engine.api import AppSpec, ConditionType, ReconcileResult, SyncRequest
from gitops_lab.engine.apply import ChangeSet, ResourceManager
from gitops_lab.engine.diff import compare
from gitops_lab.engine.inventory import claim, pair
from gitops_lab.engine.reconcile import Reconciler
from gitops_lab.engine.report import resource_statuses
from gitops_lab.engine.sync import PruneSkip, Skip, is_rollback, plan_sync, prune_skip, settled
from gitops_lab.kube import Kube, KubeError
from gitops_lab.source import RenderError

NEW, OLD = "b" * 40, "a" * 40
APP = ("gitops-lab", "app")


def _spec(automated: dict[str, Any] | None = None) -> AppSpec:
    policy = {"automated": automated} if automated is not None else None
    return AppSpec.from_object({
        "metadata": {"namespace": APP[0], "name": APP[1]},
        "spec": {"source": {"repoURL": "file:///repo", "path": "app"},
                 "destination": {"namespace": "demo"}, "syncPolicy": policy}})


def _cm(name: str, owner: str | None = "mine", data: str = "1") -> dict[str, Any]:
    """A ConfigMap in demo; owner "mine" = this app's tracking id, None = no annotation."""
    key = ResourceKey("", "ConfigMap", "demo", name, "v1")
    meta: dict[str, Any] = {"name": name, "namespace": "demo", "uid": f"uid-{name}"}
    if owner == "mine":
        meta["annotations"] = {TRACKING_ANNOTATION: key.tracking_id(*APP)}
    elif owner is not None:
        meta["annotations"] = {TRACKING_ANNOTATION: key.tracking_id("gitops-lab", owner)}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"v": data}}


def _key(name: str) -> ResourceKey:
    return ResourceKey("", "ConfigMap", "demo", name, "v1")


@dataclass
class Case:
    """Git has `git` ConfigMaps (name -> data); the cluster has `live` (name -> (owner, data));
    the last status listed `inventory`."""

    spec: AppSpec
    git: dict[str, str] = field(default_factory=dict)
    live: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    inventory: tuple[str, ...] = ()
    request: SyncRequest | None = None
    last_synced: str = OLD
    errors: bool = False

    def plan(self) -> Any:
        desired = [_cm(n, "mine", d) for n, d in self.git.items()]
        live: dict[ResourceKey, dict[str, Any] | None] = {
            _key(n): _cm(n, o, d) for n, (o, d) in self.live.items()}
        inventory = [_key(n) for n in self.inventory]
        pairs = pair(desired, live, inventory)
        diffs = {p.key: compare(p.key, p.desired, p.live) for p in pairs if p.desired}
        return plan_sync(self.spec, request=self.request, revision=NEW,
                         last_synced=self.last_synced, inventory=inventory, pairs=pairs,
                         diffs=diffs, errors=self.errors)


AUTO_PRUNE = _spec({"prune": True})
AUTO = _spec({})
HEAL = _spec({"selfHeal": True})
MANUAL = _spec(None)
EMPTY_OK = _spec({"prune": True, "allowEmpty": True})

# (id, case, skip, applied, pruned (names), prune allowed)
CASES = [
    ("new revision: apply what differs, prune what left Git",
     Case(AUTO_PRUNE, git={"a": "2", "b": "1"}, live={"a": ("mine", "1"), "b": ("mine", "1"),
                                                     "gone": ("mine", "1")},
          inventory=("a", "b", "gone")),
     None, ["a"], ["gone"], True),
    ("prune disabled: what left Git only requires pruning",
     Case(AUTO, git={"a": "2"}, live={"a": ("mine", "1"), "gone": ("mine", "1")},
          inventory=("a", "gone")),
     None, ["a"], ["gone"], False),
    ("empty render: never an automated prune without allowEmpty",
     Case(AUTO_PRUNE, live={"gone": ("mine", "1")}, inventory=("gone",)),
     Skip.EMPTY, [], ["gone"], False),
    ("empty render with allowEmpty: prune",
     Case(EMPTY_OK, live={"gone": ("mine", "1")}, inventory=("gone",)),
     None, [], ["gone"], True),
    ("empty render on a new app that never had objects: nothing to guard",
     Case(AUTO_PRUNE, last_synced=NEW), Skip.IN_SYNC, [], [], False),
    ("comparison or render errors: nothing applied, nothing pruned",
     Case(AUTO_PRUNE, git={"a": "2"}, live={"a": ("mine", "1"), "gone": ("mine", "1")},
          inventory=("a", "gone"), errors=True),
     Skip.ERRORS, [], ["gone"], False),
    ("errors block a user's sync too",
     Case(MANUAL, git={"a": "2"}, live={"a": ("mine", "1")}, inventory=("a",),
          request=SyncRequest(prune=True), errors=True),
     Skip.ERRORS, [], [], False),
    ("drift, selfHeal off: reported, not reverted",
     Case(AUTO, git={"a": "1"}, live={"a": ("mine", "drifted")}, inventory=("a",),
          last_synced=NEW),
     Skip.MANUAL, [], [], False),
    ("drift, selfHeal on: reverted",
     Case(HEAL, git={"a": "1"}, live={"a": ("mine", "drifted")}, inventory=("a",),
          last_synced=NEW),
     None, ["a"], [], False),
    ("in sync at the last synced revision: nothing to do",
     Case(HEAL, git={"a": "1"}, live={"a": ("mine", "1")}, inventory=("a",), last_synced=NEW),
     Skip.IN_SYNC, [], [], False),
    ("no automation: a new revision waits for a sync",
     Case(MANUAL, git={"a": "2"}, live={"a": ("mine", "1")}, inventory=("a",)),
     Skip.MANUAL, [], [], False),
    ("a sync request without prune: apply, prune nothing",
     Case(MANUAL, git={"a": "2"}, live={"a": ("mine", "1"), "gone": ("mine", "1")},
          inventory=("a", "gone"), request=SyncRequest()),
     None, ["a"], ["gone"], False),
    ("a sync request with prune overrides the policy",
     Case(AUTO, git={"a": "2"}, live={"a": ("mine", "1"), "gone": ("mine", "1")},
          inventory=("a", "gone"), request=SyncRequest(prune=True)),
     None, ["a"], ["gone"], True),
    ("objects not carrying this app's id are never pruned",
     Case(AUTO_PRUNE, git={"a": "1"},
          live={"a": ("mine", "1"), "theirs": ("other", "1"), "bare": (None, "1")},
          inventory=("a", "theirs", "bare")),
     None, [], [], True),
]


@pytest.mark.parametrize(("case", "skip", "applied", "pruned", "allowed"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_plan_sync(case: Case, skip: Skip | None, applied: list[str], pruned: list[str],
                   allowed: bool) -> None:
    plan = case.plan()
    assert plan.skip == skip
    assert [p.key.name for p in plan.apply] == applied
    assert [p.key.name for p in plan.prune] == pruned
    assert plan.prune_allowed is allowed
    if skip is not None:  # a plan that does not sync writes nothing
        assert plan.apply == [] and not plan.prune_allowed and not plan.syncs
    if skip is Skip.EMPTY:
        assert plan.condition is not None and plan.condition.type == ConditionType.SYNC
        assert "renders no objects" in plan.condition.message and "allowEmpty" in \
            plan.condition.message
    else:
        assert plan.condition is None


def test_synced_objects_are_listed_unchanged() -> None:
    plan = Case(AUTO, git={"a": "2", "b": "1"},
                live={"a": ("mine", "1"), "b": ("mine", "1")}).plan()
    assert [k.name for k in plan.unchanged] == ["b"]


@pytest.mark.parametrize(("allowed", "failed", "expect"), [
    (True, False, None), (True, True, PruneSkip.APPLY_FAILED), (False, False, PruneSkip.OFF),
    (False, True, PruneSkip.OFF)])
def test_prune_only_after_a_clean_apply(allowed: bool, failed: bool,
                                        expect: PruneSkip | None) -> None:
    plan = Case(AUTO_PRUNE if allowed else AUTO, git={"a": "2"},
                live={"a": ("mine", "1"), "gone": ("mine", "1")}, inventory=("gone",)).plan()
    assert prune_skip(plan, failed) == expect


@pytest.mark.parametrize(("request_", "head", "expect"), [
    (SyncRequest(revision=OLD), NEW, True),  # back to an older commit
    (SyncRequest(revision=NEW), NEW, False),  # to where the branch points: no rollback
    (SyncRequest(), NEW, False),  # no revision asked for
    (None, NEW, False),  # automated
    (SyncRequest(revision=OLD), "", False),  # the head is unknown: do not turn automation off
])
def test_rollback(request_: SyncRequest | None, head: str, expect: bool) -> None:
    revision = request_.revision if request_ and request_.revision else head
    assert is_rollback(request_, revision or NEW, head) is expect


def test_an_apply_that_failed_stays_out_of_sync() -> None:
    """After a sync, only what the API server took is Synced. The reconcile used to compare
    each applied object with itself — Synced by construction, also for one whose apply then
    failed (a CRD that never became Established)."""
    a, crd = _key("a"), ResourceKey("apiextensions.k8s.io", "CustomResourceDefinition", "",
                                    "w.example.com", "v1")
    diffs = {a: compare(a, _cm("a", data="2"), _cm("a")),
             crd: compare(crd, {"kind": "CustomResourceDefinition", "spec": {"x": 1}}, None)}
    changes = ChangeSet()
    changes.add(a, Action.CONFIGURED)
    changes.add(crd, Action.FAILED, "not established")
    applied = {a: _cm("a", data="2"), crd: {"kind": "CustomResourceDefinition", "spec": {}}}
    after = settled(diffs, changes, applied)
    assert after[a].status is SyncStatus.SYNCED
    assert after[crd].status is SyncStatus.OUT_OF_SYNC
    assert diffs[a].status is SyncStatus.OUT_OF_SYNC  # the input is not changed


class _CrdNeverEstablished:
    """A Kube that takes every apply and never reports a CRD Established."""

    def apply(self, obj: dict[str, Any], **_: Any) -> dict[str, Any]:
        return dict(obj)

    def get_or_none(self, *_: Any) -> dict[str, Any]:
        return {"status": {"conditions": [{"type": "Established", "status": "False"}]}}


def test_a_crd_that_never_becomes_established_is_failed_not_applied() -> None:
    manager = ResourceManager(cast(Kube, _CrdNeverEstablished()), crd_timeout=0.05)
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "w.example.com"}}
    changes, applied = manager.apply_all([(crd, False), (_cm("a"), True)], [_key("b")])
    assert [(c.key.name, c.action) for c in changes] == [
        ("w.example.com", Action.FAILED), ("a", Action.CONFIGURED), ("b", Action.UNCHANGED)]
    assert list(applied) == [_key("a")]


@pytest.mark.parametrize(("owner", "expect"), [
    ("mine", None),
    (None, None),  # adopting an untracked object is allowed (as Argo CD does)
    ("other", (False, "is already managed by gitops-lab/other; not touching it")),
])
def test_claim(owner: str | None, expect: tuple[bool, str] | None) -> None:
    assert claim(_key("a"), _cm("a", owner), AUTO) == expect


def test_an_app_of_apps_never_adopts_an_application_it_did_not_create() -> None:
    key = ResourceKey("gitopslab.io", "Application", "gitops-lab", "child", "v1alpha1")
    live = {"apiVersion": "gitopslab.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "child", "namespace": "gitops-lab"}}
    refused = claim(key, live, AUTO)
    assert refused is not None and refused[0] and "never adopts" in refused[1]


def test_objects_left_in_git_require_pruning_only_while_they_are_this_apps() -> None:
    result = ReconcileResult(AUTO)
    live: dict[ResourceKey, dict[str, Any] | None] = {
        _key("a"): _cm("a"), _key("gone"): _cm("gone"), _key("theirs"): _cm("theirs", "other")}
    pairs = pair([_cm("a")], live, [_key("gone"), _key("theirs")])
    result.diffs = {_key("a"): compare(_key("a"), _cm("a"), _cm("a"))}
    resource_statuses(result, pairs, live, {}, *APP)
    assert [(r.key.name, r.status, r.requires_pruning) for r in result.resources] == [
        ("a", SyncStatus.SYNCED, False), ("gone", SyncStatus.OUT_OF_SYNC, True)]
    assert result.sync_status is SyncStatus.OUT_OF_SYNC


class _BrokenRender:
    """A GitCache whose commit does not render."""

    def __init__(self) -> None:
        self.fetch_errors: dict[str, str] = {}

    def resolve(self, url: str, revision: str, *, fetch: bool = False) -> str:
        return NEW

    def commit_info(self, url: str, sha: str) -> Any:
        return None

    def manifests(self, url: str, sha: str, path: str) -> Any:
        raise RenderError("app/x.yaml: mapping values are not allowed here", path="app/x.yaml")


class _ReadOnlyKube:
    """Any write (or any other call) fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the reconcile called Kube.{name}")


class _Live:
    def __init__(self, objs: dict[ResourceKey, dict[str, Any]]) -> None:
        self.objs = objs

    def get(self, key: ResourceKey) -> dict[str, Any] | None:
        if key not in self.objs:
            raise KubeError(404, "NotFound", "gone")
        return self.objs[key]


def test_a_render_error_applies_nothing_and_prunes_nothing() -> None:
    app = {"metadata": {"namespace": APP[0], "name": APP[1]},
           "spec": {"source": {"repoURL": "file:///repo", "path": "app"},
                    "syncPolicy": {"automated": {"prune": True, "selfHeal": True}}}}
    reconciler = Reconciler(cast(Kube, _ReadOnlyKube()), cast(Any, _BrokenRender()),
                            _Live({_key("gone"): _cm("gone")}))
    compared = reconciler.compare(app, inventory=[_key("gone")], last_synced=OLD)
    assert compared.plan is None and not compared.syncs
    result = reconciler.sync(compared)
    assert result.changes is None and not result.sync_error
    assert [(c.type, c.objects) for c in result.conditions] == [
        (ConditionType.COMPARISON, ("app/x.yaml",))]
    # the inventory is kept and reported, not pruned
    assert [(r.key.name, r.status) for r in result.resources] == [("gone", SyncStatus.UNKNOWN)]
    assert [s.name for s in result.trace.steps] == ["fetch", "render", "health"]

