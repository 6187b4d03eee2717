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

__all__ = ["Kube", "KubeError", "ResourceInfo", "TokenSource"]

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


class TokenSource:
    """A bearer token that renews itself: `fetch()` returns (token, lifetime in seconds).

    A new token is fetched when `renew_fraction` of the lifetime has passed (kubelet renews
    projected tokens at 80 %), and at once when the API server answers 401 (`rejected`), at
    most once per `min_interval` seconds so a revoked identity cannot flood the API server.
    A failed fetch keeps the old token and is retried later, backing off up to
    `max_backoff` seconds between attempts; `error` says why it failed.
    """

    def __init__(self, fetch: Callable[[], tuple[str, float]], *, renew_fraction: float = 0.8,
                 min_interval: float = 1.0, max_backoff: float = 10.0,
                 what: str = "token") -> None:
        self._fetch = fetch
        self.renew_fraction = renew_fraction
        self.min_interval = min_interval
        self.max_backoff = max_backoff
        self._wait = min_interval  # between fetches; doubles while they fail
        self.what = what
        self.error = ""
        self.renewals = 0  # tokens fetched after the first
        self._lock = threading.Lock()
        self._token = ""
        self._renew_at = 0.0
        self._fetched_at = -1e9

    def _renew(self) -> None:
        """Fetch a new token now (lock held); on failure keep the old one, retry later."""
        now = time.monotonic()
        self._fetched_at = now
        try:
            token, lifetime = self._fetch()
        except Exception as exc:  # any failure: report it, keep the old token
            self.error = f"could not get a new {self.what}: {exc}"
            self._wait = min(self._wait * 2, self.max_backoff)
            self._renew_at = now + self._wait
            return
        if self._token:
            self.renewals += 1
        self._token, self.error, self._wait = token, "", self.min_interval
        self._renew_at = now + max(lifetime * self.renew_fraction, self.min_interval)

    def token(self) -> str:
        """The current token; renewed first when it is due (one comparison otherwise)."""
        if time.monotonic() >= self._renew_at:
            with self._lock:
                if time.monotonic() >= self._renew_at:
                    self._renew()
        return self._token

    def rejected(self, token: str) -> bool:
        """The API server refused `token` (401): get another; True when there is a new one."""
        with self._lock:
            if self._token != token:
                return bool(self._token)  # another thread renewed it meanwhile
            if time.monotonic() - self._fetched_at < self._wait:
                return False
            self._renew()
            return self._token != token


@dataclass
class _Outcome:
    """How the API server last answered a connection (and its fenced copies)."""

    problem: str
    last_ok: float


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
        self.token_source: TokenSource | None = None
        # Whether the API server accepts us: "" = fine, else why not (401, unreachable).
        # Set by every request's outcome; the agent's /healthz reports it. Shared with the
        # fenced() copies of this connection, so their requests count too.
        self._outcome = _Outcome(problem="", last_ok=time.monotonic())
        self._fence: Callable[[], bool] | None = None
        self._fence_reason = ""

    @property
    def problem(self) -> str:
        return self._outcome.problem

    @problem.setter
    def problem(self, value: str) -> None:
        self._outcome.problem = value

    @property
    def last_ok(self) -> float:
        return self._outcome.last_ok

    @last_ok.setter
    def last_ok(self, value: float) -> None:
        self._outcome.last_ok = value

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

    def with_token_source(self, source: TokenSource, user: str = "serviceaccount") -> Kube:
        """Like `with_token`, with a token that renews itself and is re-requested on 401."""
        kube = self.with_token(source.token(), user)
        kube.token_source = source
        if not source.token():
            kube.problem = source.error
        return kube

    def fenced(self, allowed: Callable[[], bool], reason: str) -> Kube:
        """The same connection (pool, discovery) whose writes — every method but GET — fail
        with KubeError(reason "Fenced") while `allowed()` is False. Reads always pass.
        The agent writes through one of these, open only while it holds the leader Lease.
        A shallow copy: the token source and the API health (`problem`, `last_ok`) are
        shared with this connection."""
        clone = copy.copy(self)
        clone._fence, clone._fence_reason = allowed, reason
        return clone

    # ---- raw requests --------------------------------------------------------------------
    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "gitops-lab"}
        if content_type:
            headers["Content-Type"] = content_type
        if self.token_source is not None:
            headers["Authorization"] = f"Bearer {self.token_source.token()}"
            return headers
        # kubeconfig tokens are stored as "authorization"; the in-cluster loader (which also
        # re-reads the projected token as it rotates) stores "BearerToken"
        token = self._configuration.get_api_key_with_prefix("authorization", alias="BearerToken")
        if token:
            headers["Authorization"] = token
        return headers

    def _retry_auth(self, headers: Mapping[str, str]) -> bool:
        """After a 401: True when a new token is there to retry with."""
        if self.token_source is None:
            return False
        used = headers.get("Authorization", "").removeprefix("Bearer ")
        return self.token_source.rejected(used)

    def _note_outcome(self, status: int) -> None:
        if status == 401:
            why = f"; {self.token_source.error}" if self.token_source and \
                self.token_source.error else ""
            self.problem = (f"the API server {self.host} rejects the credentials of "
                            f"{self.user or 'this client'} (401 Unauthorized){why}")
        else:
            self.problem = ""
            self.last_ok = time.monotonic()

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
        reauthed = False
        for attempt in range(retries + 1):
            headers = self._headers(content_type if data is not None else None)
            try:
                resp = self._pool.request(
                    method,
                    url,
                    body=data,
                    headers=headers,
                    timeout=urllib3.Timeout(connect=min(5.0, timeout), read=timeout),
                    preload_content=True,
                )
            except urllib3.exceptions.HTTPError as exc:
                if attempt < retries:
                    time.sleep(delay)
                    delay *= 2
                    continue
                self.problem = f"cannot reach the API server {self.host}: {exc}"
                raise KubeError(0, "Unreachable", f"{method} {path}: {exc}") from exc
            # 429 (priority and fairness) and 503 (e.g. a CRD's storage initialising) pass
            if resp.status in (429, 503) and attempt < retries:
                time.sleep(delay)
                delay *= 2
                continue
            # 401: the token expired or was revoked; ask for a new one, once
            if resp.status == 401 and not reauthed and self._retry_auth(headers):
                reauthed = True
                continue
            break
        self._note_outcome(resp.status)
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
        headers = self._headers(None)
        try:
            resp = self._pool.request(
                "GET",
                url,
                headers=headers,
                timeout=urllib3.Timeout(connect=5.0, read=timeout_seconds + 30),
                preload_content=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise KubeError(0, "Unreachable", f"watch {path}: {exc}") from exc
        try:
            if resp.status == 401:
                self._retry_auth(headers)  # the watch loop retries with the new token
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
