"""The image updater under leader election, on the real control plane with a real registry
and `git daemon`: only the leader scans, writes ImagePolicy status and pushes to Git; a
standby answers /registry-webhook with 503; a leader that loses the Lease stops its updater
(and pushes nothing from a scan in flight), and one that leads again scans afresh.
Each test uses its own namespace (Applications, ImagePolicies and Lease)."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from agent_helpers import st
from test_leader import CountingKube, _lease, _rewrite_lease, _until

from gitops_lab.agent import Agent, AgentOptions
from gitops_lab.apps import Apps, application
from gitops_lab.images.controller import IMAGEPOLICY_INFO
from gitops_lab.images.oci import build_image, push_image
from gitops_lab.images.policy import DEFAULT_AUTHOR
from gitops_lab.images.registry import RegistryClient
from gitops_lab.images.registry_server import LabRegistry
from gitops_lab.kube import Kube
from gitops_lab.labgit import GitServer

pytestmark = pytest.mark.cluster

FAKE = build_image(b"\x7fELF not really a binary\n" * 64, version="test")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(url: str, body: dict[str, Any]) -> tuple[int, str]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _metrics(agent: Agent) -> str:
    with urllib.request.urlopen(f"{agent.url}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """A registry of this test's own; notifications are sent by the tests themselves."""
    reg = LabRegistry(f"li-{uuid.uuid4().hex[:6]}", root=tmp_path / "registry")
    yield reg.up(port=_free_port())
    reg.down()


def _push_tags(registry: str, repo: str, *tags: str) -> None:
    client = RegistryClient(registry)
    try:
        push_image(client, repo, FAKE, list(tags))
    finally:
        client.close()


def _notification(repo: str, tag: str) -> dict[str, Any]:
    """A Distribution push notification envelope, as the registry sends it."""
    return {"events": [{"action": "push", "target": {
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "repository": repo, "tag": tag}}]}


class Setup:
    """A Git repo with a marked Deployment, its Application and an ImagePolicy, in `ns`."""

    def __init__(self, admin: Kube, git_server: GitServer, registry: str, ns: str) -> None:
        self.admin, self.git_server, self.ns = admin, git_server, ns
        self.name = f"img-{uuid.uuid4().hex[:6]}"
        self.image = f"{registry}/{self.name}"
        mark = f'# {{"$imagepolicy": "{ns}:{self.name}"}}'
        git_server.create_repo(self.name, {"app/deployment.yaml": f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: {self.image}:1.0.0 {mark}
"""})
        self.apps = Apps(admin, ns)

    def create(self) -> None:
        self.apps.apply(application(self.name, self.git_server.url(self.name), "app",
                                    namespace=self.ns, dest_namespace=self.ns))
        self.admin.apply({
            "apiVersion": "gitopslab.io/v1alpha1", "kind": "ImagePolicy",
            "metadata": {"name": self.name, "namespace": self.ns},
            "spec": {"image": self.image, "interval": "1s",
                     "policy": {"semver": {"range": ">=1.0.0 <2.0.0"}},
                     "update": {"applicationRef": {"name": self.name}}}},
            field_manager="test")

    def policy(self) -> dict[str, Any]:
        return self.admin.request("GET", IMAGEPOLICY_INFO.path(self.ns, self.name))

    def log(self) -> list[tuple[str, str, str]]:
        """(sha, author, subject) of main, newest first."""
        out = subprocess.run(["git", "--git-dir", str(self.git_server.repo_path(self.name)),
                              "log", "--format=%H%x09%an%x09%s", "main"],
                             capture_output=True, text=True, check=True).stdout
        return [tuple(line.split("\t", 2)) for line in out.splitlines()]  # type: ignore[misc]

    def updater_commits(self) -> list[str]:
        return [subject for _, author, subject in self.log() if author == DEFAULT_AUTHOR[0]]

    def wait_commit(self, tag: str, timeout: float = 20) -> None:
        want = f"{self.image}:{tag}"

        def written() -> bool:
            out = subprocess.run(
                ["git", "--git-dir", str(self.git_server.repo_path(self.name)), "show",
                 "main:app/deployment.yaml"], capture_output=True, text=True, check=True).stdout
            return want in out
        _until(written, timeout, f"the updater writes {want} to Git")

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            self.admin.request("DELETE", IMAGEPOLICY_INFO.path(self.ns, self.name))
        with contextlib.suppress(Exception):
            self.apps.delete(self.name)


def _agent(kube: Kube, ns: str, identity: str, tmp_path: Path) -> Agent:
    return Agent(kube, AgentOptions(namespace=ns, poll_interval=0.5, lease_duration=3,
                                    identity=identity, cache_dir=tmp_path / identity))


def _settled(read: Any, quiet: float = 1.0, timeout: float = 10.0) -> Any:
    """`read()` once it has returned the same value for `quiet` seconds."""
    value, since, deadline = read(), time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return value
    raise AssertionError(f"still changing after {timeout:.0f} s: {value}")


def _scans(agent: Agent, ns: str, name: str) -> float:
    total = 0.0
    for line in _metrics(agent).splitlines():
        if line.startswith("gitopslab_image_scans_total{") and f'policy="{ns}/{name}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_only_the_leader_runs_the_image_updater_and_a_new_term_restarts_it(
        lab_cluster: Any, admin: Kube, git_server: GitServer, lab_namespace: str,
        registry: str, tmp_path: Path) -> None:
    ns = lab_namespace
    setup = Setup(admin, git_server, registry, ns)
    kubes = {n: cast(CountingKube, CountingKube.from_kubeconfig(lab_cluster.kubeconfig))
             for n in ("a", "b")}
    agents = {n: _agent(kubes[n], ns, f"agent-{n}", tmp_path) for n in ("a", "b")}
    for agent in agents.values():
        agent.start()
    try:
        leader = _until(lambda: next((a for a in agents.values() if a.ready()), None), 15,
                        "one agent becomes the ready leader")
        standby = next(a for a in agents.values() if a is not leader)
        kube_of = {id(agents[n]): kubes[n] for n in agents}
        _until(lambda: standby.leader == leader.identity, 5, "the standby sees the leader")
        _push_tags(registry, setup.name, "1.0.0", "1.1.0")
        setup.create()
        setup.wait_commit("1.1.0")
        _until(lambda: (st(setup.policy(), "lastUpdate") or {}).get("images")
               == [f"{setup.image}:1.1.0"], 10, "the leader writes the policy's status")

        # the standby: 503 on /registry-webhook naming the leader, no scan, no write
        code, body = _post(f"{standby.url}/registry-webhook",
                           _notification(setup.name, "1.1.0"))
        assert code == 503 and leader.identity in body, (code, body)
        code, body = _post(f"{leader.url}/registry-webhook", _notification(setup.name, "1.1.0"))
        assert code == 200 and json.loads(body) == {"scanned": 1}, (code, body)
        assert _scans(leader, ns, setup.name) >= 1
        assert _scans(standby, ns, setup.name) == 0, "a standby scanned"
        assert kube_of[id(standby)].writes == [], "a standby wrote"
        assert not standby.images._threads, "a standby's image updater runs"
        commits = setup.updater_commits()
        assert len(commits) == 1 and commits[0].endswith(" to 1.1.0"), setup.log()

        # the Lease goes to someone else: neither agent scans, writes or pushes
        _rewrite_lease(admin, ns, holderIdentity="usurper", leaseDurationSeconds=3600,
                       leaseTransitions=_lease(admin, ns)["spec"]["leaseTransitions"] + 1)
        _until(lambda: not leader.is_leader, 5, "the leader notices it lost the Lease")
        _until(lambda: not leader.images._threads, 5, "the ex-leader's updater stops")
        writes = {n: list(k.writes) for n, k in kubes.items()}
        # a scan already in flight when the Lease went may still finish (and count; its
        # writes are fenced): the scan baseline is taken once the counter has settled
        scans = _settled(lambda: _scans(leader, ns, setup.name))
        _push_tags(registry, setup.name, "1.2.0")
        code, body = _post(f"{leader.url}/registry-webhook", _notification(setup.name, "1.2.0"))
        assert code == 503 and "usurper" in body, (code, body)
        time.sleep(3)  # three scan intervals of the policy
        assert len(setup.updater_commits()) == 1, f"pushed without the Lease: {setup.log()}"
        assert _scans(leader, ns, setup.name) == scans, "the ex-leader kept scanning"
        assert {n: list(k.writes) for n, k in kubes.items()} == writes, \
            "written after the Lease was lost"

        # the standby leaves; the Lease is released: the ex-leader leads again, its updater
        # restarts from a clean slate (same metrics registry: nothing registered twice)
        standby.stop()
        _rewrite_lease(admin, ns, holderIdentity="", leaseDurationSeconds=1)
        assert leader.wait_ready(10), "did not lead again after the Lease was released"
        assert leader.terms == 2
        setup.wait_commit("1.2.0")
        commits = setup.updater_commits()
        assert len(commits) == 2 and commits[0].endswith(" to 1.2.0"), setup.log()
        _until(lambda: (st(setup.policy(), "lastUpdate") or {}).get("images")
               == [f"{setup.image}:1.2.0"], 10, "the new term writes the policy's status")
        assert _scans(leader, ns, setup.name) > scans
    finally:
        for agent in agents.values():
            agent.stop()
        setup.cleanup()


def test_a_scan_in_flight_when_the_lease_is_lost_pushes_nothing(
        lab_cluster: Any, admin: Kube, git_server: GitServer, lab_namespace: str,
        registry: str, tmp_path: Path) -> None:
    ns = lab_namespace
    setup = Setup(admin, git_server, registry, ns)
    kube = cast(CountingKube, CountingKube.from_kubeconfig(lab_cluster.kubeconfig))
    agent = _agent(kube, ns, "holder", tmp_path).start()
    lost: list[float] = []
    released = threading.Event()

    def lose_the_lease(attempt: int) -> None:
        """Right before `git push`: someone else takes the Lease; wait until the agent sees
        it (its updater is being stopped meanwhile), then let the push go on."""
        if lost:
            return
        _rewrite_lease(admin, ns, holderIdentity="usurper", leaseDurationSeconds=3600)
        _until(lambda: not agent.is_leader, 5, "the loss is noticed")
        lost.append(time.monotonic())
        released.set()

    try:
        assert agent.wait_ready(15)
        head = setup.log()[0][0]
        agent.images.writer.before_push = lose_the_lease
        _push_tags(registry, setup.name, "1.0.0", "1.1.0")
        setup.create()
        assert released.wait(20), "the updater never got to its push"
        time.sleep(2)
        assert setup.log()[0][0] == head, f"pushed after losing the Lease: {setup.log()}"
        late = [round(t - lost[0], 2) for t in kube.write_times if t > lost[0]]
        assert not late, f"writes sent this long after the Lease was lost: {late}"
        assert not st(setup.policy(), "lastUpdate"), setup.policy().get("status")
        _until(lambda: not agent.images._threads, 5, "the updater stops with the term")
        assert not agent.is_leader and agent.leader == "usurper"
    finally:
        agent.images.writer.before_push = None
        agent.stop()
        setup.cleanup()
