"""A working copy to "make a commit in Git" with: write, delete, commit, push, revert.
labgit/: what the lab, its tests and notebooks commit through; GitServer seeds repos with it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType

import git

__all__ = ["DEFAULT_AUTHOR", "WorkingCopy"]

_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GCM_INTERACTIVE": "never"}
DEFAULT_AUTHOR = ("Lab Learner", "learner@gitops-lab.local")


class WorkingCopy:
    """A clone to "make a commit in Git" from tests and notebooks: write, delete, commit, push.

    Reuses `workdir` if it already holds a clone. Commits are authored by `author` and never
    signed, whatever the user's global git config says.
    """

    def __init__(
        self,
        url_or_path: str | Path,
        workdir: Path | str,
        *,
        branch: str | None = None,
        author: tuple[str, str] = DEFAULT_AUTHOR,
    ) -> None:
        self.url = str(url_or_path)
        self.path = Path(workdir)
        if (self.path / ".git").exists():
            self.repo = git.Repo(self.path)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.repo = git.Repo.clone_from(self.url, self.path, env=_GIT_ENV)
        self.repo.git.update_environment(**_GIT_ENV)
        with self.repo.config_writer() as cfg:
            cfg.set_value("user", "name", author[0])
            cfg.set_value("user", "email", author[1])
            cfg.set_value("commit", "gpgsign", "false")
            cfg.set_value("tag", "gpgsign", "false")
        if not self.repo.head.is_valid():  # empty repo: start the branch it should have
            self.repo.git.symbolic_ref("HEAD", f"refs/heads/{branch or 'main'}")
        elif branch and branch != self.branch:
            self.checkout(branch)

    def close(self) -> None:
        self.repo.close()

    def __enter__(self) -> WorkingCopy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def head(self) -> str:
        """The full SHA of HEAD."""
        return str(self.repo.head.commit.hexsha)

    @property
    def branch(self) -> str:
        return str(self.repo.head.reference.name)

    def _file(self, rel: str) -> Path:
        parts = Path(rel).parts
        if Path(rel).is_absolute() or ".." in parts or ".git" in parts or not parts:
            raise ValueError(f"{rel!r} is not a path inside the working copy")
        return self.path / rel

    def write(self, files: Mapping[str, str | bytes]) -> None:
        """Create or overwrite files (parents created); str content is written as UTF-8."""
        for rel, content in files.items():
            target = self._file(rel)
            if target.is_symlink():
                target.unlink()  # never write through a link
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content.encode() if isinstance(content, str) else content)

    def symlink(self, rel: str, target: str) -> None:
        """Create (or replace) the symlink `rel` -> `target` (target taken verbatim)."""
        link = self._file(rel)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, link)

    def read(self, rel: str) -> str:
        return self._file(rel).read_text()

    def delete(self, *paths: str) -> None:
        """Remove files or whole directories from the working tree."""
        for rel in paths:
            target = self._file(rel)
            if target.is_symlink() or target.is_file():
                target.unlink()
            elif target.is_dir():
                for child in sorted(target.rglob("*"), reverse=True):
                    if child.is_dir() and not child.is_symlink():
                        child.rmdir()
                    else:
                        child.unlink()
                target.rmdir()
            else:
                raise FileNotFoundError(f"{rel} does not exist in {self.path}")

    def commit(self, message: str, *, allow_empty: bool = False) -> str:
        """Stage everything (`git add -A`) and commit; returns the new commit's full SHA."""
        self.repo.git.add("-A")
        if not allow_empty and not str(self.repo.git.status("--porcelain")).strip():
            raise ValueError(f"nothing to commit in {self.path}")
        args = ["-m", message]
        if allow_empty:
            args.append("--allow-empty")
        self.repo.git.commit(*args)
        return self.head

    def push(self, *, branch: str | None = None, force: bool = False, tags: bool = False) -> None:
        """Push HEAD to `branch` (default: the current branch) on origin; `tags` pushes tags."""
        args = ["--force"] if force else []
        self.repo.git.push(*args, "origin", f"HEAD:refs/heads/{branch or self.branch}")
        if tags:
            self.repo.git.push(*args, "origin", "--tags")

    def tag(self, name: str, *, message: str | None = None, ref: str = "HEAD") -> None:
        """A lightweight tag, or an annotated one when `message` is given (push with tags)."""
        if message is None:
            self.repo.git.tag(name, ref)
        else:
            self.repo.git.tag("-a", name, "-m", message, ref)

    def checkout(self, branch: str, *, create: bool = False) -> None:
        """Switch branch; `create` starts it at HEAD. A remote branch is tracked."""
        if create:
            self.repo.git.checkout("-b", branch)
        else:
            self.repo.git.checkout(branch)

    def revert(self, sha: str) -> str:
        """Commit the inverse of `sha` (`git revert`); returns the new SHA (push separately)."""
        self.repo.git.revert("--no-edit", sha)
        return self.head

    def pull(self) -> str:
        """Fast-forward the current branch from origin; returns HEAD."""
        self.repo.git.pull("--ff-only", "origin", self.branch)
        return self.head

    def log(self, n: int = 10) -> Iterator[tuple[str, str]]:
        """(sha, summary) of the last `n` commits, newest first."""
        for c in self.repo.iter_commits("HEAD", max_count=n):
            yield c.hexsha, str(c.summary)
