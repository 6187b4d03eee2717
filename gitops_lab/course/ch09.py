"""Chapter 09's exercise and helpers: from the lab to Argo CD and Flux."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_lab.course.core import Exercise, Verdict, not_yet
from gitops_lab.course.probe import local_changes, pushed_yaml, unpushed
from gitops_lab.course.translate import Comparison, check_flux_kustomization, compare

if TYPE_CHECKING:
    from gitops_lab.lab import Lab

FLUX_FILE = "flux/guestbook.yaml"


def comparison(lab: Lab, name: str = "guestbook") -> Comparison:
    """The live Application `name` beside its Argo CD and Flux translations."""
    return compare(lab.app(name))


def poll_interval(lab: Lab) -> tuple[str, str]:
    """This lab's Git poll interval as the running agent was started with it, and where that is
    set: the Deployment's args (in-cluster) or the host process's command line (local)."""
    if lab.agent_mode == "in-cluster":
        out = lab.kubectl("-n", "gitops-lab", "get", "deployment", "gitops-lab-agent", "-o",
                          "jsonpath={.spec.template.spec.containers[0].args}")
        args = [str(a) for a in json.loads(out or "[]")]
        where = ("the args of the Deployment gitops-lab-agent "
                 "(gitops_lab/install/manifests/agent-deployment.yaml)")
    else:
        info = lab.agent_info() or {}
        pid = info.get("pid")
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
        except OSError:
            args = []
        where = f"the command line of the agent process (pid {pid}), started by Lab.ensure_agent()"
    value = "1"  # `gitops-lab agent run --poll-interval`'s default
    if "--poll-interval" in args and args.index("--poll-interval") + 1 < len(args):
        value = args[args.index("--poll-interval") + 1]
    return f"{value} s", where


def reset_translation(lab: Lab) -> str | None:
    """Catch-up: no flux/ directory in the config repo (a previous run's translation is
    removed by a commit). Returns the new SHA, or None when there was nothing to remove."""
    if not (lab.workcopy.path / "flux").exists():
        return None
    return lab.commit(None, "Remove the Flux translation (chapter 09 starts afresh)",
                      delete=("flux",))


def check_translate(lab: Lab) -> Verdict:
    """flux/guestbook.yaml, as pushed, is a Flux Kustomization of the live Application."""
    docs = pushed_yaml(lab, FLUX_FILE)
    if docs is None:
        if any(p.startswith("flux/") for p in local_changes(lab)):
            return not_yet(f"{FLUX_FILE} is in your clone but not committed: lab.commit(...) "
                           "commits and pushes (or !git add, commit, push)")
        if unpushed(lab):
            return not_yet("your commit is in your clone only: push it — the checker reads "
                           "what the Git server has, as a controller would")
        return not_yet(f"{FLUX_FILE} is not on the server's main branch yet: fill in the ??? "
                       "of the starter, then commit and push it (uncomment the lab.commit line)")
    return check_flux_kustomization(lab.app("guestbook"), docs, FLUX_FILE)


EXERCISES = {
    "09-translate": Exercise("09-translate", "Translate the guestbook Application into Flux",
                             check_translate),
}
