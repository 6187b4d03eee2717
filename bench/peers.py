"""Flux and Argo CD beside gitops-lab (issue 12, items 1–2): not measured yet.

Each peer would run as host processes against the bench's control plane, built like the
control-plane binaries (a wrapper go.mod with the peer's `replace` directives, the module proxy
only, never `direct`) and cached under ~/.cache/gitops-lab/peers/. That build and the peers'
scenarios are not written yet, so `make bench` says so in one explicit skip row per peer, naming
what it looked for, instead of leaving the peers out silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.report import Report, Row
from gitops_lab.cluster.binaries import cache_root


@dataclass(frozen=True)
class Peer:
    name: str
    setting: str  # the fastest honest setting the comparison would use
    version: str
    binaries: tuple[str, ...]


PEERS = (
    Peer("Flux", "GitRepository interval 1 s + Receiver webhook; Kustomization force: false",
         "source-controller + kustomize-controller v1.10.1", ("source-controller",
                                                               "kustomize-controller")),
    Peer("Argo CD", "webhook, timeout.reconciliation, selfHeal",
         "argo-cd/v3 v3.6.x", ("argocd-application-controller", "argocd-repo-server",
                               "redis-server")),
)


def peers_dir() -> Path:
    return cache_root() / "peers"


def peer_rows(report: Report) -> None:
    for peer in PEERS:
        folder = peers_dir() / peer.name.lower().replace(" ", "")
        missing = [b for b in peer.binaries if not (folder / "bin" / b).exists()]
        why = (f"not built ({', '.join(missing)} absent from {folder}/bin): the peer build and "
               "its scenarios are not in the bench yet (issue 12, items 1–2 open)"
               if missing else
               "built, but the bench has no scenarios for it yet (issue 12, item 2 open)")
        report.add(Row(f"peer {peer.name} ({peer.version}; would run: {peer.setting})",
                       "skipped", why, "—", "—", "SKIP"))
