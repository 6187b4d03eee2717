"""Chapter 02's exercises: the config repo and the agent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitops_lab.course.core import Exercise, Verdict, done, not_yet, pending
from gitops_lab.course.probe import (
    app_status,
    live_object,
    local_changes,
    pushed_head,
    pushed_yaml,
    unpushed,
)

if TYPE_CHECKING:
    from gitops_lab.lab import Lab

DEPLOYMENT = "apps/guestbook/deployment.yaml"


def check_scale(lab: Lab) -> Verdict:
    """Git asks for 3 replicas of guestbook-ui, the agent synced it, and 3 run."""
    docs = pushed_yaml(lab, DEPLOYMENT)
    if docs is None:
        return not_yet(f"{DEPLOYMENT} is not on the server's main branch — was it deleted?")
    deployment = next((d for d in docs if d.get("kind") == "Deployment"), None)
    replicas = (deployment or {}).get("spec", {}).get("replicas")
    if replicas != 3:
        if DEPLOYMENT in local_changes(lab):
            return not_yet(f"you changed {DEPLOYMENT} in your clone but did not commit it: "
                           "lab.commit(...) commits and pushes (or !git commit, then !git push)")
        if unpushed(lab):
            return not_yet("your commit is in your clone only: push it (!git -C … push) — the "
                           "agent pulls from the server, never from your laptop")
        return not_yet(f"Git asks for {replicas} replicas in {DEPLOYMENT}; set spec.replicas: 3, "
                       "commit and push")
    head = pushed_head(lab)
    status = app_status(lab) or {}
    if (status.get("sync") or {}).get("revision") != head:
        return pending(f"Git says 3; the agent has not synced {str(head)[:7]} yet")
    live = live_object(lab, "deployment", "guestbook-ui", "guestbook") or {}
    if (live.get("spec") or {}).get("replicas") != 3:
        return pending("the Deployment in the cluster does not ask for 3 replicas yet")
    ready = (live.get("status") or {}).get("readyReplicas") or 0
    if ready < 3:
        return pending(f"3 replicas asked, {ready} ready so far")
    return done("Git asks for 3 replicas, the agent applied your commit, and 3 pods are ready.")


EXERCISES = {
    "02-scale": Exercise("02-scale", "Scale guestbook-ui to 3 replicas — through Git",
                         check_scale, wait=60, waiting_for="the agent to sync and pods to start"),
}
