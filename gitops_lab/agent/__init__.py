"""The GitOps agent: a pull-based controller that keeps the cluster equal to Git.
`Agent(kube).start()` in-process, `gitops-lab agent run`, or `python -m gitops_lab.agent`.
Imported lazily, so `gitops_lab.agent.main` (the flags of `agent run`) stays light for the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gitops_lab.agent.controller import Agent, AgentOptions

__all__ = ["Agent", "AgentOptions"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from gitops_lab.agent import controller

        return getattr(controller, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
