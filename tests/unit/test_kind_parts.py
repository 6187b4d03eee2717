"""Pure pieces of the kind provider: capability detection, the runc wrapper (run for real with
bash and jq against a stand-in runc), the apt mirror lookup, GOPROXY without `direct`, the
CoreDNS Corefile without forwarding, the kind config and the in-cluster install manifests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gitops_lab.cluster.binaries import BinaryError, offline_goproxy
from gitops_lab.cluster.docker import lacks_sys_resource, runc_wrapper_script
from gitops_lab.cluster.imagebuild import NodeImageError, debian_mirror
from gitops_lab.cluster.kind import KindCluster, local_only_corefile
from gitops_lab.install import manifests


def _status(tmp_path: Path, capbnd: str) -> Path:
    path = tmp_path / "status"
    path.write_text(f"Name:\tpython\nCapInh:\t0000000000000000\nCapBnd:\t{capbnd}\n")
    return path


def test_cap_sys_resource_detected_from_the_bounding_set(tmp_path: Path) -> None:
    assert lacks_sys_resource(_status(tmp_path, "000001fffeffffff")) is True  # bit 24 clear
    assert lacks_sys_resource(_status(tmp_path, "000001ffffffffff")) is False
    assert lacks_sys_resource(tmp_path / "missing") is False


@pytest.mark.skipif(shutil.which("jq") is None, reason="the wrapper needs jq")
def test_runc_wrapper_drops_only_cap_sys_resource(tmp_path: Path) -> None:
    fake_runc = tmp_path / "runc"
    fake_runc.write_text("#!/bin/bash\necho \"runc $*\"\n")
    fake_runc.chmod(0o755)
    wrapper = tmp_path / "wrapper"
    wrapper.write_text(runc_wrapper_script(str(fake_runc)))
    wrapper.chmod(0o755)
    caps = ["CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_NET_ADMIN"]
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps(
        {"process": {"capabilities": {"bounding": caps, "effective": caps}}, "root": {"path": "x"}}))
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"capabilities": {"permitted": caps}, "args": ["sh"]}))

    out = subprocess.run([str(wrapper), "--root", "/r", "create", "--bundle", str(bundle), "c1"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"runc --root /r create --bundle {bundle} c1"
    config = json.loads((bundle / "config.json").read_text())
    assert config["process"]["capabilities"]["bounding"] == ["CAP_CHOWN", "CAP_NET_ADMIN"]
    assert config["process"]["capabilities"]["effective"] == ["CAP_CHOWN", "CAP_NET_ADMIN"]
    assert config["root"] == {"path": "x"}

    subprocess.run([str(wrapper), "exec", f"--process={process}", "c1"], check=True,
                   capture_output=True)
    assert json.loads(process.read_text())["capabilities"]["permitted"] == [
        "CAP_CHOWN", "CAP_NET_ADMIN"]
    # a spec without capabilities is left as it is
    (bundle / "config.json").write_text('{"process": {"args": ["true"]}}')
    subprocess.run([str(wrapper), "run", "-b", str(bundle), "c2"], check=True, capture_output=True)
    assert json.loads((bundle / "config.json").read_text()) == {"process": {"args": ["true"]}}


def test_debian_mirror_from_deb822_and_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian\nSuites: bookworm\n")
    assert debian_mirror(tmp_path) == "http://mirror.example/debian"
    (tmp_path / "sources.list.d" / "debian.sources").unlink()
    (tmp_path / "sources.list").write_text(
        "deb [arch=amd64] http://other.example/debian bookworm main\n")
    assert debian_mirror(tmp_path) == "http://other.example/debian"
    (tmp_path / "sources.list").write_text("deb http://example/ubuntu jammy main\n")
    with pytest.raises(NodeImageError, match="no Debian archive"):
        debian_mirror(tmp_path)


def test_goproxy_never_falls_back_to_direct() -> None:
    assert offline_goproxy("https://proxy.example,direct") == "https://proxy.example"
    assert offline_goproxy("https://a|https://b|direct") == "https://a,https://b"
    with pytest.raises(BinaryError, match="names no module proxy"):
        offline_goproxy("direct")
    with pytest.raises(BinaryError):
        offline_goproxy("off")


COREFILE = """.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
    }
    loop
    reload
    loadbalance
}
"""


def test_corefile_keeps_cluster_dns_and_drops_forwarding() -> None:
    out = local_only_corefile(COREFILE)
    assert "forward" not in out and "max_concurrent" not in out and "\n    loop\n" not in out
    for kept in ("kubernetes cluster.local", "lameduck 5s", "disable success cluster.local",
                 "reload", "prometheus :9153"):
        assert kept in out
    assert out.count("{") == out.count("}")
    assert local_only_corefile(out) == out
    one_line = local_only_corefile(".:53 {\n    forward . 8.8.8.8\n    cache 30\n}\n")
    assert one_line == ".:53 {\n    cache 30\n}\n"


def test_kind_config_maps_node_ports_to_loopback(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.setenv("GITOPS_LAB_CACHE", str(tmp_path))
    with socket.socket() as busy:  # a taken host port: another free one is used
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        from gitops_lab.cluster import kind

        monkeypatch.setattr(kind, "NODE_PORTS", (30080, taken))
        cluster = KindCluster("t")
        config = cluster._config()
    mappings = config["nodes"][0]["extraPortMappings"]
    assert all(m["listenAddress"] == "127.0.0.1" for m in mappings)
    assert mappings[1]["containerPort"] == taken and mappings[1]["hostPort"] != taken
    assert config["networking"]["disableDefaultCNI"] is True
    assert "failCgroupV1: false" in config["kubeadmConfigPatches"][0]
    cluster.state_dir.mkdir(parents=True)
    import yaml

    cluster.config_file.write_text(yaml.safe_dump(config))
    assert cluster.host_port(taken) == mappings[1]["hostPort"]
    assert cluster.host_port(12345) == 12345  # not mapped: the port itself


def test_in_cluster_manifests_name_only_images_built_here() -> None:
    docs = manifests("in-cluster")
    agent = next(d for d in docs if d["kind"] == "Deployment")
    container = agent["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("gitops-lab/") and \
        container["imagePullPolicy"] == "IfNotPresent"
    assert agent["spec"]["template"]["spec"]["serviceAccountName"] == "gitops-lab-agent"
    service = next(d for d in docs if d["kind"] == "Service")
    assert service["spec"]["ports"][0]["nodePort"] == 30081
    sample = Path(__file__).resolve().parents[2] / "gitops_lab" / "samples" / "guestbook"
    assert "image: gitops-lab/guestbook:1.0.0" in (sample / "deployment.yaml").read_text()
    assert os.path.exists(sample / "service.yaml")
