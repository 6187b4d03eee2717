"""Colours, icons and small HTML builders shared by the widgets (Argo CD's palette).
Bottom of widgets/: pure string functions, no ipywidgets and no I/O.
"""

from __future__ import annotations

import html
from typing import Any

__all__ = [
    "GREY",
    "HEALTH_STYLE",
    "SYNC_STYLE",
    "badge_html",
    "esc",
    "health_style",
    "icon_html",
    "kind_abbrev",
    "short_sha",
    "sync_style",
    "when",
]

GREEN = "#18be94"
AMBER = "#f4c030"
BLUE = "#0dadea"
RED = "#e96d76"
GREY = "#8fa4b1"
GREY_BLUE = "#6d7f96"

# status -> (colour, icon), as Argo CD's UI draws them
SYNC_STYLE: dict[str, tuple[str, str]] = {
    "Synced": (GREEN, "✔"),
    "OutOfSync": (AMBER, "⇅"),
    "Unknown": (GREY, "?"),
}
HEALTH_STYLE: dict[str, tuple[str, str]] = {
    "Healthy": (GREEN, "♥"),
    "Progressing": (BLUE, "◔"),
    "Degraded": (RED, "💔"),
    "Suspended": (GREY_BLUE, "⏸"),
    "Missing": (AMBER, "👻"),
    "Unknown": (GREY, "?"),
}

_KIND_ABBREV = {
    "Application": "app",
    "ConfigMap": "cm",
    "CronJob": "cj",
    "DaemonSet": "ds",
    "Deployment": "deploy",
    "HorizontalPodAutoscaler": "hpa",
    "Ingress": "ing",
    "Job": "job",
    "Namespace": "ns",
    "PersistentVolumeClaim": "pvc",
    "Pod": "pod",
    "ReplicaSet": "rs",
    "Secret": "secret",
    "Service": "svc",
    "ServiceAccount": "sa",
    "StatefulSet": "sts",
}


def esc(value: Any) -> str:
    """HTML-escape anything (None becomes the empty string)."""
    return html.escape("" if value is None else str(value))


def short_sha(sha: str | None) -> str:
    return sha[:7] if sha else "-"


def when(stamp: str | None) -> str:
    """An RFC 3339 stamp as `YYYY-MM-DD HH:MM:SS` (the lab's stamps are UTC)."""
    if not stamp:
        return ""
    return str(stamp).replace("T", " ").rstrip("Z")


def sync_style(status: str | None) -> tuple[str, str, str]:
    """(label, colour, icon) for a sync status; anything unknown is drawn as Unknown."""
    label = str(status) if status in SYNC_STYLE else "Unknown"
    colour, icon = SYNC_STYLE[label]
    return label, colour, icon


def health_style(status: str | None) -> tuple[str, str, str]:
    """(label, colour, icon) for a health status; anything unknown is drawn as Unknown."""
    label = str(status) if status in HEALTH_STYLE else "Unknown"
    colour, icon = HEALTH_STYLE[label]
    return label, colour, icon


def badge_html(label: str, colour: str, icon: str, css_class: str, title: str = "") -> str:
    """A pill like Argo CD's status badges: icon + label, white on the status colour."""
    return (
        f'<span class="{esc(css_class)}__label" data-status="{esc(label)}" title="{esc(title)}" '
        f'style="display:inline-block;padding:2px 10px;border-radius:12px;background:{colour};'
        f'color:#fff;font-weight:600;font-size:13px;line-height:20px;white-space:nowrap">'
        f"{esc(icon)} {esc(label)}</span>"
    )


def icon_html(colour: str, icon: str, title: str) -> str:
    """One coloured status icon (for tree nodes and table cells)."""
    return (f'<span title="{esc(title)}" style="color:{colour};font-weight:700;'
            f'margin:0 2px">{esc(icon)}</span>')


def kind_abbrev(kind: str) -> str:
    return _KIND_ABBREV.get(kind, kind.lower())
