"""Running the agent in the foreground: the flags and body of `gitops-lab agent run`, and
`python -m gitops_lab.agent [flags]` (agent/__main__.py), which starts it without the CLI.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from gitops_lab.kube import Kube

__all__ = ["add_run_arguments", "main", "run"]


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `agent run` (besides --kubeconfig and --namespace)."""
    p.add_argument("--poll-interval", type=float, default=1.0,
                   help="seconds between Git polls (default 1; Argo CD polls every 180)")
    p.add_argument("--alert-webhook", help="POST alerts (JSON) to this URL")
    p.add_argument("--http-address", default="127.0.0.1:8080",
                   help="/healthz, /readyz, /metrics, /webhook, /registry-webhook "
                        "(default 127.0.0.1:8080)")
    p.add_argument("--in-cluster", action="store_true", help="use the pod's ServiceAccount")
    p.add_argument("--as-admin", action="store_true",
                   help="use the kubeconfig's identity instead of the agent's ServiceAccount")
    p.add_argument("--token-expiration", type=int, default=3600, metavar="SECONDS",
                   help="lifetime of the agent's ServiceAccount token (TokenRequest, at least "
                        "600); renewed at 80%% of it (default 3600)")
    p.add_argument("--allow-remote-bases", action="store_true",
                   help="let kustomizations load remote bases (URLs, github.com/…); off by "
                        "default: rendering then fetches from the network")
    p.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=True,
                   help="reconcile only while holding the Lease, so two agents never both "
                        "write (default on)")
    p.add_argument("--lease-name", default="gitops-lab-agent",
                   help="Lease in --namespace used for leader election (default gitops-lab-agent)")
    p.add_argument("--lease-duration", type=float, default=15.0,
                   help="seconds a standby waits for a silent leader before taking over "
                        "(default 15; the leader renews every 2 s)")


def run(args: argparse.Namespace) -> int:
    """Run the agent until SIGTERM/SIGINT."""
    from gitops_lab.agent.controller import Agent, AgentOptions
    from gitops_lab.cluster import resolve_kubeconfig
    from gitops_lab.install import InstallError, agent_token_source
    from gitops_lab.source.render import ALLOW_REMOTE_BASES_ENV

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.allow_remote_bases:
        os.environ[ALLOW_REMOTE_BASES_ENV] = "1"
    if args.in_cluster:
        kube = Kube.in_cluster()  # the kubelet rotates the token file; the client re-reads it
    else:
        admin = Kube.from_kubeconfig(resolve_kubeconfig(getattr(args, "kubeconfig", None)))
        kube = admin
        if not args.as_admin:
            # local mode: act as the agent's ServiceAccount so RBAC is exercised for real;
            # its token is renewed before it expires and re-requested when it is rejected
            source = agent_token_source(admin, args.namespace, seconds=args.token_expiration)
            if not source.token():
                raise InstallError(source.error)
            kube = admin.with_token_source(source, "gitops-lab-agent")
    options = AgentOptions(namespace=args.namespace, poll_interval=args.poll_interval,
                           alert_webhook=args.alert_webhook, http_address=args.http_address,
                           leader_elect=args.leader_elect, lease_name=args.lease_name,
                           lease_duration=args.lease_duration)
    agent = Agent(kube, options)
    election = (f"; leader election on Lease {args.namespace}/{args.lease_name} as "
                f"{agent.identity}" if args.leader_elect else "; no leader election")
    print(f"agent watching namespace {args.namespace}{election}; Ctrl-C to stop",
          file=sys.stderr)
    agent.run_forever()
    print("agent stopped", file=sys.stderr)
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's error format: one line with the reason and a hint."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}; hint: see `{self.prog} --help`\n")


def _fail(message: str, hint: str) -> int:
    if "; hint: " in message:
        message, hint = message.split("; hint: ", 1)
    reason = (message.strip().splitlines() or ["failed"])[0].strip().rstrip(".;")
    print(f"error: {reason}; hint: {hint}", file=sys.stderr, flush=True)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m gitops_lab.agent [flags]`: the same as `gitops-lab agent run [flags]`, with
    the same `error: …; hint: …` line on failure."""
    from gitops_lab.apps import AppError
    from gitops_lab.cluster import ClusterError
    from gitops_lab.install import InstallError
    from gitops_lab.kube import KubeError

    parser = _Parser(prog="python -m gitops_lab.agent",
                     description="Run the GitOps agent in the foreground.")
    parser.add_argument("--kubeconfig",
                        help="default: $KUBECONFIG, the lab's cluster, ~/.kube/config")
    parser.add_argument("--namespace", "-N", default="gitops-lab",
                        help="namespace of the Applications (default gitops-lab)")
    add_run_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 1
    try:
        return run(args)
    except (AppError, ClusterError, InstallError) as exc:
        return _fail(str(exc), "`gitops-lab doctor`")
    except KubeError as exc:
        return _fail(f"API server: {exc.message}", "is the cluster up? `gitops-lab cluster status`")
    except KeyboardInterrupt:
        return _fail("interrupted", "run the command again")
    except Exception as exc:  # every failure ends as one line, not a traceback
        if os.environ.get("GITOPS_LAB_DEBUG"):
            traceback.print_exc()
        return _fail(f"{type(exc).__name__}: {exc}",
                     "re-run with GITOPS_LAB_DEBUG=1 for the traceback")
