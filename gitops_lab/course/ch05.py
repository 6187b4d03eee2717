"""Chapter 05's exercise: roll a broken release back the GitOps way, with `git revert`."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from gitops_lab.course.core import Exercise, Verdict, done, not_yet, pending
from gitops_lab.course.observe import image_of
from gitops_lab.course.probe import (
    app_status,
    live_object,
    local_changes,
    pushed_head,
    pushed_text,
    unpushed,
)

if TYPE_CHECKING:
    from gitops_lab.lab import Lab

DEPLOYMENT = "apps/guestbook/deployment.yaml"
BROKEN = "-broken"
REVERT_CMD = "!git -C {lab.workcopy.path} revert --no-edit HEAD, then !git -C {lab.workcopy.path} push"
_IMAGE_LINE = re.compile(r"^\s*(-\s+)?image:")
_REVERTS = re.compile(r"This reverts commit ([0-9a-f]{7,40})")


def _git(lab: Lab, *args: str) -> str:
    return str(lab.workcopy.repo.git.execute(["git", *args]))


def broken_commits(lab: Lab, branch: str = "main", depth: int = 30) -> list[str]:
    """Commits on the server's `branch` (newest first) that made the Deployment's image a
    `-broken` tag where the commit before had none."""
    found = []
    for sha in _git(lab, "rev-list", f"--max-count={depth}", f"origin/{branch}").split():
        after = _show(lab, sha, DEPLOYMENT)
        before = _show(lab, f"{sha}^", DEPLOYMENT)
        if after is not None and _broken_image(after) and not _broken_image(before or ""):
            found.append(sha)
    return found


def reverts_of(lab: Lab, sha: str, branch: str = "main", depth: int = 30) -> list[str]:
    """Commits on `branch` after `sha` whose message says `This reverts commit <sha>`."""
    log = _git(lab, "log", f"--max-count={depth}", "--format=%H%x00%B%x01", f"{sha}..origin/{branch}")
    out = []
    for entry in log.split("\x01"):
        head, _, body = entry.strip().partition("\x00")
        if any(sha.startswith(m) for m in _REVERTS.findall(body)):
            out.append(head)
    return out


def _show(lab: Lab, rev: str, path: str) -> str | None:
    try:
        return _git(lab, "show", f"{rev}:{path}")
    except Exception:
        return None


def _broken_image(text: str) -> bool:
    return any(_IMAGE_LINE.match(line) and BROKEN in line for line in text.splitlines())


def check_revert(lab: Lab) -> Verdict:
    """Main has a revert of the latest broken release; the app is Synced and Healthy on it."""
    head = pushed_head(lab)
    current = pushed_text(lab, DEPLOYMENT)
    if head is None or current is None:
        return not_yet(f"{DEPLOYMENT} is not on the server's main branch; run "
                       "lab.reset_sample() and section 1 again")
    broken = broken_commits(lab)
    if not broken:
        return not_yet("no broken release on main yet: run section 1's cell that commits "
                       "gitops-lab/guestbook:1.2.0-broken")
    bad = broken[0]
    reverts = reverts_of(lab, bad)
    if not reverts:
        if unpushed(lab):
            return not_yet("your revert is in your clone only: !git -C {lab.workcopy.path} push "
                           "— the agent pulls from the server")
        if local_changes(lab):
            return not_yet("your clone has uncommitted changes; `git revert` needs a clean "
                           "tree: !git -C {lab.workcopy.path} status, then "
                           "!git -C {lab.workcopy.path} checkout -- . and revert again")
        if not _broken_image(current):
            return not_yet(f"main no longer deploys the broken image, but by an edit, not a "
                           f"revert of {bad[:7]}: this task asks for {REVERT_CMD}")
        return not_yet(f"main still deploys the broken release {bad[:7]}: {REVERT_CMD}")
    if _broken_image(current):
        return not_yet(f"{reverts[0][:7]} reverts {bad[:7]}, but main's head deploys a broken "
                       "image again; revert that commit too")
    status = app_status(lab) or {}
    sync, health = status.get("sync") or {}, status.get("health") or {}
    if sync.get("revision") != head or sync.get("status") != "Synced":
        return pending(f"the agent has not synced {head[:7]} yet (sync {sync.get('status')} "
                       f"at {str(sync.get('revision'))[:7]})")
    if health.get("status") != "Healthy":
        return pending(f"synced the revert; health is {health.get('status')}: "
                       f"{health.get('message') or 'the old pods are coming back'}")
    live = live_object(lab, "deployment", "guestbook-ui", "guestbook") or {}
    image = image_of(live)
    if BROKEN in image:
        return pending(f"the Deployment still runs {image}")
    return done(f"{reverts[0][:7]} reverts the broken release {bad[:7]} on main; the agent "
                f"deployed it: Synced and Healthy on {image}. History keeps both commits.")


EXERCISES = {
    "05-revert": Exercise("05-revert", "Roll the broken release back with git revert",
                          check_revert, wait=90,
                          waiting_for="the agent to sync the revert and the good pods to be ready"),
}
