"""The source layer: Git mirrors (fetch, resolve, read) and rendering to Kubernetes objects.
Sits between api/ and engine/: the engine asks here for "the objects at this revision".
"""

from gitops_lab.source.errors import RenderError, SourceError
from gitops_lab.source.git import CommitInfo, RepoCache
from gitops_lab.source.manifests import Manifest, parse_manifests
from gitops_lab.source.render import find_kubectl, render, render_revision

__all__ = [
    "CommitInfo",
    "Manifest",
    "RenderError",
    "RepoCache",
    "SourceError",
    "find_kubectl",
    "parse_manifests",
    "render",
    "render_revision",
]
