"""The agent's HTTP endpoint: /healthz, /readyz, Prometheus /metrics, a Git /webhook and the
registry's notifications (/registry-webhook).
Started by agent/controller.py on loopback (local mode) or :8080 in the cluster.

/healthz is 200 while the process runs and reaches the API server (leader or standby alike);
/readyz is 200 only on the leader, so a Service in front of two replicas routes /webhook to the
one that reconciles.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["MAX_BODY", "MAX_CONNECTIONS", "REQUEST_TIMEOUT", "AgentServer", "Metrics",
           "NotLeader"]

# The largest request body any endpoint reads (a Git push notification is a few KiB).
MAX_BODY = 1024 * 1024
# Seconds a client may take to send its request (headers and body); then the socket is closed.
REQUEST_TIMEOUT = 10.0
# Connections served at once; more are answered 503 and closed at once (no thread each).
MAX_CONNECTIONS = 64


class _BoundedServer(ThreadingHTTPServer):
    """A thread per connection, at most `max_connections` of them."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any, max_connections: int) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain"
                                b"\r\nConnection: close\r\n\r\ntoo many connections\n")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class NotLeader(Exception):
    """Raised by a webhook handler on a standby agent: answered 503 with the message."""


class Metrics:
    """The agent's Prometheus metrics, in a registry of its own (several agents per process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconciles = Counter(
            "gitopslab_reconcile_total", "Reconciles run, by app and result",
            ["app", "result"], registry=self.registry)
        self.duration = Histogram(
            "gitopslab_reconcile_duration_seconds", "Time one reconcile took", ["app"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry)
        self.drift = Counter(
            "gitopslab_drift_detected_total", "Drift detections", ["app"],
            registry=self.registry)
        self.sync_status = Gauge(
            "gitopslab_app_sync_status", "1 for the app's current sync status", ["app", "status"],
            registry=self.registry)
        self.health_status = Gauge(
            "gitopslab_app_health_status", "1 for the app's current health", ["app", "status"],
            registry=self.registry)
        self.leader = Gauge(
            "gitops_lab_agent_leader", "1 while this agent is the leader and reconciles, else 0",
            registry=self.registry)

    def set_state(self, app: str, sync: str, health: str) -> None:
        for s in ("Synced", "OutOfSync", "Unknown"):
            self.sync_status.labels(app, s).set(1 if s == sync else 0)
        for h in ("Healthy", "Suspended", "Progressing", "Missing", "Degraded", "Unknown"):
            self.health_status.labels(app, h).set(1 if h == health else 0)

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))


Health = Callable[[], "bool | tuple[bool, str]"]


def _health(result: bool | tuple[bool, str]) -> tuple[bool, str]:
    return (result, "") if isinstance(result, bool) else (bool(result[0]), str(result[1]))


class AgentServer:
    """/healthz (503 with the reason when unhealthy), /readyz (503 with the reason when not
    ready, e.g. a standby: only the leader is ready), /metrics, POST /webhook and POST
    /registry-webhook (503 from a standby: a handler raising NotLeader).

    Every request body is bounded: above MAX_BODY the answer is 413 without reading it; a
    missing, negative or non-numeric Content-Length (or chunked encoding) is refused with
    411/400; a client that does not send its request within REQUEST_TIMEOUT is dropped; past
    MAX_CONNECTIONS open connections, new ones get 503 at once.
    """

    def __init__(self, address: str, metrics: Metrics, healthy: Health,
                 on_webhook: Callable[[dict[str, Any]], int],
                 on_registry_webhook: Callable[[dict[str, Any]], int] | None = None, *,
                 max_body: int = MAX_BODY,
                 ready: Callable[[], tuple[bool, str]] | None = None) -> None:
        host, _, port = address.rpartition(":")
        metrics_ref, healthy_ref, webhook_ref = metrics, healthy, on_webhook
        registry_ref = on_registry_webhook
        ready_ref = ready or (lambda: _health(healthy()))

        class Handler(BaseHTTPRequestHandler):
            timeout = REQUEST_TIMEOUT  # socket timeout: a slow or stalled client is dropped

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                if self.close_connection:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def _refuse(self, code: int, message: str) -> None:
                # The body is not read. Answer, stop writing, then discard at most `max_body`
                # bytes for a moment, so the client reads the answer instead of a reset.
                self.close_connection = True
                self._send(code, message.encode() + b"\n")
                with contextlib.suppress(OSError):
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_WR)
                    self.connection.settimeout(1.0)
                    left = max_body
                    while left > 0 and (chunk := self.connection.recv(min(left, 65536))):
                        left -= len(chunk)

            def _body(self) -> bytes | None:
                """The request body, at most `max_body` bytes; None when refused (answered)."""
                if self.headers.get("Transfer-Encoding"):
                    self._refuse(411, "chunked bodies are not accepted; send Content-Length")
                    return None
                raw = self.headers.get_all("Content-Length") or []
                if not raw:
                    if self.command in ("POST", "PUT", "PATCH"):
                        self._refuse(411, "Content-Length is required")
                        return None
                    return b""
                if len(set(raw)) > 1:
                    self._refuse(400, "conflicting Content-Length headers")
                    return None
                text = raw[0].strip()
                if not text.isdigit():
                    self._refuse(400, f"invalid Content-Length {text[:32]!r}")
                    return None
                if len(text) > 12 or int(text) > max_body:
                    self._refuse(413, f"request body of {text[:32]} bytes is larger than the "
                                      f"limit of {max_body} bytes")
                    return None
                length = int(text)
                try:
                    data = self.rfile.read(length) if length else b""
                except OSError:  # includes the REQUEST_TIMEOUT of a stalled client
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self._send(408, b"request body not received in time\n")
                    return None
                if len(data) != length:
                    self._refuse(400, "request body shorter than its Content-Length")
                    return None
                return data

            def do_GET(self) -> None:
                if self._body() is None:
                    return
                if self.path == "/healthz":
                    ok, reason = _health(healthy_ref())
                    text = "ok" if ok else f"not ready: {reason or 'starting'}"
                    self._send(200 if ok else 503, text.encode() + b"\n")
                elif self.path == "/readyz":
                    ok, why = ready_ref()
                    text = "ok" if ok else (why or "not ready")
                    self._send(200 if ok else 503, text.encode() + b"\n")
                elif self.path == "/metrics":
                    self._send(200, metrics_ref.render(), "text/plain; version=0.0.4")
                else:
                    self._send(404, b"not found\n")

            def do_POST(self) -> None:
                body = self._body()
                if body is None:
                    return
                path = self.path.split("?", 1)[0]
                if path not in ("/webhook", "/registry-webhook") or \
                        (path == "/registry-webhook" and registry_ref is None):
                    self._send(404, b"not found\n")
                    return
                try:
                    payload = json.loads(body or b"{}")
                except ValueError:
                    self._send(400, b"body must be JSON\n")
                    return
                data = payload if isinstance(payload, dict) else {}
                try:
                    if path == "/registry-webhook" and registry_ref is not None:
                        # the Distribution registry's notification envelope: {"events": [...]}
                        count = registry_ref(data)
                        self._send(200, json.dumps({"scanned": count}).encode(),
                                   "application/json")
                        return
                    count = webhook_ref(data)
                except NotLeader as exc:
                    self._send(503, json.dumps({"error": str(exc)}).encode(), "application/json")
                    return
                self._send(200, json.dumps({"refreshed": count}).encode(), "application/json")

            def do_PUT(self) -> None:
                if self._body() is not None:
                    self._send(405, b"method not allowed\n")

            do_PATCH = do_DELETE = do_PUT

        self.httpd = _BoundedServer((host or "127.0.0.1", int(port or 0)), Handler,
                                    MAX_CONNECTIONS)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="agent-http",
                                       daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
