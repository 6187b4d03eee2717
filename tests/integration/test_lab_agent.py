"""Lab.ensure_agent / Lab.agent_info with leader election, on the real control plane with a
real `gitops-lab agent run` process: the lab's host agent counts as up only once it leads
(/readyz), so a chapter that then waits for a sync never waits on a standby. Here the
session's in-process agent holds the Lease of `gitops-lab`, so the lab's agent stands by."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from gitops_lab.agent import Agent
from gitops_lab.lab import Lab, LabError
from gitops_lab.labgit import GitServer

pytestmark = pytest.mark.cluster


def _status(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def test_a_standby_host_agent_is_not_up_and_is_not_started_twice(
        lab_cluster: Any, agent: Agent, git_server: GitServer, tmp_path: Path) -> None:
    assert agent.ready(), "the session agent should lead gitops-lab"
    lab = Lab(lab_cluster.provider, lab_cluster.kubeconfig, git_server, tmp_path / "lab",
              agent_mode="local")
    lab.state_dir.mkdir(parents=True)
    try:
        with pytest.raises(LabError) as err:
            lab.ensure_agent(timeout=8)
        message = str(err.value)
        assert "did not become ready (/readyz)" in message, message
        assert f"standby: the leader is {agent.identity}" in message, message
        info = json.loads((lab.state_dir / "agent.json").read_text())
        # the process runs and is healthy, but it is a standby: not "up" for the lab
        assert _status(f"{info['url']}/healthz")[0] == 200
        assert _status(f"{info['url']}/readyz") == (503, f"standby: the leader is "
                                                         f"{agent.identity}\n")
        assert lab.agent_info() is None and lab.agent_url == ""
        # asked again, the lab waits for the running agent instead of starting another one
        with pytest.raises(LabError):
            lab.ensure_agent(timeout=2)
        again = json.loads((lab.state_dir / "agent.json").read_text())
        assert again["pid"] == info["pid"], "a second agent was started"
    finally:
        lab.stop_agent()
    assert not (lab.state_dir / "agent.json").exists()
