"""Leader election on the real control plane: two agents on one namespace elect exactly one
leader and only it writes; SIGTERM hands the Lease over in seconds; a dead holder's Lease is
taken when it expires; a leader that loses the Lease stops writing at once.
Each test uses its own namespace (Applications and Lease), so the session agent never joins."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from agent_helpers import st

from gitops_lab.agent import Agent, AgentOptions
from gitops_lab.agent.leader import LEASE_INFO
from gitops_lab.apps import Apps, application
from gitops_lab.kube import Kube, KubeError
from gitops_lab.labgit import GitServer, WorkingCopy

pytestmark = pytest.mark.cluster
REPO_ROOT = Path(__file__).resolve().parents[2]


class CountingKube(Kube):
    """A real API connection that also notes every write the API server accepted, Lease
    requests apart: "a standby never writes" is then a list that must stay empty."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writes: list[str] = []
        self.write_times: list[float] = []  # monotonic, when each (accepted) write was sent
        self.lease_calls: list[str] = []

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        if "/leases" in path:
            self.lease_calls.append(method)
            return super().request(method, path, **kwargs)
        sent = time.monotonic()
        result = super().request(method, path, **kwargs)
        if method != "GET":
            self.writes.append(f"{method} {path}")
            self.write_times.append(sent)
        return result


def _cms(n: int, tag: str = "v1") -> dict[str, str]:
    return {f"app/cm-{i}.yaml": yaml.safe_dump(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}"},
         "data": {"tag": tag}}) for i in range(n)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _http(url: str, body: dict[str, Any] | None = None) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""  # not listening (yet)


def _until(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)


def _lease(admin: Kube, ns: str) -> dict[str, Any]:
    return admin.request("GET", LEASE_INFO.path(ns, "gitops-lab-agent"))


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _rewrite_lease(admin: Kube, ns: str, **spec: Any) -> dict[str, Any]:
    """Write the Lease as another party would (read, change, PUT; again on a conflict with a
    renewal in between); returns the Lease as written."""
    for _ in range(20):
        lease = _lease(admin, ns)
        stamp = _stamp()
        lease["spec"] = {**lease["spec"], "acquireTime": stamp, "renewTime": stamp, **spec}
        try:
            return admin.request("PUT", LEASE_INFO.path(ns, "gitops-lab-agent"), body=lease)
        except KubeError as exc:
            if not exc.conflict:
                raise
    raise AssertionError("the Lease kept changing under the test's writes")


@pytest.fixture
def repo(git_server: GitServer, tmp_path: Path) -> Iterator[tuple[str, WorkingCopy]]:
    name = f"le-{uuid.uuid4().hex[:6]}"
    git_server.create_repo(name, _cms(2))
    yield name, WorkingCopy(git_server.url(name), tmp_path / "wc")


def _push(wc: WorkingCopy, tag: str) -> str:
    wc.write(_cms(2, tag))
    sha = wc.commit(tag)
    wc.push()
    return sha


def test_two_agents_elect_exactly_one_leader_and_the_standby_never_writes(
        lab_cluster: Any, admin: Kube, git_server: GitServer, lab_namespace: str,
        repo: tuple[str, WorkingCopy], tmp_path: Path) -> None:
    ns, (name, wc) = lab_namespace, repo
    kubes = {n: CountingKube.from_kubeconfig(lab_cluster.kubeconfig) for n in ("a", "b")}
    # a 3 s Lease: the window below spans several lease durations, so only renewals
    # (not a long lease) keep the standby out
    agents = {n: Agent(kubes[n], AgentOptions(
        namespace=ns, poll_interval=0.5, lease_duration=3, identity=f"agent-{n}",
        cache_dir=tmp_path / f"repos-{n}")) for n in ("a", "b")}
    for agent in agents.values():
        agent.start()
    apps = Apps(admin, ns)
    started = time.monotonic()
    try:
        leader = _until(lambda: next((a for a in agents.values() if a.ready()), None), 15,
                        "one agent becomes the ready leader")
        standby = next(a for a in agents.values() if a is not leader)
        assert not standby.is_leader and not standby.ready()
        lease = _lease(admin, ns)["spec"]
        assert lease["holderIdentity"] == leader.identity
        assert lease["leaseDurationSeconds"] == 3
        _until(lambda: standby.leader == leader.identity, 5, "the standby sees the leader")

        # the HTTP view: both alive, only the leader ready, the gauge says who leads
        assert _http(f"{leader.url}/healthz")[0] == _http(f"{standby.url}/healthz")[0] == 200
        assert _http(f"{leader.url}/readyz")[0] == 200
        assert _http(f"{standby.url}/readyz")[0] == 503
        assert "gitops_lab_agent_leader 1.0" in _http(f"{leader.url}/metrics")[1]
        assert "gitops_lab_agent_leader 0.0" in _http(f"{standby.url}/metrics")[1]
        code, body = _http(f"{standby.url}/webhook", {"repository": {"url": "x"}})
        assert code == 503 and leader.identity in body, body

        apps.apply(application(name, git_server.url(name), "app", namespace=ns,
                               dest_namespace=ns))
        apps.wait(name, lambda a: st(a, "sync", "status") == "Synced", timeout=20,
                  what="Synced by the leader")
        sha = _push(wc, "v2")
        apps.wait(name, lambda a: st(a, "sync", "revision") == sha
                  and st(a, "sync", "status") == "Synced", timeout=20, what="the new commit")
        while time.monotonic() - started < 10:  # > 3 lease durations
            assert not standby.is_leader, "the standby took the Lease of a live leader"
            time.sleep(0.1)
        window = time.monotonic() - started

        assert standby.terms == 0 and leader.terms == 1
        kube_of = {id(agents[n]): kubes[n] for n in agents}
        assert kube_of[id(standby)].writes == [], "a standby wrote"
        lead_writes = kube_of[id(leader)].writes
        # a renewal is one PUT every retry period (0.6 s for a 3 s Lease); no GET after the first
        calls = kube_of[id(leader)].lease_calls
        assert calls.count("GET") <= 1, calls
        assert window / 1.5 <= calls.count("PUT") <= window / 0.6 + 2, (window, calls)
        print(f"leader's Lease requests in {window:.1f} s: {len(calls)} ({calls.count('PUT')} PUT)")
        assert any(w.endswith(f"/applications/{name}/status") for w in lead_writes), lead_writes
        label = f'app="{ns}/{name}"'
        assert f"gitopslab_reconcile_total{{{label},result=\"ok\"}}" in \
            _http(f"{leader.url}/metrics")[1]
        assert label not in _http(f"{standby.url}/metrics")[1]
    finally:
        for agent in agents.values():
            agent.stop()
        apps.delete(name)


def test_sigterm_on_the_leader_process_hands_over_to_the_standby_in_seconds(
        lab_cluster: Any, admin: Kube, git_server: GitServer, lab_namespace: str,
        repo: tuple[str, WorkingCopy], tmp_path: Path) -> None:
    ns, (name, wc) = lab_namespace, repo
    apps = Apps(admin, ns)
    procs: dict[str, tuple[subprocess.Popen[bytes], str, Path]] = {}
    try:
        for pod in ("agent-one", "agent-two"):
            port, log = _free_port(), tmp_path / f"{pod}.log"
            env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / pod), "POD_NAME": pod,
                   "PYTHONPATH": os.environ.get("PYTHONPATH", str(REPO_ROOT))}
            with log.open("wb") as sink:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "gitops_lab.agent", "--kubeconfig",
                     str(lab_cluster.kubeconfig), "--namespace", ns, "--as-admin",
                     "--http-address", f"127.0.0.1:{port}", "--poll-interval", "0.5"],
                    stdout=sink, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env)
            procs[pod] = (proc, f"http://127.0.0.1:{port}", log)
        for pod, (proc, url, log) in procs.items():
            deadline = time.monotonic() + 20
            while _http(f"{url}/healthz")[0] != 200:
                assert proc.poll() is None, f"{pod} exited: {log.read_text()}"
                assert time.monotonic() < deadline, f"{pod}: /healthz never answered 200"
                time.sleep(0.1)

        def ready() -> list[str]:
            return [p for p, (_, url, _) in procs.items() if _http(f"{url}/readyz")[0] == 200]

        leaders = _until(ready, 20, "a leader")
        time.sleep(1)
        assert ready() == leaders and len(leaders) == 1, f"ready: {ready()}"
        leader = leaders[0]
        standby = next(p for p in procs if p != leader)
        assert _lease(admin, ns)["spec"]["holderIdentity"] == leader
        apps.apply(application(name, git_server.url(name), "app", namespace=ns,
                               dest_namespace=ns))
        apps.wait(name, lambda a: st(a, "sync", "status") == "Synced", timeout=20,
                  what="Synced")
        transitions = int(_lease(admin, ns)["spec"].get("leaseTransitions") or 0)

        proc, _, _ = procs[leader]
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        standby_url = procs[standby][1]
        _until(lambda: _http(f"{standby_url}/readyz")[0] == 200, 10, "the standby takes over")
        failover = time.monotonic() - t0
        assert proc.wait(timeout=15) == 0, "SIGTERM must end the leader cleanly"
        spec = _lease(admin, ns)["spec"]
        assert spec["holderIdentity"] == standby
        assert spec["leaseTransitions"] == transitions + 1
        print(f"failover after SIGTERM: {failover:.2f} s")
        assert failover < 5, f"the standby took {failover:.1f} s to lead"

        sha = _push(wc, "after-failover")
        t1 = time.monotonic()
        apps.wait(name, lambda a: st(a, "sync", "revision") == sha
                  and st(a, "sync", "status") == "Synced", timeout=20,
                  what="the commit pushed after the failover")
        print(f"commit → Synced on the new leader: {time.monotonic() - t1:.2f} s")
        old_log = procs[leader][2].read_text()
        new_log = procs[standby][2].read_text()
        assert "became leader" in old_log and "released Lease" in old_log, old_log
        assert f"standing by (leader is {leader})" in new_log, new_log
        assert "became leader" in new_log, new_log
    finally:
        for proc, _, _ in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        apps.delete(name)
        for pod, (_, _, log) in procs.items():  # shown by pytest when the test fails
            print(f"---- {pod} log (tail) ----\n" + "\n".join(
                log.read_text(errors="replace").splitlines()[-25:]))


def test_a_lease_left_by_a_dead_holder_is_taken_when_it_expires(
        admin: Kube, lab_namespace: str, tmp_path: Path) -> None:
    ns = lab_namespace
    stamp = _stamp()
    admin.request("POST", LEASE_INFO.path(ns), body={
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "gitops-lab-agent", "namespace": ns},
        "spec": {"holderIdentity": "dead-agent", "leaseDurationSeconds": 3,
                 "acquireTime": stamp, "renewTime": stamp, "leaseTransitions": 4}})
    agent = Agent(admin, AgentOptions(namespace=ns, identity="heir",
                                      cache_dir=tmp_path / "repos")).start()
    t0 = time.monotonic()
    try:
        time.sleep(1.5)
        assert not agent.is_leader, "took a Lease that had not expired"
        assert agent.leader == "dead-agent"
        assert _http(f"{agent.url}/readyz")[0] == 503
        assert _http(f"{agent.url}/healthz")[0] == 200
        assert agent.wait_ready(10), "the expired Lease was never taken"
        took = time.monotonic() - t0
        spec = _lease(admin, ns)["spec"]
        assert spec["holderIdentity"] == "heir"
        assert spec["leaseTransitions"] == 5
        assert spec["leaseDurationSeconds"] == 15
        print(f"dead holder's 3 s Lease taken after {took:.2f} s")
        assert 2.9 <= took < 6
    finally:
        agent.stop()
    spec = _lease(admin, ns)["spec"]
    assert not spec.get("holderIdentity"), f"not released on stop: {spec}"
    assert spec["leaseTransitions"] == 5


def test_a_leader_that_loses_its_lease_stops_writing_at_once_and_stands_by(
        lab_cluster: Any, admin: Kube, git_server: GitServer, lab_namespace: str,
        repo: tuple[str, WorkingCopy], tmp_path: Path) -> None:
    ns, (name, wc) = lab_namespace, repo
    kube = CountingKube.from_kubeconfig(lab_cluster.kubeconfig)
    agent = Agent(kube, AgentOptions(namespace=ns, poll_interval=0.5, lease_duration=3,
                                     identity="holder", cache_dir=tmp_path / "repos")).start()
    apps = Apps(admin, ns)
    try:
        assert agent.wait_ready(15)
        apps.apply(application(name, git_server.url(name), "app", namespace=ns,
                               dest_namespace=ns))
        app = apps.wait(name, lambda a: st(a, "sync", "status") == "Synced", timeout=20,
                        what="Synced")
        first = st(app, "sync", "revision")
        # someone else takes the Lease (as a new leader would after a network partition)
        lease = _rewrite_lease(admin, ns, holderIdentity="usurper", leaseDurationSeconds=3600,
                               leaseTransitions=_lease(admin, ns)["spec"]["leaseTransitions"] + 1)
        t0 = time.monotonic()
        _until(lambda: not agent.is_leader, 5, "the agent notices it lost the Lease")
        print(f"lost leadership noticed after {time.monotonic() - t0:.2f} s")
        assert _http(f"{agent.url}/readyz")[0] == 503
        _until(lambda: "gitops_lab_agent_leader 0.0" in _http(f"{agent.url}/metrics")[1], 2,
               "the leader gauge drops to 0")
        writes = list(kube.writes)
        sha = _push(wc, "while-standing-by")
        time.sleep(3)  # 6 Git polls
        assert st(apps.get(name), "sync", "revision") == first, "a standby synced"
        assert kube.writes == writes, f"written after losing the Lease: {kube.writes[len(writes):]}"
        assert agent.leader == "usurper"
        # the usurper goes away cleanly: the agent leads again and catches up
        lease = _rewrite_lease(admin, ns, holderIdentity="", leaseDurationSeconds=1)
        assert agent.wait_ready(5), "did not lead again after the Lease was released"
        apps.wait(name, lambda a: st(a, "sync", "revision") == sha
                  and st(a, "sync", "status") == "Synced", timeout=20,
                  what="the commit pushed while standing by")
        assert agent.terms == 2
        assert _lease(admin, ns)["spec"]["leaseTransitions"] == \
            lease["spec"]["leaseTransitions"] + 1
    finally:
        agent.stop()
        apps.delete(name)


def test_a_deleted_lease_is_recreated_by_its_leader_which_keeps_leading(
        admin: Kube, lab_namespace: str, tmp_path: Path) -> None:
    ns = lab_namespace
    agent = Agent(admin, AgentOptions(namespace=ns, lease_duration=3, identity="keeper",
                                      cache_dir=tmp_path / "repos")).start()
    try:
        assert agent.wait_ready(15)
        admin.request("DELETE", LEASE_INFO.path(ns, "gitops-lab-agent"))
        spec = _until(lambda: (admin.get_or_none("coordination.k8s.io/v1", "Lease",
                                                 "gitops-lab-agent", ns) or {}).get("spec"),
                      5, "the Lease is re-created")
        assert spec["holderIdentity"] == "keeper"
        assert agent.is_leader and agent.terms == 1, "leadership was interrupted"
    finally:
        agent.stop()


def test_no_leader_elect_reconciles_at_once_and_touches_no_lease(
        lab_cluster: Any, admin: Kube, lab_namespace: str, tmp_path: Path) -> None:
    ns, port = lab_namespace, _free_port()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "PYTHONPATH": os.environ.get("PYTHONPATH", str(REPO_ROOT))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitops_lab.agent", "--kubeconfig", str(lab_cluster.kubeconfig),
         "--namespace", ns, "--as-admin", "--http-address", f"127.0.0.1:{port}",
         "--no-leader-elect"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env)
    try:
        _until(lambda: _http(f"http://127.0.0.1:{port}/readyz")[0] == 200
               or proc.poll() is not None, 20, "/readyz without election")
        assert proc.poll() is None
        assert "gitops_lab_agent_leader 1.0" in _http(f"http://127.0.0.1:{port}/metrics")[1]
        assert admin.get_or_none("coordination.k8s.io/v1", "Lease", "gitops-lab-agent",
                                 ns) is None
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=15)[0].decode()
    assert proc.returncode == 0, out
    assert "no leader election" in out, out


def test_a_leader_that_loses_the_lease_mid_sync_stops_applying_at_once(
        lab_cluster: Any, admin: Kube, git_server: GitServer, lab_namespace: str,
        tmp_path: Path) -> None:
    ns, name, size = lab_namespace, f"mid-{uuid.uuid4().hex[:6]}", 400
    git_server.create_repo(name, _cms(size))
    kube = CountingKube.from_kubeconfig(lab_cluster.kubeconfig)
    agent = Agent(kube, AgentOptions(namespace=ns, lease_duration=2, identity="holder",
                                     cache_dir=tmp_path / "repos")).start()
    apps = Apps(admin, ns)

    def cms() -> int:
        return len([c for c in admin.list("v1", "ConfigMap", ns).get("items", [])
                    if c["metadata"]["name"].startswith("cm-")])

    try:
        assert agent.wait_ready(15)
        apps.apply(application(name, git_server.url(name), "app", namespace=ns,
                               dest_namespace=ns))
        _until(lambda: cms() >= 5, 30, "the sync starts applying")
        _rewrite_lease(admin, ns, holderIdentity="usurper", leaseDurationSeconds=3600)
        assert agent.elector is not None
        _until(lambda: not agent.elector.is_leader, 5, "the loss is noticed")  # type: ignore[union-attr]
        lost = time.monotonic()
        applied = cms()
        time.sleep(3)
        # requests already on the wire may still land; none may be *sent* after the loss
        late = [round(t - lost, 2) for t in kube.write_times if t > lost]
        assert not late, f"writes sent this long after the Lease was lost: {late}"
        assert cms() <= applied + 8, "objects kept being applied after the Lease was lost"
        print(f"lost the Lease with {applied} of {size} ConfigMaps applied; "
              f"{cms()} after 3 s")
        assert applied < size, "the sync finished before the Lease was taken: use more objects"
        assert st(apps.get(name), "sync", "status") != "Synced"
    finally:
        agent.stop()
        apps.delete(name)


def test_readyz_says_why_an_agent_cannot_lead(admin: Kube, tmp_path: Path) -> None:
    missing = f"no-such-ns-{uuid.uuid4().hex[:6]}"
    agent = Agent(admin, AgentOptions(namespace=missing, lease_duration=3,
                                      cache_dir=tmp_path / "repos")).start()
    try:
        _until(lambda: "creating the Lease" in _http(f"{agent.url}/readyz")[1], 5,
               "/readyz names the failure")
        code, body = _http(f"{agent.url}/readyz")
        assert code == 503
        assert f"not the leader: creating the Lease {missing}/gitops-lab-agent failed" in body
        assert "not found" in body, body
        assert _http(f"{agent.url}/healthz")[0] == 200  # alive: a probe must not restart it
        assert not agent.wait_ready(1)
    finally:
        agent.stop()
