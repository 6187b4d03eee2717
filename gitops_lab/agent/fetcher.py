"""Git fetches off the workers: one background thread per repository URL.
Used by agent/controller.py (the Git poller, and reconciles asked to fetch): a repo that
accepts and never answers delays only the apps of that repo, never the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["GitFetcher"]

log = logging.getLogger("gitops_lab.agent.fetcher")

FetchFn = Callable[[str], None]  # fetch one URL (bounded by its own timeout); may raise
DoneFn = Callable[[str], None]  # called on the repo's thread after each fetch


class _Repo:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.wanted = 0  # requests so far
        self.done = 0  # the request number the last finished fetch served
        self.started = 0.0  # when the running fetch started (monotonic), 0 when idle
        self.thread: threading.Thread | None = None


class GitFetcher:
    """Per-repo serialised fetches: requests for one URL coalesce (at most one running and one
    waiting), and each URL has its own thread, so repos never wait for each other."""

    def __init__(self, fetch: FetchFn, on_done: DoneFn, stop: threading.Event) -> None:
        self._fetch = fetch
        self._on_done = on_done
        self._stop = stop
        self._repos: dict[str, _Repo] = {}
        self._lock = threading.Lock()

    def request(self, url: str, wait: float = 0.0) -> bool:
        """Ask for a fetch of `url` that starts after this call; wait up to `wait` seconds for
        it. True when it has finished (successfully or not: see the fetch's own error state).
        A fetch of that URL already running for longer than `wait` (a repo that does not
        answer) is not waited for at all: the caller goes on, and `on_done` follows."""
        with self._lock:
            repo = self._repos.get(url)
            if repo is None:
                repo = self._repos[url] = _Repo()
            if repo.thread is None or not repo.thread.is_alive():
                repo.thread = threading.Thread(target=self._run, args=(url, repo),
                                               name=f"git-fetch {url}", daemon=True)
                repo.thread.start()
        with repo.cond:
            if repo.started and time.monotonic() - repo.started > wait:
                wait = 0.0
            repo.wanted += 1
            ticket = repo.wanted
            repo.cond.notify_all()
            if wait > 0:
                repo.cond.wait_for(lambda: repo.done >= ticket or self._stop.is_set(), wait)
            return repo.done >= ticket

    def busy(self, url: str) -> bool:
        """Whether a fetch of `url` is running or waiting."""
        repo = self._repos.get(url)
        if repo is None:
            return False
        with repo.cond:
            return repo.done < repo.wanted

    def _run(self, url: str, repo: _Repo) -> None:
        while not self._stop.is_set():
            with repo.cond:
                if not repo.cond.wait_for(lambda: repo.wanted > repo.done or self._stop.is_set(),
                                          timeout=1.0):
                    continue
                if self._stop.is_set():
                    return
                ticket = repo.wanted  # this fetch serves every request made so far
                repo.started = time.monotonic()
            try:
                self._fetch(url)
            except Exception as exc:  # the fetch records why; keep the thread alive
                log.debug("fetch %s: %s", url, exc)
            with repo.cond:
                repo.done = ticket
                repo.started = 0.0
                repo.cond.notify_all()
            try:
                self._on_done(url)
            except Exception:
                log.exception("after fetching %s", url)

    def stop(self) -> None:
        for repo in list(self._repos.values()):
            with repo.cond:
                repo.cond.notify_all()
