"""Exercise, Verdict and the ``%%solution`` cell magic (see gitops_lab/course/__init__.py)."""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gitops_lab.lab import Lab

SOLUTIONS_ENV = "GITOPS_LAB_SOLUTIONS"


def solutions_enabled() -> bool:
    """True when solution cells run (``GITOPS_LAB_SOLUTIONS=1``, as under nbval in CI)."""
    return os.environ.get(SOLUTIONS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Verdict:
    """What a checker found. ``pending``: the learner's part is done and the agent (or the
    cluster) still has to catch up, so re-checking is worth it; a plain "not yet" is final."""

    ok: bool
    message: str
    pending: bool = False


def done(message: str) -> Verdict:
    return Verdict(True, message)


def not_yet(hint: str) -> Verdict:
    return Verdict(False, hint)


def pending(what: str) -> Verdict:
    return Verdict(False, what, pending=True)


@dataclass(frozen=True)
class CheckResult:
    """The answer a check cell shows: rendered as a coloured box in a notebook."""

    key: str
    title: str
    ok: bool
    message: str

    def _parts(self) -> tuple[str, str, str]:
        return (("✅", "Done", "#1b7f3b") if self.ok else ("⏳", "Not yet", "#9a6700"))

    def __repr__(self) -> str:
        mark, word, _ = self._parts()
        return f"{mark} {word} · {self.title}\n   {self.message}"

    def _repr_html_(self) -> str:
        mark, word, colour = self._parts()
        return (f'<div style="border-left:4px solid {colour};padding:4px 10px;margin:4px 0">'
                f"{mark} <b>{word}</b> · {escape(self.title)}<br>{escape(self.message)}</div>")


class ExerciseNotDone(AssertionError):
    """Raised by a check only when solutions run: the hidden solution did not do the task."""


@dataclass(frozen=True)
class Exercise:
    """One task: ``check(lab)`` reads the result and returns a Verdict.

    ``wait`` seconds: how long a "not yet" is re-checked before it is final — for results the
    agent has to produce (a sync after a commit, a pod after a scale). ``waiting_for`` says what,
    in the learner's words.
    """

    key: str
    title: str
    check: Callable[[Lab], Verdict]
    wait: float = 0.0
    waiting_for: str = ""


def exercise(key: str) -> Exercise:
    """The exercise ``"NN-name"``, from ``gitops_lab.course.chNN``."""
    chapter = key.split("-", 1)[0]
    try:
        module = importlib.import_module(f"gitops_lab.course.ch{chapter}")
    except ModuleNotFoundError:
        raise KeyError(f"no exercises for chapter {chapter!r} (key {key!r})") from None
    table: dict[str, Exercise] = getattr(module, "EXERCISES", {})
    if key not in table:
        raise KeyError(f"no exercise {key!r}; chapter {chapter} has: {', '.join(table) or 'none'}")
    return table[key]


def _evaluate(task: Exercise, lab: Lab) -> Verdict:
    try:
        return task.check(lab)
    except Exception as exc:  # the learner's half-done state must never show a traceback
        return not_yet(f"checking hit {type(exc).__name__}: {exc}")


def run_check(lab: Lab, key: str, *, wait: float | None = None) -> CheckResult:
    """Check exercise ``key``; while the verdict is *pending*, re-check for up to ``wait`` s.

    Returns the result (a notebook shows it as a box). With solutions on, a final "not yet"
    raises ExerciseNotDone, so the cell fails under nbval.
    """
    task = exercise(key)
    budget = task.wait if wait is None else wait
    start = time.monotonic()
    verdict = _evaluate(task, lab)
    if verdict.pending and budget > 0:
        what = task.waiting_for or "the agent to catch up"
        _show_line(f"… {verdict.message} — re-checking for up to {budget:.0f} s "
                   f"while we wait for {what}")
        while verdict.pending and time.monotonic() - start < budget:
            time.sleep(1.0)
            verdict = _evaluate(task, lab)
        if verdict.pending:
            verdict = not_yet(f"{verdict.message} (still, after {budget:.0f} s: look at "
                              "lab.app()['status'] and lab.agent_log())")
    result = CheckResult(task.key, task.title, verdict.ok, verdict.message)
    if not verdict.ok and solutions_enabled():
        raise ExerciseNotDone(repr(result))
    return result


def _show_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


HIDDEN = ("🔒 The solution is hidden. Try the task first; to see it, expand this cell's source "
          "(click the bar on its left). To run solutions, start JupyterLab with "
          f"{SOLUTIONS_ENV}=1.")


def solution(line: str, cell: str) -> None:
    """``%%solution``: run the cell's body only when solutions are on."""
    if not solutions_enabled():
        print(HIDDEN)
        return
    from IPython import get_ipython

    shell = get_ipython()
    # transform_cell turns `!git …` and other IPython syntax into Python, as a normal cell does;
    # exec lets an exception fail this cell (nested run_cell would swallow it)
    code = shell.transform_cell(cell)
    exec(compile(code, "<solution>", "exec"), shell.user_ns)


def load_ipython_extension(shell: Any) -> None:
    """Registers ``%%solution`` (``%load_ext gitops_lab.course``; Lab.connect() does it)."""
    shell.register_magic_function(solution, magic_kind="cell", magic_name="solution")
