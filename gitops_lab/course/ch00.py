"""Chapter 00's helpers and exercise: the learner finds what the cluster runs with kubectl
and records it in Git (a file committed and pushed)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitops_lab.course.core import Exercise, Verdict, done, not_yet
from gitops_lab.course.probe import live_object, local_changes, pushed_text, unpushed

if TYPE_CHECKING:
    from gitops_lab.lab import Lab

__all__ = ["EXERCISES", "NOTE", "catch_up", "check_record", "judge_record", "use_lab_commands"]

NOTE = "notes/running-image.txt"
JSONPATH = "{.spec.template.spec.containers[0].image}"


def use_lab_commands() -> str:
    """Put this Python's scripts (`gitops-lab`) and the lab's binaries (`kubectl`) first on
    PATH, so `!gitops-lab …` in a notebook finds what a terminal finds after `make setup`.
    Returns the directory of `gitops-lab`."""
    from gitops_lab.paths import bin_dir

    scripts = str(Path(sys.executable).parent)
    os.environ["PATH"] = os.pathsep.join([str(bin_dir()), scripts, os.environ.get("PATH", "")])
    return scripts


def catch_up(lab: Lab) -> dict[str, Any]:
    """The pristine sample in Git, deployed and Synced; no note left by an earlier run."""
    wc = lab.workcopy
    note = wc.path / NOTE
    if pushed_text(lab, NOTE) is not None:
        lab.commit(None, "Forget the note of an earlier run of chapter 00", delete=(NOTE,))
    elif note.exists():  # written but never committed
        note.unlink()
    return lab.reset_sample()


def judge_record(note: str | None, image: str | None) -> Verdict | None:
    """The pure part of the check: what the pushed note says against the live image.
    None when the note is not on the server (the caller then finds out why)."""
    if image is None:
        return not_yet("the Deployment guestbook-ui is not in the cluster: run the catch-up "
                       "cell at the top of this chapter again")
    if note is None:
        return None
    written = note.strip()
    if not written:
        return not_yet(f"{NOTE} is on the server but empty: write the image into it")
    if image not in written.split():
        return not_yet(f"{NOTE} says {written[:80]!r}, but the cluster runs another image. "
                       "Look at kubectl's answer again: the jsonpath "
                       f"'{JSONPATH}' prints just the image")
    return done(f"Git records what the cluster runs: {image}. You read the cluster with "
                "kubectl and changed it nowhere — the change went to Git.")


def check_record(lab: Lab) -> Verdict:
    live = live_object(lab, "deployment", "guestbook-ui", "guestbook") or {}
    containers = (((live.get("spec") or {}).get("template") or {}).get("spec") or {}) \
        .get("containers") or [{}]
    image = containers[0].get("image") if live else None
    verdict = judge_record(pushed_text(lab, NOTE), image)
    if verdict is not None:
        return verdict
    if any(path.startswith("notes") for path in local_changes(lab)):
        return not_yet(f"{NOTE} is in your clone but not committed: "
                       f"!git -C {lab.workcopy.path} add {NOTE}, then commit and push")
    if unpushed(lab):
        return not_yet("your commit is in your clone only: push it "
                       f"(!git -C {lab.workcopy.path} push) — the server is what counts")
    return not_yet(f"no {NOTE} on the Git server yet: find the image with !kubectl get "
                   f"deployment guestbook-ui -n guestbook -o jsonpath='{JSONPATH}', write it "
                   f"into {NOTE} in your clone, commit and push")


EXERCISES = {
    "00-record": Exercise("00-record", "Record in Git which image the cluster runs",
                          check_record),
}
