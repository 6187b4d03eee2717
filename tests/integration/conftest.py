"""Fixtures for agent tests: the real control plane (gitops_lab.testing), a real `git daemon`
on 127.0.0.1, the agent running in-process as its ServiceAccount, and an alert receiver.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import AlertReceiver, LabApp

from gitops_lab.agent import Agent, AgentOptions
from gitops_lab.apps import Apps
from gitops_lab.install import agent_token, install
from gitops_lab.kube import Kube, KubeError
from gitops_lab.labgit import GitServer


@pytest.fixture(scope="session")
def admin(lab_cluster: Any) -> Kube:
    kube = Kube.from_kubeconfig(lab_cluster.kubeconfig)
    install(kube)
    return kube


@pytest.fixture(scope="session")
def alerts() -> Iterator[AlertReceiver]:
    receiver = AlertReceiver()
    yield receiver
    receiver.httpd.shutdown()


@pytest.fixture(scope="session")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    server = GitServer(tmp_path_factory.mktemp("git-root"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def agent(admin: Kube, alerts: AlertReceiver,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    """The agent, in-process, authenticated as its ServiceAccount (RBAC for real)."""
    kube = admin.with_token(agent_token(admin), "gitops-lab-agent")
    options = AgentOptions(poll_interval=0.5, alert_webhook=alerts.url,
                           cache_dir=tmp_path_factory.mktemp("agent-repos"))
    running = Agent(kube, options).start()
    assert running.wait_ready(30)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def apps(admin: Kube) -> Apps:
    return Apps(admin)


@pytest.fixture
def lab_app(agent: Agent, git_server: GitServer, apps: Apps, admin: Kube,
            tmp_path: Path) -> Iterator[LabApp]:
    name = f"t-{uuid.uuid4().hex[:6]}"
    app = LabApp(name, git_server, tmp_path / "wc", apps, admin)
    yield app
    apps.delete(name)
    with contextlib.suppress(KubeError):  # already gone
        admin.delete("v1", "Namespace", name, propagation="Background")
