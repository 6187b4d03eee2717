"""Writes the chapters notebooks/NN-*.ipynb (without outputs) from notebooks/chapters/chNN.py.

Edit a chapter's cells in notebooks/chapters/, then `make notebooks` (`python notebooks/_build.py
[NN ...]`); the .ipynb files are the product (`make lab` opens them, tests/notebooks runs them with
nbval). Conventions (STYLE.md): each chapter starts with `lab = Lab.connect()` so it runs alone, in
any order; one idea per section: the concept in markdown, the live demo, then a task the learner
does (a starter cell, a hidden `%%solution` cell and `lab.check(...)`, see gitops_lab/course) or a
self-check cell with plain asserts. Cells whose output is live state start with
`# NBVAL_IGNORE_OUTPUT`.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def chapters() -> dict[str, list[tuple[str, str]]]:
    found = {}
    for path in sorted((HERE / "chapters").glob("ch[0-9][0-9].py")):
        module = importlib.import_module(f"chapters.{path.stem}")
        found[module.NAME] = module.CELLS
    return found


def build(name: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                       "name": "python3"},
        "language_info": {"name": "python"},
    }
    for i, (kind, text) in enumerate(cells):
        if kind == "md":
            cell = new_markdown_cell(text)
        else:
            cell = new_code_cell(text)
            if kind == "solution":  # collapsed in JupyterLab; nbval never compares its output
                cell.metadata = {"jupyter": {"source_hidden": True},
                                 "tags": ["solution", "nbval-ignore-output"]}
        cell["id"] = f"{name[:2]}-{i:02d}"  # stable ids: rebuilding gives the same file
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def main(argv: list[str]) -> int:
    only = set(argv)
    for name, cells in chapters().items():
        if only and name not in only and name[:2] not in only:
            continue
        path = HERE / f"{name}.ipynb"
        nbformat.write(build(name, cells), path)
        print(f"wrote {path.relative_to(HERE.parent)} ({len(cells)} cells)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
