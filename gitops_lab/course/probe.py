"""What checkers read: the config repo as the agent sees it (the server, not the learner's
clone), live objects, and the Application's status. Every reader returns None for "not there"
rather than raising, so a checker can turn it into a hint."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from gitops_lab.lab import Lab

Obj = dict[str, Any]


def pushed_head(lab: Lab, branch: str = "main") -> str | None:
    """The SHA of `branch` on the lab's Git server (after a fetch), None if it has none."""
    repo = lab.workcopy.repo
    repo.git.fetch("--quiet", "origin")
    try:
        return str(repo.git.rev_parse(f"origin/{branch}"))
    except Exception:
        return None


def pushed_text(lab: Lab, path: str, branch: str = "main") -> str | None:
    """`path` as committed and pushed on `branch` (what the agent pulls), None if absent."""
    if pushed_head(lab, branch) is None:
        return None
    try:
        return str(lab.workcopy.repo.git.show(f"origin/{branch}:{path}"))
    except Exception:
        return None


def pushed_yaml(lab: Lab, path: str, branch: str = "main") -> list[Obj] | None:
    """The documents of a pushed YAML file; raises ValueError naming the file on bad YAML."""
    text = pushed_text(lab, path, branch)
    if text is None:
        return None
    try:
        return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} on {branch} is not valid YAML: {exc}") from None


def local_changes(lab: Lab) -> list[str]:
    """Files changed in the learner's clone but not committed (git status --porcelain)."""
    out = str(lab.workcopy.repo.git.status("--porcelain"))
    return [line[3:] for line in out.splitlines() if line.strip()]


def unpushed(lab: Lab) -> int:
    """Commits in the learner's clone that the server does not have."""
    lab.workcopy.repo.git.fetch("--quiet", "origin")
    branch = lab.workcopy.branch
    try:
        return int(lab.workcopy.repo.git.rev_list("--count", f"origin/{branch}..HEAD"))
    except Exception:
        return 0


def live_object(lab: Lab, kind: str, name: str, namespace: str | None = None) -> Obj | None:
    args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else [])
    out = lab.kubectl(*args, check=False)
    try:
        obj: Obj = json.loads(out)
    except json.JSONDecodeError:
        return None
    return obj


def app_status(lab: Lab, name: str = "guestbook") -> Obj | None:
    try:
        status: Obj = lab.app(name).get("status") or {}
    except Exception:
        return None
    return status
