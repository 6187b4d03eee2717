"""Helpers for the agent tests: an alert receiver on 127.0.0.1 and a test app (repo + Application)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from gitops_lab.apps import Apps, application
from gitops_lab.kube import Kube
from gitops_lab.labgit import GitServer, WorkingCopy


class AlertReceiver:
    """An HTTP server on 127.0.0.1 that stores every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/alerts"

    def wait_for(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for alert in list(self.received):
                if pred(alert):
                    return alert
            time.sleep(0.05)
        raise AssertionError(f"no matching alert in {timeout} s; got {self.received}")


class LabApp:
    """One test's app: its Git repo (with a working copy) and its Application."""

    def __init__(self, name: str, server: GitServer, workdir: Path, apps: Apps,
                 admin: Kube) -> None:
        self.name = name
        self.namespace = name  # destination namespace
        self.server = server
        self.apps = apps
        self.admin = admin
        self.url = server.url(name)
        self.repo: WorkingCopy | None = None
        self.workdir = workdir

    def init(self, files: Mapping[str, str | bytes], message: str = "initial") -> str:
        self.server.create_repo(self.name, dict(files), message=message)
        self.repo = WorkingCopy(self.url, self.workdir)
        return self.head()

    def head(self) -> str:
        assert self.repo is not None
        return self.repo.head

    def commit(self, files: Mapping[str, str | bytes] | None = None,
               delete: tuple[str, ...] = (), message: str = "change") -> str:
        assert self.repo is not None
        if files:
            self.repo.write(dict(files))
        if delete:
            self.repo.delete(*delete)
        sha = self.repo.commit(message)
        self.repo.push()
        return sha

    def create(self, path: str = "app", **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("dest_namespace", self.namespace)
        return self.apps.apply(application(self.name, self.url, path, **kwargs))

    def get(self) -> dict[str, Any]:
        return self.apps.get(self.name)

    def wait(self, pred: Callable[[dict[str, Any]], bool], what: str,
             timeout: float = 20) -> dict[str, Any]:
        return self.apps.wait(self.name, pred, timeout=timeout, what=what)

    def events(self) -> list[dict[str, Any]]:
        items = self.admin.request("GET", "/api/v1/namespaces/gitops-lab/events").get("items", [])
        return [e for e in items if e["involvedObject"].get("name") == self.name]


def st(app: Mapping[str, Any], *path: str) -> Any:
    """status.<path> of an Application, or None."""
    node: Any = app.get("status") or {}
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def conditions(app: Mapping[str, Any]) -> dict[str, str]:
    return {c["type"]: c["message"] for c in st(app, "conditions") or []}


