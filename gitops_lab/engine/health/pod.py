"""Pod health: container waiting errors first (restartPolicy Always), then the pod phase.
engine/health: one entry of the assess_health table, called by engine/report.py after apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops_lab.api.types import Health, HealthStatus

__all__ = ["IGNORE_RESTART_POLICY_ANNOTATION", "check"]

# Argo CD's opt-in: judge a Running pod by readiness whatever its restartPolicy.
IGNORE_RESTART_POLICY_ANNOTATION = "argocd.argoproj.io/ignore-restart-policy"

# Waiting reasons that will not fix themselves; gitops-engine also matches the patterns below.
_ERROR_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


def _is_error_reason(reason: str) -> bool:
    return (
        reason in _ERROR_REASONS
        or reason.startswith("Err")
        or reason.endswith("Error")
        or reason.endswith("BackOff")
    )


def _waiting_problems(statuses: list[Mapping[str, Any]]) -> list[str]:
    problems = []
    for ctr in statuses:
        waiting = (ctr.get("state") or {}).get("waiting") or {}
        reason = str(waiting.get("reason") or "")
        if _is_error_reason(reason):
            message = str(waiting.get("message") or "")
            problems.append(f"{reason}: {message}" if message else reason)
    return problems


def _fail_message(ctr: Mapping[str, Any]) -> str:
    terminated = (ctr.get("state") or {}).get("terminated")
    if not terminated:
        return ""
    if terminated.get("message"):
        return str(terminated["message"])
    if terminated.get("reason") == "OOMKilled":
        return "OOMKilled"
    exit_code = int(terminated.get("exitCode") or 0)
    if exit_code != 0:
        return f'container "{ctr.get("name", "")}" failed with exit code {exit_code}'
    return ""


def _is_ready(status: Mapping[str, Any], statuses: list[Mapping[str, Any]]) -> bool:
    conditions = status.get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    if ready is not None:
        return bool(ready.get("status") == "True")
    return bool(statuses) and all(ctr.get("ready") for ctr in statuses)


def check(obj: Mapping[str, Any]) -> Health:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    restart_policy = spec.get("restartPolicy") or "Always"  # the API server's default
    statuses: list[Mapping[str, Any]] = list(status.get("containerStatuses") or [])
    message = str(status.get("message") or "")

    # Only for Always: a hook pod (Never/OnFailure) must not fail its sync on a transient error.
    if restart_policy == "Always":
        problems = _waiting_problems(statuses)
        if problems:
            return Health(HealthStatus.DEGRADED, ", ".join(problems))

    phase = status.get("phase")
    if phase == "Pending":
        return Health(HealthStatus.PROGRESSING, message)
    if phase == "Succeeded":
        return Health(HealthStatus.HEALTHY, message)
    if phase == "Failed":
        if message:
            return Health(HealthStatus.DEGRADED, message)
        for ctr in [*(status.get("initContainerStatuses") or []), *statuses]:
            fail = _fail_message(ctr)
            if fail:
                return Health(HealthStatus.DEGRADED, fail)
        return Health(HealthStatus.DEGRADED)
    if phase == "Running":
        annotations = meta.get("annotations") or {}
        if restart_policy != "Always" and IGNORE_RESTART_POLICY_ANNOTATION not in annotations:
            # Finite pods (usually resource hooks) are Progressing until they finish.
            return Health(HealthStatus.PROGRESSING, message)
        if _is_ready(status, statuses):
            return Health(HealthStatus.HEALTHY, message)
        if any((ctr.get("lastState") or {}).get("terminated") for ctr in statuses):
            return Health(HealthStatus.DEGRADED, message)
        return Health(HealthStatus.PROGRESSING, message)
    return Health(HealthStatus.UNKNOWN, message)
