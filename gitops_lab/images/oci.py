"""The lab's "CI": build a one-layer container image from a static binary, in pure Python, and
push it to a registry (Docker image manifest v2 schema 2: containerd and `docker pull` take it).
No Docker daemon: the layer is a reproducible gzip'd tar, the config a JSON document.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitops_lab.images.registry import RegistryClient

__all__ = [
    "CONFIG_MEDIA_TYPE",
    "LAYER_MEDIA_TYPE",
    "MANIFEST_MEDIA_TYPE",
    "Image",
    "build_image",
    "ci_build",
    "push_image",
]

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NONROOT = "65532"
EPOCH = "1970-01-01T00:00:00Z"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine)


@dataclass(frozen=True)
class Image:
    """A built image: its blobs and manifest, ready to push."""

    config: bytes
    layer: bytes  # gzip'd tar
    manifest: bytes

    @property
    def digest(self) -> str:
        return _digest(self.manifest)

    @property
    def config_digest(self) -> str:
        return _digest(self.config)

    @property
    def layer_digest(self) -> str:
        return _digest(self.layer)


def build_image(binary: bytes, *, path: str = "guestbook", version: str = "",
                port: int = 8080, labels: dict[str, str] | None = None) -> Image:
    """One layer holding `binary` at /<path> (mode 0755), Entrypoint ["/<path>"], the port
    exposed, user 65532 (nonroot), PATH set. Reproducible: same binary, same digests."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(path)
        info.size, info.mode, info.mtime = len(binary), 0o755, 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tar.addfile(info, io.BytesIO(binary))
    tar_bytes = raw.getvalue()
    layer = gzip.compress(tar_bytes, compresslevel=6, mtime=0)
    all_labels = dict(labels or {})
    if version:
        all_labels.setdefault("org.opencontainers.image.version", version)
    config = {
        "architecture": _arch(),
        "os": "linux",
        "created": EPOCH,
        "config": {
            "Entrypoint": [f"/{path}"],
            "ExposedPorts": {f"{port}/tcp": {}},
            "User": NONROOT,
            "Env": [PATH_ENV],
            "Labels": all_labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [_digest(tar_bytes)]},
        "history": [{"created": EPOCH, "created_by": f"gitops-lab ci: /{path} {version}".strip()}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "size": len(config_bytes),
                   "digest": _digest(config_bytes)},
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "size": len(layer), "digest": _digest(layer)}],
    }
    manifest_bytes = json.dumps(manifest, indent=3).encode()
    return Image(config_bytes, layer, manifest_bytes)


def push_image(client: RegistryClient, repository: str, image: Image,
               tags: Sequence[str]) -> str:
    """Upload the blobs (skipped when present) and PUT the manifest under every tag; returns
    the manifest digest."""
    client.push_blob(repository, image.layer_digest, image.layer)
    client.push_blob(repository, image.config_digest, image.config)
    digest = image.digest
    for tag in tags:
        digest = client.push_manifest(repository, tag, image.manifest, MANIFEST_MEDIA_TYPE) \
            or digest
    return digest


def ci_build(registry: str, version: str, *, repository: str = "guestbook",
             tags: Sequence[str] = (), broken: bool | None = None,
             progress: Callable[[str], None] | None = None) -> str:
    """Build the sample app at VERSION (Go, cached) and push it as `registry/repository:VERSION`
    (plus `tags`); returns the image reference `registry/repository:VERSION`."""
    from gitops_lab.cluster.gobuild import guestbook_binary

    binary: Path = guestbook_binary(version, broken=broken, progress=progress)
    image = build_image(binary.read_bytes(), path="guestbook", version=version)
    client = RegistryClient(registry)
    try:
        push_image(client, repository, image, [version, *tags])
    finally:
        client.close()
    return f"{registry}/{repository}:{version}"
