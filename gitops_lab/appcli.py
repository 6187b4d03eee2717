"""`gitops-lab agent …` and `gitops-lab app …`: Argo CD's `argocd app` verbs over the agent.
Registered into the parser that cli.py builds; thin over install/, agent/, apps.py, engine/.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from gitops_lab.apps import AppError, Apps, health_status, revision, sync_status
from gitops_lab.cluster import ClusterError, resolve_kubeconfig
from gitops_lab.install import InstallError
from gitops_lab.kube import Kube, KubeError

__all__ = ["register"]

Obj = dict[str, Any]


def _kube(args: argparse.Namespace) -> Kube:
    return Kube.from_kubeconfig(resolve_kubeconfig(getattr(args, "kubeconfig", None)))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and a.resolve() == b.resolve()
    except OSError:
        return False


def _fail(message: str, hint: str) -> int:
    if "; hint: " in message:
        message, hint = message.split("; hint: ", 1)
    print(f"error: {message.splitlines()[0]}; hint: {hint}", file=sys.stderr)
    return 1


def _guard(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(func(args))
        except (AppError, ClusterError, InstallError) as exc:
            return _fail(str(exc), "`gitops-lab doctor`")
        except KubeError as exc:
            return _fail(f"API server: {exc.message}",
                         "is the cluster up? `gitops-lab cluster status`")
    return run


# ---- agent ------------------------------------------------------------------------------------
def _agent_install(args: argparse.Namespace) -> int:
    from gitops_lab.cluster.kind import KindCluster
    from gitops_lab.install import install
    from gitops_lab.install.incluster import deploy_agent

    kubeconfig = resolve_kubeconfig(getattr(args, "kubeconfig", None))
    kube = Kube.from_kubeconfig(kubeconfig)
    if args.cluster_name is None:
        # the lab's kind cluster this kubeconfig belongs to, if it is one
        from gitops_lab.cluster.base import read_current

        candidates = [os.environ.get("GITOPS_LAB_CLUSTER"), (read_current() or {}).get("name"),
                      "gitops-lab"]
        args.cluster_name = next(
            (name for name in candidates if name and _same_file(
                KindCluster(name).kubeconfig(), kubeconfig)), None)
    mode = args.mode
    if mode is None:  # in-cluster where pods run (the lab's kind cluster), else local
        mode = "in-cluster" if args.cluster_name else "local"
    if mode == "in-cluster" and not args.cluster_name:
        raise AppError("--mode in-cluster needs the lab's kind cluster; hint: pass "
                       "--cluster-name NAME (`gitops-lab cluster up --provider kind`)")
    if mode == "in-cluster":
        print(f"building the agent image and loading it into kind cluster {args.cluster_name!r}",
              file=sys.stderr)
        done = deploy_agent(kube, KindCluster(args.cluster_name),
                            lambda line: print(line, file=sys.stderr, flush=True),
                            namespace=args.namespace)
    else:
        done = install(kube, mode, namespace=args.namespace)
    for name in done:
        print(f"applied {name}")
    if mode == "local":
        flag = "" if args.namespace == "gitops-lab" else f" --namespace {args.namespace}"
        print(f"agent RBAC installed; run it with `gitops-lab agent run{flag}` (it "
              f"authenticates as ServiceAccount {args.namespace}/gitops-lab-agent)",
              file=sys.stderr)
    return 0


def _agent_run(args: argparse.Namespace) -> int:
    from gitops_lab.agent.main import run

    return run(args)


# ---- app ----------------------------------------------------------------------------------------
def _short(sha: str) -> str:
    return sha[:7] if sha else "-"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def _app_list(args: argparse.Namespace) -> int:
    rows = [["NAME", "SYNC", "HEALTH", "REVISION", "SYNCPOLICY", "CONDITIONS", "REPO", "PATH"]]
    for app in Apps(_kube(args), args.namespace).list():
        spec = app.get("spec") or {}
        policy = "Auto" if (spec.get("syncPolicy") or {}).get("automated") else "Manual"
        auto = (spec.get("syncPolicy") or {}).get("automated") or {}
        if auto.get("prune"):
            policy += "-Prune"
        conds = ",".join(c.get("type", "") for c in (app.get("status") or {}).get("conditions") or [])
        src = spec.get("source") or {}
        rows.append([app["metadata"]["name"], sync_status(app), health_status(app),
                     _short(revision(app)), policy, conds or "<none>",
                     str(src.get("repoURL", "")), str(src.get("path", "."))])
    print(_table(rows))
    return 0


def _print_app(app: Obj) -> None:
    spec = app.get("spec") or {}
    status = app.get("status") or {}
    src = spec.get("source") or {}
    auto = (spec.get("syncPolicy") or {}).get("automated")
    info = status.get("revisionInfo") or {}
    lines = [
        ("Name", f"{app['metadata']['namespace']}/{app['metadata']['name']}"),
        ("Repo", src.get("repoURL", "")),
        ("Target", src.get("targetRevision", "HEAD")),
        ("Path", src.get("path", ".")),
        ("Namespace", (spec.get("destination") or {}).get("namespace", "")),
        ("Sync Policy", "Automated" + (" (Prune)" if auto.get("prune") else "")
         + (" (Self Heal)" if auto.get("selfHeal") else "") if auto is not None else "Manual"),
        ("Sync Status", f"{sync_status(app)} to {src.get('targetRevision', 'HEAD')} "
                        f"({_short(revision(app))})"),
        ("Health Status", health_status(app)
         + (f" — {(status.get('health') or {}).get('message')}"
            if (status.get("health") or {}).get("message") else "")),
        ("Commit", info.get("message", "")),
    ]
    op = status.get("operationState") or {}
    if op:
        lines.append(("Last Sync", f"{op.get('phase')}: {op.get('message', '')}"))
    for label, value in lines:
        print(f"{label + ':':<15}{value}")
    for cond in status.get("conditions") or []:
        print(f"{'CONDITION':<15}{cond.get('type')}: {cond.get('message')}")
    rows = [["GROUP", "KIND", "NAMESPACE", "NAME", "STATUS", "HEALTH", "MESSAGE"]]
    for r in status.get("resources") or []:
        health = r.get("health") or {}
        rows.append([r.get("group", ""), r.get("kind", ""), r.get("namespace", ""),
                     r.get("name", ""), r.get("status", "") + (" (prune)" if r.get(
                         "requiresPruning") else ""), health.get("status", ""),
                     health.get("message", "")])
    print()
    print(_table(rows))


def _app_get(args: argparse.Namespace) -> int:
    _print_app(Apps(_kube(args), args.namespace).get(args.name))
    return 0


def _app_diff(args: argparse.Namespace) -> int:
    """Compare Git with the live cluster here, without the agent (like `argocd app diff --local`)."""
    from gitops_lab.engine.reconcile import compare_app
    from gitops_lab.install.incluster import host_git_urls
    from gitops_lab.paths import cache_root
    from gitops_lab.source import RepoCache

    kube = _kube(args)
    app = Apps(kube, args.namespace).get(args.name)
    repos = RepoCache(cache_root() / "repos-cli", fetch_urls=host_git_urls())
    result = compare_app(kube, app, repos)
    for cond in result.conditions:
        print(f"{cond.type}: {cond.message}", file=sys.stderr)
    changed = 0
    for diff in result.diffs.values():
        if diff.status.value == "OutOfSync":
            changed += 1
            print(f"===== {diff.key} ======")
            print(diff.text)
    for r in result.resources:
        if r.requires_pruning:
            changed += 1
            print(f"===== {r.key} ====== (not in Git: would be pruned)")
    if not changed and not result.conditions:
        print(f"{args.name}: live state equals Git at {_short(result.revision or '')}",
              file=sys.stderr)
    return 1 if changed or result.conditions else 0


def _operation_failed(name: str, app: Obj) -> int:
    """0 when the app's operationState Succeeded; else the one-line error, and 1."""
    op = (app.get("status") or {}).get("operationState") or {}
    if op.get("phase") == "Succeeded":
        return 0
    print(f"error: sync of {name} {str(op.get('phase') or 'failed').lower()}: "
          f"{op.get('message') or 'no message'}; hint: `gitops-lab app get {name}` shows "
          "its conditions, and the agent's events say more", file=sys.stderr)
    return 1


def _wait_and_show(apps: Apps, name: str, timeout: float, requested: Obj) -> int:
    spinner = "|/-\\"
    state = {"i": 0}

    def progress(_app: Obj, elapsed: float) -> None:
        state["i"] += 1
        print(f"\r{spinner[state['i'] % 4]} waiting for the agent … {elapsed:4.1f} s",
              end="", file=sys.stderr, flush=True)

    app = apps.wait_operation(name, requested, timeout=timeout, progress=progress)
    print("\r", end="", file=sys.stderr)
    _print_app(app)
    return _operation_failed(name, app)


def _app_sync(args: argparse.Namespace) -> int:
    apps = Apps(_kube(args), args.namespace)
    requested = apps.sync(args.name, revision=args.revision, prune=args.prune)
    return _wait_and_show(apps, args.name, args.timeout, requested)


def _app_rollback(args: argparse.Namespace) -> int:
    apps = Apps(_kube(args), args.namespace)
    requested, rev = apps.rollback(args.name, args.id)
    print(f"rolling back {args.name} to history id {args.id} ({_short(rev)}); automated sync "
          "will be turned off so the rollback sticks", file=sys.stderr)
    app = apps.wait_operation(args.name, requested, timeout=args.timeout)
    # the agent then compares with targetRevision again: show that, not the rollback's compare
    with contextlib.suppress(AppError):
        app = apps.wait(args.name, lambda a: revision(a) != rev, timeout=5,
                        what="the comparison with the target revision")
    _print_app(app)
    if _operation_failed(args.name, app):
        return 1
    target = ((app.get("spec") or {}).get("source") or {}).get("targetRevision", "HEAD")
    if revision(app) != rev:
        print(f"\nLive is history id {args.id} ({_short(rev)}); {target} is at "
              f"{_short(revision(app))}, so the app shows OutOfSync until Git is fixed "
              "(git revert) and automated sync is turned back on.", file=sys.stderr)
    return 0


def _app_history(args: argparse.Namespace) -> int:
    app = Apps(_kube(args), args.namespace).get(args.name)
    current = revision(app)
    rows = [["ID", "DATE", "REVISION", "LIVE"]]
    for h in (app.get("status") or {}).get("history") or []:
        rows.append([str(h.get("id")), str(h.get("deployedAt", "")),
                     str(h.get("revision", "")), "*" if h.get("revision") == current else ""])
    print(_table(rows))
    return 0


def _app_refresh(args: argparse.Namespace) -> int:
    apps = Apps(_kube(args), args.namespace)
    apps.refresh(args.name)
    app = apps.wait(
        args.name,
        lambda a: not ((a.get("metadata") or {}).get("annotations") or {}).get(
            "gitopslab.io/refresh"),
        timeout=args.timeout, what="the agent to take the refresh")
    _print_app(app)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `agent` and `app` command groups."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kubeconfig", help="default: $KUBECONFIG, the lab's cluster, ~/.kube/config")
    common.add_argument("--namespace", "-N", default="gitops-lab",
                        help="namespace of the Applications (default gitops-lab)")

    agent = sub.add_parser("agent", help="install or run the GitOps agent")
    agent_sub = agent.add_subparsers(dest="agent_command", required=True)
    p = agent_sub.add_parser("install", parents=[common], help="CRD, namespace, RBAC (+ Deployment)")
    p.add_argument("--mode", choices=["local", "in-cluster"], default=None,
                   help="default: in-cluster when the kubeconfig is the lab's kind cluster's, "
                        "else local")
    p.add_argument("--cluster-name", default=None,
                   help="the kind cluster for in-cluster (default: the lab's kind cluster "
                        "whose kubeconfig is in use, if any)")
    p.set_defaults(func=_guard(_agent_install))
    p = agent_sub.add_parser("run", parents=[common], help="run the agent in the foreground")
    from gitops_lab.agent.main import add_run_arguments

    add_run_arguments(p)
    p.set_defaults(func=_guard(_agent_run))

    app = sub.add_parser("app", help="Argo CD's `argocd app` verbs")
    app_sub = app.add_subparsers(dest="app_command", required=True)
    p = app_sub.add_parser("list", parents=[common], help="all Applications")
    p.set_defaults(func=_guard(_app_list))
    for verb, func, helptext in (("get", _app_get, "sync, health and resources of one app"),
                                 ("diff", _app_diff, "Git vs live, per object (exit 1 if any)"),
                                 ("history", _app_history, "deployed revisions")):
        p = app_sub.add_parser(verb, parents=[common], help=helptext)
        p.add_argument("name")
        p.set_defaults(func=_guard(func))
    p = app_sub.add_parser("sync", parents=[common], help="sync now (optionally to a revision)")
    p.add_argument("name")
    p.add_argument("--revision")
    p.add_argument("--prune", action="store_true")
    p.add_argument("--timeout", type=float, default=120)
    p.set_defaults(func=_guard(_app_sync))
    p = app_sub.add_parser("rollback", parents=[common], help="sync to a history entry")
    p.add_argument("name")
    p.add_argument("id", type=int)
    p.add_argument("--timeout", type=float, default=120)
    p.set_defaults(func=_guard(_app_rollback))
    p = app_sub.add_parser("refresh", parents=[common], help="re-check Git and the cluster now")
    p.add_argument("name")
    p.add_argument("--timeout", type=float, default=60)
    p.set_defaults(func=_guard(_app_refresh))
