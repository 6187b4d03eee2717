"""The image updater: watches ImagePolicies, scans their registry repository (every interval,
or at once on a registry notification), picks the latest tag and writes it to Git through the
markers. Runs inside the agent's process while it leads (started with each term of leadership,
stopped when it ends); never touches workloads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram

from gitops_lab.agent.events import Alerter, Recorder
from gitops_lab.agent.livecache import KindWatch
from gitops_lab.agent.status import now
from gitops_lab.api.types import GROUP, VERSION, ResourceKey
from gitops_lab.images.policy import DEFAULT_INTERVAL, PolicyError, PolicySpec, parse_spec, select
from gitops_lab.images.registry import RegistryClient, RegistryError
from gitops_lab.images.writeback import (
    GitWriter,
    PushFenced,
    UpdateError,
    WriteRequest,
    WriteResult,
)
from gitops_lab.kube import Kube, KubeError, ResourceInfo

__all__ = ["IMAGEPOLICY_INFO", "ImageMetrics", "ImageUpdater"]

log = logging.getLogger("gitops_lab.images")
Obj = dict[str, Any]
Key = tuple[str, str]

IMAGEPOLICY_KIND = "ImagePolicy"
IMAGEPOLICY_INFO = ResourceInfo(GROUP, VERSION, IMAGEPOLICY_KIND, "imagepolicies", True,
                                ("list", "watch"))
PROBLEM_TYPES = ("ScanError", "PolicyError", "FloatingTag", "UpdateError")
STATUS_REFRESH = 30.0  # rewrite status at least this often, so lastScanTime stays honest


class Queue(Protocol):
    def add(self, key: Key, *, fetch: bool = False, delay: float = 0.0) -> None: ...
    def get(self, timeout: float = 0.5) -> tuple[Key, bool] | None: ...
    def done(self, key: Key) -> None: ...
    def close(self) -> None: ...


class ImageMetrics:
    """The updater's Prometheus counters, registered in the agent's registry (one /metrics)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.scans = Counter("gitopslab_image_scans_total",
                             "Registry scans, by ImagePolicy and result (ok or the condition)",
                             ["policy", "result"], registry=registry)
        self.scan_duration = Histogram(
            "gitopslab_image_scan_duration_seconds", "Time to list a repository's tags",
            ["policy"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry)
        self.updates = Counter("gitopslab_image_updates_total",
                               "Write-backs, by ImagePolicy and result "
                               "(committed, unchanged, held: already written once, error)",
                               ["policy", "result"], registry=registry)
        self.push_retries = Counter("gitopslab_image_push_retries_total",
                                    "Pushes that lost a race and were retried", ["policy"],
                                    registry=registry)
        self.notifications = Counter("gitopslab_registry_notifications_total",
                                     "Registry notification events received, by result "
                                     "(matched a policy or ignored)", ["result"],
                                     registry=registry)


@dataclass
class ScanOutcome:
    status: Obj
    interval: float
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    result: WriteResult | None = None


def _cond(type_: str, status: str, reason: str, message: str, prev: Mapping[str, Any],
          stamp: str) -> Obj:
    old = next((c for c in prev.get("conditions") or [] if c.get("type") == type_), None)
    same = old is not None and old.get("status") == status
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": str(old.get("lastTransitionTime")) if same and old else stamp}


def _stable(status: Mapping[str, Any]) -> Obj:
    out = {k: v for k, v in status.items() if k != "lastScanTime"}
    out["conditions"] = [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                         for c in status.get("conditions") or []]
    return out


def _problems(status: Mapping[str, Any]) -> dict[str, str]:
    return {str(c.get("type")): str(c.get("message")) for c in status.get("conditions") or []
            if c.get("type") in PROBLEM_TYPES}


class ImageUpdater:
    """ImagePolicy controller. `start()`/`stop()` with the agent's leadership (restartable:
    each start lists the policies afresh, with a new queue and watch, and keeps the metrics);
    `notify(payload)` for the registry's notifications; `scan_now(namespace, name)` for tests
    and the CLI. With `may_push`, nothing is pushed, written or alerted while it is False."""

    def __init__(self, kube: Kube, new_queue: Callable[[], Queue], *, namespace: str,
                 cache_dir: Path, registry: CollectorRegistry, alerter: Alerter,
                 get_app: Callable[[str, str], Mapping[str, Any] | None],
                 refresh_app: Callable[[str, str], None], workers: int = 2,
                 may_push: Callable[[], bool] | None = None) -> None:
        self.kube = kube
        self._new_queue = new_queue
        self.queue = new_queue()
        self.namespace = namespace
        self.may_push = may_push
        self.writer = GitWriter(cache_dir)
        self.writer.may_push = may_push
        self.metrics = ImageMetrics(registry)
        self.alerter = alerter
        self.recorder = Recorder(kube, component="gitops-lab-image-updater")
        self.get_app = get_app
        self.refresh_app = refresh_app
        self.workers = workers
        self.policies: dict[Key, Obj] = {}
        self.statuses: dict[Key, Obj] = {}
        self._written_at: dict[Key, float] = {}
        self._generations: dict[Key, Any] = {}
        self._clients: dict[str, RegistryClient] = {}
        self._lock = threading.RLock()
        self._life = threading.Lock()  # start/stop
        self._stop = threading.Event()  # the current run's; set = not running
        self._stop.set()
        self._threads: list[threading.Thread] = []
        self.watch = KindWatch(kube, IMAGEPOLICY_INFO, self._on_change, self._stop,
                               namespace=namespace)
        self.on_scan: Callable[[Key, ScanOutcome], None] | None = None  # observers (bench)

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> ImageUpdater:
        """Watch the ImagePolicies and scan them; again after a stop(), from a clean slate."""
        with self._life:
            if self._threads:
                return self
            stop = self._stop = threading.Event()
            queue = self.queue = self._new_queue()
            with self._lock:  # this run lists everything again
                for state in (self.policies, self.statuses, self._generations,
                              self._written_at):
                    state.clear()

            def on_change(key: ResourceKey, obj: Obj | None, kind: str) -> None:
                if not stop.is_set():  # a late event of an earlier run is not this run's
                    self._on_change(key, obj, kind)

            self.watch = KindWatch(self.kube, IMAGEPOLICY_INFO, on_change, stop,
                                   namespace=self.namespace)
            self.watch.start()
            for i in range(self.workers):
                thread = threading.Thread(target=self._worker, args=(stop, queue),
                                          name=f"image-worker-{i}", daemon=True)
                thread.start()
                self._threads.append(thread)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop scanning: no new scan starts, the ones in flight end (a push they would make
        after leadership is lost is refused by `may_push`); waits `timeout` s for them in all."""
        with self._life:
            self._stop.set()
            self.queue.close()
            threads, self._threads = self._threads, []
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()

    def _leading(self) -> bool:
        return self.may_push is None or self.may_push()

    @property
    def synced(self) -> bool:
        return self.watch.synced.is_set()

    # ---- inputs ------------------------------------------------------------------------------
    def _on_change(self, key: ResourceKey, obj: Obj | None, _kind: str) -> None:
        pkey = (key.namespace, key.name)
        if obj is None:
            with self._lock:
                self.policies.pop(pkey, None)
                self.statuses.pop(pkey, None)
                self._generations.pop(pkey, None)
            return
        generation = (obj.get("metadata") or {}).get("generation")
        with self._lock:
            old = self.policies.get(pkey)
            if old is not None and _rv(obj) < _rv(old):
                return
            self.policies[pkey] = obj
            if pkey not in self.statuses:
                self.statuses[pkey] = dict(obj.get("status") or {})
            changed = self._generations.get(pkey) != generation
            self._generations[pkey] = generation
        if changed:
            self.queue.add(pkey)

    def scan_now(self, namespace: str, name: str) -> None:
        self.queue.add((namespace, name))

    def notify(self, payload: Mapping[str, Any]) -> int:
        """A Distribution notification envelope: scan every policy on a pushed repository."""
        repos: set[str] = set()
        for event in payload.get("events") or []:
            if not isinstance(event, Mapping) or event.get("action") != "push":
                continue
            target = event.get("target") or {}
            media = str(target.get("mediaType") or "")
            if target.get("repository") and ("manifest" in media or target.get("tag")):
                repos.add(str(target["repository"]))
        with self._lock:
            policies = dict(self.policies)
        matched = 0
        for pkey, obj in policies.items():
            image = str((obj.get("spec") or {}).get("image") or "")
            repo = image.partition("/")[2]
            if repo and repo in repos:
                self.queue.add(pkey)
                matched += 1
        self.metrics.notifications.labels("matched" if matched else "ignored").inc()
        return matched

    # ---- the work ----------------------------------------------------------------------------
    def _worker(self, stop: threading.Event, queue: Queue) -> None:
        while not stop.is_set():
            item = queue.get()
            if item is None:
                continue
            pkey, _ = item
            delay: float | None = None
            try:
                delay = self._process(pkey)
            except PushFenced as exc:  # leadership lost mid-scan: this run is ending
                log.info("image policy %s/%s: %s", *pkey, exc)
            except KubeError as exc:
                if exc.reason == "Fenced":
                    log.info("image policy %s/%s dropped: %s", *pkey, exc.message)
                else:
                    log.warning("image policy %s/%s: %s (retrying)", *pkey, exc.message)
                    delay = 2.0
            except Exception:
                log.exception("image policy %s/%s crashed", *pkey)
                delay = 5.0
            finally:
                queue.done(pkey)
            if delay is not None and not stop.is_set():
                queue.add(pkey, delay=delay)

    def _process(self, pkey: Key) -> float | None:
        with self._lock:
            obj = self.policies.get(pkey)
            known = set(self.policies)
            prev = dict(self.statuses.get(pkey) or (obj or {}).get("status") or {})
        if obj is None:
            return None
        outcome = self.scan(obj, prev, known)
        if not self._leading():  # no status or Events from an ex-leader
            raise KubeError(0, "Fenced", "leadership was lost during this scan; its result is "
                            "dropped (the new leader scans again)")
        status = outcome.status
        for type_, reason, message in outcome.events:
            self.recorder.record(obj, type_, reason, message, kind=IMAGEPOLICY_KIND,
                                 revision=(outcome.result.revision if outcome.result else ""))
        stale = time.monotonic() - self._written_at.get(pkey, 0.0) > \
            max(STATUS_REFRESH, outcome.interval)
        if _stable(prev) != _stable(status) or stale:
            self._write_status(obj, status)
            self._written_at[pkey] = time.monotonic()
        with self._lock:
            if pkey in self.policies:
                self.statuses[pkey] = status
        if self.on_scan is not None:
            self.on_scan(pkey, outcome)
        return outcome.interval

    def scan(self, obj: Mapping[str, Any], prev: Mapping[str, Any],
             known: set[Key]) -> ScanOutcome:
        """One scan: spec → tags → latest → write-back. Returns the next status and events."""
        meta = obj.get("metadata") or {}
        ns, name = str(meta.get("namespace")), str(meta.get("name"))
        label = f"{ns}/{name}"
        stamp = now()
        status: Obj = {k: v for k, v in prev.items() if k != "conditions"}
        problems: dict[str, tuple[str, str]] = {}  # type -> (reason, message)
        events: list[tuple[str, str, str]] = []
        result: WriteResult | None = None
        interval = DEFAULT_INTERVAL
        ready_msg = ""
        spec: PolicySpec | None = None
        try:
            spec = parse_spec(obj)
            interval = spec.interval
        except PolicyError as exc:
            problems[exc.type] = (exc.reason, str(exc))
        tags: list[str] | None = None
        if spec is not None:
            client = self._client(spec.image.registry, spec.image.plain_http)
            t0 = time.perf_counter()
            try:
                tags = client.tags(spec.image.repository).tags
            except RegistryError as exc:
                problems["ScanError"] = (exc.reason, str(exc))
            self.metrics.scan_duration.labels(label).observe(time.perf_counter() - t0)
        if spec is not None and tags is not None:
            status["lastScanTime"] = stamp
            status["observedTags"] = len(tags)
            try:
                sel = select(spec, tags)
            except PolicyError as exc:
                problems[exc.type] = (exc.reason, str(exc))
            else:
                image = f"{spec.image}:{sel.tag}"
                if prev.get("latestTag") != sel.tag:
                    was = prev.get("latestTag")
                    events.append(("Normal", "NewImage",
                                   f"latest image is {image} ({spec.describe()}, "
                                   f"{sel.candidates} of {len(tags)} tags considered"
                                   + (f"; was {was})" if was else ")")))
                status["latestTag"], status["latestImage"] = sel.tag, image
                ready_msg = (f"latest {image} ({spec.describe()}, {len(tags)} tags; scanned "
                             f"every {_interval(spec.interval)} and at once on a registry push)")
                if spec.update is not None:
                    written = (prev.get("lastUpdate") or {}).get("images") or []
                    result, ready_msg = self._write_back(spec, ns, name, sel.tag, known,
                                                         problems, events, ready_msg,
                                                         image in written)
                    if result is not None and result.committed:
                        status["lastUpdate"] = {"revision": result.revision, "time": stamp,
                                                "images": [image]}
        conditions: list[Obj] = []
        for type_ in PROBLEM_TYPES:
            if type_ in problems:
                reason, message = problems[type_]
                conditions.append(_cond(type_, "True", reason, message, prev, stamp))
        if problems:
            first = next(t for t in PROBLEM_TYPES if t in problems)
            ready = _cond("Ready", "False", first, problems[first][1], prev, stamp)
        else:
            ready = _cond("Ready", "True", "Succeeded", ready_msg, prev, stamp)
        status["conditions"] = [ready, *conditions]
        self.metrics.scans.labels(label, next((t for t in PROBLEM_TYPES if t in problems),
                                              "ok")).inc()
        # Warning events (and alerts) only when a problem appears or its message changes
        before = _problems(prev)
        for type_, (reason, message) in problems.items():
            if before.get(type_) == message:
                continue
            event = "UpdateFailed" if type_ == "UpdateError" else "ScanFailed"
            events.append(("Warning", event, f"{type_} ({reason}): {message}"))
            self._alert(spec, ns, name, event, f"{type_}: {message}", "")
        return ScanOutcome(status, interval, events, result)

    def _write_back(self, spec: PolicySpec, ns: str, name: str, tag: str, known: set[Key],
                    problems: dict[str, tuple[str, str]], events: list[tuple[str, str, str]],
                    ready_msg: str, written_before: bool) -> tuple[WriteResult | None, str]:
        """Set the markers to `tag` and push one commit. A tag this policy already wrote once
        is never written again: when Git no longer holds it, someone changed it back (a `git
        revert` is GitOps' rollback) and the updater leaves that be until a newer tag."""
        assert spec.update is not None
        upd = spec.update
        label = f"{ns}/{name}"
        app = self.get_app(upd.app_namespace, upd.app_name)
        if app is None:
            problems["UpdateError"] = (
                "ApplicationNotFound",
                f"update.applicationRef names Application {upd.app_namespace}/{upd.app_name}, "
                "which does not exist (or is not in the agent's namespace)")
            self.metrics.updates.labels(label, "error").inc()
            return None, ready_msg
        source = (app.get("spec") or {}).get("source") or {}
        request = WriteRequest(
            url=str(source.get("repoURL") or ""),
            target_revision=str(source.get("targetRevision") or "HEAD"),
            path=str(source.get("path") or "."),
            namespace=ns, policy=name, repository=str(spec.image), tag=tag,
            known_policies=known, author=upd.author,
            app=f"{upd.app_namespace}/{upd.app_name}", message_template=upd.message_template,
            dry_run=written_before)
        try:
            result = self.writer.write(request)
        except UpdateError as exc:
            problems["UpdateError"] = (exc.reason, str(exc))
            self.metrics.updates.labels(label, "error").inc()
            return None, ready_msg
        if result.attempts > 1:
            self.metrics.push_retries.labels(label).inc(result.attempts - 1)
        where = f"{request.path} of Application {request.app}"
        if request.dry_run and result.changes:
            self.metrics.updates.labels(label, "held").inc()
            held = ", ".join(sorted({f"{m.where} holds {m.value}" for m, _ in result.changes}))
            return result, (f"{ready_msg}; not written again: this policy wrote {spec.image}:"
                            f"{tag} before and Git was changed back since ({held}; a revert?) —"
                            " the updater never writes the same tag twice and waits for a "
                            "newer one")
        if result.committed:
            self.metrics.updates.labels(label, "committed").inc()
            files = ", ".join(result.files)
            message = (f"committed {result.revision[:7]} to {result.branch}: {spec.image}:{tag} "
                       f"in {files} ({len(result.changes)} marker(s))")
            events.append(("Normal", "ImageUpdateCommitted", message))
            self._alert(spec, ns, name, "ImageUpdateCommitted", message, result.revision)
            self.refresh_app(upd.app_namespace, upd.app_name)
            return result, f"{ready_msg}; {message}"
        self.metrics.updates.labels(label, "unchanged").inc()
        if result.markers == 0:
            return result, (f"{ready_msg}; no marker under {where} names this policy, so "
                            "nothing is written (report only)")
        return result, f"{ready_msg}; Git holds it ({result.markers} marker(s) under {where})"

    def _alert(self, spec: PolicySpec | None, ns: str, name: str, reason: str, message: str,
               revision: str) -> None:
        if not self._leading():
            return  # an ex-leader alerts nobody; the new leader scans again
        app = f"{spec.update.app_namespace}/{spec.update.app_name}" \
            if spec is not None and spec.update is not None else f"{ns}/{name}"
        self.alerter.send(app, reason, message, revision, [f"ImagePolicy {ns}/{name}"])

    def _client(self, registry: str, plain_http: bool) -> RegistryClient:
        with self._lock:
            client = self._clients.get(registry)
            if client is None:
                client = self._clients[registry] = RegistryClient(registry, plain_http=plain_http)
            return client

    def _write_status(self, obj: Mapping[str, Any], status: Obj) -> None:
        meta = obj["metadata"]
        path = IMAGEPOLICY_INFO.path(meta["namespace"], meta["name"]) + "/status"
        body = {"status": {**{k: None for k in (obj.get("status") or {}) if k not in status},
                           **status}}
        try:
            self.kube.request("PATCH", path, body=body,
                              content_type="application/merge-patch+json")
        except KubeError as exc:
            if not exc.not_found:
                raise


def _interval(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def _rv(obj: Mapping[str, Any]) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0
