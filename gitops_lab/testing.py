"""pytest plugin shipped with gitops-lab: one real local control plane for a whole test session.
Registered through the `pytest11` entry point, so installing gitops-lab is all it takes.

Use it in your own tests, with no conftest.py and no import::

    import pytest

    @pytest.mark.cluster
    def test_my_deployment(lab_cluster, lab_namespace):
        out = lab_cluster.kubectl("apply", "-n", lab_namespace, "-f", "deploy.yaml")
        assert out.returncode == 0, out.stderr
        out = lab_cluster.kubectl("rollout", "status", "-n", lab_namespace,
                                  "deployment/web", "--timeout=60s")
        assert out.returncode == 0, out.stderr

    def test_with_the_python_client(kubeconfig):
        from kubernetes import client, config
        api = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
        assert api.list_node().items

Fixtures:
  lab_cluster    (session) a `LabCluster`: `.kubeconfig` (Path), `.provider` (the LocalCluster),
                 `.bin_dir` (kubectl & co.), `.kubectl(*args)` -> CompletedProcess, `.env`.
  kubeconfig     (session) `lab_cluster.kubeconfig`.
  lab_namespace  (function) a fresh namespace, deleted after the test.

The cluster is gitops-lab's `local` provider: etcd, kube-apiserver (RBAC on), controller-manager,
scheduler and kwok's simulated node on 127.0.0.1. The API is real; pods are scheduled and
reported Running/Ready by kwok, but no container runs. Up takes ~3 s once the binaries are
built (the first run builds them with Go: ~6–7 min on 2 cores, with progress lines).

Environment:
  GITOPS_LAB_TEST_CLUSTER=NAME   cluster name (default `gitops-lab-test`, state in
                                 ~/.cache/gitops-lab/clusters/NAME).
  GITOPS_LAB_KEEP_CLUSTER=1      leave the cluster running after the session; the next session
                                 reuses it at once (objects from earlier runs stay too).

Tests that use `lab_cluster` or `kubeconfig` get the `cluster` marker, so `pytest -m "not
cluster"` runs only the rest. A session holds its cluster alone: a second pytest session
started meanwhile gets a cluster of its own (NAME-<pid>, always stopped at its end).
Importing this module does no cluster work.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pytest

from gitops_lab.cluster.base import preserve_current as preserve_current_cluster

if TYPE_CHECKING:
    from gitops_lab.cluster import LocalCluster

__all__ = ["DEFAULT_TEST_CLUSTER", "LabCluster", "kubeconfig", "lab_cluster", "lab_namespace"]

DEFAULT_TEST_CLUSTER = "gitops-lab-test"
CLUSTER_FIXTURES = ("lab_cluster", "kubeconfig", "lab_namespace")


@dataclass(frozen=True)
class LabCluster:
    """The session's cluster, as the tests see it."""

    name: str
    provider: LocalCluster
    kubeconfig: Path
    bin_dir: Path

    @property
    def env(self) -> dict[str, str]:
        """os.environ with the lab's binaries first on PATH and KUBECONFIG set."""
        env = dict(os.environ)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = False, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the lab's kubectl against this cluster; stdout/stderr captured as text."""
        return subprocess.run(
            [str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )


# ---- plumbing --------------------------------------------------------------------------------
def _say(config: pytest.Config, line: str) -> None:
    """Show a progress line even while pytest captures output (a cold build takes minutes)."""
    capman = config.pluginmanager.getplugin("capturemanager")
    ctx = capman.global_and_fixture_disabled() if capman else contextlib.nullcontext()
    with ctx:
        print(f"[gitops-lab] {line}", file=sys.stderr, flush=True)


def _claim(name: str) -> IO[str] | None:
    """Hold cluster NAME for this session (an exclusive flock), or None if a session has it."""
    from gitops_lab.paths import clusters_root

    path = clusters_root() / f".{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _sweep_private_clusters(name: str) -> None:
    """Stop `NAME-<pid>` clusters left by sessions that were killed before their teardown."""
    from gitops_lab.cluster import LocalCluster
    from gitops_lab.paths import clusters_root

    for state in clusters_root().glob(f"{name}-*"):
        if state.is_dir() and state.name[len(name) + 1:].isdigit():
            claim = _claim(state.name)
            if claim is not None:
                with claim:
                    LocalCluster(state.name).down()
                (clusters_root() / f".{state.name}.lock").unlink(missing_ok=True)


# ---- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def lab_cluster(request: pytest.FixtureRequest) -> Iterator[LabCluster]:
    """One local control plane for the whole session; stopped at the end unless kept."""
    from gitops_lab.cluster import LocalCluster
    from gitops_lab.paths import bin_dir

    name = os.environ.get("GITOPS_LAB_TEST_CLUSTER") or DEFAULT_TEST_CLUSTER
    keep = os.environ.get("GITOPS_LAB_KEEP_CLUSTER", "") not in ("", "0")
    _sweep_private_clusters(name)
    # A session holds its cluster exclusively: two sessions sharing one cluster would see each
    # other's cluster-wide objects (CRDs, agents). A second concurrent session gets its own.
    claim, private = _claim(name), False
    if claim is None:
        own = f"{name}-{os.getpid()}"
        _say(request.config, f"cluster {name!r} is in use by another pytest session; "
                             f"this session uses its own, {own!r}")
        name, keep, claim, private = own, False, _claim(own), True
        assert claim is not None
    provider = LocalCluster(name)
    with claim:
        _say(request.config, f"bringing up local cluster {name!r} "
                             "(the first run builds the binaries: ~6–7 min)")
        with preserve_current_cluster():
            kubeconfig = provider.up(progress=lambda line: _say(request.config, line))
        try:
            yield LabCluster(name, provider, kubeconfig, bin_dir())
        finally:
            if keep:
                _say(request.config, f"keeping cluster {name!r} (GITOPS_LAB_KEEP_CLUSTER=1); "
                                     f"kubeconfig {kubeconfig}")
            else:
                provider.down()
            if private:
                from gitops_lab.paths import clusters_root

                (clusters_root() / f".{name}.lock").unlink(missing_ok=True)


@pytest.fixture(scope="session")
def kubeconfig(lab_cluster: LabCluster) -> Path:
    """The session cluster's kubeconfig (admin client certificate)."""
    return lab_cluster.kubeconfig


@pytest.fixture
def lab_namespace(lab_cluster: LabCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test, deleted (without waiting) afterwards."""
    stem = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{stem or 'test'}-{secrets.token_hex(3)}"
    lab_cluster.kubectl("create", "namespace", name, check=True)
    try:
        yield name
    finally:
        lab_cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


# ---- hooks -----------------------------------------------------------------------------------
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cluster: needs the local control plane (brought up once per session)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(f in getattr(item, "fixturenames", ()) for f in CLUSTER_FIXTURES):
            item.add_marker(pytest.mark.cluster)
