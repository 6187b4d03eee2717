"""gitops-lab: a Jupyter workbench that teaches GitOps with a real pull-based agent.

The public Python surface (../shared/API.md): `Lab` (the notebook facade), `assess_health`
with `Health` and `HealthStatus` (one object's health, Argo CD's rules), and `Agent` /
`AgentOptions` (the agent, in-process). Imports are lazy, so `import gitops_lab` stays light:
the facade pulls in the cluster tooling and the agent its dependencies only when used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gitops_lab.agent import Agent, AgentOptions
    from gitops_lab.api.types import Health, HealthStatus
    from gitops_lab.engine.health import assess_health
    from gitops_lab.lab import Lab, LabError

__all__ = ["Agent", "AgentOptions", "Health", "HealthStatus", "Lab", "LabError", "assess_health"]

_WHERE = {
    "Agent": "gitops_lab.agent",
    "AgentOptions": "gitops_lab.agent",
    "Health": "gitops_lab.api.types",
    "HealthStatus": "gitops_lab.api.types",
    "assess_health": "gitops_lab.engine.health",
    "Lab": "gitops_lab.lab",
    "LabError": "gitops_lab.lab",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'gitops_lab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
