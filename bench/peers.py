"""Flux and Argo CD beside gitops-lab (issue 12, items 1–2): for now, an explicit skip row per
peer that says why it was not measured.

Each peer would run as host processes against the bench's control plane, built like the
control-plane binaries (a wrapper go.mod with the peer's `replace` directives, the module proxy
only — never `direct` — and GOTOOLCHAIN=local) and cached under ~/.cache/gitops-lab/peers/.
Before anything is built, the pinned module is asked of the proxy (`go mod download -json`):
when it needs a newer Go than this machine's, that is the skip reason; otherwise the row says
what is missing (the build and the peer's scenarios are not in the bench yet).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.report import Report, Row
from bench.support import say
from gitops_lab.cluster.binaries import BinaryError, offline_goproxy
from gitops_lab.paths import peers_dir


@dataclass(frozen=True)
class Peer:
    name: str
    setting: str  # the fastest honest setting the comparison would use
    modules: tuple[str, ...]  # module@version, pinned
    binaries: tuple[str, ...]


PEERS = (
    Peer("Flux", "GitRepository interval 1 s + Receiver webhook; Kustomization force: false",
         ("github.com/fluxcd/source-controller@v1.10.1",
          "github.com/fluxcd/kustomize-controller@v1.10.1"),
         ("source-controller", "kustomize-controller")),
    Peer("Argo CD", "webhook, timeout.reconciliation, selfHeal",
         ("github.com/argoproj/argo-cd/v3@v3.6.1",),
         ("argocd-application-controller", "argocd-repo-server", "redis-server")),
)


def module_problem(module: str, timeout: float = 90.0) -> str:
    """Why `module` cannot be built here ("" when the proxy serves it and this Go can build
    it): asks the module proxy only, with GOTOOLCHAIN=local."""
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists()
                                else "")
    if not go:
        return "no Go toolchain on PATH"
    env = dict(os.environ, GOTOOLCHAIN="local", GOWORK="off", GOFLAGS="-mod=mod")
    try:
        env["GOPROXY"] = offline_goproxy(env.get("GOPROXY", ""))
    except BinaryError as exc:
        return str(exc)
    work = peers_dir() / "probe"
    work.mkdir(parents=True, exist_ok=True)
    try:
        out = subprocess.run([go, "mod", "download", "-json", module], cwd=work, env=env,
                             capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return f"the module proxy did not serve {module} within {timeout:.0f} s"
    try:
        error = str(json.loads(out.stdout).get("Error") or "")
    except ValueError:
        error = (out.stderr or out.stdout).strip()[:200] if out.returncode else ""
    return error


def peer_rows(report: Report) -> None:
    for peer in PEERS:
        folder = peers_dir() / peer.name.lower().replace(" ", "")
        missing = [b for b in peer.binaries if not (folder / "bin" / b).exists()]
        problems = [p for p in map(module_problem, peer.modules) if p] if missing else []
        if problems:
            why = "cannot be built here: " + "; ".join(dict.fromkeys(problems))
        elif missing:
            why = (f"not built ({', '.join(missing)} absent from {folder}/bin): the peer build "
                   "and its scenarios are not in the bench yet (issue 12, items 1–2 open)")
        else:
            why = "built, but the bench has no scenarios for it yet (issue 12, item 2 open)"
        say(f"peer {peer.name}: skipped, {why}")
        report.add(Row(f"peer {peer.name} ({', '.join(m.rsplit('/', 1)[-1] for m in peer.modules)}; "
                       f"would run: {peer.setting})", "skipped", why, "—", "—", "SKIP"))
