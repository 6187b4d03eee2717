"""The exercise framework (gitops_lab/course) and the notebooks' use of it.

Pure unit tests: checkers here are plain functions over a stand-in object; the real checkers
run against the real lab in tests/notebooks (nbval, with GITOPS_LAB_SOLUTIONS=1)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from gitops_lab.course import core as ex

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _register(monkeypatch: pytest.MonkeyPatch, *tasks: ex.Exercise) -> None:
    table = {t.key: t for t in tasks}
    monkeypatch.setattr(ex, "exercise", lambda key: table[key])


def test_not_yet_is_an_answer_without_solutions_and_a_failure_with_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, ex.Exercise("90-x", "Do x", lambda lab: ex.not_yet("x is missing")))
    monkeypatch.delenv(ex.SOLUTIONS_ENV, raising=False)
    result = ex.run_check(Any, "90-x")  # type: ignore[arg-type]
    assert not result.ok and result.message == "x is missing"
    assert "Not yet" in repr(result) and "Do x" in result._repr_html_()
    monkeypatch.setenv(ex.SOLUTIONS_ENV, "1")
    with pytest.raises(ex.ExerciseNotDone, match="x is missing"):
        ex.run_check(Any, "90-x")  # type: ignore[arg-type]


def test_a_crashing_checker_is_a_hint_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(lab: Any) -> ex.Verdict:
        raise ValueError("apps/guestbook/deployment.yaml is not valid YAML")

    _register(monkeypatch, ex.Exercise("90-y", "Do y", broken))
    monkeypatch.delenv(ex.SOLUTIONS_ENV, raising=False)
    result = ex.run_check(Any, "90-y")  # type: ignore[arg-type]
    assert not result.ok and "ValueError" in result.message and "deployment.yaml" in result.message


def test_pending_is_rechecked_until_done_and_plain_not_yet_is_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"p": 0, "n": 0}

    def eventually(lab: Any) -> ex.Verdict:
        calls["p"] += 1
        return ex.done("synced") if calls["p"] >= 3 else ex.pending("agent still syncing")

    def wrong(lab: Any) -> ex.Verdict:
        calls["n"] += 1
        return ex.not_yet("replicas is 2")

    monkeypatch.setattr(ex.time, "sleep", lambda s: None)
    _register(monkeypatch, ex.Exercise("90-p", "P", eventually, wait=30),
              ex.Exercise("90-n", "N", wrong, wait=30))
    monkeypatch.delenv(ex.SOLUTIONS_ENV, raising=False)
    assert ex.run_check(Any, "90-p").ok and calls["p"] == 3  # type: ignore[arg-type]
    assert not ex.run_check(Any, "90-n").ok and calls["n"] == 1  # type: ignore[arg-type]


def test_pending_past_the_wait_is_not_yet_with_where_to_look(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(0, 1000, 10))
    monkeypatch.setattr(ex.time, "monotonic", lambda: float(next(clock)))
    monkeypatch.setattr(ex.time, "sleep", lambda s: None)
    _register(monkeypatch, ex.Exercise("90-w", "W", lambda lab: ex.pending("not synced"), wait=30))
    monkeypatch.delenv(ex.SOLUTIONS_ENV, raising=False)
    result = ex.run_check(Any, "90-w")  # type: ignore[arg-type]
    assert not result.ok and "after 30 s" in result.message and "agent_log" in result.message


def test_unknown_key_names_what_exists() -> None:
    with pytest.raises(KeyError, match="02-scale"):
        ex.exercise("02-nope")
    with pytest.raises(KeyError, match="chapter '77'"):
        ex.exercise("77-nope")


def _cells(nb: Path) -> list[dict[str, Any]]:
    cells: list[dict[str, Any]] = json.loads(nb.read_text())["cells"]
    return cells


@pytest.mark.parametrize("nb", sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb")), ids=lambda p: p.stem)
def test_every_check_has_a_known_exercise_a_starter_and_a_hidden_solution_before_it(nb: Path) -> None:
    cells = _cells(nb)
    for i, cell in enumerate(cells):
        source = "".join(cell["source"])
        for key in re.findall(r'lab\.check\("([^"]+)"', source):
            task = ex.exercise(key)  # raises if the chapter module lacks it
            assert key.startswith(nb.stem[:2]), f"{nb.name}: {key} belongs to another chapter"
            before = ["".join(c["source"]) for c in cells[max(0, i - 3):i]]
            assert any(s.startswith("%%solution") for s in before), f"{nb.name}: {key} has no solution"
            assert any(s.startswith("# ✏️ Your turn") for s in before), f"{nb.name}: {key} has no starter"
            assert task.title
        if "".join(cell["source"]).startswith("%%solution"):
            assert cell["metadata"]["jupyter"]["source_hidden"] is True
        if "".join(cell["source"]).startswith("# ✏️ Your turn"):
            compile("".join(cell["source"]).replace("!", "#!"), nb.name, "exec")  # runs unedited


def test_solution_magic_runs_only_with_solutions(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    ex.load_ipython_extension(shell)
    monkeypatch.delenv(ex.SOLUTIONS_ENV, raising=False)
    shell.user_ns.pop("solved", None)
    shell.run_cell_magic("solution", "", "solved = 42")
    assert "solved" not in shell.user_ns and "hidden" in capsys.readouterr().out
    monkeypatch.setenv(ex.SOLUTIONS_ENV, "1")
    shell.run_cell_magic("solution", "", "solved = 42")
    assert shell.user_ns["solved"] == 42
    with pytest.raises(ZeroDivisionError):
        shell.run_cell_magic("solution", "", "1 / 0")
