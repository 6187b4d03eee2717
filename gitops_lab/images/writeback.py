"""Git write-back: set an ImagePolicy's markers under an Application's path, commit once, push
fast-forward only (on a rejected push: fetch, re-apply, retry; never force). One working clone
per repo URL in the agent's cache. Used by images/controller.py after each scan.
"""

from __future__ import annotations

import os
import posixpath
import re
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from gitops_lab.images.setters import Marker, apply_markers, find_markers, new_value
from gitops_lab.source.errors import SourceError
from gitops_lab.source.git import _check_url, _git, _redact, _slug

__all__ = ["GitWriter", "PushFenced", "UpdateError", "WriteRequest", "WriteResult"]

_GIT_TIMEOUT = 30.0
_SHA = re.compile(r"^[0-9a-f]{40}$")


class PushFenced(Exception):
    """The writer may not push now (`GitWriter.may_push()` said no: the agent lost its
    leadership during the scan). Nothing was pushed; the local commit is discarded by the next
    write, which starts from the remote branch."""


class UpdateError(Exception):
    """Write-back failed; `reason` is the UpdateError condition's reason."""

    def __init__(self, message: str, reason: str = "UpdateFailed") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class WriteRequest:
    url: str
    target_revision: str  # the Application's spec.source.targetRevision (a branch, or HEAD)
    path: str  # the Application's spec.source.path
    namespace: str  # the ImagePolicy's
    policy: str
    repository: str  # registry/repo, what `name` markers get
    tag: str
    known_policies: Collection[tuple[str, str]]
    author: tuple[str, str]
    app: str = ""  # namespace/name of the Application, for the message
    message_template: str = ""
    dry_run: bool = False  # find what would change, commit nothing


@dataclass
class WriteResult:
    committed: bool
    revision: str
    branch: str
    changes: list[tuple[Marker, str]] = field(default_factory=list)
    markers: int = 0  # this policy's markers under the path
    attempts: int = 0

    @property
    def files(self) -> list[str]:
        return sorted({m.file for m, _ in self.changes})


class _Fmt(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _message(req: WriteRequest, changes: list[tuple[Marker, str]]) -> str:
    olds = sorted({m.value for m, _ in changes})
    image = f"{req.repository}:{req.tag}"
    old = ", ".join(olds)
    files = "\n".join(f"- {m.where} ({m.field}): {m.value} → {v}" for m, v in changes)
    if req.message_template.strip():
        try:
            return req.message_template.format_map(_Fmt(
                image=image, repository=req.repository, old=old, new=req.tag,
                policy=f"{req.namespace}/{req.policy}", app=req.app, files=files))
        except (ValueError, IndexError, AttributeError):
            pass  # a malformed template: the default message says it all
    return (f"Update {req.repository} to {req.tag}\n\n"
            f"ImagePolicy {req.namespace}/{req.policy} chose {image} (was {old}):\n{files}\n")


def _in_path(file: str, path: str) -> bool:
    return not path or file == path or file.startswith(path + "/")


class GitWriter:
    """Working clones under `root`, one per repo URL; `write(request)` is the whole update."""

    def __init__(self, root: Path | str, *, max_attempts: int = 5) -> None:
        self.root = Path(root)
        self.max_attempts = max_attempts
        # test seam: called with the attempt number right before each `git push`, e.g. to
        # push a competing commit and make the push race for real
        self.before_push: Callable[[int], None] | None = None
        # asked right before each `git push` (after `before_push`): False refuses the push
        # with PushFenced — the agent's image updater pushes only while it holds the Lease
        self.may_push: Callable[[], bool] | None = None
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._branches: dict[tuple[str, str], str] = {}  # (url, targetRevision) -> branch
        # what a write found already in place, by everything it depends on -> the commit
        # checked: a scan that finds the same commit again needs no checkout, grep or edit
        self._clean: dict[tuple[object, ...], tuple[str, int]] = {}

    def _lock(self, url: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(url, threading.Lock())

    def _run(self, wd: Path, *args: str, what: str) -> str:
        status, out, err = _git(wd, "-c", "core.hooksPath=/dev/null", *args,
                                timeout=_GIT_TIMEOUT)
        if status != 0:
            lines = [ln.strip() for ln in (err or out).splitlines() if ln.strip()]
            raise UpdateError(f"{what} failed: {' '.join(lines[-3:]) or f'exit {status}'}",
                              "GitError")
        return out

    def _workdir(self, url: str) -> Path:
        wd = self.root / _slug(url)
        if not (wd / ".git").is_dir():
            wd.mkdir(parents=True, exist_ok=True)
            self._run(wd, "init", "-q", what="git init")
            self._run(wd, "remote", "add", "origin", url, what="git remote add")
        else:
            self._run(wd, "remote", "set-url", "origin", url, what="git remote set-url")
        return wd

    def _branch(self, wd: Path, url: str, revision: str) -> str:
        rev = (revision or "").strip()
        if rev in ("", "HEAD"):
            out = self._run(wd, "ls-remote", "--symref", "origin", "HEAD",
                            what=f"reading the default branch of {_redact(url)}")
            for line in out.splitlines():
                if line.startswith("ref: refs/heads/"):
                    return line[len("ref: refs/heads/"):].split("\t")[0].strip()
            raise UpdateError(f"{_redact(url)} has no default branch to write to",
                              "NotABranch")
        name = rev.removeprefix("refs/heads/")
        out = self._run(wd, "ls-remote", "origin", f"refs/heads/{name}",
                        what=f"looking up branch {name} in {_redact(url)}")
        if not out.strip():
            kind = "a commit SHA" if _SHA.match(rev) else "a tag or missing branch"
            raise UpdateError(f"targetRevision {rev!r} of the Application is {kind}, not a "
                              f"branch of {_redact(url)}: the image updater commits to "
                              "branches only", "NotABranch")
        return name

    def write(self, req: WriteRequest) -> WriteResult:
        try:
            url = _check_url(req.url)
        except SourceError as exc:
            raise UpdateError(str(exc), "GitError") from None
        path = posixpath.normpath(req.path.strip().strip("/")) if req.path.strip(" ./") else ""
        if path.startswith(".."):
            raise UpdateError(f"path {req.path!r} leaves the repository", "InvalidPath")
        with self._lock(url):
            wd = self._workdir(url)
            branch = self._branches.get((url, req.target_revision)) or \
                self._branch(wd, url, req.target_revision)
            self._branches[(url, req.target_revision)] = branch
            attempt = 0
            while True:
                attempt += 1
                result = self._attempt(wd, url, branch, path, req, attempt)
                if result is not None:
                    return result
                if attempt >= self.max_attempts:
                    raise UpdateError(
                        f"push to {branch} of {_redact(url)} was rejected {attempt} times: the "
                        "branch kept moving (someone pushes constantly?); will retry next scan",
                        "PushRejected")

    def _attempt(self, wd: Path, url: str, branch: str, path: str, req: WriteRequest,
                 attempt: int) -> WriteResult | None:
        """One fetch → apply → commit → push; None when the push lost a race (retry)."""
        remote_ref = f"refs/remotes/origin/{branch}"
        try:
            self._run(wd, "fetch", "-q", "--no-tags", "origin",
                      f"+refs/heads/{branch}:{remote_ref}", what=f"git fetch {_redact(url)}")
        except UpdateError:
            self._branches.pop((url, req.target_revision), None)  # gone? look it up again
            raise
        head = self._run(wd, "rev-parse", remote_ref, what="git rev-parse").strip()
        key = (url, branch, path, req.namespace, req.policy, req.repository, req.tag,
               frozenset(req.known_policies))
        clean = self._clean.get(key)
        if clean is not None and clean[0] == head:
            return WriteResult(False, head, branch, [], clean[1], attempt)
        self._run(wd, "checkout", "-q", "-f", "-B", branch, remote_ref, what="git checkout")
        if attempt > 1:
            self._run(wd, "clean", "-q", "-f", "-d", what="git clean")
        ours, changes = self._edit(wd, path, req)
        if not changes:
            self._clean[key] = (head, len(ours))
            return WriteResult(False, head, branch, [], len(ours), attempt)
        if req.dry_run:
            self._run(wd, "checkout", "-q", "-f", "-B", branch, remote_ref, what="git checkout")
            return WriteResult(False, head, branch, changes, len(ours), attempt)
        files = sorted({m.file for m, _ in changes})
        name, email = req.author
        self._run(wd, "-c", f"user.name={name}", "-c", f"user.email={email}",
                  "-c", "commit.gpgsign=false", "commit", "-q", "--no-verify",
                  "-m", _message(req, changes), "--", *files, what="git commit")
        sha = self._run(wd, "rev-parse", "HEAD", what="git rev-parse").strip()
        if self.before_push is not None:
            self.before_push(attempt)
        if self.may_push is not None and not self.may_push():
            raise PushFenced(f"not pushing {sha[:7]} to {branch} of {_redact(url)}: this agent "
                             "is not the leader any more (the new leader scans again)")
        status, out, err = _git(wd, "-c", "core.hooksPath=/dev/null", "push", "--porcelain",
                                "origin", f"HEAD:refs/heads/{branch}", timeout=_GIT_TIMEOUT)
        if status == 0:
            return WriteResult(True, sha, branch, changes, len(ours), attempt)
        text = f"{out}\n{err}"
        if "[remote rejected]" in text or "remote rejected" in text:
            said = [ln.strip()[len("remote:"):].strip() for ln in err.splitlines()
                    if ln.strip().startswith("remote:") and ln.strip() != "remote:"]
            why = re.search(r"\[remote rejected\][^\n]*", text)
            raise UpdateError(
                f"push to {branch} of {_redact(url)} was refused by the server"
                f"{': ' + why[0] if why else ''}"
                f"{' — ' + ' '.join(said)[:300] if said else ''}; nothing was written",
                "PushRefused")
        if "[rejected]" in text or "non-fast-forward" in text or "fetch first" in text:
            return None  # someone pushed meanwhile: fetch, re-apply, retry
        lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
        raise UpdateError(f"git push to {_redact(url)} failed: {' '.join(lines[-3:])}",
                          "GitError")

    def _edit(self, wd: Path, path: str, req: WriteRequest
              ) -> tuple[list[Marker], list[tuple[Marker, str]]]:
        """Apply this policy's markers under `path`; refuse (UpdateError) on bad markers."""
        status, out, _ = _git(wd, "grep", "-l", "-I", "-F", "--no-color", "$imagepolicy",
                              timeout=_GIT_TIMEOUT)
        # YAML only, as Flux: a README that mentions the marker syntax is documentation
        candidates = [ln.strip() for ln in out.splitlines()
                      if ln.strip().lower().endswith((".yaml", ".yml"))] if status == 0 else []
        key = (req.namespace, req.policy)
        ours: list[Marker] = []
        problems: list[str] = []
        per_file: dict[str, tuple[bytes, list[Marker]]] = {}
        for rel in sorted(candidates):
            full = wd / rel
            if full.is_symlink() or not full.is_file():
                continue  # never write through a link
            data = full.read_bytes()
            markers, bad = find_markers(data, rel)
            inside = _in_path(rel, path)
            for m in markers:
                if m.policy_key == key and not inside:
                    problems.append(f"{m.where}: a marker for this policy lies outside the "
                                    f"Application's path {path or '.'!r}; the updater writes "
                                    "only under it")
                elif inside and m.policy_key not in req.known_policies:
                    problems.append(f"{m.where}: marker names ImagePolicy "
                                    f"{m.namespace}/{m.policy}, which does not exist")
            if not inside:
                continue
            problems.extend(str(p) for p in bad)
            mine = [m for m in markers if m.policy_key == key]
            if mine:
                ours.extend(mine)
                per_file[rel] = (data, mine)
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise UpdateError("; ".join(problems[:3]) + more + "; nothing was committed",
                              "InvalidMarker")
        values = {(req.namespace, req.policy, f): new_value(f, req.repository, req.tag)
                  for f in ("image", "tag", "name")}
        changes: list[tuple[Marker, str]] = []
        for rel, (data, mine) in per_file.items():
            new, changed = apply_markers(data, mine, values)
            if changed:
                tmp = wd / (rel + ".gitops-lab.tmp")
                tmp.write_bytes(new)
                os.chmod(tmp, (wd / rel).stat().st_mode & 0o7777)
                tmp.replace(wd / rel)
                changes.extend(changed)
        return ours, changes
