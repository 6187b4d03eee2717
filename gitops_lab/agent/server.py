"""The agent's HTTP endpoint: /healthz, /readyz, Prometheus /metrics, and a Git /webhook.
Started by agent/controller.py on loopback (local mode) or :8080 in the cluster.

/healthz is 200 while the process is alive (leader or standby); /readyz is 200 only on the
leader, so a Service in front of two replicas routes /webhook to the one that reconciles.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["AgentServer", "Metrics", "NotLeader"]


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


class AgentServer:
    def __init__(self, address: str, metrics: Metrics, healthy: Callable[[], bool],
                 on_webhook: Callable[[dict[str, Any]], int],
                 ready: Callable[[], tuple[bool, str]] | None = None) -> None:
        host, _, port = address.rpartition(":")
        metrics_ref, healthy_ref, webhook_ref = metrics, healthy, on_webhook
        ready_ref = ready or (lambda: (healthy(), "stopping"))

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/healthz":
                    ok = healthy_ref()
                    self._send(200 if ok else 503, b"ok\n" if ok else b"stopping\n")
                elif self.path == "/readyz":
                    ok, why = ready_ref()
                    self._send(200 if ok else 503, b"ok\n" if ok else f"{why}\n".encode())
                elif self.path == "/metrics":
                    self._send(200, metrics_ref.render(), "text/plain; version=0.0.4")
                else:
                    self._send(404, b"not found\n")

            def do_POST(self) -> None:
                if self.path != "/webhook":
                    self._send(404, b"not found\n")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    payload = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self._send(400, b"body must be JSON\n")
                    return
                try:
                    count = webhook_ref(payload if isinstance(payload, dict) else {})
                except NotLeader as exc:
                    self._send(503, json.dumps({"error": str(exc)}).encode(), "application/json")
                    return
                self._send(200, json.dumps({"refreshed": count}).encode(), "application/json")

        self.httpd = ThreadingHTTPServer((host or "127.0.0.1", int(port or 0)), Handler)
        self.httpd.daemon_threads = True
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
