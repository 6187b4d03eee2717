"""Leader election on a coordination.k8s.io/v1 Lease, the way client-go's leaderelection does it.
Used by agent/controller.py: only the Lease's holder runs the reconcile machinery; others wait.

The holder renews `renewTime` every `retry_period` (one PUT carrying the resourceVersion it
last saw, so a conflict means someone else wrote the Lease). A candidate takes the Lease when
it is empty (released) or when its record has not changed for `leaseDurationSeconds` as
measured on the candidate's own clock (no trust in other machines' clocks). A holder that
cannot renew for `renew_deadline` (< the lease duration) stops leading before anyone else may
start. On a clean stop the holder releases: empty holderIdentity, leaseDurationSeconds 1.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gitops_lab.kube import Kube, KubeError, ResourceInfo

__all__ = ["LEASE_INFO", "LeaderElector", "LeaseConfig", "default_identity"]

log = logging.getLogger("gitops_lab.agent.leader")

LEASE_INFO = ResourceInfo("coordination.k8s.io", "v1", "Lease", "leases", True)
Obj = dict[str, Any]

_instances = itertools.count(1)


def default_identity() -> str:
    """$POD_NAME in a pod, else hostname_pid; a second elector in one process gets a suffix."""
    base = os.environ.get("POD_NAME") or f"{socket.gethostname()}_{os.getpid()}"
    n = next(_instances)
    return base if n == 1 else f"{base}-{n}"


def _micro_time() -> str:
    """A MicroTime as the API server writes it (RFC 3339, microseconds, UTC)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LeaseConfig:
    """client-go's defaults for kube-controller-manager are 15 s / 10 s / 2 s."""

    name: str = "gitops-lab-agent"
    namespace: str = "gitops-lab"
    identity: str = ""  # default_identity() when empty
    lease_duration: float = 15.0
    renew_deadline: float = 0.0  # 2/3 of the lease duration when 0
    retry_period: float = 0.0  # min(2 s, lease duration / 5) when 0

    def resolved(self) -> LeaseConfig:
        duration = max(1.0, float(self.lease_duration))
        deadline = self.renew_deadline or duration * 2 / 3
        retry = self.retry_period or min(2.0, duration / 5)
        if not retry < deadline < duration:
            raise ValueError(f"lease timings must satisfy retry period ({retry:g} s) < renew "
                             f"deadline ({deadline:g} s) < lease duration ({duration:g} s)")
        return LeaseConfig(self.name, self.namespace, self.identity or default_identity(),
                           duration, deadline, retry)


class LeaderElector:
    """Campaigns for one Lease in a thread; `on_started()` when it becomes the leader,
    `on_stopped()` when it stops being one (lost, or stopping) — both on the elector's thread,
    and `on_stopped()` returns before the Lease is released, so writers end first."""

    def __init__(self, kube: Kube, config: LeaseConfig, *,
                 on_started: Callable[[], None], on_stopped: Callable[[], None]) -> None:
        self.kube = kube
        self.config = config.resolved()
        self.identity = self.config.identity
        self._on_started = on_started
        self._on_stopped = on_stopped
        self._path = LEASE_INFO.path(self.config.namespace, self.config.name)
        self._stop = threading.Event()
        self._leading = False
        self._renewed_at = 0.0  # monotonic time of the last successful acquire/renew
        self._lease: Obj | None = None  # the Lease as we last wrote it (leader only)
        self._observed: Obj | None = None  # the Lease spec as last seen
        self._observed_at = 0.0  # monotonic time it was first seen with that content
        self.leader = ""  # holderIdentity as last seen ("" = nobody)
        self.problem = ""  # why the last request about the Lease failed ("" = it did not)
        self.transitions = 0
        self._thread = threading.Thread(target=self._run, name="leader-elector", daemon=True)

    # ---- state ---------------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        """True while this elector holds the Lease and renewed it within the renew deadline:
        false at the deadline even if the elector thread is stuck in a request."""
        return self._leading and \
            time.monotonic() - self._renewed_at < self.config.renew_deadline

    def start(self) -> LeaderElector:
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stop campaigning; if leading: `on_stopped()`, then release the Lease."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # ---- the loop ------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                wait = self.config.retry_period
                try:
                    if self._leading:
                        self._renew_once()
                    elif self._try_acquire_or_renew():
                        self._start_leading()
                    else:  # candidates spread out a little, as client-go's jitter does
                        wait *= 1 + 0.2 * random.random()
                except Exception:  # a bug must not end the campaign (nor leave a leader on)
                    log.exception("leader election step failed")
                    if self._leading and \
                            time.monotonic() - self._renewed_at >= self.config.renew_deadline:
                        self._stop_leading("renewal kept failing")
                self._stop.wait(wait)
        finally:
            if self._leading:
                self._stop_leading("")
                self._release()

    def _renew_once(self) -> None:
        if self._try_acquire_or_renew():
            return
        if self.leader and self.leader != self.identity:
            self._stop_leading(f"{self.leader} holds the Lease now")
        elif time.monotonic() - self._renewed_at >= self.config.renew_deadline:
            self._stop_leading(f"could not renew the Lease for {self.config.renew_deadline:g} s")

    def _start_leading(self) -> None:
        self._leading = True
        log.info("became leader: Lease %s/%s held by %s (transitions %d)",
                 self.config.namespace, self.config.name, self.identity, self.transitions)
        try:
            self._on_started()
        except Exception:
            log.exception("starting the leader's work failed")

    def _stop_leading(self, why: str) -> None:
        """Stop the leader's work. `why` says why it was lost: writes are fenced at once. On a
        clean stop (`why` empty) the Lease is still ours, so in-flight work may finish; it is
        released after `on_stopped()` returns."""
        if why:
            self._leading = False
            self._lease = None  # not ours any more: the next attempt reads it first
            log.warning("lost leadership of Lease %s/%s: %s", self.config.namespace,
                        self.config.name, why)
        else:
            log.info("stepping down as leader of Lease %s/%s", self.config.namespace,
                     self.config.name)
        try:
            self._on_stopped()
        except Exception:
            log.exception("stopping the leader's work failed")
        self._leading = False

    # ---- one attempt ---------------------------------------------------------------------
    def _request(self, method: str, body: Obj | None = None, path: str = "") -> Obj:
        # never longer than one retry period: a hung request must not outlive the deadline
        return self.kube.request(method, path or self._path, body=body,
                                 timeout=self.config.retry_period, retries=0)

    def _record(self, acquire_time: str, transitions: int) -> Obj:
        stamp = _micro_time()
        return {"holderIdentity": self.identity,
                "leaseDurationSeconds": round(self.config.lease_duration),
                "acquireTime": acquire_time or stamp, "renewTime": stamp,
                "leaseTransitions": transitions}

    def _observe(self, spec: Obj) -> None:
        if spec != self._observed:
            self._observed = dict(spec)
            self._observed_at = time.monotonic()
        holder = str(spec.get("holderIdentity") or "")
        if holder != self.leader and holder and holder != self.identity:
            log.info("standing by (leader is %s)", holder)
        self.leader = holder
        self.transitions = int(spec.get("leaseTransitions") or 0)

    def _failed(self, what: str, exc: KubeError) -> None:
        self.problem = f"{what} {self.config.namespace}/{self.config.name} failed: {exc.message}"
        log.warning("%s", self.problem)

    def _won(self, lease: Obj) -> bool:
        self.problem = ""
        self._lease = lease
        self._observe(lease.get("spec") or {})
        self._renewed_at = time.monotonic()
        return True

    def _try_acquire_or_renew(self) -> bool:
        """client-go's tryAcquireOrRenew: True when we hold the Lease after this call."""
        if self._leading and self._lease is not None:
            # the fast path, one request per renewal: PUT what we last wrote, renewTime moved
            spec = self._lease.get("spec") or {}
            lease = {**self._lease, "spec": self._record(str(spec.get("acquireTime") or ""),
                                                         int(spec.get("leaseTransitions") or 0))}
            try:
                return self._won(self._request("PUT", lease))
            except KubeError as exc:
                if not (exc.conflict or exc.not_found):
                    self._failed("renewing the Lease", exc)
                    return False
                # somebody else wrote (or deleted) the Lease: read it and decide below
        try:
            lease = self._request("GET")
        except KubeError as exc:
            if not exc.not_found:
                self._failed("reading the Lease", exc)
                return False
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.config.name, "namespace": self.config.namespace,
                                 "labels": {"app.kubernetes.io/name": "gitops-lab-agent"}},
                    "spec": self._record("", 0)}
            try:
                return self._won(self._request("POST", body, LEASE_INFO.path(
                    self.config.namespace)))
            except KubeError as exc2:
                if not exc2.conflict:
                    self._failed("creating the Lease", exc2)
                    return False
            # 409 AlreadyExists: another candidate created it first; say who leads at once
            # (a standby's /readyz and log name the leader from its first attempt on)
            with contextlib.suppress(KubeError):
                self._observe(self._request("GET").get("spec") or {})
            return False
        self.problem = ""
        spec = lease.get("spec") or {}
        self._observe(spec)
        holder = self.leader
        duration = float(spec.get("leaseDurationSeconds") or self.config.lease_duration)
        if holder and holder != self.identity and \
                time.monotonic() < self._observed_at + duration:
            return False  # held, and renewed within its duration as we measure it
        if holder == self.identity:
            record = self._record(str(spec.get("acquireTime") or ""),
                                  int(spec.get("leaseTransitions") or 0))
        else:  # empty (released) or expired: take it over
            record = self._record("", int(spec.get("leaseTransitions") or 0) + 1)
        try:
            won = self._won(self._request("PUT", {**lease, "spec": record}))
        except KubeError as exc:
            if not exc.conflict:
                self._failed("taking the Lease", exc)
            return False  # 409 Conflict: we lost the race for it
        if holder and holder != self.identity:
            log.info("took over the Lease from %s (its record was unchanged for %.0f s)",
                     holder, duration)
        return won

    def _release(self) -> None:
        """Hand the Lease back so a standby takes it at its next try, not after expiry."""
        if self._lease is None:
            return
        spec = self._lease.get("spec") or {}
        stamp = _micro_time()
        released = {**self._lease, "spec": {
            "holderIdentity": "", "leaseDurationSeconds": 1, "acquireTime": stamp,
            "renewTime": stamp, "leaseTransitions": int(spec.get("leaseTransitions") or 0)}}
        try:
            self._request("PUT", released)
            log.info("released Lease %s/%s", self.config.namespace, self.config.name)
        except KubeError as exc:
            log.warning("releasing the Lease failed (a standby takes it when it expires): %s",
                        exc.message)
        self._lease = None
