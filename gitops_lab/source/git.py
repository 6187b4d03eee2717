"""Git access: one bare mirror per repo URL, fetched, resolved, read from the object database.
First step of a reconcile (fetch → resolve → read_tree → render.render); no working trees.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import posixpath
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import git
from git.objects import Blob, Commit, Submodule, Tree

from gitops_lab.source.errors import RenderError, SourceError

__all__ = ["CommitInfo", "RepoCache"]

_SCHEMES = ("git://", "http://", "https://", "ssh://", "file://")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._~-]+@[A-Za-z0-9.-]+:[^/\\].*$")
_HEX = re.compile(r"^[0-9a-fA-F]{4,40}$")
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
# Where the remote's HEAD goes when it is detached (rare: a non-bare remote on a commit).
_DETACHED_HEAD_REF = "refs/gitops-lab/HEAD"
# What the mirror's HEAD names when the remote's HEAD names no commit (a ref never written).
_NO_HEAD_REF = "refs/gitops-lab/no-remote-head"
_REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
# Never let git wait for a human: the agent runs unattended.
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GCM_INTERACTIVE": "never"}
_LINK_MODE = 0o120000
_MAX_LINK_HOPS = 40
MAX_FILES = 20_000
MAX_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True)
class CommitInfo:
    """One commit as the widgets and the CLI show it."""

    sha: str
    message: str
    author: str
    date: dt.datetime

    @property
    def short_sha(self) -> str:
        return self.sha[:7]

    @property
    def summary(self) -> str:
        """The first line of the message."""
        return self.message.split("\n", 1)[0]


def _redact(url: str) -> str:
    """`https://user:token@host/x` → `https://user:***@host/x`, for messages and logs."""
    return re.sub(r"^([a-z+]+://[^/@:]*):[^/@]*@", r"\1:***@", url)


def _check_url(url: str) -> str:
    u = url.strip()
    if not u:
        raise SourceError("repoURL is empty", url=url)
    if u.startswith("-") or any(c in u for c in "\n\r\0"):
        raise SourceError(f"repoURL {u!r} is not a valid Git URL", url=url)
    if u.startswith(_SCHEMES):
        if u.startswith("file://") and not u[len("file://") :].startswith("/"):
            raise SourceError(f"repoURL {u!r}: file:// needs an absolute path", url=url)
        return u
    if u.startswith("/") or _SCP_LIKE.match(u):
        return u
    raise SourceError(
        f"repoURL {u!r} is not supported: use git://, http(s)://, ssh://, "
        "file:// (absolute path) or an absolute path",
        url=url,
    )


def _host(url: str) -> str:
    """The host name of a git://, http(s):// or ssh:// URL ("" for paths and scp-like)."""
    match = re.match(r"^[a-z+]+://(?:[^@/]*@)?(\[[^\]]*\]|[^:/]+)", url)
    return match.group(1) if match else ""


def _cluster_internal(host: str) -> bool:
    """A Service name (`svc`, `svc.ns`, `….svc`, `….svc.cluster.local`) rather than a host."""
    if host.endswith((".svc", ".svc.cluster.local", ".cluster.local")):
        return True
    parts = host.split(".")
    return len(parts) == 2 and parts[1] in ("gitops-lab", "default", "kube-system")


def _slug(url: str) -> str:
    tail = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    tail = tail.removesuffix(".git")
    tail = re.sub(r"[^A-Za-z0-9._-]+", "-", tail).strip(".-")[:40] or "repo"
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return f"{tail}-{digest}"


def _git(cwd: Path | None, *args: str, timeout: float | None = None) -> tuple[int, str, str]:
    """Run one git command through GitPython; returns (status, stdout, stderr), never raises."""
    runner = git.Git(str(cwd) if cwd is not None else None)
    executable = git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git"
    result = runner.execute(
        [executable, *args],
        with_extended_output=True,
        with_exceptions=False,
        kill_after_timeout=timeout,
        env=_GIT_ENV,
    )
    status, out, err = cast(tuple[int, str | bytes, str | bytes], result)
    if isinstance(out, bytes):
        out = out.decode("utf-8", "replace")
    if isinstance(err, bytes):
        err = err.decode("utf-8", "replace")
    return status, out, err


def _cause(stderr: str, status: int, timeout: float | None = None) -> str:
    """The line(s) of git's stderr that say why: from the last fatal/error line to the end."""
    if stderr.startswith("Timeout:") and timeout is not None:
        return f"no answer within {timeout:g}s (timed out)"
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    if not lines:
        return f"git exited with status {status}"
    start = len(lines) - 1
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith(("fatal:", "error:")):
            start = i
            break
    return " ".join(lines[start:])


def _short(sha: str) -> str:
    return sha[:7]


class RepoCache:
    """Bare mirrors of the repos the agent follows, one per URL, under `root`.

    `fetch` clones on first use and afterwards fetches all branches and tags (forced,
    pruned); a per-URL lock (threads, and a lock file for other processes) serialises
    fetches of one URL. `resolve` and `read_tree` only read the object database.
    """

    def __init__(self, root: Path | str, *, fetch_urls: Mapping[str, str] | None = None) -> None:
        """`fetch_urls` maps URL prefixes to where this process reaches them: the lab's
        in-cluster Git server is `git://git-server.gitops-lab:9418/…` for the agent (a pod)
        and `git://127.0.0.1:<NodePort>/…` for a compare run on the host."""
        self.root = Path(root)
        self.fetch_urls = dict(fetch_urls or {})
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._remote_refs: dict[str, str] = {}  # url -> `ls-remote` output at the last fetch

    # -- layout and locking -------------------------------------------------------------

    def mirror_path(self, url: str) -> Path:
        """The bare mirror for `url` (it may not exist yet)."""
        return self.root / f"{_slug(_check_url(url))}.git"

    def _thread_lock(self, url: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(url, threading.Lock())

    @contextlib.contextmanager
    def _locked(self, url: str, deadline: float) -> Iterator[None]:
        lock = self._thread_lock(url)
        if not lock.acquire(timeout=max(deadline - time.monotonic(), 0.01)):
            raise SourceError(
                f"cannot fetch {_redact(url)}: another fetch of it did not finish in time",
                url=url,
            )
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            lock_file = self.root / f"{_slug(url)}.lock"
            with open(lock_file, "a+") as fh:
                while True:
                    try:
                        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() > deadline:
                            raise SourceError(
                                f"cannot fetch {_redact(url)}: another process holds "
                                f"{lock_file} (a fetch still running?)",
                                url=url,
                            ) from None
                        time.sleep(0.05)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
        finally:
            lock.release()

    # -- fetching -----------------------------------------------------------------------

    def fetch(self, url: str, timeout: float = 30) -> None:
        """Bring the mirror of `url` up to date (clone on first use); bounded by `timeout`.

        Raises SourceError naming the URL and git's reason (unreachable, auth, no such repo).
        """
        url = _check_url(url)
        source = self._source(url)
        deadline = time.monotonic() + timeout
        with self._locked(url, deadline):
            mirror = self.mirror_path(url)
            if (mirror / "HEAD").is_file():
                if source != url:  # the NodePort may have moved with a new cluster
                    _git(mirror, "remote", "set-url", "origin", source)
                self._update(url, mirror, deadline, timeout)
            else:
                self._clone(url, mirror, deadline, timeout, source)

    def _source(self, url: str) -> str:
        """Where to fetch URL from here (see `fetch_urls`). A cluster-internal name that no
        mapping covers is refused outside a pod: looking it up would ask the machine's DNS."""
        for prefix, target in self.fetch_urls.items():
            if url.startswith(prefix):
                return target + url[len(prefix):]
        host = _host(url)
        if host and _cluster_internal(host) and not os.environ.get("KUBERNETES_SERVICE_HOST"):
            raise SourceError(
                f"cannot fetch {_redact(url)}: {host} is a name inside the cluster, which "
                "this machine cannot resolve; hint: run this in the lab (its kind cluster maps "
                "the Git server to 127.0.0.1), or use the repository's address on this machine",
                url=url,
            )
        return url

    def _remaining(self, url: str, deadline: float, timeout: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise SourceError(
                f"cannot fetch {_redact(url)}: no answer within {timeout:g}s (timed out)", url=url
            )
        return left

    def _clone(self, url: str, mirror: Path, deadline: float, timeout: float,
               source: str | None = None) -> None:
        if mirror.exists():  # a broken leftover: start over
            shutil.rmtree(mirror, ignore_errors=True)
        tmp = self.root / f".{mirror.name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            status, _, err = _git(
                self.root,
                "clone",
                "--bare",
                "--quiet",
                "--",
                source or url,
                str(tmp),
                timeout=self._remaining(url, deadline, timeout),
            )
            if status != 0:
                raise SourceError(
                    f"cannot fetch {_redact(url)}: {_cause(err, status, timeout)}", url=url
                )
            for refspec in _REFSPECS:
                _git(tmp, "config", "--add", "remote.origin.fetch", refspec)
            _git(tmp, "config", "gc.autoDetach", "false")
            tmp.rename(mirror)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def _remote(self, url: str, mirror: Path, deadline: float, timeout: float,
                *args: str) -> str:
        """Run a git command that talks to the remote; its stdout, or SourceError naming why."""
        status, out, err = _git(mirror, *args, timeout=self._remaining(url, deadline, timeout))
        if status != 0:
            raise SourceError(
                f"cannot fetch {_redact(url)}: {_cause(err, status, timeout)}", url=url
            )
        return out

    def _update(self, url: str, mirror: Path, deadline: float, timeout: float) -> None:
        # Which branch is the remote's default (HEAD) now? A fetch alone never tells.
        # One ls-remote lists every ref: when none moved since the last fetch, there is
        # nothing to fetch (a poll every second then costs one git process per repo).
        out = self._remote(url, mirror, deadline, timeout, "ls-remote", "--symref", "origin")
        if self._remote_refs.get(url) == out:
            return
        head_ref: str | None = None
        head_sha: str | None = None
        for line in out.splitlines():
            left, _, right = line.partition("\t")
            if right.strip() != "HEAD":
                continue
            if left.startswith("ref: "):
                head_ref = left[len("ref: ") :].strip()
            else:
                head_sha = left.strip()
        refspecs = list(_REFSPECS)
        if head_ref is None and head_sha:
            refspecs.append(f"+HEAD:{_DETACHED_HEAD_REF}")
        self._remote(url, mirror, deadline, timeout, "fetch", "--prune", "--force", "--quiet",
                     "--no-write-fetch-head", "origin", *refspecs)
        if head_ref is not None and head_ref.startswith("refs/heads/"):
            _git(mirror, "symbolic-ref", "HEAD", head_ref)
        elif head_sha:
            _git(mirror, "symbolic-ref", "HEAD", _DETACHED_HEAD_REF)
        else:  # the remote's HEAD resolves to nothing: do not keep following the old branch
            _git(mirror, "symbolic-ref", "HEAD", _NO_HEAD_REF)
        self._remote_refs[url] = out

    def _ensure(self, url: str) -> Path:
        """The mirror of `url`, cloned first if this cache has never fetched it."""
        url = _check_url(url)
        mirror = self.mirror_path(url)
        if not (mirror / "HEAD").is_file():
            self.fetch(url)
        return mirror

    @contextlib.contextmanager
    def _repo(self, url: str) -> Iterator[git.Repo]:
        # One Repo per call: GitPython's object readers are not safe to share across threads.
        repo = git.Repo(self._ensure(url))
        try:
            yield repo
        finally:
            repo.close()

    # -- resolving ----------------------------------------------------------------------

    def resolve(self, url: str, revision: str) -> str:
        """The full commit SHA that `revision` names in the mirror of `url`.

        "" and "HEAD" mean the remote's default branch; otherwise a branch, a tag (peeled to
        its commit), `refs/...`, or a full or unique short SHA (at least 4 hex digits).
        Call `fetch` first to see new commits.
        """
        url = _check_url(url)
        rev = (revision or "").strip()
        mirror = self._ensure(url)
        if rev in ("", "HEAD"):
            sha, err = self._rev_parse(mirror, "HEAD^{commit}")
            if sha is None:
                raise SourceError(
                    f"revision 'HEAD' not found in {_redact(url)}: {self._head_problem(mirror)}",
                    url=url,
                    revision=revision,
                )
            return sha
        if rev.startswith("-") or any(c.isspace() or ord(c) < 32 for c in rev):
            raise SourceError(
                f"revision {rev!r} not found in {_redact(url)}: not a valid revision name",
                url=url,
                revision=revision,
            )
        candidates = [rev] if rev.startswith("refs/") else [f"refs/heads/{rev}", f"refs/tags/{rev}"]
        for candidate in candidates:
            sha, _ = self._rev_parse(mirror, f"{candidate}^{{commit}}")
            if sha is not None:
                return sha
        if _HEX.match(rev):
            sha, err = self._rev_parse(mirror, f"{rev.lower()}^{{commit}}")
            if sha is not None:
                return sha
            if "ambiguous" in err:
                raise SourceError(
                    f"revision '{rev}' is ambiguous in {_redact(url)}: several objects start "
                    "with it; use more digits",
                    url=url,
                    revision=revision,
                )
        raise SourceError(
            f"revision '{rev}' not found in {_redact(url)}: no branch, tag or commit of that "
            f"name ({self._known_refs(mirror)})",
            url=url,
            revision=revision,
        )

    @staticmethod
    def _rev_parse(mirror: Path, expr: str) -> tuple[str | None, str]:
        status, out, err = _git(mirror, "rev-parse", "--verify", "--quiet", expr)
        sha = out.strip()
        if status == 0 and _FULL_SHA.match(sha):
            return sha, err
        return None, err

    @classmethod
    def _head_problem(cls, mirror: Path) -> str:
        """Why HEAD names no commit: an empty repo, or HEAD naming a branch that is missing."""
        _, target, _ = _git(mirror, "symbolic-ref", "--quiet", "HEAD")
        target = target.strip()
        _, heads, _ = _git(mirror, "for-each-ref", "--count=1", "--format=%(refname)",
                           "refs/heads", "refs/tags")
        if not heads.strip():
            return "the repository has no branches or tags yet (is it empty?)"
        if target == _NO_HEAD_REF:
            return (f"its HEAD names no existing branch (its default branch was deleted or "
                    f"renamed; {cls._known_refs(mirror)}); set targetRevision to an existing "
                    "branch, or point the remote's HEAD at one")
        if target.startswith("refs/heads/"):
            branch = target[len("refs/heads/"):]
            return (f"its HEAD names branch '{branch}', which does not exist "
                    f"({cls._known_refs(mirror)}); set targetRevision to an existing branch, "
                    "or point the remote's HEAD at one")
        return f"its HEAD names no commit ({cls._known_refs(mirror)})"

    @staticmethod
    def _known_refs(mirror: Path, limit: int = 8) -> str:
        parts = []
        for label, prefix in (("branches", "refs/heads"), ("tags", "refs/tags")):
            _, out, _ = _git(mirror, "for-each-ref", "--format=%(refname:lstrip=2)", prefix)
            names = out.split()
            shown = ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")
            parts.append(f"{label}: {shown or 'none'}")
        return "; ".join(parts)

    # -- reading ------------------------------------------------------------------------

    def read_tree(self, url: str, sha: str, path: str) -> dict[str, bytes]:
        """The files under `path` at commit `sha`, keyed by repo-relative POSIX path.

        "" or "." is the repo root. Symlinks are followed inside the repo (a link whose target
        leaves the repo, dangles or loops raises RenderError); submodules are skipped.
        """
        url = _check_url(url)
        rel = _normalize_path(url, path)
        with self._repo(url) as repo:
            commit = self._commit(repo, url, sha)
            reader = _TreeReader(commit.tree, url, commit.hexsha)
            real, obj = reader.lookup(rel, requested=path)
            if isinstance(obj, Blob):
                raise SourceError(
                    f"path '{path}' at {_short(commit.hexsha)} in {_redact(url)} is a file, "
                    "not a directory",
                    url=url,
                    revision=sha,
                    path=path,
                )
            if not isinstance(obj, Tree):
                raise SourceError(
                    f"path '{path}' at {_short(commit.hexsha)} in {_redact(url)} is a "
                    "submodule, which gitops-lab does not follow",
                    url=url,
                    revision=sha,
                    path=path,
                )
            reader.walk(obj, real, rel, (real,))
            return dict(sorted(reader.files.items()))

    def read_path(self, url: str, sha: str, path: str) -> dict[str, bytes]:
        """Like `read_tree`, but `path` may also name one file: then {path: its content}.

        What a kustomization references (a base directory, a patch file) is read this way,
        so that only the files an app's render can load are read and judged.
        """
        url = _check_url(url)
        rel = _normalize_path(url, path)
        with self._repo(url) as repo:
            commit = self._commit(repo, url, sha)
            reader = _TreeReader(commit.tree, url, commit.hexsha)
            _, obj = reader.lookup(rel, requested=path)
            if isinstance(obj, Blob) and rel:
                reader._add(rel, obj)
                return reader.files
        return self.read_tree(url, sha, path)

    def _commit(self, repo: git.Repo, url: str, sha: str) -> Commit:
        rev = (sha or "").strip()
        full = None
        if _HEX.match(rev):
            full, _ = self._rev_parse(Path(str(repo.git_dir)), f"{rev.lower()}^{{commit}}")
        if full is None:
            raise SourceError(
                f"commit '{sha}' not found in {_redact(url)} (fetch first, or resolve a "
                "branch or tag to a SHA)",
                url=url,
                revision=sha,
            )
        return repo.commit(full)

    def commit_info(self, url: str, sha: str) -> CommitInfo:
        """Message, author and date of one commit (by full or short SHA)."""
        url = _check_url(url)
        with self._repo(url) as repo:
            return _info(self._commit(repo, url, sha))

    def log(self, url: str, revision: str = "HEAD", n: int = 10) -> list[CommitInfo]:
        """The last `n` commits reachable from `revision`, newest first."""
        sha = self.resolve(url, revision)
        with self._repo(url) as repo:
            return [_info(c) for c in repo.iter_commits(sha, max_count=n)]


def _info(commit: Commit) -> CommitInfo:
    message = commit.message
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return CommitInfo(
        sha=commit.hexsha,
        message=message.rstrip(),
        author=f"{commit.author.name} <{commit.author.email}>",
        date=commit.authored_datetime,
    )


def _normalize_path(url: str, path: str) -> str:
    """`spec.source.path` as a clean repo-relative POSIX path ("" = root); refuses escapes."""
    raw = (path or "").strip()
    if raw.startswith("/") or raw.startswith("\\"):
        raise SourceError(
            f"path '{path}' in {_redact(url)} must be relative to the repository root",
            url=url,
            path=path,
        )
    norm = posixpath.normpath(raw) if raw else "."
    if norm == ".." or norm.startswith("../"):
        raise SourceError(
            f"path '{path}' leaves the repository {_redact(url)} ('..' goes above its root)",
            url=url,
            path=path,
        )
    return "" if norm == "." else norm


def _join(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name


def _is_link(obj: object) -> bool:
    return isinstance(obj, Blob) and obj.mode == _LINK_MODE


class _TreeReader:
    """Walks one commit's tree, following in-repo symlinks, collecting file contents."""

    def __init__(self, root: Tree, url: str, sha: str) -> None:
        self.root = root
        self.url = url
        self.sha = sha
        self.files: dict[str, bytes] = {}
        self.size = 0

    def _link_target(self, link_path: str, blob: Blob) -> str:
        target = blob.data_stream.read().decode("utf-8", "surrogateescape")
        where = f"symlink '{link_path}' -> '{target}' (at {_short(self.sha)})"
        if target.startswith("/"):
            raise RenderError(
                f"{where} escapes the repository: absolute targets are refused", path=link_path
            )
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(link_path), target))
        if joined == ".." or joined.startswith("../"):
            raise RenderError(f"{where} escapes the repository", path=link_path)
        return "" if joined == "." else joined

    def lookup(self, path: str, *, requested: str, hops: int = 0) -> tuple[str, object]:
        """(real path, object) for `path`, following symlinks on the way."""
        parts = [p for p in path.split("/") if p]
        cur: object = self.root
        cur_path = ""
        i = 0
        while i < len(parts):
            name = parts[i]
            entry: object = None
            if isinstance(cur, Tree):
                try:
                    entry = cur[name]
                except KeyError:
                    entry = None
            if entry is None:
                missing = _join(cur_path, name)
                detail = "" if missing == requested.strip("/") else f" (no '{missing}')"
                raise SourceError(
                    f"path '{requested}' not found at {_short(self.sha)} in "
                    f"{_redact(self.url)}{detail}",
                    url=self.url,
                    revision=self.sha,
                    path=requested,
                )
            entry_path = _join(cur_path, name)
            if _is_link(entry):
                hops += 1
                if hops > _MAX_LINK_HOPS:
                    raise RenderError(
                        f"symlink '{entry_path}' (at {_short(self.sha)}): too many levels of "
                        "symbolic links",
                        path=entry_path,
                    )
                target = self._link_target(entry_path, cast(Blob, entry))
                parts = [p for p in target.split("/") if p] + parts[i + 1 :]
                cur, cur_path, i = self.root, "", 0
                continue
            cur, cur_path = entry, entry_path
            i += 1
        return cur_path, cur

    def _add(self, view_path: str, blob: Blob) -> None:
        data = cast(bytes, blob.data_stream.read())
        self.size += len(data)
        if len(self.files) >= MAX_FILES or self.size > MAX_BYTES:
            raise SourceError(
                f"{_redact(self.url)} at {_short(self.sha)}: the path holds more than "
                f"{MAX_FILES} files or {MAX_BYTES // (1024 * 1024)} MiB",
                url=self.url,
                revision=self.sha,
            )
        self.files[view_path] = data

    def walk(self, tree: Tree, real: str, view: str, stack: tuple[str, ...]) -> None:
        """Add every file under `tree` (really at `real`) under the name prefix `view`."""
        for entry in tree:
            name = entry.name
            real_path, view_path = _join(real, name), _join(view, name)
            if isinstance(entry, Submodule):
                continue
            if isinstance(entry, Tree):
                self.walk(entry, real_path, view_path, (*stack, real_path))
            elif _is_link(entry):
                try:
                    target_real, obj = self.lookup(real_path, requested=real_path)
                except SourceError:
                    raise RenderError(
                        f"symlink '{view_path}' (at {_short(self.sha)}) points to nothing in "
                        "the repository",
                        path=view_path,
                    ) from None
                if isinstance(obj, Tree):
                    if any(
                        target_real == "" or s == target_real or s.startswith(target_real + "/")
                        for s in stack
                    ):
                        raise RenderError(
                            f"symlink '{view_path}' (at {_short(self.sha)}) points to "
                            f"'{target_real or '.'}', which contains it: a loop",
                            path=view_path,
                        )
                    self.walk(obj, target_real, view_path, (*stack, target_real))
                elif isinstance(obj, Blob):
                    self._add(view_path, obj)
            elif isinstance(entry, Blob):
                self._add(view_path, entry)
