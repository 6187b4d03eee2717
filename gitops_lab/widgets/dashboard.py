"""AppDashboard: one Application as Argo CD's UI shows it — badges, revision, tree, buttons.
Reads the Application (watched) and its pods/ReplicaSets; writes only through `Apps` verbs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as w
import traitlets

from gitops_lab.engine.health import assess_health
from gitops_lab.kube import Kube, ResourceInfo
from gitops_lab.widgets._live import AppsLike, Throttle, Watch, kube_of, watch_app
from gitops_lab.widgets._style import (
    badge_html,
    esc,
    health_style,
    icon_html,
    kind_abbrev,
    short_sha,
    sync_style,
    when,
)

__all__ = ["AppDashboard", "TreeNode", "build_tree", "previous_history_entry"]

Obj = dict[str, Any]

RS_INFO = ResourceInfo("apps", "v1", "ReplicaSet", "replicasets", True)
POD_INFO = ResourceInfo("", "v1", "Pod", "pods", True)
# kinds whose children (ReplicaSets, Pods) the tree shows, and which children they own
_OWNS_PODS = {"ReplicaSet", "StatefulSet", "DaemonSet", "Job"}
_WORKLOADS = {"Deployment"} | _OWNS_PODS


@dataclass(frozen=True)
class TreeNode:
    """One row of the resource tree: depth 0 is the app, 1 its objects, 2+ what they own."""

    kind: str
    name: str
    namespace: str
    depth: int
    sync: str = ""  # "" for objects the app does not manage itself (ReplicaSets, Pods)
    health: str = ""
    message: str = ""
    note: str = ""


def _owned_by(obj: Mapping[str, Any], kind: str, name: str) -> bool:
    return any(ref.get("kind") == kind and ref.get("name") == name
               for ref in (obj.get("metadata") or {}).get("ownerReferences") or [])


def _ns(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _pod_note(pod: Mapping[str, Any]) -> str:
    status = pod.get("status") or {}
    containers = (pod.get("spec") or {}).get("containers") or []
    ready = sum(1 for c in status.get("containerStatuses") or [] if c.get("ready"))
    phase = "Terminating" if (pod.get("metadata") or {}).get("deletionTimestamp") else \
        str(status.get("phase") or "Pending")
    return f"{phase} {ready}/{len(containers)}"


def _rs_note(rs: Mapping[str, Any]) -> str:
    meta = rs.get("metadata") or {}
    rev = (meta.get("annotations") or {}).get("deployment.kubernetes.io/revision")
    ready = (rs.get("status") or {}).get("readyReplicas") or 0
    want = (rs.get("spec") or {}).get("replicas") or 0
    return (f"rev {rev} · " if rev else "") + f"{ready}/{want} ready"


def _rs_revision(rs: Mapping[str, Any]) -> int:
    rev = ((rs.get("metadata") or {}).get("annotations") or {}).get(
        "deployment.kubernetes.io/revision", "0")
    return int(rev) if str(rev).isdigit() else 0


def _child_node(obj: Mapping[str, Any], kind: str, depth: int) -> TreeNode:
    health = assess_health({"kind": kind, **obj})
    note = _pod_note(obj) if kind == "Pod" else _rs_note(obj)
    return TreeNode(kind, _name(obj), _ns(obj), depth, "", health.status.value, health.message,
                    note)


def build_tree(app: Mapping[str, Any], replicasets: Iterable[Mapping[str, Any]] = (),
               pods: Iterable[Mapping[str, Any]] = ()) -> list[TreeNode]:
    """The app, its objects (status.resources), Deployments' ReplicaSets, and their Pods.

    Children are matched by ownerReference (kind + name) in the object's namespace; newest
    ReplicaSet first. Pure: the caller lists replicasets and pods.
    """
    rs_list, pod_list = list(replicasets), list(pods)
    status = app.get("status") or {}
    meta = app.get("metadata") or {}
    nodes = [TreeNode(
        "Application", str(meta.get("name") or ""), str(meta.get("namespace") or ""), 0,
        str((status.get("sync") or {}).get("status") or "Unknown"),
        str((status.get("health") or {}).get("status") or "Unknown"),
        str((status.get("health") or {}).get("message") or ""),
    )]

    def pods_of(kind: str, name: str, namespace: str, depth: int) -> None:
        owned = [p for p in pod_list if _ns(p) == namespace and _owned_by(p, kind, name)]
        for pod in sorted(owned, key=_name):
            nodes.append(_child_node(pod, "Pod", depth))

    for res in status.get("resources") or []:
        kind, name, ns = str(res.get("kind", "")), str(res.get("name", "")), \
            str(res.get("namespace") or "")
        health = res.get("health") or {}
        nodes.append(TreeNode(
            kind, name, ns, 1, str(res.get("status") or "Unknown"),
            str(health.get("status") or ""), str(health.get("message") or ""),
            "requires pruning" if res.get("requiresPruning") else "",
        ))
        if kind == "Deployment":
            owned = [r for r in rs_list if _ns(r) == ns and _owned_by(r, "Deployment", name)]
            for rs in sorted(owned, key=_rs_revision, reverse=True):
                nodes.append(_child_node(rs, "ReplicaSet", 2))
                pods_of("ReplicaSet", _name(rs), ns, 3)
        elif kind in _OWNS_PODS:
            pods_of(kind, name, ns, 2)
    return nodes


def render_tree(nodes: Sequence[TreeNode]) -> str:
    """The tree as HTML: indented rows with kind, name, sync and health icons."""
    rows = []
    for node in nodes:
        icons = ""
        if node.sync:
            label, colour, icon = sync_style(node.sync)
            icons += icon_html(colour, icon, label)
        if node.health:
            label, colour, icon = health_style(node.health)
            icons += icon_html(colour, icon, label + (f": {node.message}" if node.message else ""))
        branch = "└─ " if node.depth else ""
        note = f' <span style="color:#8fa4b1">{esc(node.note)}</span>' if node.note else ""
        msg = (f' <span style="color:#6d7f8b;font-size:11px">{esc(node.message)}</span>'
               if node.message and node.health not in ("Healthy", "") else "")
        rows.append(
            f'<div class="gitops-tree-node" data-kind="{esc(node.kind)}" '
            f'data-name="{esc(node.name)}" style="margin-left:{node.depth * 22}px;'
            f'padding:2px 0;white-space:nowrap;font-family:var(--jp-code-font-family,monospace);'
            f'font-size:12px"><span style="color:#8fa4b1">{branch}</span>'
            f'<span style="display:inline-block;min-width:44px;padding:0 4px;margin-right:4px;'
            f'border-radius:3px;background:#eef2f5;color:#495763;text-align:center">'
            f'{esc(kind_abbrev(node.kind))}</span><b>{esc(node.name)}</b> {icons}{note}{msg}</div>'
        )
    return f'<div class="gitops-tree">{"".join(rows)}</div>'


def previous_history_entry(app: Mapping[str, Any]) -> Obj | None:
    """The entry a one-click rollback goes to: the newest one deploying another revision."""
    status = app.get("status") or {}
    current = (status.get("sync") or {}).get("revision")
    history = sorted(status.get("history") or [], key=lambda h: int(h.get("id", 0)))
    if len(history) < 2:
        return None
    for entry in reversed(history[:-1]):
        if entry.get("revision") != current:
            return dict(entry)
    return None


def _policy(app: Mapping[str, Any]) -> tuple[bool, bool, bool]:
    automated = ((app.get("spec") or {}).get("syncPolicy") or {}).get("automated")
    if automated is None:
        return False, False, False
    return True, bool(automated.get("selfHeal")), bool(automated.get("prune"))


class AppDashboard(w.VBox):  # type: ignore[misc]
    """Argo CD's application view in a notebook cell.

    `update(app)` renders an Application dict (pure; no cluster needed); `reload()` GETs it;
    with `live=True` a watch on the Application (and on pods/ReplicaSets in its namespaces)
    redraws on every change. `close()` stops the watches.
    """

    sync_status = traitlets.Unicode("Unknown")
    health_status = traitlets.Unicode("Unknown")
    revision = traitlets.Unicode("")

    def __init__(self, apps: AppsLike, name: str, *, live: bool = True) -> None:
        self.apps = apps
        self.name = name
        self.app: Obj = {}
        self._kube: Kube | None = kube_of(apps)
        self._lock = threading.RLock()
        self._rendering: int | None = None  # the thread now drawing the policy boxes
        self._replicasets: list[Obj] = []
        self._pods: list[Obj] = []
        self._watches: list[Watch] = []
        self._child_watches: dict[str, tuple[Watch, Watch]] = {}
        self._closed = False

        self.header = w.HTML()
        self.badge = w.HTML()
        self.badge.add_class("gitops-sync-badge")
        self.health_badge = w.HTML()
        self.health_badge.add_class("gitops-health-badge")
        self.health_badge.layout.margin = "0 0 0 8px"
        self.revision_html = w.HTML()
        self.conditions_html = w.HTML()
        self.message_html = w.HTML()
        self.tree_html = w.HTML()
        self.tree_html.add_class("gitops-tree-widget")
        self.tree: list[TreeNode] = []

        self.refresh_button = w.Button(description="Refresh", icon="refresh",
                                       tooltip="re-check Git and the cluster now")
        self.sync_button = w.Button(description="Sync", icon="sync", button_style="primary",
                                    tooltip="make the cluster equal Git now")
        self.rollback_button = w.Button(description="Rollback", icon="undo", disabled=True,
                                        tooltip="sync to the previous deployed revision")
        self.auto_sync = w.Checkbox(description="Auto-sync", indent=False)
        self.self_heal = w.Checkbox(description="Self-heal", indent=False)
        self.prune = w.Checkbox(description="Prune", indent=False)
        for box in (self.auto_sync, self.self_heal, self.prune):
            box.layout = w.Layout(width="auto", margin="0 16px 0 0")

        self.refresh_button.on_click(lambda _b: self._act(
            "refresh requested", lambda: self.apps.refresh(self.name)))
        self.sync_button.on_click(lambda _b: self._act(
            "sync requested", lambda: self.apps.sync(self.name)))
        self.rollback_button.on_click(lambda _b: self._rollback())
        self.auto_sync.observe(self._on_policy("automated"), names="value")
        self.self_heal.observe(self._on_policy("self_heal"), names="value")
        self.prune.observe(self._on_policy("prune"), names="value")

        super().__init__(children=[
            self.header,
            w.HBox([self.badge, self.health_badge], layout=w.Layout(align_items="center")),
            self.revision_html,
            self.conditions_html,
            w.HBox([self.refresh_button, self.sync_button, self.rollback_button]),
            w.HBox([self.auto_sync, self.self_heal, self.prune]),
            self.message_html,
            self.tree_html,
        ])
        self.add_class("gitops-app-dashboard")
        self._throttle = Throttle(self._redraw_tree, 0.3)
        self.update({"metadata": {"name": name, "namespace": getattr(apps, "namespace", "")}})
        self.reload()
        if live and self._kube is not None:
            self._watches.append(watch_app(self._kube, apps.namespace, name, self._on_app_event))

    # ---- rendering ---------------------------------------------------------------------------
    def update(self, app: Mapping[str, Any], *, replicasets: Sequence[Mapping[str, Any]] | None
               = None, pods: Sequence[Mapping[str, Any]] | None = None) -> None:
        """Render from an Application dict (and, optionally, the pods/ReplicaSets to show)."""
        with self._lock:
            self.app = dict(app)
            if replicasets is not None:
                self._replicasets = [dict(r) for r in replicasets]
            if pods is not None:
                self._pods = [dict(p) for p in pods]
            spec = app.get("spec") or {}
            status = app.get("status") or {}
            source = spec.get("source") or {}
            sync = status.get("sync") or {}
            health = status.get("health") or {}

            sync_label, sync_colour, sync_icon = sync_style(sync.get("status"))
            health_label, health_colour, health_icon = health_style(health.get("status"))
            self.sync_status = sync_label
            self.health_status = health_label
            self.revision = str(sync.get("revision") or "")
            self.badge.value = badge_html(sync_label, sync_colour, sync_icon, "gitops-sync-badge",
                                          f"sync: {sync_label}")
            self.health_badge.value = badge_html(
                health_label, health_colour, health_icon, "gitops-health-badge",
                str(health.get("message") or health_label))

            meta = app.get("metadata") or {}
            dest = (spec.get("destination") or {}).get("namespace") or ""
            self.header.value = (
                f'<div style="font-size:15px"><b>{esc(meta.get("name"))}</b>'
                f' <span style="color:#8fa4b1">{esc(meta.get("namespace"))}</span></div>'
                f'<div style="color:#495763;font-size:12px">'
                f'{esc(source.get("repoURL") or "")} · target '
                f'<code>{esc(source.get("targetRevision") or "HEAD")}</code> · path '
                f'<code>{esc(source.get("path") or ".")}</code>'
                + (f" → namespace <code>{esc(dest)}</code>" if dest else "") + "</div>"
            )
            self.revision_html.value = self._revision_line(status)
            self.conditions_html.value = self._conditions(status)

            rollback_to = previous_history_entry(app)
            self.rollback_button.disabled = rollback_to is None
            self.rollback_button.description = (
                f"Rollback to #{rollback_to.get('id')} ({short_sha(rollback_to.get('revision'))})"
                if rollback_to else "Rollback")
            self.rollback_button.layout.width = "auto"

            automated, self_heal, prune = _policy(app)
            self._rendering = threading.get_ident()
            try:
                self.auto_sync.value = automated
                self.self_heal.value = self_heal
                self.prune.value = prune
                self.self_heal.disabled = self.prune.disabled = not automated
            finally:
                self._rendering = None
            self._redraw_tree()
        if self._kube is not None and self._watches and not self._closed:
            self._follow_namespaces(app)

    @staticmethod
    def _revision_line(status: Mapping[str, Any]) -> str:
        sync = status.get("sync") or {}
        rev = str(sync.get("revision") or "")
        info = status.get("revisionInfo") or {}
        parts = [f'Revision <code title="{esc(rev)}">{esc(short_sha(rev))}</code>']
        if info and str(info.get("revision") or "") == rev and info.get("message"):
            parts.append(f"“{esc(info.get('message'))}”")
            if info.get("author"):
                parts.append(f'<span style="color:#8fa4b1">{esc(info.get("author"))}'
                             f' {esc(when(info.get("date")))}</span>')
        health_msg = (status.get("health") or {}).get("message")
        line = " ".join(parts)
        if health_msg:
            line += f'<br><span style="color:#495763">Health: {esc(health_msg)}</span>'
        op = status.get("operationState") or {}
        if op:
            colour = "#e96d76" if op.get("phase") in ("Failed", "Error") else "#495763"
            line += (f'<br><span style="color:{colour}">Last sync: {esc(op.get("phase"))}'
                     f' — {esc(op.get("message"))} ({esc(when(op.get("finishedAt")))})</span>')
        return f'<div style="font-size:12px">{line}</div>'

    @staticmethod
    def _conditions(status: Mapping[str, Any]) -> str:
        conditions = status.get("conditions") or []
        if not conditions:
            return ""
        items = "".join(
            f"<div><b>{esc(c.get('type'))}</b>: {esc(c.get('message'))}</div>" for c in conditions
        )
        return (f'<div class="gitops-conditions" style="border:1px solid #e96d76;'
                f'background:#fdecee;color:#a4272f;border-radius:4px;padding:6px 10px;'
                f'font-size:12px">{items}</div>')

    def _redraw_tree(self) -> None:
        with self._lock:
            if self._child_watches:
                rs = [o for ws in self._child_watches.values() for o in ws[0].snapshot()]
                pods = [o for ws in self._child_watches.values() for o in ws[1].snapshot()]
            else:
                rs, pods = self._replicasets, self._pods
            self.tree = build_tree(self.app, rs, pods)
            self.tree_html.value = render_tree(self.tree)

    # ---- cluster reads -----------------------------------------------------------------------
    def _namespaces(self, app: Mapping[str, Any]) -> set[str]:
        status = app.get("status") or {}
        found = {str(r.get("namespace")) for r in status.get("resources") or []
                 if r.get("kind") in _WORKLOADS and r.get("namespace")}
        return found

    def reload(self) -> None:
        """GET the Application (and, when not watching them, its pods and ReplicaSets)."""
        try:
            app = self.apps.get(self.name)
        except Exception as exc:
            self._say(f"cannot read application {self.name}: {exc}", error=True)
            return
        rs: list[Obj] | None = None
        pods: list[Obj] | None = None
        if self._kube is not None and not self._child_watches:
            rs, pods = [], []
            try:
                for ns in sorted(self._namespaces(app)):
                    rs += self._kube.request("GET", RS_INFO.path(ns)).get("items") or []
                    pods += self._kube.request("GET", POD_INFO.path(ns)).get("items") or []
            except Exception as exc:
                self._say(f"cannot list pods/ReplicaSets: {exc}", error=True)
        self.update(app, replicasets=rs, pods=pods)

    def _on_app_event(self, app: Obj | None) -> None:
        if app is None:
            self._say(f"application {self.name} not found (deleted?)", error=True)
            return
        self.update(app)

    def _follow_namespaces(self, app: Mapping[str, Any]) -> None:
        """Start pod and ReplicaSet watches for every namespace the app's workloads live in."""
        kube = self._kube
        assert kube is not None
        def poke(_type: str, _obj: Obj) -> None:
            self._throttle.poke()

        with self._lock:
            for ns in sorted(self._namespaces(app) - set(self._child_watches)):
                self._child_watches[ns] = (
                    Watch(kube, RS_INFO.path(ns), poke, name=f"rs-{ns}").start(),
                    Watch(kube, POD_INFO.path(ns), poke, name=f"pods-{ns}").start(),
                )

    # ---- actions (through Apps verbs only) ---------------------------------------------------
    def _say(self, text: str, *, error: bool = False) -> None:
        colour = "#a4272f" if error else "#495763"
        self.message_html.value = f'<div style="color:{colour};font-size:12px">{esc(text)}</div>'

    def _act(self, done: str, verb: Callable[[], Any]) -> None:
        try:
            verb()
        except Exception as exc:
            self._say(f"{done.split()[0]} failed: {exc}", error=True)
            return
        self._say(f"✔ {done}; the agent does the rest")
        if not self._watches:
            self.reload()

    def _rollback(self) -> None:
        entry = previous_history_entry(self.app)
        if entry is None:
            self._say("nothing to roll back to: history has no earlier revision", error=True)
            return
        history_id = int(entry.get("id", 0))
        self._act(f"rollback to #{history_id} ({short_sha(entry.get('revision'))}) requested",
                  lambda: self.apps.rollback(self.name, history_id))

    def _on_policy(self, field: str) -> Callable[[dict[str, Any]], None]:
        def changed(change: dict[str, Any]) -> None:
            if self._rendering == threading.get_ident():
                return  # update() drawing the app's policy, not a user
            value = bool(change["new"])
            self._act(f"{field.replace('_', '-')} set to {value}",
                      lambda: self.apps.set_policy(self.name, **{field: value}))
        return changed

    # ---- lifecycle ---------------------------------------------------------------------------
    @property
    def threads(self) -> list[threading.Thread]:
        watches = self._watches + [x for ws in self._child_watches.values() for x in ws]
        return [wt.thread for wt in watches]

    def close(self) -> None:
        """Stop the watches (their threads end within a few seconds) and close the widget."""
        self._closed = True
        for watch in self._watches + [x for ws in self._child_watches.values() for x in ws]:
            watch.stop()
        self._throttle.close()
        super().close()
