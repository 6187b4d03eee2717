"""A small OCI Distribution (registry v2 API) client: list tags (following `Link` pages), push
blobs and manifests. Used by the image controller to scan and by images/oci.py (the lab's "CI").
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import urllib3

__all__ = ["ENDPOINTS_ENV", "RegistryClient", "RegistryError", "TagList", "registry_endpoint"]

_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
MAX_PAGES = 1000
MAX_TAGS = 100_000


class RegistryError(Exception):
    """A registry request failed. `reason` is a condition reason: RegistryUnreachable,
    RepositoryNotFound, Unauthorized, RegistryError."""

    def __init__(self, message: str, reason: str = "RegistryError", status: int = 0) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


@dataclass
class TagList:
    tags: list[str]
    requests: int  # HTTP requests it took (pages)
    seconds: float = 0.0
    pages: list[int] = field(default_factory=list)


def _errors(data: bytes) -> str:
    try:
        body = json.loads(data or b"{}")
        errs = body.get("errors") or []
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errs) or \
            data.decode(errors="replace")[:200]
    except (ValueError, AttributeError):
        return data.decode(errors="replace")[:200]


ENDPOINTS_ENV = "GITOPS_LAB_REGISTRY_ENDPOINTS"


def registry_endpoint(registry: str) -> str | None:
    """Where to reach REGISTRY from here, when that is not its own name:
    $GITOPS_LAB_REGISTRY_ENDPOINTS is `name=url[,name=url…]`. The in-cluster agent on kind
    gets `127.0.0.1:5001=http://registry.gitops-lab:5000`: images are named as the node pulls
    them (the node's containerd maps the same name to the registry container), while the
    pod's own 127.0.0.1 holds no registry."""
    for pair in os.environ.get(ENDPOINTS_ENV, "").split(","):
        name, _, url = pair.strip().partition("=")
        if name == registry and url:
            return url.rstrip("/")
    return None


class RegistryClient:
    """One registry (`host:port`); plain HTTP for loopback, HTTPS otherwise. Thread-safe."""

    def __init__(self, registry: str, *, plain_http: bool | None = None,
                 timeout: float = 5.0, page_size: int = 1000) -> None:
        self.registry = registry
        if plain_http is None:
            host = registry.rsplit(":", 1)[0]
            plain_http = host in ("localhost", "::1", "[::1]") or host.startswith("127.")
        self.base = registry_endpoint(registry) or \
            f"{'http' if plain_http else 'https'}://{registry}"
        self.timeout = timeout
        self.page_size = page_size
        self._pool = urllib3.PoolManager(num_pools=2, maxsize=8, retries=False)

    def _request(self, method: str, url: str, *, body: bytes | None = None,
                 headers: Mapping[str, str] | None = None,
                 timeout: float | None = None) -> urllib3.BaseHTTPResponse:
        try:
            return self._pool.request(
                method, url if url.startswith("http") else self.base + url, body=body,
                headers=dict(headers or {}), redirect=False,
                timeout=urllib3.Timeout(connect=min(self.timeout, 3.0),
                                        read=timeout or self.timeout))
        except urllib3.exceptions.HTTPError as exc:
            cause = str(getattr(exc, "reason", "") or exc)
            if "refused" in cause.lower():
                cause = "connection refused (is it running? `gitops-lab registry status`)"
            elif "timed out" in cause.lower():
                cause = f"no answer within {self.timeout:g}s"
            raise RegistryError(f"registry {self.registry} is unreachable: {cause}",
                                "RegistryUnreachable") from None

    def _check(self, resp: urllib3.BaseHTTPResponse, what: str, repository: str) -> None:
        if resp.status < 400:
            return
        detail = _errors(resp.data)
        if resp.status == 404 and ("NAME_UNKNOWN" in detail or "tags/list" in what):
            raise RegistryError(f"repository {repository!r} not found in registry "
                                f"{self.registry} (push an image to it first)",
                                "RepositoryNotFound", 404)
        if resp.status in (401, 403):
            raise RegistryError(f"registry {self.registry} refused {what}: HTTP {resp.status} "
                                "(authentication is not supported by the lab)", "Unauthorized",
                                resp.status)
        raise RegistryError(f"registry {self.registry}: {what} failed with HTTP {resp.status}: "
                            f"{detail}", "RegistryError", resp.status)

    # ---- reading ---------------------------------------------------------------------------
    def ping(self) -> bool:
        try:
            return self._request("GET", "/v2/").status == 200
        except RegistryError:
            return False

    def tags(self, repository: str, page_size: int | None = None) -> TagList:
        """Every tag of `repository`, following `Link: <…>; rel="next"` pages."""
        t0 = time.perf_counter()
        n = page_size or self.page_size
        url: str | None = f"/v2/{repository}/tags/list?n={n}"
        tags: list[str] = []
        pages: list[int] = []
        while url is not None:
            if len(pages) >= MAX_PAGES or len(tags) > MAX_TAGS:
                raise RegistryError(f"registry {self.registry}: {repository} lists more than "
                                    f"{MAX_TAGS} tags in {len(pages)} pages; refusing to go on")
            resp = self._request("GET", url)
            self._check(resp, f"GET {url}", repository)
            try:
                page = json.loads(resp.data).get("tags") or []
            except (ValueError, AttributeError):
                raise RegistryError(f"registry {self.registry}: {url} returned no JSON tag "
                                    "list") from None
            tags.extend(str(t) for t in page)
            pages.append(len(page))
            link = resp.headers.get("Link")
            m = _LINK_NEXT.search(link or "")
            url = urljoin(self.base + "/", m[1]) if m else None
        return TagList(tags, len(pages), time.perf_counter() - t0, pages)

    def manifest(self, repository: str, reference: str) -> tuple[str, dict[str, Any]]:
        """(content type, manifest) of `repository:reference`."""
        accept = ", ".join((
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ))
        resp = self._request("GET", f"/v2/{repository}/manifests/{reference}",
                             headers={"Accept": accept})
        self._check(resp, f"GET manifest {repository}:{reference}", repository)
        return str(resp.headers.get("Content-Type", "")), json.loads(resp.data)

    # ---- writing ---------------------------------------------------------------------------
    def has_blob(self, repository: str, digest: str) -> bool:
        resp = self._request("HEAD", f"/v2/{repository}/blobs/{digest}")
        return resp.status == 200

    def push_blob(self, repository: str, digest: str, data: bytes) -> bool:
        """Monolithic upload (POST then PUT ?digest=); False when the blob was already there."""
        if self.has_blob(repository, digest):
            return False
        resp = self._request("POST", f"/v2/{repository}/blobs/uploads/")
        self._check(resp, "start a blob upload", repository)
        location = resp.headers.get("Location")
        if not location:
            raise RegistryError(f"registry {self.registry}: blob upload gave no Location")
        url = urljoin(self.base + "/", location)
        url += ("&" if "?" in url else "?") + f"digest={digest}"
        resp = self._request("PUT", url, body=data, timeout=60,
                             headers={"Content-Type": "application/octet-stream",
                                      "Content-Length": str(len(data))})
        self._check(resp, f"upload blob {digest[:19]}", repository)
        return True

    def push_manifest(self, repository: str, tag: str, manifest: bytes, media_type: str) -> str:
        """PUT the manifest under `tag`; returns its digest."""
        resp = self._request("PUT", f"/v2/{repository}/manifests/{tag}", body=manifest,
                             headers={"Content-Type": media_type})
        self._check(resp, f"push manifest {repository}:{tag}", repository)
        return str(resp.headers.get("Docker-Content-Digest", ""))

    def close(self) -> None:
        self._pool.clear()
