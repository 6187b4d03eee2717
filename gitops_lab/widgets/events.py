"""EventLog: the Kubernetes Events the agent records on Applications, newest first.
Reads (lists, then watches) core/v1 Events in the apps' namespace; never writes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

import ipywidgets as w

from gitops_lab.api.types import GROUP, KIND
from gitops_lab.kube import Kube, KubeError
from gitops_lab.widgets._live import Throttle, Watch
from gitops_lab.widgets._style import esc, when

__all__ = ["EventLog", "event_rows"]

Obj = dict[str, Any]

WARNING_STYLE = "background:#fdecee"
DRIFT_STYLE = "background:#fff4d6;box-shadow:inset 4px 0 0 #f4c030"


def _stamp(event: Mapping[str, Any]) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime") or
               event.get("firstTimestamp") or
               (event.get("metadata") or {}).get("creationTimestamp") or "")


def _rv(event: Mapping[str, Any]) -> int:
    rv = str((event.get("metadata") or {}).get("resourceVersion") or "0")
    return int(rv) if rv.isdigit() else 0


def event_rows(events: Iterable[Mapping[str, Any]], name: str | None = None,
               limit: int = 200) -> list[Obj]:
    """Events about Applications (one app when `name`), newest first, as table rows."""
    picked = []
    for event in events:
        obj = event.get("involvedObject") or {}
        if obj.get("kind") != KIND:
            continue
        api_version = str(obj.get("apiVersion") or "")
        if api_version and not api_version.startswith(f"{GROUP}/"):
            continue
        if name is not None and obj.get("name") != name:
            continue
        picked.append(event)
    picked.sort(key=lambda e: (_stamp(e), _rv(e)), reverse=True)
    return [{
        "time": _stamp(e),
        "type": str(e.get("type") or "Normal"),
        "reason": str(e.get("reason") or ""),
        "message": str(e.get("message") or ""),
        "app": str((e.get("involvedObject") or {}).get("name") or ""),
        "count": int(e.get("count") or 1),
    } for e in picked[:limit]]


def _row_html(row: Mapping[str, Any], show_app: bool) -> str:
    classes = ["gitops-event"]
    style = ""
    if row["type"] == "Warning":
        classes.append("gitops-event-warning")
        style = WARNING_STYLE
    if row["reason"] == "DriftDetected":
        classes.append("gitops-event-drift")
        style = DRIFT_STYLE
    reason_colour = "#a4272f" if row["type"] == "Warning" else "#495763"
    count = f' <span style="color:#8fa4b1">×{row["count"]}</span>' if row["count"] > 1 else ""
    cells = [f'<td style="white-space:nowrap;color:#8fa4b1">{esc(when(row["time"]))}</td>']
    if show_app:
        cells.append(f"<td><b>{esc(row['app'])}</b></td>")
    cells += [
        f"<td>{esc(row['type'])}</td>",
        f'<td style="color:{reason_colour};font-weight:600">{esc(row["reason"])}{count}</td>',
        f'<td style="white-space:normal">{esc(row["message"])}</td>',
    ]
    return (f'<tr class="{" ".join(classes)}" data-reason="{esc(row["reason"])}" '
            f'style="{style}">{"".join(cells)}</tr>')


class EventLog(w.VBox):  # type: ignore[misc]
    """Events on Applications as an HTML table; Warnings and DriftDetected highlighted.

    `.rows` (list of dicts: reason, type, message, time, app, count) is what is shown;
    `update(events)` renders a list of Event objects; live mode watches the namespace's Events.
    """

    def __init__(self, kube: Kube | None, name: str | None = None,
                 namespace: str = "gitops-lab", *, live: bool = True, limit: int = 200) -> None:
        self.kube = kube
        self.name = name
        self.namespace = namespace
        self.limit = limit
        self.rows: list[Obj] = []
        self.table_html = w.HTML()
        self._lock = threading.RLock()
        self._watch: Watch | None = None
        self._throttle = Throttle(self._from_watch, 0.25)
        super().__init__(children=[self.table_html])
        self.add_class("gitops-event-log")
        self.update([])
        if kube is not None:
            self.reload()
            if live:
                self._watch = Watch(kube, self._path, lambda _t, _o: self._throttle.poke(),
                                    field_selector=self._selector, name="events").start()

    @property
    def _path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/events"

    @property
    def _selector(self) -> str:
        selector = f"involvedObject.kind={KIND}"
        return selector + (f",involvedObject.name={self.name}" if self.name else "")

    def update(self, events: Iterable[Mapping[str, Any]]) -> None:
        with self._lock:
            self.rows = event_rows(events, self.name, self.limit)
            show_app = self.name is None
            head = ["Time"] + (["App"] if show_app else []) + ["Type", "Reason", "Message"]
            header = "".join(f'<th style="text-align:left">{h}</th>' for h in head)
            body = "".join(_row_html(r, show_app) for r in self.rows)
            if not self.rows:
                body = (f'<tr><td colspan="{len(head)}" style="color:#8fa4b1">no events on '
                        f'{esc(self.name or "any application")} yet</td></tr>')
            self.table_html.value = (
                '<table class="gitops-event-table" style="border-collapse:collapse;'
                f'font-size:12px;width:100%"><thead><tr>{header}</tr></thead>'
                f"<tbody>{body}</tbody></table>")

    def reload(self) -> None:
        if self.kube is None:
            return
        try:
            data = self.kube.request("GET", self._path, query={"fieldSelector": self._selector})
        except KubeError as exc:
            self.table_html.value = (f'<span style="color:#a4272f">cannot list events in '
                                     f"{esc(self.namespace)}: {esc(exc.message)}</span>")
            return
        self.update(data.get("items") or [])

    def _from_watch(self) -> None:
        if self._watch is not None and self._watch.synced.is_set():
            self.update(self._watch.snapshot())

    def close(self) -> None:
        if self._watch is not None:
            self._watch.stop()
        self._throttle.close()
        super().close()
