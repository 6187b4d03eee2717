"""The course's exercises: tasks a learner performs, checkers that read the result, solutions.

A chapter's task is three cells (notebooks/src/ writes them):

* a starter cell the learner edits — harmless when run unedited;
* a hidden solution cell, ``%%solution`` — it runs only when ``GITOPS_LAB_SOLUTIONS=1`` (CI runs
  every notebook that way under nbval); otherwise it says where to reveal it;
* a check cell, ``lab.check("02-scale")`` — it inspects the *result* in Git or the cluster
  (never the learner's code), re-checks for a while where the agent has to catch up, and answers
  "done" or "not yet" with a specific hint. A learner who did nothing sees "not yet", never a
  traceback; with solutions on, "not yet" fails the cell (so CI catches a broken solution).

Each chapter's exercises live in ``gitops_lab/course/chNN.py`` as ``EXERCISES``; keys are
``"NN-name"``.
"""

from __future__ import annotations

from gitops_lab.course.core import (
    CheckResult,
    Exercise,
    ExerciseNotDone,
    Verdict,
    done,
    exercise,
    load_ipython_extension,
    not_yet,
    pending,
    run_check,
    solutions_enabled,
)

__all__ = ["CheckResult", "Exercise", "ExerciseNotDone", "Verdict", "done", "exercise",
           "load_ipython_extension", "not_yet", "pending", "run_check", "solutions_enabled"]
