"""ipywidgets dashboards over the agent's state: app, diff, history, events, trace, cluster, images.
Top of the stack next to lab.py; reads through `Kube`/`Apps`, writes only through `Apps` verbs.
"""

from __future__ import annotations

from gitops_lab.widgets.cluster import ClusterView
from gitops_lab.widgets.dashboard import AppDashboard, TreeNode, build_tree
from gitops_lab.widgets.diffview import DiffView
from gitops_lab.widgets.events import EventLog
from gitops_lab.widgets.history import HistoryTimeline
from gitops_lab.widgets.images import ImageTimeline
from gitops_lab.widgets.trace import ReconcileTrace

__all__ = [
    "AppDashboard",
    "ClusterView",
    "DiffView",
    "EventLog",
    "HistoryTimeline",
    "ImageTimeline",
    "ReconcileTrace",
    "TreeNode",
    "build_tree",
]
