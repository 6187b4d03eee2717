"""Kube.fenced(): the agent's write fence. A fenced copy refuses writes (never reads) while
its predicate is False, before anything is sent, and shares the connection's token source and
API health with the original, so the elector's Lease calls keep a standby's /healthz honest.
No cluster needed: the server is a socket on 127.0.0.1 that records what reaches it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from kubernetes import client as k8s_client

from gitops_lab.kube import Kube, KubeError, TokenSource


class _Api(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str, str]]] = []
    status: ClassVar[int] = 200

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        _Api.seen.append((self.command, self.path, self.headers.get("Authorization", "")))
        body = json.dumps({"kind": "Status", "reason": "Unauthorized" if _Api.status == 401
                           else "", "message": "x"} if _Api.status >= 400 else {}).encode()
        self.send_response(_Api.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer


@pytest.fixture
def api() -> Iterator[str]:
    _Api.seen, _Api.status = [], 200
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _kube(host: str) -> Kube:
    configuration = k8s_client.Configuration()
    configuration.host = host
    return Kube(configuration, user="test")


def test_a_fenced_copy_refuses_writes_while_not_allowed_and_sends_nothing(api: str) -> None:
    leading = {"now": False}
    kube = _kube(api)
    fenced = kube.fenced(lambda: leading["now"], "not the leader")
    fenced.request("GET", "/api/v1/namespaces/x/configmaps")  # reads always pass
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        with pytest.raises(KubeError) as err:
            fenced.request(method, "/api/v1/namespaces/x/configmaps", body={})
        assert err.value.reason == "Fenced" and "not the leader" in err.value.message
    assert [m for m, _, _ in _Api.seen] == ["GET"], "a fenced write reached the server"
    kube.request("POST", "/api/v1/namespaces/x/configmaps", body={})  # the original: unfenced
    leading["now"] = True
    fenced.request("PATCH", "/api/v1/namespaces/x/configmaps/y", body={})
    assert [m for m, _, _ in _Api.seen] == ["GET", "POST", "PATCH"]


def test_a_fenced_copy_shares_the_token_source_and_the_api_health(api: str) -> None:
    tokens = iter(["t-1", "t-2", "t-3"])
    source = TokenSource(lambda: (next(tokens), 3600.0), min_interval=0.0)
    kube = _kube(api).with_token_source(source, "gitops-lab-agent")
    fenced = kube.fenced(lambda: True, "not the leader")
    assert fenced.token_source is kube.token_source
    _Api.status = 401
    with pytest.raises(KubeError):
        kube.request("GET", "/api/v1/namespaces")
    # the original's 401 shows on the copy (the agent's /healthz reads the copy)
    assert "401 Unauthorized" in fenced.problem and fenced.problem == kube.problem
    _Api.status = 200
    before = kube.last_ok
    fenced.request("GET", "/api/v1/namespaces")
    assert kube.problem == "" and kube.last_ok > before
    # both sent the renewed token (the 401 made the shared source fetch another)
    assert _Api.seen[-1][2] == f"Bearer {source.token()}" and source.token() != "t-1"
