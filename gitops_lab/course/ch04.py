"""Chapter 04's exercises: drift reverted by self-heal, and an object pruned after its file left Git."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from gitops_lab.course.core import Exercise, Verdict, done, not_yet, pending
from gitops_lab.course.observe import latest_mark
from gitops_lab.course.probe import (
    app_status,
    live_object,
    local_changes,
    pushed_text,
    pushed_yaml,
    unpushed,
)

if TYPE_CHECKING:
    from gitops_lab.lab import Lab

DEPLOYMENT = "apps/guestbook/deployment.yaml"
NOTES = "apps/guestbook/notes.yaml"
NOTES_NAME = "guestbook-notes"
SCALE_CMD = "!kubectl scale deployment guestbook-ui -n guestbook --replicas=5"


_GRACE: dict[str, tuple[float, float]] = {}


def in_grace(key: str, seconds: float = 6.0, *, clock: float | None = None) -> bool:
    """True for the first `seconds` of one check run (re-checks come every second; a gap of
    more than 3 s starts a new run). For evidence the agent writes just after the fact:
    its Events follow the apply that already reverted the drift."""
    now = time.monotonic() if clock is None else clock
    first, last = _GRACE.get(key, (now, now))
    if now - last > 3.0:
        first = now
    _GRACE[key] = (first, now)
    return now - first < seconds


def git_replicas(lab: Lab) -> int | None:
    """spec.replicas of guestbook-ui as pushed (Kubernetes' default 1 when unset)."""
    docs = pushed_yaml(lab, DEPLOYMENT)
    deployment = next((d for d in docs or [] if d.get("kind") == "Deployment"), None)
    if deployment is None:
        return None
    return int((deployment.get("spec") or {}).get("replicas", 1))


def _app_spec(lab: Lab) -> dict[str, object]:
    try:
        spec: dict[str, object] = lab.app("guestbook").get("spec") or {}
    except Exception:
        return {}
    return spec


def _automated(lab: Lab) -> dict[str, object]:
    policy = _app_spec(lab).get("syncPolicy") or {}
    auto = policy.get("automated") if isinstance(policy, dict) else None
    return auto if isinstance(auto, dict) else {}


def check_self_heal(lab: Lab) -> Verdict:
    """The learner scaled guestbook-ui by hand with self-heal on; the agent put Git's count back."""
    mark = latest_mark(lab, "guestbook")
    if mark is None:
        return not_yet("run the chapter's cells from the top first: the cell that switches "
                       "self-heal on also marks where your change starts")
    want = git_replicas(lab)
    if want is None:
        return not_yet(f"{DEPLOYMENT} has no Deployment on the server's main branch; run "
                       "lab.reset_sample() and try again")
    if not _automated(lab).get("selfHeal"):
        return not_yet("self-heal is off: run the cell above that switches it on "
                       '(lab.apps.set_policy("guestbook", self_heal=True)), then scale again')
    drift = mark.new("DriftDetected", about="spec.replicas")
    live = live_object(lab, "deployment", "guestbook-ui", "guestbook") or {}
    replicas = (live.get("spec") or {}).get("replicas")
    if not drift:
        if replicas != want:
            return pending(f"the Deployment asks for {replicas} replicas, Git for {want}; the "
                           "agent has not reported the drift yet")
        if in_grace("04-self-heal"):
            return pending("no drift on spec.replicas recorded yet (the agent writes its "
                           "Events just after it reverts)")
        return not_yet(f"no drift on spec.replicas since self-heal went on: scale by hand to "
                       f"another number than Git's {want} — {SCALE_CMD} — then check again")
    healed = [e for e in mark.new("SelfHealed", about="guestbook-ui")
              if str(e.get("lastTimestamp") or "") >= str(drift[-1].get("lastTimestamp") or "")]
    if not healed:
        return pending("the agent saw the drift but has not recorded a SelfHealed event yet")
    if replicas != want:
        return pending(f"the Deployment asks for {replicas} replicas, Git for {want}")
    ready = int((live.get("status") or {}).get("readyReplicas") or 0)
    if ready != want or int((live.get("status") or {}).get("replicas") or 0) != want:
        return pending(f"{ready} ready of Git's {want}: the extra pods are still going away")
    return done(f"You scaled by hand; the agent saw it (DriftDetected on spec.replicas), "
                f"put Git's {want} replicas back (SelfHealed), and {want} pods run again.")


def check_prune(lab: Lab) -> Verdict:
    """The learner removed notes.yaml from Git; the agent pruned ConfigMap guestbook-notes."""
    if pushed_text(lab, NOTES) is not None:
        changes = local_changes(lab)
        if any(NOTES in c for c in changes):
            return not_yet(f"{NOTES} is removed in your clone but not committed: "
                           "!git -C {lab.workcopy.path} commit -m \"Drop the notes\"")
        if unpushed(lab):
            return not_yet("your commit is in your clone only: !git -C {lab.workcopy.path} "
                           "push — the agent pulls from the server")
        return not_yet(f"{NOTES} is still on the server's main branch: git rm it, commit "
                       "and push (the three commands in the cell above)")
    if not _automated(lab).get("prune"):
        return not_yet("prune is off for this app, so the agent only marks the ConfigMap "
                       '"requires pruning": run lab.apps.set_policy("guestbook", prune=True) '
                       "or sync once with !gitops-lab app sync guestbook --prune")
    if live_object(lab, "configmap", NOTES_NAME, "guestbook") is not None:
        status = app_status(lab) or {}
        return pending(f"{NOTES} left Git; ConfigMap {NOTES_NAME} is still live (app "
                       f"{(status.get('sync') or {}).get('status')})")
    mark = latest_mark(lab, "guestbook")
    if mark is not None and not mark.new("Pruned", about=NOTES_NAME):
        return pending(f"ConfigMap {NOTES_NAME} is gone; waiting for the agent's Pruned event")
    return done(f"{NOTES} left Git, and the agent deleted ConfigMap {NOTES_NAME} — the "
                "Pruned event says so. Nothing else was touched.")


EXERCISES = {
    "04-self-heal": Exercise("04-self-heal", "Scale by hand with self-heal on — and watch it "
                             "reverted", check_self_heal, wait=45,
                             waiting_for="the agent to revert the scale and the extra pods to go"),
    "04-prune": Exercise("04-prune", "Delete a file from Git — and watch its object pruned",
                         check_prune, wait=45,
                         waiting_for="the agent to pull the commit and prune the ConfigMap"),
}
