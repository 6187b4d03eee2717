"""Chapter 07's exercise: an ImagePolicy whose semver range takes every 1.1.x patch and never the
1.2.0 release; the checker reads the policy in the cluster and the tag the updater wrote to Git."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitops_lab.course.core import Exercise, Verdict, done, not_yet, pending
from gitops_lab.course.probe import app_status, live_object, pushed_head, pushed_text
from gitops_lab.images.semver import Range, RangeError, parse_version

if TYPE_CHECKING:
    from gitops_lab.lab import Lab

__all__ = ["EXERCISES", "GOOD", "TASK_TAGS", "check_range", "forget_tags", "judge_range"]

DEPLOYMENT = "apps/guestbook/deployment.yaml"
TASK_TAGS = ("1.1.1", "1.2.0")  # what CI pushes for the task: a fix, and a release not to take
GOOD = "1.1.1"
TAKE = ("1.1.1", "1.1.9")  # every 1.1.x patch, now and later
NEVER = ("1.2.0", "1.2.1", "2.0.0")


def judge_range(text: str) -> Verdict | None:
    """The pure part: None when `text` takes every 1.1.x patch and no 1.2 or 2.x, else a hint."""
    try:
        rng = Range.parse(text)
    except RangeError as exc:
        return not_yet(f"the range {text!r} is not valid: {exc}")

    def takes(tag: str) -> bool:
        version = parse_version(tag)
        return version is not None and rng.matches(version)

    bad = [t for t in NEVER if takes(t)]
    if bad:
        return not_yet(f"the range {text!r} admits {', '.join(bad)}; give it an upper bound "
                       "below 1.2.0, e.g. <1.2.0")
    missing = [t for t in TAKE if not takes(t)]
    if missing:
        return not_yet(f"the range {text!r} does not admit {', '.join(missing)}: it should take "
                       "every 1.1.x patch (1.1.1 now, later ones automatically), e.g. >=1.1.0")
    return None


def check_range(lab: Lab) -> Verdict:
    policy = live_object(lab, "imagepolicy", "guestbook", "gitops-lab")
    if policy is None:
        return not_yet("there is no ImagePolicy guestbook in gitops-lab: fill in RANGE above "
                       "and run the cell (or kubectl apply -f your imagepolicy.yaml)")
    spec = policy.get("spec") or {}
    text = ((spec.get("policy") or {}).get("semver") or {}).get("range")
    if not text:
        return not_yet("the ImagePolicy has no spec.policy.semver.range: this task needs a "
                       "semver policy")
    hint = judge_range(str(text))
    if hint is not None:
        return hint
    if ((spec.get("update") or {}).get("applicationRef") or {}).get("name") != "guestbook":
        return not_yet("the policy does not write to Git: add update: {applicationRef: "
                       "{name: guestbook}}, or it only reports the latest tag")
    status = policy.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") in ("PolicyError", "ScanError", "UpdateError") \
                and cond.get("status") == "True":
            return not_yet(f"the policy reports {cond['type']}: {cond.get('message', '')}")
    if status.get("latestTag") != GOOD:
        return pending(f"the updater has not chosen {GOOD} yet (latest: "
                       f"{status.get('latestTag') or 'none'})")
    text_in_git = pushed_text(lab, DEPLOYMENT) or ""
    if f"/guestbook:{GOOD}" not in text_in_git:
        return pending(f"the updater has not written {GOOD} to {DEPLOYMENT} on main yet")
    if "/guestbook:1.2.0" in text_in_git:
        return not_yet(f"{DEPLOYMENT} names 1.2.0: revert that commit (git revert) — the "
                       "policy should never have taken it")
    head = pushed_head(lab)
    sync = (app_status(lab) or {}).get("sync") or {}
    if sync.get("revision") != head or sync.get("status") != "Synced":
        return pending(f"the agent has not synced the updater's commit {str(head)[:7]} yet")
    live = live_object(lab, "deployment", "guestbook-ui", "guestbook") or {}
    containers = ((((live.get("spec") or {}).get("template") or {}).get("spec") or {})
                  .get("containers") or [{}])
    if not str(containers[0].get("image", "")).endswith(f"/guestbook:{GOOD}"):
        return pending(f"the Deployment does not run {GOOD} yet")
    return done(f"Your range {text!r} chose {GOOD} and not 1.2.0; the updater committed it to "
                "Git and the agent rolled it out.")


def forget_tags(lab: Lab, tags: tuple[str, ...] = TASK_TAGS,
                repository: str = "guestbook") -> list[str]:
    """Delete `tags` from the lab registry (where an earlier run pushed them), so the chapter
    starts as the first time; returns the tags removed. The registry allows deletion."""
    from gitops_lab.images.registry import RegistryClient, RegistryError

    client = RegistryClient(lab.registry)
    removed = []
    try:
        present = set(client.tags(repository).tags)
        for tag in tags:
            if tag not in present:
                continue
            resp = client._request(
                "HEAD", f"/v2/{repository}/manifests/{tag}",
                headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
            digest = resp.headers.get("Docker-Content-Digest")
            if digest and client._request(
                    "DELETE", f"/v2/{repository}/manifests/{digest}").status < 300:
                removed.append(tag)
    except RegistryError:
        pass  # no such repository yet: nothing to forget
    finally:
        client.close()
    return removed


EXERCISES = {
    "07-range": Exercise("07-range", "An ImagePolicy that takes 1.1.x patches, never 1.2.0",
                         check_range, wait=120,
                         waiting_for="the updater's commit and the agent's rollout"),
}
