"""What the lab's facade and its parts share: LabError and a progress display that is a bar in
a notebook and plain lines elsewhere."""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["LabError", "Progress", "in_notebook"]


class LabError(RuntimeError):
    """The lab could not reach the wanted state; the message says what to look at."""


def in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


class Progress:
    """A progress bar in a notebook, plain lines elsewhere."""

    def __init__(self, title: str, total: float) -> None:
        self.total = total
        self.bar: Any = None
        self.last_line = 0.0
        self.title = title
        if in_notebook():
            import ipywidgets as w
            from IPython.display import display

            self.bar = w.FloatProgress(value=0, min=0, max=total, description="",
                                       layout=w.Layout(width="320px"))
            self.label = w.HTML(value=f"<b>{title}</b>")
            self.box = w.HBox([self.bar, self.label])
            display(self.box)  # type: ignore[no-untyped-call]
        else:
            print(f"… {title}", file=sys.stderr, flush=True)

    def update(self, done: float, note: str = "") -> None:
        if self.bar is not None:
            self.bar.value = min(done, self.total)
            self.label.value = f"<b>{self.title}</b> {note}"
        elif time.monotonic() - self.last_line > 5:
            self.last_line = time.monotonic()
            print(f"  … {self.title}: {note}", file=sys.stderr, flush=True)

    def finish(self, note: str, ok: bool = True) -> None:
        if self.bar is not None:
            self.bar.value = self.total
            self.bar.bar_style = "success" if ok else "danger"
            self.label.value = f"<b>{self.title}</b> {note}"
        else:
            print(f"{'✓' if ok else '✗'} {self.title}: {note}", file=sys.stderr, flush=True)
