"""`make docs`: every chapter executed in order on a fresh lab of its own, with the solutions on,
and written with its outputs to docs/notebooks/ for reading on the web.

The copies sit outside notebooks/, so nbval (which runs notebooks/[0-9][0-9]-*.ipynb) never
collects them, and `make test` never builds them. Outputs are sanitised before they are written:
the home directory becomes ``~``, and anything shaped like a credential (a JWT such as a
ServiceAccount token, a ``Bearer`` header, a ``token=`` / ``password:`` value) is masked, and
every widget output gets a static HTML rendering of its last state, for viewers (such as GitHub's)
that do not run widgets.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from html import escape
from pathlib import Path
from typing import Any

__all__ = ["DOCS_DIR", "NOTEBOOKS", "chapters", "main", "publish", "sanitise_notebook",
           "sanitise_text", "snapshot_widgets"]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
DOCS_DIR = ROOT / "docs" / "notebooks"
DEFAULT_CLUSTER = "gitops-lab-docs"
CELL_TIMEOUT = 300  # seconds, as under nbval

# (pattern, replacement), applied in order to every text output
_SECRETS: list[tuple[re.Pattern[str], str]] = [
    # a JWT: ServiceAccount tokens, OIDC tokens
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), "<token>"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 <token>"),
    # token=…, password: "…", secret=…, client-key-data: … (kubeconfig), in URLs, YAML, JSON
    (re.compile(r"(?i)\b((?:access_|auth_|id_|refresh_)?token|password|passwd|secret|"
                r"client-key-data|client-certificate-data)(\"?\s*[:=]\s*\"?)"
                r"(?!<masked>)([A-Za-z0-9._~+/=-]{8,})"), r"\1\2<masked>"),
]


def sanitise_text(text: str, home: str | None = None) -> str:
    """``text`` with the home directory as ``~`` and credential-shaped values masked."""
    home = home if home is not None else str(Path.home())
    if home and home != "/":
        text = text.replace(home.rstrip("/") + "/", "~/")
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def _clean(value: Any, home: str | None) -> Any:
    if isinstance(value, str):
        return sanitise_text(value, home)
    if isinstance(value, list):
        return [_clean(v, home) for v in value]
    return value


_TEXT_MIME = ("text/plain", "text/html", "text/markdown", "application/json")


def sanitise_notebook(nb: Any, home: str | None = None) -> Any:
    """Sanitise every output of ``nb`` (an nbformat NotebookNode) in place; returns it."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = _clean(out["text"], home)
            if "traceback" in out:
                out["traceback"] = _clean(out["traceback"], home)
            if "evalue" in out:
                out["evalue"] = _clean(out["evalue"], home)
            data = out.get("data") or {}
            for mime in _TEXT_MIME:
                if isinstance(data.get(mime), (str, list)):
                    data[mime] = _clean(data[mime], home)
    widgets = (nb.metadata.get("widgets") or {})
    for key, state in list(widgets.items()):
        widgets[key] = _clean_tree(state, home)
    return nb


def _clean_tree(value: Any, home: str | None) -> Any:
    if isinstance(value, dict):
        return {k: _clean_tree(v, home) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_tree(v, home) for v in value]
    return sanitise_text(value, home) if isinstance(value, str) else value


# ---- widgets, as static HTML for pages that cannot run them (GitHub's notebook view) ----------
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def _widget_html(models: dict[str, Any], ref: str, depth: int = 0) -> str:
    model = models.get(ref.removeprefix("IPY_MODEL_")) or {}
    name, state = str(model.get("model_name", "")), model.get("state") or {}
    if depth > 30:
        return ""
    if name in ("HTMLModel", "HTMLMathModel"):
        return str(state.get("value") or "")
    if name == "LabelModel":
        return escape(str(state.get("value") or ""))
    if name in ("FloatProgressModel", "IntProgressModel"):
        return (f'<progress value="{state.get("value", 0)}" max="{state.get("max", 100)}">'
                "</progress>")
    if name == "ButtonModel":
        return f"<button disabled>{escape(str(state.get('description') or ''))}</button>"
    if name == "CheckboxModel":
        checked = " checked" if state.get("value") else ""
        return (f"<label><input type=\"checkbox\" disabled{checked}> "
                f"{escape(str(state.get('description') or ''))}</label>")
    if name == "OutputModel":
        parts = []
        for out in state.get("outputs") or []:
            data = out.get("data") or {}
            if "text/html" in data:
                parts.append("".join(data["text/html"]))
            elif "text" in out or "text/plain" in data:
                text = "".join(out.get("text") or data.get("text/plain") or "")
                parts.append(f"<pre>{escape(text)}</pre>")
        return "".join(parts)
    children = state.get("children")
    if isinstance(children, list):
        row = name in ("HBoxModel", "GridBoxModel")
        style = "display:flex;gap:8px;align-items:center" if row else ""
        inner = "".join(f"<div>{_widget_html(models, str(c), depth + 1)}</div>" for c in children)
        return f'<div style="{style}">{inner}</div>'
    return ""


def snapshot_widgets(nb: Any) -> Any:
    """Give every widget output a static ``text/html`` rendering of its saved state (the last
    state of the run), for viewers that cannot run widgets; returns ``nb``."""
    state = ((nb.metadata.get("widgets") or {}).get(_WIDGET_STATE) or {}).get("state") or {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data") or {}
            view = data.get(_WIDGET_VIEW)
            if isinstance(view, dict) and "text/html" not in data and view.get("model_id"):
                html = _widget_html(state, str(view["model_id"]))
                if html:
                    data["text/html"] = html
    return nb


def chapters(notebooks: Path = NOTEBOOKS) -> list[Path]:
    """The chapters in the order nbval runs them (the same glob)."""
    return sorted(notebooks.glob("[0-9][0-9]-*.ipynb"))


def _execute(path: Path, say: Callable[[str], None]) -> tuple[Any, float]:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}},
                            store_widget_state=True)
    start = time.monotonic()
    client.execute()
    took = time.monotonic() - start
    say(f"  {path.stem:<32} {took:6.1f} s")
    return nb, took


def publish(paths: Iterable[Path], out_dir: Path = DOCS_DIR, *, cluster: str = DEFAULT_CLUSTER,
            provider: str = "local", say: Callable[[str], None] | None = None) -> dict[str, float]:
    """Execute ``paths`` in order against a fresh lab ``cluster`` with the solutions on, and
    write each, sanitised, to ``out_dir``; the lab is torn down before and after. Returns the
    seconds each chapter took. A failing cell stops the run (nothing more is written)."""
    import nbformat

    from gitops_lab.lab import teardown

    tell: Callable[[str], None] = say or (lambda line: print(line, file=sys.stderr, flush=True))
    os.environ.update({"GITOPS_LAB_SOLUTIONS": "1", "GITOPS_LAB_CLUSTER": cluster,
                       "GITOPS_LAB_PROVIDER": provider, "PYTHONUNBUFFERED": "1"})
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    os.environ.pop("KUBECONFIG", None)  # each kernel's Lab.connect() sets its own
    out_dir.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    tell(f"executing the chapters on a fresh {provider} lab {cluster!r} (solutions on)")
    teardown(cluster)
    try:
        for path in paths:
            nb, took = _execute(path, tell)
            times[path.stem] = round(took, 1)
            nbformat.write(sanitise_notebook(snapshot_widgets(nb)), out_dir / path.name)  # type: ignore[no-untyped-call]
    finally:
        teardown(cluster)
    return times


def _index(times: dict[str, float], provider: str) -> str:
    rows = "\n".join(f"| [{name}]({name}.ipynb) | {sec:.0f} s |" for name, sec in times.items())
    return ("# The chapters, executed\n\n"
            "Generated by `make docs` (gitops_lab/course/publish.py): every chapter run in order "
            f"on a fresh **{provider}** lab with the hidden solutions on, outputs sanitised. Edit "
            "the chapters in notebooks/chapters/, never these copies.\n\n"
            f"| chapter | execution time |\n|---|---:|\n{rows}\n\n"
            f"Total: {sum(times.values()):.0f} s (machine time, not a learner's reading time).\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gitops_lab.course.publish",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("chapters", nargs="*", help="NN prefixes (default: every chapter)")
    parser.add_argument("--out", type=Path, default=DOCS_DIR)
    parser.add_argument("--cluster", default=os.environ.get("GITOPS_LAB_DOCS_CLUSTER",
                                                            DEFAULT_CLUSTER))
    parser.add_argument("--provider", default=os.environ.get("GITOPS_LAB_DOCS_PROVIDER", "local"))
    args = parser.parse_args(argv)
    paths = [p for p in chapters() if not args.chapters or p.name[:2] in args.chapters]
    if not paths:
        print(f"error: no chapter matches {args.chapters}; hint: give NN prefixes such as 03",
              file=sys.stderr)
        return 2
    try:
        times = publish(paths, args.out, cluster=args.cluster, provider=args.provider)
    except Exception as exc:  # a failing cell: say which, exit non-zero
        print(f"error: make docs stopped: {type(exc).__name__}: {str(exc)[-1500:]}; hint: run "
              "that chapter under nbval (tests/notebooks) to see the failing cell",
              file=sys.stderr)
        return 1
    if not args.chapters:
        (args.out / "README.md").write_text(_index(times, args.provider))
    size = sum(p.stat().st_size for p in args.out.glob("*.ipynb"))
    print(f"wrote {len(times)} executed chapters to {args.out} ({size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
