"""Errors of the source layer: Git fetch/resolve failures and rendering failures.
Raised by source.git and source.render; the engine turns them into Application conditions.
"""

from __future__ import annotations

__all__ = ["RenderError", "SourceError"]


class SourceError(Exception):
    """Git could not deliver the desired state: unreachable repo, bad revision, missing path.

    The message names the repo URL, the revision or path involved, and the cause.
    `url`, `revision` and `path` carry the same facts for programs (None where not known).
    """

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        revision: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        self.revision = revision
        self.path = path

    def __str__(self) -> str:
        return self.message


class RenderError(Exception):
    """The files at the desired revision do not render to a valid set of Kubernetes objects.

    The message names the file (and the YAML line where known) and the cause; `path` is the
    repo-relative file (None when no single file is to blame) and `line` is 1-based or None.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line

    def __str__(self) -> str:
        return self.message
