"""The lab's agent, supervised: a host process (`gitops-lab agent run`) on the local provider,
the `gitops-lab-agent` Deployment on kind. `Lab` mixes `AgentSupervisor` in; nothing here
reconciles — it starts, finds, waits for, pauses and stops the agent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitops_lab.cluster.kind import AGENT_NODE_PORT, KindCluster
from gitops_lab.install.incluster import wait_rollout
from gitops_lab.labbase import LabError

if TYPE_CHECKING:
    from gitops_lab.apps import Apps
    from gitops_lab.cluster import Provider
    from gitops_lab.kube import Kube

__all__ = ["AgentSupervisor", "stop_agent_process"]

Obj = dict[str, Any]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _http_status(url: str, timeout: float = 2.0) -> tuple[int, str]:
    """(HTTP status, first line of the body) of a GET; (0, why) when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), resp.read(4096).decode(errors="replace").strip()
    except urllib.error.HTTPError as exc:
        try:
            body = exc.read(4096).decode(errors="replace").strip()
        finally:
            exc.close()
        return int(exc.code), body.splitlines()[0] if body else str(exc.reason)
    except OSError as exc:
        return 0, str(exc)


def stop_agent_process(agent_file: Path) -> None:
    """Stop the agent recorded in `agent_file` (only if that pid still is a gitops_lab agent):
    SIGTERM, SIGKILL after 10 s; then forget it."""
    try:
        pid = int(json.loads(agent_file.read_text()).get("pid", 0))
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError, TypeError, AttributeError):
        pid, cmdline = 0, ""
    if pid and _pid_alive(pid) and "gitops_lab" in cmdline and "agent" in cmdline:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    agent_file.unlink(missing_ok=True)


def api_server(kubeconfig: Path) -> str:
    """The API server URL of the kubeconfig's current context ("" when unreadable)."""
    import yaml

    try:
        config = yaml.safe_load(kubeconfig.read_text()) or {}
        current = config.get("current-context")
        context: dict[str, Any] = next((c["context"] for c in config.get("contexts") or []
                        if c.get("name") == current), {})
        cluster: dict[str, Any] = next((c["cluster"] for c in config.get("clusters") or []
                        if c.get("name") == context.get("cluster")), {})
        return str(cluster.get("server") or "")
    except (OSError, yaml.YAMLError, AttributeError, KeyError, TypeError):
        return ""


class AgentSupervisor:
    """Where the lab's agent runs and whether it answers; start, pause and stop it."""

    agent_mode: str
    provider: Provider
    kube: Kube
    kubeconfig: Path
    state_dir: Path
    apps: Apps

    def kubectl(self, *args: str, check: bool = True) -> str:
        raise NotImplementedError

    @property
    def _agent_file(self) -> Path:
        return self.state_dir / "agent.json"

    def agent_info(self) -> Obj | None:
        """The running agent (url, pid, log), or None. The host agent counts only once it is
        ready (/readyz: it leads and has listed its Applications), so whoever then waits for a
        sync waits for an agent that reconciles, not for a standby; the in-cluster one once its
        /healthz answers."""
        if self.agent_mode == "in-cluster":
            return self._pod_agent_info()
        info = self._local_agent()
        if info is None or _http_status(f"{info['url']}/readyz")[0] != 200:
            return None
        return info

    def _local_agent(self) -> Obj | None:
        """The host agent process this lab started, if it still runs (ready or not)."""
        try:
            info = json.loads(self._agent_file.read_text())
        except (OSError, ValueError):
            return None
        if not _pid_alive(int(info.get("pid", 0))) or info.get("kubeconfig") != str(self.kubeconfig):
            return None
        if info.get("server") != api_server(self.kubeconfig):
            # the cluster was re-created under the same name (e.g. `gitops-lab cluster down`,
            # then up): the old agent still calls an API server that is gone — retire it
            stop_agent_process(self._agent_file)
            return None
        return dict(info)

    def _wait_local_agent(self, info: Obj, timeout: float, proc: Any = None) -> Obj:
        """Wait until the host agent `info` is ready (/readyz 200); LabError with its last
        answer (e.g. `standby: the leader is …`) and its log otherwise."""
        deadline = time.monotonic() + timeout
        why = "no answer yet"
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise LabError(f"the agent exited (code {proc.returncode}); its log: "
                               f"{info['log']}\n" + self.agent_log(15))
            if self._local_agent() is None:
                raise LabError(f"the agent (pid {info['pid']}) exited; its log: {info['log']}\n"
                               + self.agent_log(15))
            code, why = _http_status(f"{info['url']}/readyz")
            if code == 200:
                return info
            time.sleep(0.2)
        raise LabError(f"the agent did not become ready (/readyz) in {timeout:.0f} s: {why}; "
                       f"log: {info['log']}; hint: only the holder of the Lease "
                       "gitops-lab/gitops-lab-agent reconciles — is another agent running?")

    @property
    def agent_url(self) -> str:
        """Where the agent's HTTP answers (/healthz, /metrics, /webhook); "" when no host
        agent runs. In-cluster it is the NodePort on 127.0.0.1, whatever the pod's state."""
        if self.agent_mode == "in-cluster" and isinstance(self.provider, KindCluster):
            return f"http://127.0.0.1:{self.provider.host_port(AGENT_NODE_PORT)}"
        info = self.agent_info()
        return str(info["url"]) if info else ""

    def _pod_agent_info(self, settle: float = 5.0) -> Obj | None:
        """The agent pod(s) behind the NodePort, when /healthz answers 200 — retried for a few
        seconds, since a connection can land on a pod going away during a rollout."""
        assert isinstance(self.provider, KindCluster)
        url = f"http://127.0.0.1:{self.provider.host_port(AGENT_NODE_PORT)}"
        deadline = time.monotonic() + settle
        while _http_status(f"{url}/healthz")[0] != 200:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.3)
        names = [p["metadata"]["name"] for p in self._agent_pods()
                 if not p["metadata"].get("deletionTimestamp")]
        return {"url": url, "pods": names, "mode": "in-cluster"}

    def _agent_pods(self) -> list[Obj]:
        pods = self.kube.list("v1", "Pod", namespace="gitops-lab",
                              labelSelector="app.kubernetes.io/name=gitops-lab-agent")
        return list(pods.get("items") or [])

    def ensure_agent(self, timeout: float = 30.0) -> Obj:
        """Start `gitops-lab agent run` in the background unless one is already healthy;
        in-cluster: scale the agent's Deployment to one replica and wait for it."""
        info = self.agent_info()
        if info is not None:
            return info
        if self.agent_mode != "in-cluster":
            running = self._local_agent()
            if running is not None and _http_status(f"{running['url']}/healthz")[0] == 200:
                # up, but not leading yet (e.g. waiting for the Lease of an agent killed
                # without releasing it): wait for it rather than start a second one
                return self._wait_local_agent(running, timeout)
        if self.agent_mode == "in-cluster":
            self.kubectl("-n", "gitops-lab", "scale", "deployment/gitops-lab-agent", "--replicas=1")
            wait_rollout(self.kube, "gitops-lab-agent", timeout=max(timeout, 60))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                info = self.agent_info()
                if info is not None:
                    return info
                time.sleep(0.3)
            raise LabError(f"the agent pod did not answer /healthz in {timeout:.0f} s; "
                           "hint: `kubectl -n gitops-lab logs deployment/gitops-lab-agent`")
        self.stop_agent()
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        log = self.state_dir / "agent.log"
        cmd = [sys.executable, "-m", "gitops_lab", "agent", "run",
               "--kubeconfig", str(self.kubeconfig), "--http-address", f"127.0.0.1:{port}",
               "--poll-interval", "1"]
        webhook = os.environ.get("GITOPS_LAB_ALERT_WEBHOOK")
        if webhook:
            cmd += ["--alert-webhook", webhook]
        with log.open("ab") as sink:
            proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        info = {"pid": proc.pid, "url": f"http://127.0.0.1:{port}", "log": str(log),
                "kubeconfig": str(self.kubeconfig), "server": api_server(self.kubeconfig)}
        self._agent_file.write_text(json.dumps(info))
        self._wait_local_agent(info, timeout, proc)
        self._repoint_registry(str(info["url"]))
        return info

    def _repoint_registry(self, agent_url: str) -> None:
        """A running lab registry notifies the agent where it now listens."""
        if isinstance(self.provider, KindCluster):
            return  # the registry container notifies the agent's NodePort: nothing moves
        from gitops_lab.images.registry_server import LabRegistry

        registry = LabRegistry(self.state_dir.name)
        if registry.status().running:
            registry.up(notify=f"{agent_url}/registry-webhook")

    def agent_log(self, lines: int = 30) -> str:
        if self.agent_mode == "in-cluster":
            return self.kubectl("-n", "gitops-lab", "logs", "deployment/gitops-lab-agent",
                                f"--tail={lines}", check=False)
        try:
            text = (self.state_dir / "agent.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop_agent(self) -> None:
        if self.agent_mode == "in-cluster":
            self.kubectl("-n", "gitops-lab", "scale", "deployment/gitops-lab-agent",
                         "--replicas=0")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self._agent_pods():
                time.sleep(0.3)
            return
        stop_agent_process(self._agent_file)

    @contextmanager
    def paused_agent(self) -> Iterator[None]:
        """Stop the agent for a demo (what happens without GitOps?), start it again after."""
        self.stop_agent()
        try:
            yield
        finally:
            self.ensure_agent()
            self._finish_deletions()

    def _finish_deletions(self, timeout: float = 30.0) -> None:
        """Applications deleted while the agent was away carry the resources finalizer: the
        agent back, wait until it has deleted their objects and let them go (so the next
        step does not meet a half-deleted app); past `timeout`, let them go orphaning."""
        deadline = time.monotonic() + timeout
        while True:
            deleting = [a["metadata"]["name"] for a in self.apps.list()
                        if (a.get("metadata") or {}).get("deletionTimestamp")]
            if not deleting:
                return
            if time.monotonic() > deadline:
                for name in deleting:
                    self.apps.remove_finalizers(name)
                return
            time.sleep(0.2)
