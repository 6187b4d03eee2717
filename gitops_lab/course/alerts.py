"""Alerting, live: a small receiver for the agent's alert webhook, a widget listing what it got,
and a sampler of the agent's /metrics with a plot. Started by `lab.alerts()` (chapters 04-05).

Where the receiver runs depends on where the agent runs, since the agent POSTs to it:

* agent as a host process (local provider): an HTTP server on 127.0.0.1 in this Python process;
  the agent is restarted with ``--alert-webhook http://127.0.0.1:PORT/alerts``;
* agent as a pod (kind): a pod of its own — the Deployment and Service ``alert-receiver`` in
  gitops-lab, running this module (``python3 -m gitops_lab.course.alerts``) in the agent's
  image; the agent's Deployment gets ``--alert-webhook http://alert-receiver.gitops-lab:8080/
  alerts`` (a rollout), and the alerts are read through the API server's service proxy.

The receiver keeps the last alerts in memory: time, app, reason, message, revision and the
objects named — what the agent sends, which never carries a Secret's value.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import html
import io
import json
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gitops_lab.lab import Lab

__all__ = ["RECEIVER", "AlertReceiver", "MetricsSampler", "Sample", "parse_metrics", "serve"]

Obj = dict[str, Any]
RECEIVER = "alert-receiver"  # Deployment and Service in gitops-lab (kind)
NAMESPACE = "gitops-lab"
PORT = 8080
KEEP = 200  # alerts kept
MAX_BODY = 64 * 1024  # an alert is a few hundred bytes
WEBHOOK_ENV = "GITOPS_LAB_ALERT_WEBHOOK"  # read by Lab.ensure_agent for the host agent
FIELDS = ("time", "app", "reason", "message", "revision", "resources")


# ---- the receiver (in this process, or in a pod) -----------------------------------------------
def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.alerts: collections.deque[Obj] = collections.deque(maxlen=KEEP)

    def add(self, payload: Any) -> Obj:
        if not isinstance(payload, dict):
            raise ValueError("an alert is a JSON object")
        alert: Obj = {"time": _utc_now()}
        for key in FIELDS[1:]:
            value = payload.get(key, [] if key == "resources" else "")
            alert[key] = [str(v)[:300] for v in value][:20] if key == "resources" \
                and isinstance(value, list) else str(value)[:1024]
        with self.lock:
            self.alerts.append(alert)
        return alert

    def list(self) -> list[Obj]:
        with self.lock:
            return list(self.alerts)


def _server(address: tuple[str, int], store: _Store) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        timeout = 10

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.split("?")[0] in ("/healthz", "/"):
                self._send(200, {"ok": True, "alerts": len(store.list())})
            elif self.path.split("?")[0] == "/alerts":
                self._send(200, {"items": store.list()})
            else:
                self._send(404, {"error": "GET /alerts or /healthz"})

        def do_POST(self) -> None:
            if self.path.split("?")[0] != "/alerts":
                self._send(404, {"error": "POST /alerts"})
                return
            try:
                length = int(self.headers.get("Content-Length") or -1)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY:
                self._send(413 if length > MAX_BODY else 411, {"error": "bad length"})
                return
            try:
                store.add(json.loads(self.rfile.read(length) or b"null"))
            except ValueError as exc:
                self._send(400, {"error": str(exc)})
                return
            self._send(202, {"ok": True})

    server = ThreadingHTTPServer(address, Handler)
    server.daemon_threads = True
    return server


def serve(address: str = f"0.0.0.0:{PORT}") -> None:
    """Run the receiver in the foreground (the pod's command)."""
    host, _, port = address.rpartition(":")
    server = _server((host, int(port)), _Store())
    print(f"alert receiver on {address}: POST /alerts, GET /alerts", flush=True)
    server.serve_forever()


# ---- the receiver as the notebook sees it -------------------------------------------------------
def _receiver_manifests(image: str) -> list[Obj]:
    labels = {"app.kubernetes.io/name": RECEIVER, "app.kubernetes.io/part-of": "gitops-lab"}
    container = {
        "name": "receiver", "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["python3", "-m", "gitops_lab.course.alerts"],
        "args": ["--address", f"0.0.0.0:{PORT}"],
        "ports": [{"name": "http", "containerPort": PORT}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 2},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"},
                      "limits": {"memory": "96Mi"}},
    }
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": RECEIVER, "namespace": NAMESPACE, "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": RECEIVER}},
                  "template": {"metadata": {"labels": labels}, "spec": {
                      "securityContext": {"runAsNonRoot": True, "runAsUser": 65532,
                                          "runAsGroup": 65532},
                      "containers": [container]}}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": RECEIVER, "namespace": NAMESPACE, "labels": labels},
         "spec": {"selector": {"app.kubernetes.io/name": RECEIVER},
                  "ports": [{"name": "http", "port": PORT, "targetPort": "http"}]}},
    ]


def _agent_cmdline(lab: Lab) -> list[str]:
    """The host agent's command line ([] when none runs)."""
    info = lab._local_agent()
    if not info:
        return []
    try:
        raw = Path(f"/proc/{int(info['pid'])}/cmdline").read_bytes()
    except (OSError, ValueError):
        return []
    return raw.decode(errors="replace").split("\0")


def _webhook_of(args: Iterable[str]) -> str:
    args = list(args)
    for i, arg in enumerate(args):
        if arg == "--alert-webhook" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--alert-webhook="):
            return arg.split("=", 1)[1]
    return ""


class AlertReceiver:
    """The lab's alert receiver and the agent pointed at it (see the module docstring).

    `alerts()` lists what the agent POSTed, oldest first; `widget()` shows them, live."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.in_cluster = lab.agent_mode == "in-cluster"
        self._server: ThreadingHTTPServer | None = None
        self._store = _Store()
        self.url = ""  # where the agent POSTs
        self.where = ""  # one sentence for the learner
        self._widget_stops: list[threading.Event] = []
        self.since = _utc_now()  # alerts() leaves out older ones (a receiver pod outlives a chapter)

    # -- starting ----------------------------------------------------------------------------
    def start(self, progress: Callable[[str], None] | None = None) -> AlertReceiver:
        say = progress or (lambda _line: None)
        if self.in_cluster:
            self._start_pod(say)
        else:
            self._start_local(say)
        return self

    def _start_local(self, say: Callable[[str], None]) -> None:
        if self._server is None:
            self._server = _server(("127.0.0.1", 0), self._store)
            threading.Thread(target=self._server.serve_forever, name="alert-receiver",
                             daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/alerts"
        self.where = (f"an HTTP server on {self.url} in this notebook's Python process; the "
                      "agent (a process on this machine) POSTs to it")
        if _webhook_of(_agent_cmdline(self.lab)) != self.url:
            say("restarting the agent with --alert-webhook")
            os.environ[WEBHOOK_ENV] = self.url
            self.lab.stop_agent()
            self.lab.ensure_agent()

    def _start_pod(self, say: Callable[[str], None]) -> None:
        from gitops_lab.install.incluster import wait_rollout

        kube = self.lab.kube
        agent = kube.get_or_none("apps/v1", "Deployment", "gitops-lab-agent", NAMESPACE)
        if agent is None:
            raise RuntimeError("no agent Deployment gitops-lab/gitops-lab-agent; hint: "
                               "Lab.connect() installs it")
        container = agent["spec"]["template"]["spec"]["containers"][0]
        for obj in _receiver_manifests(str(container["image"])):
            kube.apply(obj, field_manager="gitops-lab-course")
        say(f"waiting for the {RECEIVER} pod")
        wait_rollout(kube, RECEIVER, timeout=90)
        self.url = f"http://{RECEIVER}.{NAMESPACE}:{PORT}/alerts"
        self.where = (f"a pod (Deployment and Service {RECEIVER} in {NAMESPACE}); the agent's "
                      f"pod POSTs to {self.url}, and this notebook reads the list through the "
                      "API server's service proxy")
        args = list(container.get("args") or [])
        if _webhook_of(args) != self.url:
            say("re-deploying the agent with --alert-webhook")
            args = [a for i, a in enumerate(args)
                    if a != "--alert-webhook" and (i == 0 or args[i - 1] != "--alert-webhook")
                    and not a.startswith("--alert-webhook=")]
            patch = {"spec": {"template": {"spec": {"containers": [
                {"name": container["name"], "args": [*args, "--alert-webhook", self.url]}]}}}}
            kube.request("PATCH", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/"
                         "gitops-lab-agent", body=patch,
                         content_type="application/strategic-merge-patch+json")
            wait_rollout(kube, "gitops-lab-agent", timeout=120)
            self.lab.ensure_agent(timeout=60)
        self._wait_leader(60)

    def _wait_leader(self, timeout: float) -> None:
        """Until the agent behind agent_url leads (/readyz 200): a new pod starts as a standby."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), \
                    urllib.request.urlopen(self.lab.agent_url + "/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
            time.sleep(0.5)

    # -- reading -----------------------------------------------------------------------------
    def alerts(self, reason: str | None = None, *, everything: bool = False) -> list[Obj]:
        """The alerts received since this receiver was started here (`everything`: also
        older ones a receiver pod kept), oldest first; only `reason`, if given."""
        if self.in_cluster:
            path = (f"/api/v1/namespaces/{NAMESPACE}/services/{RECEIVER}:http/proxy/alerts")
            items = list(self.lab.kube.request("GET", path, timeout=5).get("items") or [])
        else:
            items = self._store.list()
        return [a for a in items if (reason is None or a.get("reason") == reason)
                and (everything or str(a.get("time") or "") >= self.since)]

    def close(self) -> None:
        """Local: stop the receiver and restart the agent without the webhook (else it would
        POST to a closed port). Kind: nothing — the pod stays, so does the agent's webhook."""
        for stop in self._widget_stops:
            stop.set()
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        os.environ.pop(WEBHOOK_ENV, None)
        if _webhook_of(_agent_cmdline(self.lab)) == self.url:
            self.lab.stop_agent()
            self.lab.ensure_agent()

    def widget(self, interval: float = 2.0) -> Any:
        """A table of the alerts (time, app, reason, message), refreshed every `interval` s."""
        import ipywidgets as w

        box = w.HTML(value=self._table())
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(interval):
                with contextlib.suppress(Exception):  # a failed read shows at the next one
                    box.value = self._table()

        threading.Thread(target=loop, name="alert-list", daemon=True).start()
        self._widget_stops.append(stop)
        return box

    def _table(self) -> str:
        try:
            rows = self.alerts()
        except Exception as exc:
            return f'<i style="color:#a4272f">alerts unreadable: {html.escape(str(exc))}</i>'
        return alert_table(rows, self.where)

    def __repr__(self) -> str:
        return f"AlertReceiver({self.where or 'not started'})"


def alert_table(rows: list[Obj], where: str = "") -> str:
    """The alerts as an HTML table, newest first (time, app, reason, message)."""
    colour = {"DriftDetected": "#9a6700", "SyncFailed": "#a4272f", "HealthDegraded": "#a4272f"}
    body = "".join(
        f'<tr><td style="white-space:nowrap;color:#667">{html.escape(str(a.get("time", ""))[11:19])}'
        f'</td><td>{html.escape(str(a.get("app", "")))}</td>'
        f'<td style="color:{colour.get(str(a.get("reason")), "#333")};font-weight:600">'
        f'{html.escape(str(a.get("reason", "")))}</td>'
        f'<td style="white-space:normal">{html.escape(str(a.get("message", "")))}</td></tr>'
        for a in reversed(rows[-30:]))
    head = (f"<b>Alerts received: {len(rows)}</b>"
            + (f' <span style="color:#667">— {html.escape(where)}</span>' if where else ""))
    empty = '<tr><td colspan="4"><i>none yet</i></td></tr>'
    return (f"<div>{head}<table><tr><th>time (UTC)</th><th>app</th><th>reason</th>"
            f"<th>message</th></tr>{body or empty}</table></div>")


# ---- the agent's /metrics over time ---------------------------------------------------------------
class Sample(dict[str, float]):
    """One reading of the agent's metrics for one app: t (s since start), reconciles, drift,
    duration_sum, duration_count."""


def parse_metrics(text: str, app: str) -> dict[str, float]:
    """The counters the plot needs for `app` ("namespace/name") from a /metrics page."""
    from prometheus_client.parser import text_string_to_metric_families

    want = {"gitopslab_reconcile_total": "reconciles",
            "gitopslab_drift_detected_total": "drift",
            "gitopslab_reconcile_duration_seconds_sum": "duration_sum",
            "gitopslab_reconcile_duration_seconds_count": "duration_count"}
    out = dict.fromkeys(want.values(), 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = want.get(sample.name)
            if key and sample.labels.get("app") == app:
                out[key] += float(sample.value)
    return out


class MetricsSampler:
    """Reads the agent's /metrics every `interval` s in a background thread, for one app.

    Counters restart at zero when the agent restarts (a new process or pod); the sampler adds
    what was counted before, so the curves only go up."""

    def __init__(self, lab: Lab, app: str = "gitops-lab/guestbook", interval: float = 1.0,
                 keep: int = 3600) -> None:
        self.lab = lab
        self.app = app
        self.interval = interval
        self.samples: collections.deque[Sample] = collections.deque(maxlen=keep)
        self.marks: list[tuple[float, str]] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()
        self._offset: dict[str, float] = {}
        self._last: dict[str, float] = {}

    def start(self) -> MetricsSampler:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="metrics-sampler",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def mark(self, label: str) -> None:
        """A vertical line on the plot at this moment (e.g. "scaled by hand")."""
        self.marks.append((time.monotonic() - self._t0, label))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample_once()
            except Exception:
                self.errors += 1
            self._stop.wait(self.interval)

    def sample_once(self) -> Sample | None:
        url = self.lab.agent_url
        if not url:
            return None
        with urllib.request.urlopen(url + "/metrics", timeout=3) as resp:
            text = resp.read().decode(errors="replace")
        return self.add(parse_metrics(text, self.app))

    def add(self, values: dict[str, float], t: float | None = None) -> Sample:
        """Record one reading (counter resets folded in)."""
        sample = Sample(t=time.monotonic() - self._t0 if t is None else t)
        for key, value in values.items():
            if value < self._last.get(key, 0.0):  # the agent restarted: its counters too
                self._offset[key] = self._offset.get(key, 0.0) + self._last[key]
            self._last[key] = value
            sample[key] = value + self._offset.get(key, 0.0)
        self.samples.append(sample)
        return sample

    def series(self) -> dict[str, list[float]]:
        """t, reconciles, drift, and the mean reconcile time in ms per interval."""
        rows = list(self.samples)
        out: dict[str, list[float]] = {"t": [], "reconciles": [], "drift": [], "ms": []}
        for prev, cur in zip([None, *rows[:-1]], rows, strict=True):
            out["t"].append(cur["t"])
            out["reconciles"].append(cur.get("reconciles", 0.0))
            out["drift"].append(cur.get("drift", 0.0))
            if prev is None:
                n, s = cur.get("duration_count", 0.0), cur.get("duration_sum", 0.0)
            else:
                n = cur.get("duration_count", 0.0) - prev.get("duration_count", 0.0)
                s = cur.get("duration_sum", 0.0) - prev.get("duration_sum", 0.0)
            out["ms"].append(1000 * s / n if n > 0 else float("nan"))
        return out

    def plot(self) -> Any:
        """Three panels over the time sampled so far: reconciles, drift detected, mean
        reconcile duration. Returns an object a notebook shows as a PNG."""
        from matplotlib.figure import Figure

        data = self.series()
        fig = Figure(figsize=(9, 5.2), dpi=90)
        axes = fig.subplots(3, 1, sharex=True)
        panels = (("reconciles", "reconciles (total)", "#2f6fb0"),
                  ("drift", "drift detected (total)", "#c98a00"),
                  ("ms", "reconcile time (ms, mean)", "#2e8b57"))
        for ax, (key, title, colour) in zip(axes, panels, strict=True):
            if key == "ms":
                ax.plot(data["t"], data[key], ".", color=colour, markersize=3)
            else:
                ax.step(data["t"], data[key], where="post", color=colour)
            ax.set_ylabel(title, fontsize=8)
            ax.grid(alpha=0.3)
            for t, label in self.marks:
                ax.axvline(t, color="#999", linestyle="--", linewidth=0.8)
                if ax is axes[0]:
                    ax.annotate(label, (t, 1.0), xycoords=("data", "axes fraction"),
                                fontsize=7, rotation=90, va="top", ha="right", color="#555")
        axes[-1].set_xlabel("seconds since the chapter started sampling")
        fig.suptitle(f"the agent's /metrics for {self.app}", fontsize=10)
        fig.tight_layout()
        return _Png(fig)


class _Png:
    """A matplotlib Figure shown as a PNG (no pyplot state, no backend needed)."""

    def __init__(self, fig: Any) -> None:
        self.fig = fig

    def _repr_png_(self) -> bytes:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(self.fig)
        buf = io.BytesIO()
        self.fig.savefig(buf, format="png")
        return buf.getvalue()

    def __repr__(self) -> str:
        return "<plot of the agent's metrics>"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gitops_lab.course.alerts",
                                     description="the lab's alert receiver")
    parser.add_argument("--address", default=f"127.0.0.1:{PORT}")
    serve(parser.parse_args(argv).address)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
