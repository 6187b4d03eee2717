"""The GitOps agent: a pull-based controller that keeps the cluster equal to Git.
`Agent(kube).start()` in-process, `gitops-lab agent run`, or `python -m gitops_lab.agent`.
"""

from gitops_lab.agent.controller import Agent, AgentOptions

__all__ = ["Agent", "AgentOptions"]
