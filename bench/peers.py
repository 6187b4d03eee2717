"""Flux and Argo CD beside gitops-lab (issue 12, items 1–2).

Each peer is built from the Go module proxy on the first `make bench` (bench/peerbuild.py:
a wrapper go.mod with the peer's `replace` directives, never `direct`, GOTOOLCHAIN=local,
cached under ~/.cache/gitops-lab/peers/), then run as host processes against the bench's
control plane on the same scenarios as the agent (bench/flux.py, bench/argocd.py). A peer that
cannot be built or started here gets one SKIP row that says why; it never fails the run.
`make test` never builds or needs a peer.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bench.peerbuild import (
    ARGOCD,
    ARGOCD_VERSION,
    FLUX,
    FLUX_VERSION,
    GoCommand,
    argocd_dir,
    ensure_built,
    flux_dir,
)
from bench.report import Row
from bench.support import say
from gitops_lab.cluster.binaries import BinaryError

if TYPE_CHECKING:
    from bench.scenarios import Bench


def skip(bench: Bench, label: str, why: str) -> None:
    say(f"peer {label}: skipped, {why}")
    bench.report.add(Row(f"peer {label}", "skipped", why, "—", "—", "SKIP"))


def run_peer(bench: Bench, label: str, folder: Path, commands: tuple[GoCommand, ...],
             measure: Callable[[Bench], None], needs: Callable[[], str] = lambda: "") -> None:
    try:
        built = ensure_built(folder, commands, say)
    except (BinaryError, OSError) as exc:
        skip(bench, label, f"cannot be built here: {str(exc).splitlines()[0][:300]}")
        return
    if built:
        say(f"peer {label}: built in " + ", ".join(f"{k} {v:.0f} s" for k, v in built.items()))
    missing = needs()
    if missing:
        skip(bench, label, f"cannot run here: {missing}")
        return
    rows_before = len(bench.report.rows)
    try:
        measure(bench)
    except Exception as exc:  # a peer that does not run here is a finding, not a crash
        traceback.print_exc()
        done = len(bench.report.rows) - rows_before
        skip(bench, label, f"could not be measured{f' past {done} rows' if done else ''}: "
                           f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")


def wanted(bench: Bench, key: str) -> bool:
    """`--only flux` / `--only argo` runs one peer; any other filter that reached this phase,
    both."""
    only = bench.opts.only.lower()
    named = [k for k in ("flux", "argo") if k in only]
    return not named or key in named


def peer_rows(bench: Bench) -> None:
    from bench.flux import FluxBench

    def flux(b: Bench) -> None:
        FluxBench(b).run()

    if wanted(bench, "flux"):
        run_peer(bench, f"Flux {FLUX_VERSION} (source-controller + kustomize-controller)",
                 flux_dir(), FLUX, flux)
    if not wanted(bench, "argo"):
        return

    from bench.argocd import ArgoBench, argocd_needs

    def argo(b: Bench) -> None:
        ArgoBench(b).run()

    run_peer(bench, f"Argo CD {ARGOCD_VERSION} (application-controller + repo-server + redis)",
             argocd_dir(), ARGOCD, argo, argocd_needs)
