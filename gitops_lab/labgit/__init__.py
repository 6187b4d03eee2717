"""The lab's Git side: a loopback `git daemon` to push to, and a working copy to commit with.
Lab setup, not the agent's: the agent reads Git through source/ (RepoCache), never through here.
"""

from gitops_lab.labgit.server import GitServer, GitServerError
from gitops_lab.labgit.workcopy import WorkingCopy

__all__ = ["GitServer", "GitServerError", "WorkingCopy"]
