"""The local control plane, end to end: workloads, RBAC with real tokens, idempotent `up`, and a
`down` that leaves no process behind even when the `up` that started them was SIGKILLed.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gitops_lab.cluster import LocalCluster
from gitops_lab.paths import bin_dir
from gitops_lab.testing import LabCluster, preserve_current_cluster

pytestmark = pytest.mark.cluster

CLI = [sys.executable, "-m", "gitops_lab"]


def _pids_mentioning(marker: str) -> list[int]:
    """Every live process (not this one) whose command line contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(entry.name))
    return found


def _processes(cluster: LocalCluster) -> dict[str, tuple[int, str]]:
    state = json.loads((cluster.state_dir / "state.json").read_text())
    return {name: (p["pid"], p["start"]) for name, p in state["processes"].items()}


def _wait_for(what: str, check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


# ---- the session cluster ---------------------------------------------------------------------
def test_deployment_reaches_three_available_replicas(
    lab_cluster: LabCluster, lab_namespace: str
) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": lab_namespace},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "registry.lab/web:1.0"}]},
            },
        },
    }
    out = lab_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(deployment))
    assert out.returncode == 0, out.stderr

    def available() -> int:
        got = lab_cluster.kubectl("get", "deployment", "web", "-n", lab_namespace, "-o", "json")
        return int(json.loads(got.stdout).get("status", {}).get("availableReplicas", 0))

    _wait_for("3 available replicas of deployment/web (see `kubectl get pods`)",
              lambda: available() == 3)
    pods = json.loads(lab_cluster.kubectl("get", "pods", "-n", lab_namespace, "-o", "json").stdout)
    assert len(pods["items"]) == 3
    assert {p["spec"]["nodeName"] for p in pods["items"]} == {"kwok-node-0"}
    assert all(p["status"]["phase"] == "Running" for p in pods["items"])


def _kubeconfig_parts(path: Path, tmp_path: Path) -> tuple[str, Path]:
    config = yaml.safe_load(path.read_text())
    cluster = config["clusters"][0]["cluster"]
    ca = tmp_path / "ca.crt"
    ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    return cluster["server"], ca


def test_serviceaccount_token_gets_only_what_rbac_grants(
    lab_cluster: LabCluster, lab_namespace: str, tmp_path: Path
) -> None:
    ns = lab_namespace
    rbac = [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "reader", "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "pod-reader", "namespace": ns},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "reader-reads-pods", "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": "pod-reader"},
         "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}]},
    ]
    out = lab_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(rbac))
    assert out.returncode == 0, out.stderr
    token_out = lab_cluster.kubectl("create", "token", "reader", "-n", ns, "--duration=10m")
    assert token_out.returncode == 0, token_out.stderr
    token = token_out.stdout.strip()
    server, ca = _kubeconfig_parts(lab_cluster.kubeconfig, tmp_path)

    # kubectl with only the token: an empty kubeconfig, so no admin certificate can leak in.
    empty = tmp_path / "empty-kubeconfig"
    empty.write_text("")

    def as_reader(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(lab_cluster.bin_dir / "kubectl"), f"--kubeconfig={empty}",
             f"--server={server}", f"--certificate-authority={ca}", f"--token={token}", *args],
            capture_output=True, text=True, timeout=30, check=False,
        )

    whoami = as_reader("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert whoami.stdout == f"system:serviceaccount:{ns}:reader", whoami.stderr
    assert as_reader("get", "pods", "-n", ns).returncode == 0
    assert as_reader("auth", "can-i", "list", "pods", "-n", ns).stdout.strip() == "yes"
    for denied in (
        ("get", "secrets", "-n", ns),
        ("get", "pods", "-n", "default"),
        ("create", "configmap", "x", "-n", ns, "--from-literal=a=b"),
        ("delete", "pod", "anything", "-n", ns),
    ):
        out = as_reader(*denied)
        assert out.returncode != 0 and "forbidden" in out.stderr.lower(), (denied, out.stderr)

    # The same token through the official Python client.
    from kubernetes import client

    cfg = client.Configuration()
    cfg.host = server
    cfg.ssl_ca_cert = str(ca)
    cfg.api_key = {"authorization": token}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    api = client.CoreV1Api(client.ApiClient(cfg))
    assert api.list_namespaced_pod(ns).items == []
    with pytest.raises(client.ApiException) as denied_secret:
        api.list_namespaced_secret(ns)
    assert denied_secret.value.status == 403
    with pytest.raises(client.ApiException) as denied_cm:
        api.create_namespaced_config_map(
            ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x"))
        )
    assert denied_cm.value.status == 403


def test_up_twice_is_idempotent_and_fast(lab_cluster: LabCluster) -> None:
    before = _processes(lab_cluster.provider)
    with preserve_current_cluster():
        start = time.monotonic()
        again = LocalCluster(lab_cluster.name).up()
        api_seconds = time.monotonic() - start

        start = time.monotonic()
        cli = subprocess.run(
            [*CLI, "cluster", "up", "--provider", "local", "--name", lab_cluster.name],
            capture_output=True, text=True, timeout=60, check=False,
        )
        cli_seconds = time.monotonic() - start
    assert again == lab_cluster.kubeconfig
    assert api_seconds < 2.0, f"second up() took {api_seconds:.1f} s"
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.strip().splitlines()[-1] == str(lab_cluster.kubeconfig)
    assert "already up" in cli.stderr
    assert cli_seconds < 10.0, f"second `cluster up` took {cli_seconds:.1f} s"
    assert _processes(lab_cluster.provider) == before, "up restarted control-plane processes"
    assert lab_cluster.provider.status().running


def test_kubeconfig_works_with_kubectl_and_python_client(lab_cluster: LabCluster) -> None:
    out = lab_cluster.kubectl("get", "nodes", "-o", "name")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["node/kwok-node-0"]

    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=str(lab_cluster.kubeconfig), client_configuration=cfg)
    nodes = client.CoreV1Api(client.ApiClient(cfg)).list_node()
    assert [n.metadata.name for n in nodes.items] == ["kwok-node-0"]


def test_cli_status_and_env_for_a_running_cluster(lab_cluster: LabCluster) -> None:
    status = subprocess.run(
        [*CLI, "cluster", "status", "--name", lab_cluster.name, "-o", "json"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["running"] is True and data["provider"] == "local"
    assert data["kubeconfig"] == str(lab_cluster.kubeconfig)

    script = (f'eval "$({" ".join(CLI)} env --name {lab_cluster.name})" && '
              'command -v kubectl && kubectl get nodes -o name')
    shell = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False,
        env={k: v for k, v in os.environ.items() if k != "KUBECONFIG"},
    )
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.split() == [str(bin_dir() / "kubectl"), "node/kwok-node-0"]


LEARNER_TEST = """
import os

import pytest


@pytest.mark.cluster
def test_learner(lab_cluster, lab_namespace, kubeconfig):
    assert lab_cluster.name.startswith(os.environ["GITOPS_LAB_TEST_CLUSTER"] + "-")
    assert kubeconfig == lab_cluster.kubeconfig
    out = lab_cluster.kubectl("get", "namespace", lab_namespace, "-o", "name")
    assert out.stdout.strip() == "namespace/" + lab_namespace, out.stderr
"""


def test_a_concurrent_session_gets_a_cluster_of_its_own(
    lab_cluster: LabCluster, tmp_path: Path
) -> None:
    """The plugin as a learner uses it, while this session holds the shared test cluster."""
    (tmp_path / "test_learner.py").write_text(LEARNER_TEST)
    before = _processes(lab_cluster.provider)
    session = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_learner.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "GITOPS_LAB_TEST_CLUSTER": lab_cluster.name},
    )
    assert session.returncode == 0, session.stdout + session.stderr
    assert "1 passed" in session.stdout
    assert "in use by another pytest session" in session.stderr
    private = f"{lab_cluster.provider.state_dir}-"
    assert _pids_mentioning(private) == [], "the private cluster outlived its session"
    assert not list(lab_cluster.provider.state_dir.parent.glob(f"{lab_cluster.name}-*"))
    assert _processes(lab_cluster.provider) == before and lab_cluster.provider.status().running


# ---- a throwaway cluster of its own ----------------------------------------------------------
@pytest.fixture
def throwaway() -> Iterator[LocalCluster]:
    cluster = LocalCluster(f"gitops-lab-throwaway-{os.getpid()}")
    with preserve_current_cluster():
        try:
            yield cluster
        finally:
            cluster.down()


def test_down_leaves_no_process_even_after_up_was_sigkilled(throwaway: LocalCluster) -> None:
    marker = str(throwaway.state_dir) + "/"

    # 1. A clean up/down.
    throwaway.up()
    assert len(_pids_mentioning(marker)) == 5, "expected etcd, apiserver, cm, scheduler, kwok"
    throwaway.down()
    assert _pids_mentioning(marker) == []
    assert not throwaway.state_dir.exists()

    # 2. `cluster up` SIGKILLed midway: its children live on in their own sessions.
    up = subprocess.Popen(
        [*CLI, "cluster", "up", "--provider", "local", "--name", throwaway.name],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    started = time.monotonic()

    def apiserver_spawned() -> bool:
        try:
            return "kube-apiserver" in _processes(throwaway)
        except (OSError, ValueError, KeyError):
            return False

    _wait_for("`cluster up` to start kube-apiserver", apiserver_spawned, timeout=30)
    assert up.poll() is None, "`cluster up` finished before it could be killed midway"
    up.kill()
    up.wait(timeout=10)
    assert up.returncode == -9
    orphans = _pids_mentioning(marker)
    assert orphans, "nothing survived the SIGKILL: the test would prove nothing"
    print(f"killed `up` after {time.monotonic() - started:.1f} s; {len(orphans)} orphans")

    down = subprocess.run(
        [*CLI, "cluster", "down", "--name", throwaway.name],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert down.returncode == 0, down.stderr
    assert _pids_mentioning(marker) == [], "processes of the cluster outlived `down`"
    assert not throwaway.state_dir.exists()
    status = subprocess.run(
        [*CLI, "cluster", "status", "--name", throwaway.name],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert status.returncode == 3, status.stdout + status.stderr
