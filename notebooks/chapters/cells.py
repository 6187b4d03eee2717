# ruff: noqa: E501
"""Cell helpers for the chapters (conventions in notebooks/_build.py's docstring).

A cell is a (kind, text) pair: "md", "code" or "solution" (a hidden ``%%solution`` cell).
"""

from __future__ import annotations

import textwrap

IGNORE = "# NBVAL_IGNORE_OUTPUT\n"

CONNECT = IGNORE + """\
from gitops_lab import Lab

lab = Lab.connect()  # catch the lab up from nothing: cluster, Git server, agent (seconds when warm)
"""

Cell = tuple[str, str]


def md(text: str) -> Cell:
    return ("md", textwrap.dedent(text).strip("\n"))


def code(text: str) -> Cell:
    return ("code", textwrap.dedent(text).strip("\n"))


def live(text: str) -> Cell:
    """A code cell whose output is live state: nbval runs it but never compares its output."""
    return ("code", IGNORE + textwrap.dedent(text).strip("\n"))


def check(text: str) -> Cell:
    """A self-check on what the chapter just showed (plain asserts the learner can read)."""
    return ("code", IGNORE + "# ✔ self-check\n" + textwrap.dedent(text).strip("\n"))


def starter(text: str) -> Cell:
    """The learner's cell for a task: comments and harmless code, which they edit.

    It must run unedited without error (a learner may run all cells; nbval runs it before the
    hidden solution)."""
    return ("code", "# ✏️ Your turn\n" + textwrap.dedent(text).strip("\n"))


def solution(text: str) -> Cell:
    """The hidden solution: runs under GITOPS_LAB_SOLUTIONS=1 (CI), else says how to reveal it."""
    return ("solution", "%%solution\n" + textwrap.dedent(text).strip("\n"))


def task_check(key: str, wait: float | None = None) -> Cell:
    """The checker cell for exercise ``key`` (gitops_lab/course/chNN.py)."""
    extra = "" if wait is None else f", wait={wait}"
    return ("code", IGNORE + f'lab.check("{key}"{extra})  # ✔ checks your result in Git and the cluster')
