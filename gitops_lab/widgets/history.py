"""HistoryTimeline: the app's deployed revisions (status.history) left to right, live one marked.
Reads the Application; each entry's Rollback button calls `Apps.rollback(name, id)`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import ipywidgets as w

from gitops_lab.widgets._live import AppsLike, AppView
from gitops_lab.widgets._style import GREEN, GREY, esc, short_sha, when

__all__ = ["HistoryTimeline", "history_entries"]

Obj = dict[str, Any]


def _message(sha: str, messages: Mapping[str, str]) -> str:
    if sha in messages:
        return messages[sha]
    for key, message in messages.items():
        if key and (sha.startswith(key) or key.startswith(sha)):
            return message
    return ""


def history_entries(app: Mapping[str, Any],
                    messages: Mapping[str, str] | None = None) -> list[Obj]:
    """status.history oldest first, each with `live` (the newest entry at the synced revision)
    and `message` (from `messages`, or status.revisionInfo for the current revision)."""
    status = app.get("status") or {}
    current = str((status.get("sync") or {}).get("revision") or "")
    known = dict(messages or {})
    info = status.get("revisionInfo") or {}
    if info.get("revision") and info.get("message"):
        known.setdefault(str(info["revision"]), str(info["message"]))
    history = sorted(status.get("history") or [], key=lambda h: int(h.get("id", 0)))
    live_id = next((int(h.get("id", 0)) for h in reversed(history)
                    if current and h.get("revision") == current), None)
    entries = []
    for h in history:
        sha = str(h.get("revision") or "")
        entries.append({
            "id": int(h.get("id", 0)),
            "revision": sha,
            "short": short_sha(sha),
            "deployedAt": str(h.get("deployedAt") or ""),
            "live": int(h.get("id", 0)) == live_id,
            "message": _message(sha, known),
            "source": dict(h.get("source") or {}),
        })
    return entries


def _card(entry: Mapping[str, Any]) -> str:
    colour = GREEN if entry["live"] else GREY
    live = (f'<span class="gitops-history-live" style="background:{GREEN};color:#fff;'
            f'border-radius:8px;padding:0 6px;font-size:11px;margin-left:4px">LIVE</span>'
            if entry["live"] else "")
    message = (f'<div style="white-space:normal;color:#495763">{esc(entry["message"])}</div>'
               if entry["message"] else "")
    return (
        f'<div class="gitops-history-entry{" gitops-history-entry-live" if entry["live"] else ""}"'
        f' data-id="{entry["id"]}" style="width:170px;font-size:12px">'
        # the timeline's line with this entry's dot on it
        f'<div style="position:relative;height:14px;margin-bottom:4px">'
        f'<div style="position:absolute;top:6px;left:0;right:-8px;border-top:2px solid #ccd6dd">'
        f'</div><div style="position:absolute;top:0;left:0;width:14px;height:14px;'
        f'border-radius:7px;background:{colour}"></div></div>'
        f'<div><b>#{entry["id"]}</b> <code title="{esc(entry["revision"])}">'
        f'{esc(entry["short"])}</code>{live}</div>'
        f'<div style="color:#8fa4b1">{esc(when(entry["deployedAt"]))}</div>{message}</div>'
    )


class HistoryTimeline(AppView):
    """Deployed revisions as a horizontal timeline with a Rollback button per entry.

    `.entries` (list of dicts: id, revision, short, deployedAt, live, message) and `.buttons`
    (id -> Button) are there for tests; `update(app)` renders a given Application dict.
    """

    def __init__(self, apps: AppsLike, name: str, messages: Mapping[str, str] | None = None,
                 *, live: bool = True) -> None:
        self.apps = apps
        self.name = name
        self.messages: dict[str, str] = dict(messages or {})
        self.entries: list[Obj] = []
        self.buttons: dict[int, w.Button] = {}
        self._cards: dict[int, tuple[w.HTML, w.Button, w.VBox]] = {}
        self.app: Obj = {}
        self.title = w.HTML()
        self.timeline = w.HBox(layout=w.Layout(overflow="auto"))
        self.message_html = w.HTML()
        self._lock = threading.RLock()
        super().__init__(children=[self.title, self.timeline, self.message_html])
        self.add_class("gitops-history-timeline")
        self._follow(live)

    def update(self, app: Mapping[str, Any], messages: Mapping[str, str] | None = None) -> None:
        with self._lock:
            if messages:
                self.messages.update(messages)
            self.app = dict(app)
            self.entries = history_entries(app, self.messages)
            self.title.value = (
                f'<div style="font-size:13px"><b>History</b> of {esc(self.name)}: '
                f"{len(self.entries)} deployment(s), oldest left</div>" if self.entries else
                f'<div style="font-size:13px;color:#8fa4b1">{esc(self.name)} has no deployment '
                "history yet</div>")
            old_cards = self._cards
            self._cards = {}
            for entry in self.entries:
                card = old_cards.pop(entry["id"], None)
                if card is None:
                    html_widget, button = w.HTML(), self._button(entry["id"])
                    card = (html_widget, button, w.VBox(
                        [html_widget, button],
                        layout=w.Layout(margin="0 8px 0 0", flex="0 0 auto", min_width="170px")))
                card[0].value = _card(entry)
                card[1].disabled = bool(entry["live"])
                card[1].description = "live" if entry["live"] else f"Rollback to #{entry['id']}"
                self._cards[entry["id"]] = card
            self.buttons = {i: card[1] for i, card in self._cards.items()}
            self.timeline.children = [card[2] for card in self._cards.values()]
            for gone in old_cards.values():  # entries that left the history
                for widget in gone:
                    widget.close()

    def _button(self, history_id: int) -> w.Button:
        button = w.Button(icon="undo", layout=w.Layout(width="150px"),
                          tooltip=f"sync to history entry #{history_id}")
        button.on_click(lambda _b: self._rollback(history_id))
        return button

    def _rollback(self, history_id: int) -> None:
        try:
            self.apps.rollback(self.name, history_id)
        except Exception as exc:
            self.message_html.value = (f'<span style="color:#a4272f">rollback failed: '
                                       f"{esc(exc)}</span>")
            return
        self.message_html.value = (f"✔ rollback to #{history_id} requested; the agent syncs it "
                                   "and turns automated sync off so it sticks")
        if self._watch is None:
            self.reload()

    def show_error(self, text: str) -> None:
        self.message_html.value = text
