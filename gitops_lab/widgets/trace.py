"""ReconcileTrace: the agent's last reconcile step by step (fetch → … → health) with timings.
Reads status.lastReconcile, which agent/status.py writes from engine/api.py's Trace.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

import ipywidgets as w

from gitops_lab.widgets._live import AppsLike, AppView
from gitops_lab.widgets._style import BLUE, GREEN, RED, esc, when

__all__ = ["STEPS", "ReconcileTrace", "trace_steps"]

Obj = dict[str, Any]
STEPS = ("fetch", "render", "diff", "apply", "prune", "health")
STATE_COLOUR = {"ok": GREEN, "failed": RED, "skipped": "#ccd6dd", "not run": "#eef2f5"}


def trace_steps(steps: Iterable[Mapping[str, Any]]) -> list[Obj]:
    """The six steps in order, each with ms, ok, detail and a state: ok, failed, skipped or
    not run (a reconcile stops early on bad input); steps the engine adds are kept too."""
    by_name: dict[str, Mapping[str, Any]] = {}
    order: list[str] = list(STEPS)
    for step in steps:
        name = str(step.get("name") or "")
        by_name[name] = step
        if name not in order:
            order.append(name)
    out = []
    for name in order:
        found = by_name.get(name)
        if found is None:
            out.append({"name": name, "ms": 0.0, "ok": True, "detail": "", "state": "not run"})
            continue
        detail = str(found.get("detail") or "")
        ok = bool(found.get("ok", True))
        state = "failed" if not ok else "skipped" if detail.startswith("skipped") else "ok"
        out.append({"name": name, "ms": float(found.get("ms") or 0.0), "ok": ok,
                    "detail": detail, "state": state})
    return out


class ReconcileTrace(AppView):
    """A horizontal bar per step, as long as the step took; skipped grey, failed red.

    `.steps` (list of dicts: name, ms, ok, detail, state) is what is shown; `update(app)`
    renders an Application dict, `update_steps(steps)` a bare step list.
    """

    def __init__(self, apps: AppsLike, name: str, *, live: bool = True) -> None:
        self.apps = apps
        self.name = name
        self.steps: list[Obj] = []
        self.total_ms = 0.0
        self.started_at = ""
        self.html = w.HTML()
        self._lock = threading.RLock()
        super().__init__(children=[self.html])
        self.add_class("gitops-reconcile-trace")
        self.update_steps([])
        self._follow(live)

    def update(self, app: Mapping[str, Any]) -> None:
        last = (app.get("status") or {}).get("lastReconcile") or {}
        self.update_steps(last.get("steps") or [], total_ms=last.get("durationMs"),
                          started_at=str(last.get("startedAt") or ""))

    def update_steps(self, steps: Iterable[Mapping[str, Any]], *, total_ms: float | None = None,
                     started_at: str = "") -> None:
        with self._lock:
            self.steps = trace_steps(steps)
            self.total_ms = float(total_ms) if total_ms is not None else \
                sum(s["ms"] for s in self.steps)
            self.started_at = started_at
            if not any(s["state"] != "not run" for s in self.steps):
                self.html.value = (f'<div style="color:#8fa4b1;font-size:12px">no reconcile of '
                                   f"{esc(self.name)} recorded yet</div>")
                return
            longest = max(s["ms"] for s in self.steps) or 1.0
            rows = []
            for s in self.steps:
                colour = STATE_COLOUR[s["state"]]
                width = 0.0 if s["state"] in ("skipped", "not run") else \
                    max(1.0, 100.0 * s["ms"] / longest)
                label = s["state"] if s["state"] in ("skipped", "not run") else f"{s['ms']:.1f} ms"
                text_colour = RED if s["state"] == "failed" else \
                    "#8fa4b1" if s["state"] in ("skipped", "not run") else "#495763"
                rows.append(
                    f'<div class="gitops-step gitops-step-{s["state"].replace(" ", "-")}" '
                    f'data-step="{esc(s["name"])}" style="display:flex;align-items:center;'
                    f'gap:8px;margin:2px 0;font-size:12px">'
                    f'<div style="width:56px;font-weight:600;color:{text_colour}">'
                    f'{esc(s["name"])}</div>'
                    f'<div style="flex:0 0 220px;height:14px;background:#f4f6f8;border-radius:3px">'
                    f'<div style="width:{width:.1f}%;height:100%;background:{colour};'
                    f'border-radius:3px"></div></div>'
                    f'<div style="width:76px;text-align:right;color:{text_colour}">'
                    f'{esc(label)}</div>'
                    f'<div style="color:{text_colour};white-space:normal">{esc(s["detail"])}</div>'
                    "</div>"
                )
            head = (f'<div style="font-size:13px;margin-bottom:4px"><b>Last reconcile</b> of '
                    f"{esc(self.name)}" + (f" at {esc(when(started_at))}" if started_at else "")
                    + f': <span style="color:{BLUE}">{self.total_ms:.1f} ms</span></div>')
            self.html.value = head + "".join(rows)

    def show_error(self, text: str) -> None:
        self.html.value = text
