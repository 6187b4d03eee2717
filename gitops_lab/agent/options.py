"""The agent's settings (`AgentOptions`) and its retry policy.
Used by agent/controller.py and agent/work.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gitops_lab.paths import cache_root

__all__ = ["BACKOFF_BASE", "BACKOFF_MAX", "AgentOptions"]

# Retry of a failing app at an unchanged revision and spec, Argo CD-like: 2 s, 4 s, 8 s … 3 min.
# A new revision, a spec change or a success resets it; a change of a watched object, a
# refresh or the periodic resync still re-check the app at once.
BACKOFF_BASE = 2.0
BACKOFF_MAX = 180.0


@dataclass
class AgentOptions:
    namespace: str = "gitops-lab"
    poll_interval: float = 1.0  # seconds between Git polls (Argo CD: 180 s)
    resync_interval: float = 60.0  # full re-compare of every app even when nothing happened
    # status.reconciledAt is re-stamped at rest only this often (any change is written at
    # once): one status PATCH per app per resync made the agent's API load grow per app
    status_heartbeat: float = 600.0
    workers: int = 4
    alert_webhook: str | None = None
    http_address: str = "127.0.0.1:0"
    cache_dir: Path = field(default_factory=lambda: cache_root() / "repos")
    kubectl: str | None = None
    # leader election: only the holder of Lease <namespace>/<lease_name> reconciles
    leader_elect: bool = True
    lease_name: str = "gitops-lab-agent"
    lease_duration: float = 15.0  # seconds; renew deadline 2/3 of it, retry min(2 s, 1/5)
    identity: str = ""  # holderIdentity; default $POD_NAME or hostname_pid
