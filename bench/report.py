"""The one table `python -m bench` prints: every figure beside its baseline, the ratio, the
target and PASS/MISS. Notes (what each row means, the run's conditions) follow the table.
"""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass, field


def fmt_s(seconds: float) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "n/a"
    if seconds < 1.0:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 100:
        return f"{seconds:.2f} s"
    return f"{seconds:.0f} s"


def fmt_ratio(value: float, base: float) -> str:
    if not base or math.isnan(value) or math.isnan(base):
        return "n/a"
    return f"{value / base:.1f}×"


def fmt_mb(kb: float) -> str:
    return f"{kb / 1024:.0f} MB"


@dataclass
class Row:
    measure: str
    value: str
    baseline: str
    ratio: str
    target: str = "—"
    verdict: str = ""  # PASS, MISS, "" (no target), ERROR


@dataclass
class Report:
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)  # further tables, printed after the notes

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def error(self, measure: str, exc: BaseException) -> None:
        msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:90]
        self.rows.append(Row(measure, f"error: {msg}", "", "", "", "ERROR"))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def render(self) -> str:
        head = Row("measure", "gitops-lab", "baseline (same run)", "ratio", "target", "")
        cols = [list(map(str, (r.measure, r.value, r.baseline, r.ratio, r.target, r.verdict)))
                for r in [head, *self.rows]]
        widths = [max(len(c[i]) for c in cols) for i in range(6)]
        sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

        def line(c: list[str]) -> str:
            return "| " + " | ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)) + " |"

        out = [self.title, sep, line(cols[0]), sep.replace("-", "=")]
        out += [line(c) for c in cols[1:]]
        out.append(sep)
        passed = sum(r.verdict == "PASS" for r in self.rows)
        missed = sum(r.verdict == "MISS" for r in self.rows)
        errors = sum(r.verdict == "ERROR" for r in self.rows)
        out.append(f"targets: {passed} PASS, {missed} MISS" + (f", {errors} ERROR" if errors else ""))
        for n in self.notes:
            out.append(f"  · {n}")
        for table in self.tables:
            out += ["", table]
        return "\n".join(out)


def machine() -> str:
    load = os.getloadavg()
    return (f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
            f"load avg {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def table(title: str, head: list[str], rows: list[list[str]]) -> str:
    """A plain table (first column left-aligned, the others right-aligned) under a title."""
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(r: list[str]) -> str:
        cells = [v.ljust(w) if i == 0 else v.rjust(w)
                 for i, (v, w) in enumerate(zip(r, widths, strict=True))]
        return "| " + " | ".join(cells) + " |"

    return "\n".join([title, sep, line(head), sep.replace("-", "="), *map(line, rows), sep])
