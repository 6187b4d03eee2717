"""ClusterView: the cluster's nodes (Ready or not) and pods per namespace (phase, ready).
Reads nodes and pods through `Kube` (listed, then watched); never writes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

import ipywidgets as w

from gitops_lab.kube import Kube, KubeError
from gitops_lab.widgets._live import Throttle, Watch
from gitops_lab.widgets._style import GREEN, RED, esc

__all__ = ["ClusterView", "node_rows", "pod_rows"]

Obj = dict[str, Any]
PHASE_COLOUR = {"Running": GREEN, "Succeeded": "#8fa4b1", "Pending": "#0dadea",
                "Failed": RED, "Unknown": "#8fa4b1", "Terminating": "#f4c030"}


def node_rows(nodes: Iterable[Mapping[str, Any]]) -> list[Obj]:
    rows = []
    for node in nodes:
        meta = node.get("metadata") or {}
        status = node.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in status.get("conditions") or [])
        roles = sorted(k.rsplit("/", 1)[-1] for k in (meta.get("labels") or {})
                       if k.startswith("node-role.kubernetes.io/"))
        rows.append({"name": str(meta.get("name") or ""), "ready": ready,
                     "status": "Ready" if ready else "NotReady", "roles": ",".join(roles),
                     "version": str((status.get("nodeInfo") or {}).get("kubeletVersion") or "")})
    return sorted(rows, key=lambda r: r["name"])


def pod_rows(pods: Iterable[Mapping[str, Any]], namespace: str | None = None) -> list[Obj]:
    rows = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        if namespace is not None and meta.get("namespace") != namespace:
            continue
        status = pod.get("status") or {}
        statuses = status.get("containerStatuses") or []
        total = len((pod.get("spec") or {}).get("containers") or []) or len(statuses)
        ready = sum(1 for c in statuses if c.get("ready"))
        phase = "Terminating" if meta.get("deletionTimestamp") else \
            str(status.get("phase") or "Pending")
        waiting = next((str((c.get("state") or {}).get("waiting", {}).get("reason") or "")
                        for c in statuses if (c.get("state") or {}).get("waiting")), "")
        rows.append({
            "namespace": str(meta.get("namespace") or ""), "name": str(meta.get("name") or ""),
            "phase": phase, "ready": f"{ready}/{total}", "all_ready": total > 0 and ready == total,
            "reason": waiting, "node": str((pod.get("spec") or {}).get("nodeName") or ""),
            "restarts": sum(int(c.get("restartCount") or 0) for c in statuses),
        })
    return sorted(rows, key=lambda r: (r["namespace"], r["name"]))


_TABLE = 'style="border-collapse:collapse;font-size:12px;margin-bottom:8px"'
_TH = 'style="text-align:left;padding:1px 10px 1px 0"'
_PAD = "padding:1px 10px 1px 0"
_TD = f'style="{_PAD}"'


def _td(content: str, style: str = "") -> str:
    return f'<td style="{_PAD};{style}">{content}</td>'


class ClusterView(w.VBox):  # type: ignore[misc]
    """Nodes and pods as HTML tables; `.nodes` and `.pods` are the rows shown.

    `update(nodes, pods)` renders given Node and Pod objects; live mode watches both.
    """

    def __init__(self, kube: Kube | None, *, namespace: str | None = None,
                 live: bool = True) -> None:
        self.kube = kube
        self.namespace = namespace
        self.nodes: list[Obj] = []
        self.pods: list[Obj] = []
        self.html = w.HTML()
        self._lock = threading.RLock()
        self._watches: list[Watch] = []
        self._throttle = Throttle(self._from_watches, 0.5)
        super().__init__(children=[self.html])
        self.add_class("gitops-cluster-view")
        self.update([], [])
        if kube is not None:
            self.reload()
            if live:
                def poke(_type: str, _obj: Obj) -> None:
                    self._throttle.poke()

                self._watches = [Watch(kube, "/api/v1/nodes", poke, name="nodes").start(),
                                 Watch(kube, self._pods_path, poke, name="pods").start()]

    @property
    def _pods_path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/pods" if self.namespace else "/api/v1/pods"

    def update(self, nodes: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]) -> None:
        with self._lock:
            self.nodes = node_rows(nodes)
            self.pods = pod_rows(pods, self.namespace)
            node_html = "".join(
                '<tr class="gitops-node">' + _td(f"<b>{esc(n['name'])}</b>")
                + _td(f"{'✔' if n['ready'] else '✖'} {esc(n['status'])}",
                      f"color:{GREEN if n['ready'] else RED}")
                + _td(esc(n["roles"])) + _td(esc(n["version"])) + "</tr>"
                for n in self.nodes) or f'<tr><td {_TD} colspan="4">no nodes</td></tr>'
            pod_html = []
            current_ns = None
            for p in self.pods:
                if p["namespace"] != current_ns:
                    current_ns = p["namespace"]
                    count = sum(1 for q in self.pods if q["namespace"] == current_ns)
                    pod_html.append(f'<tr><td colspan="5" style="padding-top:6px">'
                                    f'<b>{esc(current_ns)}</b> '
                                    f'<span style="color:#8fa4b1">({count})</span></td></tr>')
                colour = PHASE_COLOUR.get(p["phase"], "#8fa4b1")
                extra = f" ({esc(p['reason'])})" if p["reason"] else ""
                pod_html.append(
                    f'<tr class="gitops-pod" data-phase="{esc(p["phase"])}">'
                    + _td(esc(p["name"]), "padding-left:14px")
                    + _td(esc(p["phase"]) + extra, f"color:{colour}")
                    + _td(esc(p["ready"]), f"color:{GREEN if p['all_ready'] else '#8fa4b1'}")
                    + _td(str(p["restarts"])) + _td(esc(p["node"])) + "</tr>")
            pods_table = "".join(pod_html) or f'<tr><td {_TD} colspan="5">no pods</td></tr>'
            self.html.value = (
                f'<div style="font-size:13px"><b>Nodes</b> ({len(self.nodes)})</div>'
                f'<table class="gitops-nodes" {_TABLE}><tr><th {_TH}>Name</th><th {_TH}>Status'
                f'</th><th {_TH}>Roles</th><th {_TH}>Version</th></tr>{node_html}</table>'
                f'<div style="font-size:13px"><b>Pods</b> ({len(self.pods)})</div>'
                f'<table class="gitops-pods" {_TABLE}><tr><th {_TH}>Name</th><th {_TH}>Phase'
                f'</th><th {_TH}>Ready</th><th {_TH}>Restarts</th><th {_TH}>Node</th></tr>'
                f"{pods_table}</table>")

    def reload(self) -> None:
        if self.kube is None:
            return
        try:
            nodes = self.kube.request("GET", "/api/v1/nodes").get("items") or []
            pods = self.kube.request("GET", self._pods_path).get("items") or []
        except KubeError as exc:
            self.html.value = f'<span style="color:#a4272f">{esc(exc.message)}</span>'
            return
        self.update(nodes, pods)

    def _from_watches(self) -> None:
        if all(wt.synced.is_set() for wt in self._watches):
            self.update(self._watches[0].snapshot(), self._watches[1].snapshot())

    def close(self) -> None:
        for watch in self._watches:
            watch.stop()
        self._throttle.close()
        super().close()
