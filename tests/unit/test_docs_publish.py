"""`make docs` (gitops_lab/course/publish.py): its executed copies are never collected by nbval,
it is no prerequisite of `make test`, and what it writes carries no credential or home path."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from gitops_lab.course import publish

ROOT = Path(__file__).resolve().parents[2]


def _make_dry_run(target: str) -> str:
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make here")
    # -n prints the recipe without running it (the Makefile calls no $(MAKE) in these targets)
    out = subprocess.run([make, "-n", "-C", str(ROOT), target], capture_output=True, text=True,
                         timeout=60, check=True)
    return out.stdout


def test_make_docs_runs_the_publisher_and_make_test_does_not() -> None:
    assert "gitops_lab.course.publish" in _make_dry_run("docs")
    test_recipe = _make_dry_run("test")
    assert "pytest" in test_recipe  # the dry run did reach the test recipe
    assert "gitops_lab.course.publish" not in test_recipe and "docs/" not in test_recipe


def test_the_docs_copies_are_outside_the_chapters_nbval_runs() -> None:
    assert publish.DOCS_DIR.resolve().is_relative_to(ROOT)
    assert not publish.DOCS_DIR.resolve().is_relative_to(publish.NOTEBOOKS.resolve())
    # the list tests/notebooks runs is this glob over notebooks/ only
    sys.path.insert(0, str(ROOT / "tests" / "notebooks"))
    try:
        import test_notebooks
    finally:
        sys.path.remove(str(ROOT / "tests" / "notebooks"))
    assert test_notebooks.NOTEBOOKS == publish.NOTEBOOKS
    assert [p.stem for p in publish.chapters()] == test_notebooks.CHAPTERS


def _notebook(path: Path, text: str) -> None:
    nb = new_notebook()
    cell = new_code_cell("print('x')")
    cell.outputs = [new_output("stream", name="stdout", text=text)]
    nb.cells.append(cell)
    nbformat.write(nb, path)


def test_nbval_collects_the_chapters_and_never_a_docs_copy(tmp_path: Path) -> None:
    """The same invocation as tests/notebooks (`pytest --nbval-lax notebooks/`), and the default
    one (`pytest --nbval-lax`, testpaths), over a tree that holds an executed copy in docs/."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "docs" / "notebooks").mkdir(parents=True)
    (tmp_path / "tests").mkdir()
    _notebook(tmp_path / "notebooks" / "01-a.ipynb", "")
    _notebook(tmp_path / "docs" / "notebooks" / "01-a.ipynb", "x\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")  # same testpaths
    (tmp_path / "tests" / "test_nothing.py").write_text("def test_nothing():\n    pass\n")

    def collected(*args: str) -> list[str]:
        out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                              "--nbval-lax", "-p", "no:cacheprovider", "-p", "no:randomly",
                              *args], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                             check=False)
        assert out.returncode == 0, out.stdout + out.stderr
        return [line for line in out.stdout.splitlines() if "::" in line]

    chapters = collected("notebooks")
    assert chapters and all(line.startswith("notebooks/01-a.ipynb::") for line in chapters)
    default = collected()
    assert default == ["tests/test_nothing.py::test_nothing"]


def test_sanitise_masks_credentials_and_the_home_directory() -> None:
    jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEyMyJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6eCJ9.c2ln"
    text = (f"kubeconfig /home/ada/.cache/gitops-lab/clusters/x/kubeconfig\n"
            f"token: {jwt}\nAuthorization: Bearer abcdefgh12345678\n"
            "http://127.0.0.1:8888/lab?token=0123456789abcdef\npassword: s3cr3tP4ssw0rd\n"
            '"client-key-data": "LS0tLS1CRUdJTiBFQw=="\n'
            "agent mode local, revision 720a85ecc34f77a4f898dba39d2fc84cd974c4e9\n")
    out = publish.sanitise_text(text, home="/home/ada")
    assert "/home/ada" not in out and "~/.cache/gitops-lab/clusters/x/kubeconfig" in out
    for secret in (jwt, "abcdefgh12345678", "0123456789abcdef", "s3cr3tP4ssw0rd",
                   "LS0tLS1CRUdJTiBFQw=="):
        assert secret not in out, (secret, out)
    # what a reader needs stays: SHAs, words around the masks
    assert "720a85ecc34f77a4f898dba39d2fc84cd974c4e9" in out and "Bearer <token>" in out
    assert publish.sanitise_text(out, home="/home/ada") == out  # idempotent


def test_sanitise_notebook_reaches_every_kind_of_output(tmp_path: Path) -> None:
    nb = new_notebook()
    cell = new_code_cell("x")
    cell.outputs = [
        new_output("stream", name="stdout", text="/home/ada/a password=hunter2hunter2\n"),
        new_output("execute_result", data={"text/plain": "token=abcdefgh12345678",
                                           "text/html": "<b>/home/ada/b</b>"}, execution_count=1),
        new_output("error", ename="E", evalue="/home/ada/c", traceback=["at /home/ada/d"]),
    ]
    nb.cells.append(cell)
    nb.metadata["widgets"] = {"state": {"m": {"value": "/home/ada/e"}}}
    written = tmp_path / "x.ipynb"
    nbformat.write(publish.sanitise_notebook(nb, home="/home/ada"), written)
    text = written.read_text()
    assert "/home/ada" not in text and "hunter2hunter2" not in text
    assert "abcdefgh12345678" not in text and "~/e" in text


def test_widget_outputs_get_a_static_html_snapshot_of_their_last_state() -> None:
    def model(name: str, **state: Any) -> dict[str, Any]:
        return {"model_name": name, "model_module": "@jupyter-widgets/controls", "state": state}

    nb = new_notebook()
    cell = new_code_cell("dash")
    view = {"version_major": 2, "version_minor": 0, "model_id": "box"}
    cell.outputs = [new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": view, "text/plain": "HBox(...)"})]
    nb.cells.append(cell)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "version_major": 2, "version_minor": 0, "state": {
            "box": model("HBoxModel", children=["IPY_MODEL_bar", "IPY_MODEL_msg", "IPY_MODEL_b"]),
            "bar": model("FloatProgressModel", value=30.0, max=30.0),
            "msg": model("HTMLModel", value="<b>Synced</b> at abc1234"),
            "b": model("ButtonModel", description="Sync <now>"),
        }}}
    publish.snapshot_widgets(nb)
    html = nb.cells[0].outputs[0]["data"]["text/html"]
    assert '<progress value="30.0" max="30.0">' in html and "<b>Synced</b> at abc1234" in html
    assert "<button disabled>Sync &lt;now&gt;</button>" in html and "display:flex" in html
    nbformat.validate(nb)
