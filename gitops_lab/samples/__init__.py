"""Sample apps shipped with gitops-lab: manifests the lab commits into its config repo.
`sample_files("guestbook")` returns {relative path: text} ready for a commit.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["sample_files"]


def sample_files(name: str = "guestbook", prefix: str = "") -> dict[str, str]:
    """The files of one sample app, keyed by path (under `prefix`, e.g. "apps/guestbook")."""
    root = resources.files("gitops_lab.samples") / name
    out: dict[str, str] = {}
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml", ".json")):
            out[f"{prefix.rstrip('/')}/{entry.name}" if prefix else entry.name] = entry.read_text()
    return out
