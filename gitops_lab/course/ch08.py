"""Chapter 08's exercise: promote staging's new GREETING to production by a reviewed branch
merged into main (the checker is in gitops_lab/course/environments.py)."""

from __future__ import annotations

from gitops_lab.course.core import Exercise
from gitops_lab.course.environments import check_promote

EXERCISES = {
    "08-promote": Exercise("08-promote",
                           "Promote staging's new GREETING to production: branch, review, merge",
                           check_promote, wait=90,
                           waiting_for="the agent to sync production at your merge"),
}
