"""The lab on a real kind cluster: containers really run. The agent is a pod pulling from the
in-cluster Git server, the sample app answers on 127.0.0.1, a GREETING committed to Git
reaches the page, a broken release fails its readiness probe, and the pieces survive being
restarted. The cluster goes down at the end leaving no container, network or changed sysctl.

Needs a Docker daemon (`gitops-lab docker start`). Skipped without one, unless
GITOPS_LAB_KIND_TESTS=1 (CI), where a missing daemon is a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops_lab.cluster.docker import HOST_SYSCTLS, docker_available
from gitops_lab.cluster.kind import KindCluster
from gitops_lab.lab import Lab
from gitops_lab.paths import cache_root

NAME = "gitops-lab-kind-test"
pytestmark = [pytest.mark.kind, pytest.mark.timeout(900)]


def _sysctls() -> dict[str, str]:
    values = {}
    for key in HOST_SYSCTLS:
        with contextlib.suppress(OSError):
            values[key] = (Path("/proc/sys") / key.replace(".", "/")).read_text().strip()
    return values


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False).stdout


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    if not docker_available():
        if os.environ.get("GITOPS_LAB_KIND_TESTS") == "1":
            pytest.fail("GITOPS_LAB_KIND_TESTS=1 but no Docker daemon answers")
        pytest.skip("no Docker daemon answers (`gitops-lab docker start`)")
    KindCluster(NAME).down()
    # what the host had before any kind node changed it: recorded by `docker start` or the
    # first kind cluster (a node still running from elsewhere may have changed them since)
    recorded = cache_root() / "dockerd" / "host-sysctls.json"
    before = _sysctls()
    if recorded.exists():
        before.update({k: v for k, v in json.loads(recorded.read_text()).items()
                       if k in HOST_SYSCTLS})
    modules_before = Path("/lib/modules").exists()
    started = time.monotonic()
    lab = Lab.connect(provider="kind", name=NAME)
    print(f"\nLab.connect(provider='kind') from nothing: {time.monotonic() - started:.1f} s")
    try:
        yield lab
    finally:
        lab.cleanup(cluster=True)
        assert NAME not in _docker("ps", "-a", "--format", "{{.Names}}"), "node container left"
        others = _docker("ps", "-aq", "--filter", "label=io.x-k8s.kind.cluster").split()
        if others:  # another kind cluster still runs: it still needs the network and sysctls
            print(f"\n{len(others)} other kind node(s) running: host checks skipped")
        else:
            assert _sysctls() == before, "host sysctls not restored"
            assert Path("/lib/modules").exists() == modules_before, "/lib/modules left behind"
            networks = _docker("network", "ls", "--format", "{{.Name}}").split()
            assert "kind" not in networks, f"the kind network was left behind: {networks}"


def _page(lab: Lab) -> str:
    try:
        return lab.fetch_app(timeout=2)
    except Exception:  # the Service may need a moment after a rollout (kube-proxy sync)
        return ""


def _wait(what: str, check: Any, timeout: float = 90.0, interval: float = 0.25) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_where_things_run(lab: Lab) -> None:
    assert lab.provider_kind == "kind"
    assert lab.agent_mode == "in-cluster"
    assert lab.app_url is not None and lab.app_url.startswith("http://127.0.0.1:")
    assert lab.repo_url == "git://git-server.gitops-lab:9418/lab.git"
    pods = json.loads(lab.kubectl("-n", "gitops-lab", "get", "pods", "-o", "json"))["items"]
    running = {p["metadata"]["labels"].get("app.kubernetes.io/name"): p["status"]["phase"]
               for p in pods}
    assert running.get("gitops-lab-agent") == "Running", running
    assert running.get("git-server") == "Running", running
    # the agent's HTTP port is reachable from the host through the NodePort
    info = lab.agent_info()
    assert info is not None and info["pods"], info
    # the node's memory, for the issue note
    stats = _docker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}").splitlines()
    print("\nmemory:", "; ".join(line for line in stats if line.startswith(NAME)))


def test_sample_app_answers_and_a_commit_reaches_the_page(lab: Lab) -> None:
    lab.reset_sample()
    _wait("the page with the committed GREETING", lambda: "Hello from Git" in _page(lab))
    page = _page(lab)
    assert re.search(r'id="version">1\.0\.0<', page), page
    text = lab.read("apps/guestbook/configmap.yaml")
    greeting = f"Hello from commit {int(time.time())}"
    start = time.monotonic()
    lab.commit({"apps/guestbook/configmap.yaml":
                text.replace('GREETING: "Hello from Git"', f'GREETING: "{greeting}"')},
               "Change the greeting")
    _wait("the new GREETING on the page", lambda: greeting in _page(lab), timeout=90)
    print(f"\ncommit → page changed: {time.monotonic() - start:.1f} s")


def test_a_new_release_rolls_out_and_a_broken_one_fails_readiness(lab: Lab) -> None:
    lab.reset_sample()
    deployment = lab.read("apps/guestbook/deployment.yaml")
    lab.commit({"apps/guestbook/deployment.yaml":
                deployment.replace("gitops-lab/guestbook:1.0.0", "gitops-lab/guestbook:1.1.0")},
               "Release 1.1.0")
    _wait("version 1.1.0 on the page", lambda: 'id="version">1.1.0<' in _page(lab))
    bad = lab.commit({"apps/guestbook/deployment.yaml":
                      deployment.replace("gitops-lab/guestbook:1.0.0",
                                         "gitops-lab/guestbook:1.2.0-broken")},
                     "Release 1.2.0 (broken)")
    lab.wait_for("guestbook", lambda a: (a.get("status") or {}).get("health", {}).get("status")
                 == "Degraded", what="the broken release to turn the app Degraded", timeout=90)
    pods = json.loads(lab.kubectl("-n", "guestbook", "get", "pods", "-o", "json"))["items"]
    broken = [p for p in pods if p["spec"]["containers"][0]["image"].endswith("-broken")]
    assert broken, "no pod of the broken release"
    for pod in broken:  # the container really runs; only its readiness probe fails
        status = pod["status"]["containerStatuses"][0]
        assert status["ready"] is False and "running" in status["state"], status
    # the old pods keep serving while the rollout is stuck
    assert 'id="version">1.1.0<' in _page(lab) or 'id="version">1.0.0<' in _page(lab)
    lab.revert(bad)
    lab.wait_for("guestbook", lambda a: (a.get("status") or {}).get("health", {}).get("status")
                 == "Healthy", what="the revert to bring the app back to Healthy", timeout=90)


def test_drift_on_real_pods_is_healed(lab: Lab) -> None:
    lab.reset_sample(self_heal=True)
    lab.kubectl("-n", "guestbook", "scale", "deployment/guestbook-ui", "--replicas=4")
    _wait("self-heal back to 2 replicas", lambda: json.loads(lab.kubectl(
        "-n", "guestbook", "get", "deployment/guestbook-ui", "-o", "json"))["spec"]["replicas"] == 2,
        timeout=30)
    # the Event is recorded after the revert is applied
    _wait("a SelfHealed event", lambda: bool(lab.events("guestbook", "SelfHealed")), timeout=20)


def test_agent_stops_cleanly_on_sigterm_and_is_restarted(lab: Lab) -> None:
    lab.reset_sample()
    pod = lab.agent_info()["pods"][0]  # type: ignore[index]
    lab.kubectl("-n", "gitops-lab", "exec", pod, "--", "sh", "-c", "kill -TERM 1")

    def restarted() -> bool:
        obj = json.loads(lab.kubectl("-n", "gitops-lab", "get", "pod", pod, "-o", "json"))
        status = obj["status"]["containerStatuses"][0]
        last = (status.get("lastState") or {}).get("terminated") or {}
        return bool(status["restartCount"] >= 1 and status["ready"] and last)

    _wait("the agent container to restart", restarted, timeout=90)
    obj = json.loads(lab.kubectl("-n", "gitops-lab", "get", "pod", pod, "-o", "json"))
    assert obj["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 0
    # and it still deploys what is committed
    head = lab.commit({"apps/guestbook/extra.yaml":
                       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: after-restart}\n"
                       "data: {x: '1'}\n"}, "Add a ConfigMap after the agent restarted")
    lab.wait_for("guestbook", lambda a: (a.get("status") or {}).get("sync", {}).get("revision")
                 == head, what="the restarted agent to sync the new commit", timeout=60)


def test_agent_pod_deleted_and_git_server_restarted(lab: Lab) -> None:
    lab.reset_sample()
    lab.kubectl("-n", "gitops-lab", "delete", "pod", "-l", "app.kubernetes.io/name=git-server",
                "--wait=true")
    lab.kubectl("-n", "gitops-lab", "delete", "pod", "-l",
                "app.kubernetes.io/name=gitops-lab-agent", "--wait=true")
    lab.ensure_agent(timeout=90)
    _wait("the Git server to answer again", lab.git.running, timeout=60)
    # the repository survived the Git server's restart (it lives on the node)
    head = lab.commit({"apps/guestbook/extra.yaml":
                       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: after-git-restart}\n"
                       "data: {x: '2'}\n"}, "A commit after the Git server restarted")
    lab.wait_for("guestbook", lambda a: (a.get("status") or {}).get("sync", {}).get("revision")
                 == head, what="the agent to sync a commit pushed after both restarted",
                 timeout=90)


def test_ci_pushes_the_operator_commits_the_node_pulls(lab: Lab) -> None:
    """Seed 1's pull pipeline on real pods: CI pushes 1.0.0 and 1.1.0 to the lab registry,
    the ImagePolicy (in the agent's pod) writes 1.1.0 to Git, the node pulls it from the
    registry container, and the page shows the new version. 2.0.0 is out of range."""
    lab.reset_sample()
    registry = lab.registry
    assert registry.startswith("127.0.0.1:")
    lab.ci_build("1.0.0")
    deployment = lab.read("apps/guestbook/deployment.yaml")
    marker = '# {"$imagepolicy": "gitops-lab:guestbook"}'
    pinned = deployment.replace("image: gitops-lab/guestbook:1.0.0",
                                f"image: {registry}/guestbook:1.0.0 {marker}")
    assert pinned != deployment
    head = lab.commit({"apps/guestbook/deployment.yaml": pinned}, "Run the image from the registry")
    lab.wait_for("guestbook", lambda a: (a.get("status") or {}).get("sync", {}).get("revision")
                 == head and a["status"].get("health", {}).get("status") == "Healthy",
                 what="pods pulled from the lab registry to be ready", timeout=120)
    lab.apps.apply(lab.image_policy(interval="1m"))
    before = lab.workcopy.head
    start = time.monotonic()
    lab.ci_build("1.1.0")
    lab.ci_build("2.0.0")  # out of the policy's range: ignored
    _wait("version 1.1.0 on the page", lambda: 'id="version">1.1.0<' in _page(lab), timeout=120)
    print(f"\nCI push → page shows 1.1.0: {time.monotonic() - start:.1f} s")
    lab.workcopy.pull()
    commits = [summary for sha, summary in lab.log(5)]
    new = list(lab.workcopy.repo.iter_commits(f"{before}..HEAD"))
    assert len(new) == 1, f"exactly one commit by the image updater: {commits}"
    assert f"{registry}/guestbook:1.1.0 {marker}" in lab.read("apps/guestbook/deployment.yaml")
    pods = json.loads(lab.kubectl("-n", "guestbook", "get", "pods", "-o", "json"))["items"]
    images = {s["image"] for p in pods for s in p["status"].get("containerStatuses", [])}
    assert f"{registry}/guestbook:1.1.0" in images, images
    lab.kubectl("-n", "gitops-lab", "delete", "imagepolicy", "guestbook", "--ignore-not-found")


def _lease_holder(lab: Lab) -> str:
    lease = json.loads(lab.kubectl("-n", "gitops-lab", "get", "lease", "gitops-lab-agent",
                                   "-o", "json"))
    return str(lease["spec"].get("holderIdentity") or "")


def _readyz(lab: Lab, pod: str) -> int:
    code = ("import urllib.request, urllib.error\n"
            "try:\n print(urllib.request.urlopen('http://127.0.0.1:8080/readyz').status)\n"
            "except urllib.error.HTTPError as e:\n print(e.code)\n")
    return int(lab.kubectl("-n", "gitops-lab", "exec", pod, "--", "python3", "-c", code).strip())


def test_two_agent_replicas_elect_one_leader_and_fail_over(lab: Lab) -> None:
    lab.reset_sample()
    lab.kubectl("-n", "gitops-lab", "scale", "deployment/gitops-lab-agent", "--replicas=2")
    try:
        from gitops_lab.install.incluster import wait_rollout

        wait_rollout(lab.kube, "gitops-lab-agent", timeout=120)
        pods = lab.agent_info()["pods"]  # type: ignore[index]
        assert len(pods) == 2, pods
        _wait("one of the two pods to hold the Lease", lambda: _lease_holder(lab) in pods, 60)
        leader = _lease_holder(lab)
        standby = next(p for p in pods if p != leader)
        assert _readyz(lab, leader) == 200 and _readyz(lab, standby) == 503
        # the leader goes away (SIGTERM, it releases the Lease): another pod takes over — the
        # standby, or the replacement the ReplicaSet starts at once, whichever asks first
        start = time.monotonic()
        lab.kubectl("-n", "gitops-lab", "delete", "pod", leader, "--wait=false")

        def new_leader() -> bool:
            holder = _lease_holder(lab)
            return bool(holder) and holder != leader

        _wait("another pod to take the Lease", new_leader, 60)
        print(f"\nfailover to {_lease_holder(lab)} (standby was {standby}): "
              f"{time.monotonic() - start:.1f} s")
        head = lab.commit({"apps/guestbook/extra.yaml":
                           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: after-failover}\n"
                           "data: {x: '3'}\n"}, "A commit after the leader pod went away")
        lab.wait_for("guestbook", lambda a: (a.get("status") or {}).get("sync", {})
                     .get("revision") == head, what="the new leader to sync", timeout=60)
    finally:
        lab.kubectl("-n", "gitops-lab", "scale", "deployment/gitops-lab-agent", "--replicas=1")
