"""A host agent recorded by the lab counts as *this* lab's agent only while the kubeconfig still
names the API server it was started against: after the cluster is re-created under the same
name (`gitops-lab cluster down`, then up), the old process calls a server that is gone, so the
lab stops it and starts a fresh one instead of waiting on it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from gitops_lab.labagent import AgentSupervisor, api_server


def _kubeconfig(path: Path, server: str) -> None:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "contexts": [{"name": "lab", "context": {"cluster": "c", "user": "u"}}],
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {}}]}))


class _Lab(AgentSupervisor):
    def __init__(self, state_dir: Path, kubeconfig: Path) -> None:
        self.state_dir = state_dir
        self.kubeconfig = kubeconfig
        self.agent_mode = "local"


def test_api_server_reads_the_current_context(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    _kubeconfig(config, "https://127.0.0.1:41234")
    assert api_server(config) == "https://127.0.0.1:41234"
    assert api_server(tmp_path / "missing") == ""


def test_an_agent_of_a_recreated_cluster_is_retired(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    _kubeconfig(config, "https://127.0.0.1:41234")
    # a stand-in process whose command line looks like the agent's (what stop_agent_process checks)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)",
                             "gitops_lab", "agent", "run"])
    try:
        lab = _Lab(tmp_path, config)
        (tmp_path / "agent.json").write_text(json.dumps({
            "pid": proc.pid, "url": "http://127.0.0.1:1", "log": "",
            "kubeconfig": str(config), "server": api_server(config)}))
        assert lab._local_agent() is not None, "same API server: the recorded agent is ours"
        _kubeconfig(config, "https://127.0.0.1:45678")  # the cluster came back on another port
        assert lab._local_agent() is None
        deadline = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is not None, "the stale agent should have been stopped"
        assert not (tmp_path / "agent.json").exists()
    finally:
        proc.kill()
        proc.wait()
