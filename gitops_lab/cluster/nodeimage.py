"""The kind node image, built on this machine with nothing pulled from a container registry.

`kind build node-image` cannot work offline (it fetches pause, etcd, CoreDNS, kindnetd and the
storage provisioner inside its build container), so the lab assembles the same image itself,
the way kind's images/base Dockerfile and node-image build do it:

  1. kubelet, kubeadm, kube-proxy — the pinned Kubernetes release, same wrapper module as the
     control-plane binaries (binaries.py);
  2. CoreDNS (a build with only the plugins kubeadm's Corefile uses) and pause — goapps/;
  3. a Debian bookworm root filesystem made by debootstrap from the machine's apt mirror
     (bookworm: trixie's systemd does not boot on cgroup v1 hosts);
  4. kind's base files (entrypoint, systemd units, containerd config) from the kind module;
  5. the component images kubeadm expects (FROM scratch + one binary each, tagged exactly as
     kubeadm names them), preloaded into the node's containerd store;
  6. `docker import` of the result as `gitops-lab/node:<version>`.

Everything is cached under the lab's cache; the image carries a label with a hash of its
inputs, so it is rebuilt only when one of them changes. No CNI image is obtainable here
(kindnetd is not on the module proxy): the node ships a static bridge CNI configuration, which
serves a single-node cluster — the only shape the lab creates.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from gitops_lab.cluster.binaries import (
    KIND_VERSION,
    KUBERNETES_VERSION,
    Progress,
    _build_kubernetes,
    _go,
    _go_env,
    _missing_in,
    ensure_binaries,
)
from gitops_lab.cluster.docker import docker_available, lacks_sys_resource, runc_wrapper_script
from gitops_lab.cluster.gobuild import COREDNS_VERSION, go_app
from gitops_lab.cluster.imagebuild import (
    INPUTS_LABEL,
    NodeImageError,
    debootstrap_rootfs,
    docker_import,
    image_label,
    run_tool,
    scratch_image,
    tool_hint,
)
from gitops_lab.paths import build_dir, cache_root, node_bin_dir

__all__ = [
    "NODE_BINARIES",
    "NODE_IMAGE",
    "NODE_PACKAGES",
    "ensure_node_image",
    "node_binaries",
]

NODE_IMAGE = f"gitops-lab/node:{KUBERNETES_VERSION}"
NODE_BINARIES = ("kubelet", "kubeadm", "kube-proxy")
PAUSE_TAGS = ("3.10.1", "3.10")
ETCD_IMAGE_TAG = "3.6.6-0"  # what kubeadm v1.35 names; the lab's etcd build runs in it
NODE_PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "conntrack", "iptables", "nftables", "iproute2",
    "ethtool", "util-linux", "mount", "kmod", "libseccomp2", "pigz", "bash",
    "ca-certificates", "curl", "jq", "procps", "containerd", "runc",
    "containernetworking-plugins", "libsystemd0", "socat", "ebtables", "ipset",
)
CNI_CONFLIST = {
    "cniVersion": "0.4.0",
    "name": "gitops-lab",
    "plugins": [
        {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": True,
         "hairpinMode": True,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]],
                  "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}


def _timed(progress: Progress, label: str, started: float) -> None:
    progress(f"  ✓ {label} in {time.monotonic() - started:.0f} s")


def node_binaries(progress: Progress) -> Path:
    """kubelet, kubeadm and kube-proxy of the pinned release (cold: ~2–5 min on 2 cores)."""
    out = node_bin_dir()
    out.mkdir(parents=True, exist_ok=True)
    if _missing_in(out, NODE_BINARIES):
        _build_kubernetes(out, progress, NODE_BINARIES)
    return out


def _kind_base_files() -> Path:
    go = _go()
    work = build_dir("kind-base")
    work.mkdir(parents=True, exist_ok=True)
    env = _go_env(work)
    env["GOFLAGS"] = "-mod=mod"
    out = run_tool([go, "mod", "download", "-json", f"sigs.k8s.io/kind@{KIND_VERSION}"],
                   f"go mod download sigs.k8s.io/kind@{KIND_VERSION}", cwd=work, env=env)
    files = Path(str(json.loads(out)["Dir"])) / "images" / "base" / "files"
    if not files.is_dir():
        raise NodeImageError(f"kind's base files are missing in the kind module: {files}")
    return files


def _stage_kube_proxy(rootfs: Path, kube_proxy: Path, stage: Path) -> None:
    """kube-proxy's image: the binary plus iptables (nft and legacy), conntrack, nft, ipset
    and the shared libraries they load, copied from the node's Debian root filesystem."""
    if stage.exists():
        shutil.rmtree(stage)
    tools = ["/usr/sbin/xtables-nft-multi", "/usr/sbin/xtables-legacy-multi",
             "/usr/sbin/conntrack", "/usr/sbin/nft", "/usr/sbin/ipset"]
    for sub in ("usr/sbin", "usr/local/bin", "etc", "tmp", "run", "var/run"):
        (stage / sub).mkdir(parents=True, exist_ok=True)
    for tool in tools:
        shutil.copy2(rootfs / tool.lstrip("/"), stage / tool.lstrip("/"))
    for name in ("iptables", "iptables-save", "iptables-restore",
                 "ip6tables", "ip6tables-save", "ip6tables-restore"):
        (stage / "usr/sbin" / name).symlink_to("xtables-nft-multi")
        (stage / "usr/sbin" / name.replace("tables", "tables-nft")).symlink_to("xtables-nft-multi")
        (stage / "usr/sbin" / name.replace("tables", "tables-legacy")).symlink_to("xtables-legacy-multi")
    xtables = "usr/lib/x86_64-linux-gnu/xtables"
    shutil.copytree(rootfs / xtables, stage / xtables, symlinks=True)
    wanted = list(tools) + [f"/{xtables}/{so.name}" for so in (rootfs / xtables).glob("*.so")]
    libs: set[str] = set()
    for binary in wanted:
        out = subprocess.run(["chroot", str(rootfs), "ldd", binary], capture_output=True,
                             text=True, check=False).stdout
        libs.update(re.findall(r"=>\s+(/\S+)", out))
        libs.update(re.findall(r"^\s*(/\S*ld-linux\S*)", out, re.M))
    for lib in sorted(libs):
        dest = stage / lib.lstrip("/")
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(rootfs / lib.lstrip("/"), dest)  # follows symlinks
    for name in ("protocols", "services", "ethertypes"):
        if (rootfs / "etc" / name).exists():
            shutil.copy2(rootfs / "etc" / name, stage / "etc" / name)
    (stage / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (stage / "etc/group").write_text("root:x:0:\n")
    shutil.copy2(kube_proxy, stage / "usr/local/bin/kube-proxy")


def _component_images(rootfs: Path, node_bin: Path, cp_bin: Path, coredns: Path, pause: Path,
                      work: Path, progress: Progress) -> tuple[Path, list[str]]:
    started = time.monotonic()
    kv = KUBERNETES_VERSION
    tags: list[str] = []
    for tag in PAUSE_TAGS:
        scratch_image(f"registry.k8s.io/pause:{tag}", {"/pause": pause}, ["/pause"])
        tags.append(f"registry.k8s.io/pause:{tag}")
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        tag = f"registry.k8s.io/{name}:{kv}"
        scratch_image(tag, {f"/usr/local/bin/{name}": cp_bin / name}, None)
        tags.append(tag)
    scratch_image(f"registry.k8s.io/etcd:{ETCD_IMAGE_TAG}", {"/usr/local/bin/etcd": cp_bin / "etcd"},
                  None)
    tags.append(f"registry.k8s.io/etcd:{ETCD_IMAGE_TAG}")
    scratch_image(f"registry.k8s.io/coredns/coredns:{COREDNS_VERSION}", {"/coredns": coredns},
                  ["/coredns"])
    tags.append(f"registry.k8s.io/coredns/coredns:{COREDNS_VERSION}")
    stage = work / "kube-proxy-stage"
    _stage_kube_proxy(rootfs, node_bin / "kube-proxy", stage)
    scratch_image(f"registry.k8s.io/kube-proxy:{kv}", {"/": stage}, None)
    tags.append(f"registry.k8s.io/kube-proxy:{kv}")
    archive = work / "preload.tar"
    run_tool(["docker", "save", "-o", str(archive), *tags], "docker save of the component images")
    _timed(progress, f"{len(tags)} component images", started)
    return archive, tags


def _preload(archive: Path, containerd_root: Path, work: Path) -> None:
    """Import ARCHIVE into a containerd content store at CONTAINERD_ROOT (the node's
    /var/lib/containerd) with a throw-away containerd on the host, pinned like kind's."""
    if shutil.which("containerd") is None or shutil.which("ctr") is None:
        raise NodeImageError("containerd is needed to preload the node's images; hint: "
                             + tool_hint("containerd"))
    state = Path(tempfile.mkdtemp(prefix="gitops-lab-ctrd-"))
    sock = state / "containerd.sock"
    config = state / "config.toml"
    config.write_text(
        f'version = 2\nroot = "{containerd_root}"\nstate = "{state}"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{sock}"\n'
    )
    log = work / "preload-containerd.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(["containerd", "--config", str(config)], stdout=sink,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise NodeImageError(f"the preload containerd did not start; log {log}")
            time.sleep(0.2)
        with archive.open("rb") as data:
            out = subprocess.run(
                ["ctr", "-a", str(sock), "-n", "k8s.io", "images", "import",
                 "--label=io.cri-containerd.pinned=pinned", "--all-platforms", "--no-unpack",
                 "--digests", "-"], stdin=data, capture_output=True, check=False)
        if out.returncode != 0:
            raise NodeImageError("ctr images import failed: "
                                 + out.stderr.decode(errors="replace").strip()[-800:])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(state, ignore_errors=True)


def _install(src: Path, dest: Path, mode: int = 0o644) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_symlink() or dest.exists():
        dest.unlink()
    shutil.copy2(src, dest)
    dest.chmod(mode)


def _assemble(root: Path, kind_files: Path, node_bin: Path, cp_bin: Path, nosysres: bool) -> None:
    """Turn a copy of the Debian rootfs into a kind node, as kind's base image does."""
    for src in (kind_files / "usr/local/bin").iterdir():
        _install(src, root / "usr/local/bin" / src.name, 0o755)
    for src in (kind_files / "kind/bin").iterdir():
        _install(src, root / "kind/bin" / src.name, 0o755)
    _install(kind_files / "kind/README.txt", root / "kind/README.txt")
    for src in (kind_files / "LICENSES").iterdir():
        _install(src, root / "LICENSES" / src.name)
    _install(kind_files / "etc/crictl.yaml", root / "etc/crictl.yaml")
    _install(kind_files / "etc/default/kubelet", root / "etc/default/kubelet")
    for src in (kind_files / "etc/sysctl.d").iterdir():
        _install(src, root / "etc/sysctl.d" / src.name)
    for src in (kind_files / "etc/systemd/system").iterdir():
        if src.is_file():
            _install(src, root / "etc/systemd/system" / src.name)
    for src in (kind_files / "etc/systemd/system/kubelet.service.d").iterdir():
        _install(src, root / "etc/systemd/system/kubelet.service.d" / src.name)
    config = (kind_files / "etc/containerd/config.toml").read_text()
    if nosysres:
        # this host's root cannot grant CAP_SYS_RESOURCE: privileged pods (kube-proxy) go
        # through the same runc wrapper as the node itself, and containerd must not ask for
        # an oom_score_adj below its own
        wrapper = root / "usr/local/sbin/runc-nosysres"
        wrapper.parent.mkdir(parents=True, exist_ok=True)
        wrapper.write_text(runc_wrapper_script("/usr/sbin/runc"))
        wrapper.chmod(0o755)
        config = config.replace("restrict_oom_score_adj = false", "restrict_oom_score_adj = true")
        config = re.sub(r"^(\s*)SystemdCgroup = true",
                        r'\1SystemdCgroup = true\n\1BinaryName = "/usr/local/sbin/runc-nosysres"',
                        config, flags=re.M)
    # registry hosts from /etc/containerd/certs.d/<host:port>/hosts.toml: the lab's registry
    # container is named there when a kind lab starts it (gitops_lab/images/kind_registry.py)
    config += ('\n[plugins."io.containerd.grpc.v1.cri".registry]\n'
               '  config_path = "/etc/containerd/certs.d"\n')
    (root / "etc/containerd").mkdir(parents=True, exist_ok=True)
    (root / "etc/containerd/config.toml").write_text(config)
    # Debian's containerd, runc and CNI plugins where kind expects them
    for name in ("containerd", "ctr", "containerd-shim-runc-v2"):
        link = root / "usr/local/bin" / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(f"/usr/bin/{name}")
    cni = root / "opt/cni/bin"
    if cni.is_symlink() or cni.is_file():
        cni.unlink()
    elif cni.is_dir():
        shutil.rmtree(cni)
    cni.parent.mkdir(parents=True, exist_ok=True)
    cni.symlink_to("/usr/lib/cni")
    (root / "etc/kubernetes/manifests").mkdir(parents=True, exist_ok=True)
    script = r"""set -eu
find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
  /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
  /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
grep -q '^ReadKMsg=no' /etc/systemd/journald.conf || echo ReadKMsg=no >> /etc/systemd/journald.conf
ln -sf /usr/lib/systemd/systemd /sbin/init
systemctl enable kubelet.service containerd.service undo-mount-hacks.service >/dev/null 2>&1
systemctl mask systemd-binfmt.service >/dev/null 2>&1
hook='{"path": "/kind/bin/mount-product-files.sh"}'
ctr oci spec \
  | jq ".hooks.createContainer[.hooks.createContainer | length] |= . + $hook" \
  | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json
"""
    run_tool(["chroot", str(root), "/bin/bash", "-c", script], "preparing the node's systemd")
    for name in ("kubelet", "kubeadm"):
        _install(node_bin / name, root / "usr/bin" / name, 0o755)
    _install(cp_bin / "kubectl", root / "usr/bin/kubectl", 0o755)
    (root / "kind/version").write_text(KUBERNETES_VERSION)
    (root / "etc/cni/net.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/cni/net.d/10-gitops-lab.conflist").write_text(json.dumps(CNI_CONFLIST, indent=2))
    for junk in ("tmp", "run"):
        for item in (root / junk).glob("*"):
            if item.is_dir() and not item.is_symlink():
                shutil.rmtree(item, ignore_errors=True)
            else:
                item.unlink(missing_ok=True)
    (root / "etc/machine-id").write_text("")


def _inputs_hash(nosysres: bool) -> str:
    parts = [KUBERNETES_VERSION, KIND_VERSION, COREDNS_VERSION, ETCD_IMAGE_TAG, *PAUSE_TAGS,
             *NODE_PACKAGES, json.dumps(CNI_CONFLIST, sort_keys=True), str(nosysres),
             runc_wrapper_script()]
    # the build code itself: this file and the image tools it builds with
    parts += [Path(__file__).with_name(name).read_text() for name in ("nodeimage.py",
                                                                      "imagebuild.py")]
    for app in ("coredns", "pause"):
        parts.append((Path(__file__).parent.parent / "goapps" / app / "main.go").read_text())
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def ensure_node_image(progress: Progress | None = None, image: str = NODE_IMAGE) -> str:
    """Return IMAGE, building it first when it is missing or its inputs changed.
    Cold: ~8–12 min on 2 cores (after the control-plane binaries); warm: one `docker inspect`."""
    import sys

    say: Progress = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    if not docker_available():
        raise NodeImageError("no Docker daemon answers; hint: `gitops-lab docker start` (Debian: "
                             "apt-get install docker.io first), or start Docker Desktop")
    nosysres = lacks_sys_resource()
    inputs = _inputs_hash(nosysres)
    if image_label(image, INPUTS_LABEL) == inputs:
        return image
    started = time.monotonic()
    say(f"building the kind node image {image} (no registry is used: every piece is built here)")
    cp_bin = ensure_binaries(say).bin_dir
    node_bin = node_binaries(say)
    coredns = go_app("coredns", tag=COREDNS_VERSION, progress=say)
    pause = go_app("pause", progress=say)
    work = cache_root() / "kind-node" / KUBERNETES_VERSION
    work.mkdir(parents=True, exist_ok=True)
    rootfs = debootstrap_rootfs(
        work / f"rootfs-{hashlib.sha256(' '.join(NODE_PACKAGES).encode()).hexdigest()[:8]}",
        NODE_PACKAGES, say, "kind node")
    kind_files = _kind_base_files()
    archive, _tags = _component_images(rootfs, node_bin, cp_bin, coredns, pause, work, say)
    step = time.monotonic()
    root = work / "node-root"
    if root.exists():
        shutil.rmtree(root)
    run_tool(["cp", "-a", "--reflink=auto", str(rootfs), str(root)], "copying the node rootfs")
    _assemble(root, kind_files, node_bin, cp_bin, nosysres)
    containerd_root = root / "var/lib/containerd"
    if containerd_root.exists():
        shutil.rmtree(containerd_root)
    containerd_root.mkdir(parents=True)
    _preload(archive, containerd_root, work)
    _timed(say, "node filesystem with preloaded images", step)
    step = time.monotonic()
    docker_import(root, image,
                  ["ENV container=docker", 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]'],
                  {INPUTS_LABEL: inputs}, stopsignal="SIGRTMIN+3")
    shutil.rmtree(root, ignore_errors=True)
    archive.unlink(missing_ok=True)
    _timed(say, f"docker import {image}", step)
    say(f"kind node image {image} ready in {time.monotonic() - started:.0f} s")
    return image
