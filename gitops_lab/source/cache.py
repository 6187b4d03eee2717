"""What the agent knows about Git between fetches: resolved revisions, commits and rendered
manifests, remembered until the next fetch of that repo; which repos fail to fetch, and why.
One per agent term, shared by the Git poller (agent/controller.py) and the reconciles
(engine/reconcile.py), so a drift reconcile starts no git process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from gitops_lab.source.errors import SourceError
from gitops_lab.source.git import CommitInfo, RepoCache
from gitops_lab.source.render import Manifest, render_revision

__all__ = ["CLONE_WAIT", "FETCH_WAIT", "GitCache"]

# With a background fetcher: how long a reconcile waits for a fetch it asked for.
FETCH_WAIT = 3.0
CLONE_WAIT = 5.0


class GitCache:
    """Fetch, resolve, read and render through one RepoCache, with memos that a fetch clears."""

    def __init__(self, repos: RepoCache, *, kubectl: str | None = None,
                 fetch_errors: dict[str, str] | None = None) -> None:
        self.repos = repos
        self.kubectl = kubectl
        self.fetch_errors: dict[str, str] = dict(fetch_errors or {})  # URL -> why it failed
        self._resolved: dict[tuple[str, str], str] = {}  # (url, revision) -> sha, until a fetch
        self._commits: dict[tuple[str, str], CommitInfo] = {}
        self._render_cache: dict[tuple[str, str, str], list[Manifest]] = {}
        self._lock = threading.Lock()
        # The agent sets this to fetch on a repo's own thread (agent/fetcher.py): called with
        # (url, seconds to wait for it), True when that fetch finished. None: fetch inline.
        self.background_fetch: Callable[[str, float], bool] | None = None

    def has_mirror(self, url: str) -> bool:
        return (self.repos.mirror_path(url) / "HEAD").exists()

    def fetch(self, url: str, timeout: float = 30) -> None:
        """Fetch from Git. When Git cannot be reached but a mirror exists, remember why and
        carry on with the mirror (the reconcile then says so in a SourceError condition)."""
        try:
            self.repos.fetch(url, timeout=timeout)
        except SourceError as exc:
            self.fetch_errors[url] = str(exc)
            if not self.has_mirror(url):
                raise
        else:
            self.fetch_errors.pop(url, None)
        with self._lock:  # refs may have moved: resolve again from now on
            self._resolved = {k: v for k, v in self._resolved.items() if k[0] != url}

    def resolve(self, url: str, revision: str, *, fetch: bool = False) -> str:
        """The full SHA `revision` names (the repo is fetched first when asked, or never seen).
        Remembered until the next fetch of that repo, so drift reconciles start no git process."""
        if self.background_fetch is not None:
            have_mirror = self.has_mirror(url)
            if fetch or not have_mirror:
                # a repo that never answers holds this worker for seconds, not for the
                # whole fetch timeout; the fetch goes on in the background and re-queues
                self.background_fetch(url, FETCH_WAIT if have_mirror else CLONE_WAIT)
                if not self.has_mirror(url):
                    raise SourceError(self.fetch_errors.get(url) or (
                        f"cannot fetch {url}: no answer within {CLONE_WAIT:g}s yet; still "
                        "trying in the background"), url=url)
        elif fetch:
            self.fetch(url)
        key = (url, revision)
        sha = self._resolved.get(key)
        if sha is None:
            sha = self.repos.resolve(url, revision)
            with self._lock:
                self._resolved[key] = sha
        return sha

    def commit_info(self, url: str, sha: str) -> CommitInfo:
        """A commit never changes: read it from Git once."""
        info = self._commits.get((url, sha))
        if info is None:
            info = self.repos.commit_info(url, sha)
            with self._lock:
                if len(self._commits) > 1024:
                    self._commits.clear()
                self._commits[(url, sha)] = info
        return info

    def manifests(self, url: str, sha: str, path: str) -> list[Manifest]:
        """The objects at `path` of commit `sha`; a commit renders the same every time."""
        cache_key = (url, sha, path)
        with self._lock:
            cached = self._render_cache.get(cache_key)
        if cached is not None:
            return cached
        rendered = render_revision(self.repos, url, sha, path, kubectl=self.kubectl)
        with self._lock:
            if len(self._render_cache) > 256:
                self._render_cache.clear()
            self._render_cache[cache_key] = rendered
        return rendered
