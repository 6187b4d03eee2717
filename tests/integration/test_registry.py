"""The lab registry process (a real Distribution registry) and `gitops-lab registry|ci` verbs:
idempotent up, port fallback, notifications re-pointed by a restart, clean down. No cluster.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops_lab.images import registry_server
from gitops_lab.images.oci import build_image, push_image
from gitops_lab.images.registry import RegistryClient, RegistryError
from gitops_lab.images.registry_server import LabRegistry, RegistryServerError

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[LabRegistry]:
    registry = LabRegistry("t", root=tmp_path / "registry")
    yield registry
    registry.down()


def test_up_is_idempotent_and_down_stops_it(reg: LabRegistry) -> None:
    port = _free_port()
    address = reg.up(port=port)
    assert address == f"127.0.0.1:{port}"
    pid = reg.status().pid
    assert reg.up() == address and reg.status().pid == pid  # nothing restarted
    assert RegistryClient(address).ping()
    # a new notification URL restarts it on the same port, and the config says so
    assert reg.up(notify="http://127.0.0.1:9/registry-webhook") == address
    status = reg.status()
    assert status.pid != pid and status.notify == "http://127.0.0.1:9/registry-webhook"
    assert "registry-webhook" in reg.config_file.read_text()
    assert reg.down() is True
    assert not reg.status().running
    assert not os.path.exists(f"/proc/{status.pid}/cmdline") or \
        str(reg.config_file) not in Path(f"/proc/{status.pid}/cmdline").read_text()
    assert reg.down() is False  # idempotent
    with pytest.raises(RegistryError) as err:
        RegistryClient(address).tags("x")
    assert err.value.reason == "RegistryUnreachable" and "connection refused" in str(err.value)


def test_storage_survives_a_restart(reg: LabRegistry) -> None:
    address = reg.up(port=_free_port())
    client = RegistryClient(address)
    push_image(client, "keep", build_image(b"x" * 10), ["1.0.0"])
    reg.down()
    address = reg.up()
    assert RegistryClient(address).tags("keep").tags == ["1.0.0"]


def test_default_port_taken_falls_back_to_a_free_one(reg: LabRegistry,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        monkeypatch.setattr(registry_server, "DEFAULT_PORT", taken)
        address = reg.up()
        assert address != f"127.0.0.1:{taken}"
        assert RegistryClient(address).ping()
        with pytest.raises(RegistryServerError, match="already in use"):
            LabRegistry("t2", root=reg.root.parent / "other").up(port=taken)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gitops_lab", *args], capture_output=True,
                          text=True, env=env, timeout=120, cwd=ROOT)


def test_cli_registry_up_status_ci_build_down(tmp_path: Path) -> None:
    env = {**os.environ, "GITOPS_LAB_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": str(ROOT)}
    # the Go build cache of the real lab: `ci build` reuses the cached sample-app binary
    real_cache = Path(os.environ.get("GITOPS_LAB_CACHE") or Path.home() / ".cache/gitops-lab")
    if (real_cache / "goapps").exists():
        (tmp_path / "cache").mkdir()
        (tmp_path / "cache" / "goapps").symlink_to(real_cache / "goapps")
    port = _free_port()
    try:
        out = _cli("registry", "up", "--name", "cli", "--port", str(port), env=env)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip().splitlines()[-1] == f"127.0.0.1:{port}"
        out = _cli("registry", "status", "--name", "cli", "-o", "json", env=env)
        assert out.returncode == 0 and json.loads(out.stdout)["address"] == f"127.0.0.1:{port}"
        # no --notify: the agent `gitops-lab agent run` starts by default
        assert json.loads(out.stdout)["notify"] == "http://127.0.0.1:8080/registry-webhook"
        out = _cli("ci", "build", "1.0.0", "--registry-name", "cli", "--tag", "latest", env=env)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip().splitlines()[-1] == f"127.0.0.1:{port}/guestbook:1.0.0"
        assert sorted(RegistryClient(f"127.0.0.1:{port}").tags("guestbook").tags) == \
            ["1.0.0", "latest"]
    finally:
        out = _cli("registry", "down", "--name", "cli", env=env)
    assert out.returncode == 0, out.stderr
    out = _cli("registry", "status", "--name", "cli", env=env)
    assert out.returncode == 3 and "not running" in out.stderr
    out = _cli("ci", "build", "1.0.0", "--registry-name", "cli", env=env)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].startswith("error: registry 'cli' is not running;"
                                                          " hint:")
