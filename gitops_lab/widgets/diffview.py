"""DiffView: Git (desired) vs live per object, as coloured unified diffs in an Accordion.
Renders engine/api.py's ReconcileResult.diffs; `for_app` runs engine/reconcile.py's compare_app.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import ipywidgets as w

from gitops_lab.kube import Kube
from gitops_lab.paths import cache_root as _cache_root
from gitops_lab.widgets._live import AppsLike
from gitops_lab.widgets._style import esc

__all__ = ["DiffLike", "DiffView", "diff_html"]

ADD_STYLE = "background:#e6ffed;color:#1a7f37"
DEL_STYLE = "background:#ffebe9;color:#cf222e"
HUNK_STYLE = "color:#0969da"
HEAD_STYLE = "color:#6d7f8b;font-weight:600"


class DiffLike(Protocol):
    """What DiffView reads of one object's comparison (engine.diff.ResourceDiff has it)."""

    @property
    def key(self) -> Any: ...

    @property
    def status(self) -> Any: ...

    @property
    def text(self) -> str: ...

    @property
    def message(self) -> str: ...


def _status(value: Any) -> str:
    return str(getattr(value, "value", value))


def diff_html(text: str) -> str:
    """A unified diff as HTML: `+` lines green, `-` lines red, hunks blue."""
    lines = []
    for line in text.splitlines():
        if line.startswith(("+++", "---")):
            cls, style = "gitops-diff-file", HEAD_STYLE
        elif line.startswith("@@"):
            cls, style = "gitops-diff-hunk", HUNK_STYLE
        elif line.startswith("+"):
            cls, style = "gitops-diff-add", ADD_STYLE
        elif line.startswith("-"):
            cls, style = "gitops-diff-del", DEL_STYLE
        else:
            cls, style = "gitops-diff-ctx", ""
        lines.append(f'<div class="{cls}" style="{style};white-space:pre">{esc(line) or " "}</div>')
    return ('<div class="gitops-diff" style="font-family:var(--jp-code-font-family,monospace);'
            f'font-size:12px;overflow-x:auto">{"".join(lines)}</div>')


class DiffView(w.VBox):  # type: ignore[misc]
    """One Accordion entry per OutOfSync object (plus objects Git no longer has).

    Input: a ReconcileResult, or any mapping key -> object with `.key .status .text .message`.
    `.entries` lists what is shown: dicts with key, status, message, text, html.
    """

    def __init__(self, result_or_diffs: Any = None) -> None:
        self.summary = w.HTML()
        self.accordion = w.Accordion()
        self.entries: list[dict[str, str]] = []
        super().__init__(children=[self.summary, self.accordion])
        self.add_class("gitops-diff-view")
        self.update(result_or_diffs)

    def update(self, result_or_diffs: Any) -> None:
        diffs: Mapping[Any, DiffLike]
        if result_or_diffs is None:
            diffs = {}
        elif isinstance(result_or_diffs, Mapping):
            diffs = result_or_diffs
        else:
            diffs = getattr(result_or_diffs, "diffs", {}) or {}
        entries: list[dict[str, str]] = []
        for diff in diffs.values():
            status = _status(diff.status)
            if status != "OutOfSync":
                continue
            text = diff.text or ""
            entries.append({
                "key": str(diff.key), "status": status, "message": str(diff.message or ""),
                "text": text,
                "html": diff_html(text) if text else
                f"<i>{esc(diff.message or 'no textual difference')}</i>",
            })
        for res in getattr(result_or_diffs, "resources", None) or []:
            if getattr(res, "requires_pruning", False):
                entries.append({
                    "key": str(res.key), "status": "OutOfSync",
                    "message": "not in Git: would be pruned", "text": "",
                    "html": '<i style="color:#cf222e">live only — not in Git any more; a sync '
                            "with prune deletes it</i>",
                })
        self.entries = entries

        conditions = getattr(result_or_diffs, "conditions", None) or []
        cond_html = "".join(
            f'<div style="color:#a4272f"><b>{esc(getattr(c, "type", ""))}</b>: '
            f'{esc(getattr(c, "message", c))}</div>' for c in conditions)
        total = len(diffs)
        if entries:
            head = (f"<b>{len(entries)}</b> of {total} object(s) differ between Git "
                    "(<span style='color:#1a7f37'>+</span>) and the cluster "
                    "(<span style='color:#cf222e'>-</span>)")
        elif total:
            head = f"✔ all {total} object(s) equal Git"
        else:
            head = "no objects compared"
        self.summary.value = f'<div style="font-size:13px">{head}</div>{cond_html}'
        children = []
        for entry in entries:
            html_widget = w.HTML(entry["html"])
            html_widget.add_class("gitops-diff-body")
            children.append(html_widget)
        self.accordion.children = children
        self.accordion.titles = tuple(
            f"{e['key']}" + (f" — {e['message']}" if e["message"] else "") for e in entries)
        self.accordion.selected_index = 0 if len(entries) == 1 else None

    @classmethod
    def for_app(cls, kube: Kube, apps: AppsLike, name: str, *,
                cache_dir: Path | str | None = None) -> DiffView:
        """Compare Git with the live cluster here, without the agent (like `app diff`)."""
        from gitops_lab.engine.reconcile import compare_app
        from gitops_lab.install.incluster import host_git_urls
        from gitops_lab.source import RepoCache

        repos = RepoCache(Path(cache_dir) if cache_dir else _cache_root() / "repos-widgets",
                          fetch_urls=host_git_urls())
        return cls(compare_app(kube, apps.get(name), repos))
