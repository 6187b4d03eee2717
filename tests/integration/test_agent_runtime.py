"""The agent as a process: /healthz, /metrics, /webhook, SIGTERM; surviving an API-server
restart and its own restart in the middle of a sync. Each test uses its own namespace for
Applications, so it never races the session agent that watches `gitops-lab`."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from agent_helpers import st

from gitops_lab.agent import Agent, AgentOptions
from gitops_lab.apps import Apps, application
from gitops_lab.kube import Kube
from gitops_lab.labgit import GitServer, WorkingCopy

pytestmark = pytest.mark.cluster


def _cms(n: int, prefix: str = "cm") -> dict[str, str]:
    return {f"app/{prefix}-{i:03d}.yaml": yaml.safe_dump(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{prefix}-{i:03d}"},
         "data": {"i": str(i)}}) for i in range(n)}


@pytest.fixture
def app_ns(admin: Kube) -> Iterator[str]:
    ns = f"apps-{uuid.uuid4().hex[:6]}"
    admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    yield ns
    admin.delete("v1", "Namespace", ns, propagation="Background")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return 0, ""  # not listening yet


def test_agent_process_serves_health_metrics_webhook_and_exits_cleanly_on_sigterm(
        lab_cluster: Any, admin: Kube, git_server: GitServer, app_ns: str, tmp_path: Path) -> None:
    name = f"p-{uuid.uuid4().hex[:6]}"
    git_server.create_repo(name, _cms(3))
    apps = Apps(admin, app_ns)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitops_lab.agent", "--kubeconfig", str(lab_cluster.kubeconfig),
         "--namespace", app_ns, "--http-address", f"127.0.0.1:{port}", "--as-admin",
         "--poll-interval", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    try:
        deadline = time.monotonic() + 20
        while _get(f"http://127.0.0.1:{port}/healthz")[0] != 200:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "agent /healthz never answered 200"
            time.sleep(0.1)
        apps.apply(application(name, git_server.url(name), "app", namespace=app_ns,
                               dest_namespace=app_ns))
        app = apps.wait(name, lambda a: st(a, "sync", "status") == "Synced", timeout=20,
                        what="Synced")
        # a commit, announced by the webhook instead of waiting for the 30 s poll
        wc = WorkingCopy(git_server.url(name), tmp_path / "wc")
        wc.write(_cms(4))
        sha = wc.commit("four")
        wc.push()
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/webhook", method="POST",
            data=json.dumps({"repository": {"url": git_server.url(name)}}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert json.loads(resp.read()) == {"refreshed": 1}
        app = apps.wait(name, lambda a: st(a, "sync", "revision") == sha
                        and st(a, "sync", "status") == "Synced", timeout=10,
                        what="the pushed commit (webhook)")
        assert len(st(app, "resources")) == 4
        code, metrics = _get(f"http://127.0.0.1:{port}/metrics")
        assert code == 200
        assert f'gitopslab_reconcile_total{{app="{app_ns}/{name}",result="ok"}}' in metrics
        assert f'gitopslab_app_sync_status{{app="{app_ns}/{name}",status="Synced"}} 1.0' in metrics
        assert "gitopslab_reconcile_duration_seconds_bucket" in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        apps.delete(name)
    assert code == 0, "SIGTERM must end the agent cleanly"


def test_agent_survives_an_api_server_restart(lab_cluster: Any, admin: Kube,
                                              git_server: GitServer, app_ns: str,
                                              tmp_path: Path) -> None:
    name = f"r-{uuid.uuid4().hex[:6]}"
    git_server.create_repo(name, _cms(2))
    agent = Agent(admin, AgentOptions(namespace=app_ns, poll_interval=0.5,
                                      cache_dir=tmp_path / "repos")).start()
    apps = Apps(admin, app_ns)
    try:
        assert agent.wait_ready(20)
        apps.apply(application(name, git_server.url(name), "app", namespace=app_ns,
                               dest_namespace=app_ns, self_heal=True))
        apps.wait(name, lambda a: st(a, "sync", "status") == "Synced", timeout=20, what="Synced")
        lab_cluster.provider.restart("kube-apiserver")
        # after the restart: Git changes and drift are both still picked up
        wc = WorkingCopy(git_server.url(name), tmp_path / "wc")
        wc.write(_cms(3))
        sha = wc.commit("three")
        wc.push()
        apps.wait(name, lambda a: st(a, "sync", "revision") == sha
                  and st(a, "sync", "status") == "Synced", timeout=30,
                  what="the commit after an API-server restart")
        admin.delete("v1", "ConfigMap", "cm-000", app_ns, propagation="Background")
        deadline = time.monotonic() + 20
        while admin.get_or_none("v1", "ConfigMap", "cm-000", app_ns) is None:
            assert time.monotonic() < deadline, "self-heal did not recreate cm-000 after restart"
            time.sleep(0.1)
    finally:
        agent.stop()
        apps.delete(name)


def test_an_agent_killed_mid_sync_converges_without_duplicates(
        lab_cluster: Any, admin: Kube, git_server: GitServer, app_ns: str,
        tmp_path: Path) -> None:
    name = f"m-{uuid.uuid4().hex[:6]}"
    git_server.create_repo(name, _cms(150))
    apps = Apps(admin, app_ns)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitops_lab.agent", "--kubeconfig", str(lab_cluster.kubeconfig),
         "--namespace", app_ns, "--http-address", f"127.0.0.1:{_free_port()}", "--as-admin",
         # killed, it cannot release its Lease: the next agent waits for it to expire
         "--lease-duration", "3"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    try:
        apps.apply(application(name, git_server.url(name), "app", namespace=app_ns,
                               dest_namespace=app_ns))
        deadline = time.monotonic() + 30
        while len(admin.list("v1", "ConfigMap", app_ns).get("items", [])) < 3:
            assert time.monotonic() < deadline, "the first agent never started applying"
            time.sleep(0.005)
    finally:
        proc.kill()  # SIGKILL in the middle of applying: no chance to clean up
        proc.wait()
    applied = len(admin.list("v1", "ConfigMap", app_ns).get("items", []))
    second = Agent(admin, AgentOptions(namespace=app_ns, cache_dir=tmp_path / "r2")).start()
    try:
        app = apps.wait(name, lambda a: st(a, "sync", "status") == "Synced"
                        and st(a, "health", "status") == "Healthy", timeout=60,
                        what="convergence after the agent was killed")
        cms = [c["metadata"]["name"] for c in
               admin.list("v1", "ConfigMap", app_ns).get("items", [])
               if c["metadata"]["name"].startswith("cm-")]
        assert sorted(cms) == [f"cm-{i:03d}" for i in range(150)]
        revisions = [h["revision"] for h in st(app, "history")]
        assert len(revisions) == len(set(revisions)) == 1, f"history: {revisions}"
        assert st(app, "operationState", "phase") == "Succeeded"
        print(f"killed after {applied} of 150 objects were applied")
    finally:
        second.stop()
        apps.delete(name)
