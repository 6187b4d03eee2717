"""The agent's HTTP server with real sockets on 127.0.0.1: request bodies are bounded on every
endpoint (issue 13 item 12) and /healthz says why it is not ready. No cluster needed."""

from __future__ import annotations

import http.client
import json
import resource
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gitops_lab.agent.server import MAX_BODY, AgentServer, Metrics


class Webhooks:
    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.health: bool | tuple[bool, str] = True

    def __call__(self, payload: dict[str, Any]) -> int:
        self.payloads.append(payload)
        return 1


@pytest.fixture
def hooks() -> Webhooks:
    return Webhooks()


@pytest.fixture
def server(hooks: Webhooks) -> Iterator[AgentServer]:
    srv = AgentServer("127.0.0.1:0", Metrics(), lambda: hooks.health, hooks)
    srv.start()
    yield srv
    srv.stop()


def raw(server: AgentServer, head: str, body: bytes = b"", *, send_all: bool = True,
        timeout: float = 10.0) -> tuple[int, str]:
    """Send a hand-written request; (status, body) of the answer."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        if body:
            try:
                sock.sendall(body)
            except OSError:
                if send_all:
                    raise
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            data += chunk
    head_text, _, rest = data.partition(b"\r\n\r\n")
    status = int(head_text.split(b" ", 2)[1])
    return status, rest.decode()


def post(server: AgentServer, body: bytes, **headers: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=10)
    try:
        conn.request("POST", "/webhook", body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_a_normal_webhook_is_accepted(server: AgentServer, hooks: Webhooks) -> None:
    status, body = post(server, json.dumps({"repository": {"url": "git://x"}}).encode())
    assert (status, json.loads(body)) == (200, {"refreshed": 1})
    assert hooks.payloads == [{"repository": {"url": "git://x"}}]
    status, _ = post(server, b"x" * MAX_BODY)  # exactly at the limit: read (and not JSON)
    assert status == 400


def test_a_body_over_the_limit_gets_413_without_being_read(
    server: AgentServer, hooks: Webhooks
) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.monotonic()
    # Announce 300 MB and really start sending it: the answer comes at once, and the server
    # reads at most MAX_BODY of it (then closes), so this process never holds it either.
    chunk = b"{" * (4 * MAX_BODY)
    status, body = raw(server, "POST /webhook HTTP/1.1\nHost: x\nContent-Length: 300000000\n",
                       chunk, send_all=False)
    assert status == 413
    assert f"larger than the limit of {MAX_BODY} bytes" in body
    assert time.monotonic() - t0 < 5
    assert hooks.payloads == []
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 64 * 1024, f"peak memory grew by {grown_kib} KiB"
    status, _ = post(server, b"{" * (MAX_BODY + 1))
    assert status == 413


@pytest.mark.parametrize(
    ("length", "status", "says"),
    [
        ("99999999999999999999999999999", 413, "larger than the limit"),
        ("-5", 400, "invalid Content-Length '-5'"),
        ("12abc", 400, "invalid Content-Length"),
        (None, 411, "Content-Length is required"),
    ],
)
def test_absurd_negative_or_missing_content_length(
    server: AgentServer, hooks: Webhooks, length: str | None, status: int, says: str
) -> None:
    head = "POST /webhook HTTP/1.1\nHost: x\n" + (f"Content-Length: {length}\n" if length else "")
    got, body = raw(server, head)
    assert got == status and says in body, (got, body)
    assert hooks.payloads == []


def test_chunked_bodies_and_other_endpoints_are_bounded_too(
    server: AgentServer, hooks: Webhooks
) -> None:
    got, body = raw(server, "POST /webhook HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n",
                    b"10000000\r\n" + b"a" * 65536, send_all=False)
    assert got == 411 and "chunked" in body
    for method, path in (("GET", "/healthz"), ("POST", "/nothing"), ("PUT", "/webhook")):
        got, body = raw(server, f"{method} {path} HTTP/1.1\nHost: x\nContent-Length: "
                                f"{MAX_BODY * 10}\n", b"a" * 65536, send_all=False)
        assert got == 413, (method, path, got, body)
    assert hooks.payloads == []
    # the server still answers
    assert raw(server, "GET /healthz HTTP/1.1\nHost: x\n") == (200, "ok\n")


def test_a_stalled_client_is_dropped(hooks: Webhooks, monkeypatch: pytest.MonkeyPatch) -> None:
    from gitops_lab.agent import server as server_module

    monkeypatch.setattr(server_module, "REQUEST_TIMEOUT", 0.5)
    srv = AgentServer("127.0.0.1:0", Metrics(), lambda: True, hooks)
    srv.start()
    try:
        port = int(srv.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as stalled:
            stalled.sendall(b"POST /webhook HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
            assert raw(srv, "GET /healthz HTTP/1.1\nHost: x\n")[0] == 200  # others served
            t0 = time.monotonic()
            try:
                leftover = stalled.recv(65536)  # the server gives up on it: closed
            except ConnectionResetError:
                leftover = b""
            assert time.monotonic() - t0 < 3
            assert b"200" not in leftover
    finally:
        srv.stop()
    assert hooks.payloads == []


def test_healthz_names_the_reason_when_not_ready(server: AgentServer, hooks: Webhooks) -> None:
    hooks.health = (False, "the API server rejects the agent's credentials (401 Unauthorized)")
    status, body = raw(server, "GET /healthz HTTP/1.1\nHost: x\n")
    assert status == 503
    assert body == "not ready: the API server rejects the agent's credentials (401 Unauthorized)\n"
    hooks.health = (True, "")
    assert raw(server, "GET /healthz HTTP/1.1\nHost: x\n") == (200, "ok\n")


def test_connections_are_bounded(hooks: Webhooks, monkeypatch: pytest.MonkeyPatch) -> None:
    from gitops_lab.agent import server as server_module

    monkeypatch.setattr(server_module, "MAX_CONNECTIONS", 3)
    monkeypatch.setattr(server_module, "REQUEST_TIMEOUT", 2.0)
    srv = AgentServer("127.0.0.1:0", Metrics(), lambda: True, hooks)
    srv.start()
    port = int(srv.url.rsplit(":", 1)[1])
    stalled = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    try:
        for sock in stalled:
            sock.sendall(b"POST /webhook HTTP/1.1\r\nContent-Length: 10\r\n")  # never ends
        time.sleep(0.3)
        t0 = time.monotonic()
        assert raw(srv, "GET /healthz HTTP/1.1\nHost: x\n") == (503, "too many connections\n")
        assert time.monotonic() - t0 < 1
        # once the stalled ones are dropped (REQUEST_TIMEOUT), the server answers again
        deadline = time.monotonic() + 10
        while raw(srv, "GET /healthz HTTP/1.1\nHost: x\n")[0] != 200:
            assert time.monotonic() < deadline, "slots were never freed"
            time.sleep(0.2)
    finally:
        for sock in stalled:
            sock.close()
        srv.stop()


def test_readyz_and_a_standby_answering_both_webhooks_with_503(hooks: Webhooks) -> None:
    from gitops_lab.agent.server import NotLeader

    ready: list[tuple[bool, str]] = [(False, "standby: the leader is agent-b")]

    def webhook(payload: dict[str, Any]) -> int:
        if not ready[0][0]:
            raise NotLeader("this agent (agent-a) is a standby; the leader is agent-b")
        return hooks(payload)

    srv = AgentServer("127.0.0.1:0", Metrics(), lambda: (True, ""), webhook, webhook,
                      ready=lambda: ready[0])
    srv.start()
    try:
        # a standby is healthy (a probe must not restart it) but not ready
        assert raw(srv, "GET /healthz HTTP/1.1\nHost: x\n") == (200, "ok\n")
        assert raw(srv, "GET /readyz HTTP/1.1\nHost: x\n") == (
            503, "standby: the leader is agent-b\n")
        for path in ("/webhook", "/registry-webhook"):
            status, body = raw(srv, f"POST {path} HTTP/1.1\nHost: x\nContent-Length: 2\n", b"{}")
            assert status == 503 and "the leader is agent-b" in json.loads(body)["error"], body
        assert hooks.payloads == []
        ready[0] = (True, "")
        assert raw(srv, "GET /readyz HTTP/1.1\nHost: x\n") == (200, "ok\n")
        status, body = raw(srv, "POST /registry-webhook HTTP/1.1\nHost: x\nContent-Length: 2\n",
                           b"{}")
        assert (status, json.loads(body)) == (200, {"scanned": 1})
    finally:
        srv.stop()


def test_readyz_without_a_readiness_callback_follows_healthz(server: AgentServer,
                                                             hooks: Webhooks) -> None:
    hooks.health = (False, "stopping")
    assert raw(server, "GET /readyz HTTP/1.1\nHost: x\n") == (503, "stopping\n")
    hooks.health = True
    assert raw(server, "GET /readyz HTTP/1.1\nHost: x\n") == (200, "ok\n")
