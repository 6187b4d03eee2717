"""A thin, fast Kubernetes REST client: raw JSON dicts, discovery, server-side apply, watch.
Below engine/ and agent/. Credentials come from the official client's kubeconfig loader
(or a ServiceAccount token); requests go through one pooled urllib3 connection manager.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from gitops_lab.api.types import FIELD_MANAGER, ResourceKey

__all__ = ["Kube", "KubeError", "ResourceInfo"]

Obj = dict[str, Any]
RETRIES = 5  # transient failures (connection reset, 429, 503): 50 ms … 1.6 s backoff


class KubeError(Exception):
    """An API request failed; `status` is the HTTP code (0 when the server did not answer)."""

    def __init__(self, status: int, reason: str, message: str, details: Obj | None = None):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.details = details or {}

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def gone(self) -> bool:
        return self.status == 410


@dataclass(frozen=True)
class ResourceInfo:
    """What discovery says about one kind: where its REST path is and whether it is namespaced."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace)}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name)}"
        return base


class Kube:
    """One API server connection. Thread-safe; share one per process."""

    def __init__(self, configuration: k8s_client.Configuration, *, user: str = "") -> None:
        self.host = configuration.host.rstrip("/")
        self.user = user
        self._configuration = configuration
        cert_reqs = "CERT_REQUIRED" if configuration.verify_ssl else "CERT_NONE"
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=32,
            cert_reqs=cert_reqs,
            ca_certs=configuration.ssl_ca_cert,
            cert_file=configuration.cert_file,
            key_file=configuration.key_file,
            retries=False,
        )
        self._discovery: dict[tuple[str, str], ResourceInfo] = {}
        self._discovery_lock = threading.Lock()
        self._discovered_at = 0.0
        self._fence: Callable[[], bool] | None = None
        self._fence_reason = ""

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_kubeconfig(cls, path: str | Path | None = None, context: str | None = None) -> Kube:
        configuration = k8s_client.Configuration()
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(path) if path else None,
            context=context,
            client_configuration=configuration,
        )
        return cls(configuration, user="kubeconfig")

    @classmethod
    def in_cluster(cls) -> Kube:
        configuration = k8s_client.Configuration()
        k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration)
        return cls(configuration, user="in-cluster")

    def with_token(self, token: str, user: str = "serviceaccount") -> Kube:
        """The same server and CA, authenticated by a bearer token (no client certificate)."""
        configuration = k8s_client.Configuration()
        configuration.host = self.host
        configuration.ssl_ca_cert = self._configuration.ssl_ca_cert
        configuration.verify_ssl = self._configuration.verify_ssl
        configuration.api_key = {"authorization": f"Bearer {token}"}
        return Kube(configuration, user=user)

    def fenced(self, allowed: Callable[[], bool], reason: str) -> Kube:
        """The same connection (pool, discovery) whose writes — every method but GET — fail
        with KubeError(reason "Fenced") while `allowed()` is False. Reads always pass.
        The agent writes through one of these, open only while it holds the leader Lease."""
        clone = copy.copy(self)
        clone._fence, clone._fence_reason = allowed, reason
        return clone

    # ---- raw requests --------------------------------------------------------------------
    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "gitops-lab"}
        if content_type:
            headers["Content-Type"] = content_type
        token = self._configuration.get_api_key_with_prefix("authorization")
        if token:
            headers["Authorization"] = token
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float = 30.0,
        retries: int = RETRIES,
    ) -> Obj:
        """One request; transient failures are retried `retries` times. `timeout` bounds
        the read (and the connect, up to 5 s) of each attempt."""
        if self._fence is not None and method != "GET" and not self._fence():
            raise KubeError(0, "Fenced", f"{method} {path}: {self._fence_reason}")
        url = self.host + path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        data = None if body is None else json.dumps(body).encode()
        delay = 0.05
        for attempt in range(retries + 1):
            try:
                resp = self._pool.request(
                    method,
                    url,
                    body=data,
                    headers=self._headers(content_type if data is not None else None),
                    timeout=urllib3.Timeout(connect=min(5.0, timeout), read=timeout),
                    preload_content=True,
                )
            except urllib3.exceptions.HTTPError as exc:
                if attempt < retries:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise KubeError(0, "Unreachable", f"{method} {path}: {exc}") from exc
            # 429 (priority and fairness) and 503 (e.g. a CRD's storage initialising) pass
            if resp.status in (429, 503) and attempt < retries:
                time.sleep(delay)
                delay *= 2
                continue
            break
        payload: Obj = {}
        if resp.data:
            try:
                payload = json.loads(resp.data)
            except ValueError:
                payload = {"message": resp.data.decode(errors="replace")[:500]}
        if resp.status >= 400:
            raise KubeError(
                resp.status,
                str(payload.get("reason", "")),
                str(payload.get("message") or f"{method} {path}: HTTP {resp.status}"),
                payload.get("details"),
            )
        return payload

    def watch(
        self, path: str, *, resource_version: str, timeout_seconds: int = 240, **query: Any
    ) -> Iterator[Obj]:
        """Yield watch events ({type, object}) until the server closes the stream."""
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": timeout_seconds,
            **query,
        }
        url = self.host + path + "?" + urlencode(params)
        try:
            resp = self._pool.request(
                "GET",
                url,
                headers=self._headers(None),
                timeout=urllib3.Timeout(connect=5.0, read=timeout_seconds + 30),
                preload_content=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise KubeError(0, "Unreachable", f"watch {path}: {exc}") from exc
        try:
            if resp.status >= 400:
                body = resp.read()
                msg = json.loads(body).get("message", "") if body else ""
                raise KubeError(resp.status, "", f"watch {path}: {msg or resp.status}")
            buffer = b""
            for chunk in resp.stream(65536):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        except urllib3.exceptions.HTTPError as exc:
            raise KubeError(0, "Unreachable", f"watch {path}: {exc}") from exc
        finally:
            resp.release_conn()

    # ---- discovery -----------------------------------------------------------------------
    def refresh_discovery(self) -> None:
        found: dict[tuple[str, str], ResourceInfo] = {}
        group_versions: list[tuple[str, str]] = [
            ("", v) for v in self.request("GET", "/api").get("versions", [])
        ]
        for group in self.request("GET", "/apis").get("groups", []):
            preferred = group.get("preferredVersion", {}).get("version")
            versions = [v["version"] for v in group.get("versions", [])]
            # the preferred version goes last so that it wins the (group, kind) entry
            versions.sort(key=lambda v: v == preferred)
            group_versions.extend((group["name"], v) for v in versions)
        for group, version in group_versions:
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            try:
                resources = self.request("GET", path).get("resources", [])
            except KubeError:
                continue  # an aggregated API that is down must not break discovery
            for res in resources:
                if "/" in res["name"]:
                    continue  # subresources
                info = ResourceInfo(
                    group, version, res["kind"], res["name"], bool(res.get("namespaced")),
                    tuple(res.get("verbs", [])),
                )
                found[(info.api_version, info.kind)] = info
                found[(f"{group}/*", info.kind)] = info
        with self._discovery_lock:
            self._discovery = found
            self._discovered_at = time.monotonic()

    def resource_for(self, api_version: str, kind: str) -> ResourceInfo:
        """Discovery for (apiVersion, kind); refreshes once on a miss (new CRDs)."""
        key = (api_version, kind)
        info = self._discovery.get(key)
        if info is None:
            if time.monotonic() - self._discovered_at > 1.0 or not self._discovery:
                self.refresh_discovery()
            info = self._discovery.get(key)
        if info is None:
            raise KubeError(
                404, "NotFound",
                f"the server has no resource type for kind {kind!r} in {api_version!r}",
            )
        return info

    def resource_for_key(self, key: ResourceKey) -> ResourceInfo:
        if key.version:
            return self.resource_for(key.api_version, key.kind)
        info = self._discovery.get((f"{key.group}/*", key.kind))
        if info is None:
            self.refresh_discovery()
            info = self._discovery.get((f"{key.group}/*", key.kind))
        if info is None:
            raise KubeError(404, "NotFound", f"no resource type for {key.kind} in group "
                            f"{key.group or 'core'!r}")
        return info

    # ---- verbs ---------------------------------------------------------------------------
    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj:
        info = self.resource_for(api_version, kind)
        return self.request("GET", info.path(namespace, name))

    def get_or_none(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        try:
            return self.get(api_version, kind, name, namespace)
        except KubeError as exc:
            if exc.not_found:
                return None
            raise

    def get_by_key(self, key: ResourceKey) -> Obj | None:
        """The live object a ResourceKey names, or None when it does not exist."""
        info = self.resource_for_key(key)
        try:
            return self.request("GET", info.path(key.namespace or None, key.name))
        except KubeError as exc:
            if exc.not_found:
                return None
            raise

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, **query: Any
    ) -> Obj:
        info = self.resource_for(api_version, kind)
        return self.request("GET", info.path(namespace), query=query or None)

    def apply(
        self,
        obj: Mapping[str, Any],
        *,
        dry_run: bool = False,
        force: bool = True,
        field_manager: str = FIELD_MANAGER,
        subresource: str = "",
    ) -> Obj:
        """Server-side apply (PATCH application/apply-patch+yaml); returns the resulting object."""
        meta = obj.get("metadata", {})
        info = self.resource_for(str(obj["apiVersion"]), str(obj["kind"]))
        path = info.path(meta.get("namespace") if info.namespaced else None, meta["name"])
        if subresource:
            path += f"/{subresource}"
        query: dict[str, Any] = {"fieldManager": field_manager, "force": str(force).lower()}
        if dry_run:
            query["dryRun"] = "All"
        return self.request(
            "PATCH", path, query=query, body=obj, content_type="application/apply-patch+yaml"
        )

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        subresource: str = "",
        patch_type: str = "application/merge-patch+json",
    ) -> Obj:
        info = self.resource_for(api_version, kind)
        path = info.path(namespace, name) + (f"/{subresource}" if subresource else "")
        return self.request("PATCH", path, body=patch, content_type=patch_type)

    def create(self, obj: Mapping[str, Any], namespace: str | None = None) -> Obj:
        info = self.resource_for(str(obj["apiVersion"]), str(obj["kind"]))
        ns = namespace or obj.get("metadata", {}).get("namespace")
        return self.request("POST", info.path(ns if info.namespaced else None), body=obj)

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Foreground",
        preconditions: Mapping[str, str] | None = None,
    ) -> Obj:
        info = self.resource_for(api_version, kind)
        body: Obj = {"kind": "DeleteOptions", "apiVersion": "v1",
                     "propagationPolicy": propagation}
        if preconditions:
            body["preconditions"] = dict(preconditions)
        return self.request("DELETE", info.path(namespace, name), body=body)

    def readyz(self) -> bool:
        try:
            self._pool.request("GET", self.host + "/readyz", headers=self._headers(None),
                               timeout=urllib3.Timeout(connect=2.0, read=5.0))
        except urllib3.exceptions.HTTPError:
            return False
        return True

    def close(self) -> None:
        self._pool.clear()
