"""`gitops-lab`: the command line, thin over cluster/ (and appcli.py for `agent`/`app`).
Progress goes to stderr; stdout carries only what scripts read (a kubeconfig path, `env` lines).

Every command is a function `(argparse.Namespace) -> int` set as `func` on its sub-parser.
Every failure ends as one stderr line `error: <reason>; hint: <what to do>` and a non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, cast

from gitops_lab import doctor
from gitops_lab.cluster import PROVIDERS, BinaryError, ClusterError, records
from gitops_lab.cluster.docker import docker_available
from gitops_lab.cluster.records import DEFAULT_NAME
from gitops_lab.paths import bin_dir

__all__ = ["DEFAULT_NAME", "build_parser", "main"]

EXIT_NOT_RUNNING = 3  # `cluster status` of a cluster that is not up (as `systemctl status`)

Handler = Callable[[argparse.Namespace], int]


# ---- output helpers ----------------------------------------------------------------------
def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _error_line(message: str, default_hint: str) -> tuple[list[str], str]:
    """Split an exception text into detail lines and the final `error: …; hint: …` line."""
    lines = [line for line in str(message).strip().splitlines() if line.strip()] or ["failed"]
    reason, detail = lines[0].strip(), lines[1:]
    hint = default_hint
    if "; hint: " in reason:
        reason, hint = reason.split("; hint: ", 1)
    else:
        for line in detail:
            if line.strip().startswith("hint:"):
                hint = line.strip()[len("hint:"):].strip()
                detail = [d for d in detail if d is not line]
                break
    return detail, f"error: {reason.rstrip('.;')}; hint: {hint}"


def _fail(message: str, default_hint: str = "run `gitops-lab doctor`", code: int = 1) -> int:
    detail, line = _error_line(message, default_hint)
    for extra in detail:
        print(f"  | {extra}", file=sys.stderr)
    print(line, file=sys.stderr, flush=True)
    return code


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's error format: one line with the reason and a hint."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}; hint: see `{self.prog} --help`\n")


# ---- cluster up / down / status ----------------------------------------------------------
def cmd_cluster_up(args: argparse.Namespace) -> int:
    name: str = args.name
    provider = records.choose_provider(
        name, args.provider,
        kubeconfig=Path(args.kubeconfig).expanduser() if args.kubeconfig else None,
        context=args.context, node_image=args.node_image, say=_say,
    )
    start = time.monotonic()
    _say(f"cluster {name!r}: bringing up with provider {provider.kind}")
    kubeconfig_path = provider.up(progress=_say)
    records.record(name, provider)
    _say(f"cluster {name!r} ready in {time.monotonic() - start:.1f} s; kubeconfig:")
    print(kubeconfig_path, flush=True)
    return 0


def cmd_cluster_down(args: argparse.Namespace) -> int:
    name: str = args.name
    start = time.monotonic()
    provider = records.take_down(name, args.provider)
    if provider is None:
        _say(f"no cluster named {name!r} here; nothing to stop")
        return 0
    _say(f"cluster {name!r} ({provider.kind}) is down in {time.monotonic() - start:.1f} s")
    return 0


def cmd_cluster_status(args: argparse.Namespace) -> int:
    name: str = args.name
    status = records.status_of(name, args.provider)
    if args.output == "json":
        print(json.dumps(status.to_dict(), indent=2))
    else:
        rows = [
            ("name", status.name),
            ("provider", status.provider),
            ("running", "yes" if status.running else "no"),
            ("kubeconfig", str(status.kubeconfig or "-")),
            ("server", status.server or "-"),
            ("detail", status.detail or "-"),
        ]
        if status.components:
            rows.append(
                ("components", " ".join(f"{k}={v}" for k, v in status.components.items()))
            )
        for key, value in rows:
            print(f"{key + ':':<12}{value}")
    if not status.running:
        _say(f"cluster {name!r} is not running; hint: `gitops-lab cluster up --name {name}`")
        return EXIT_NOT_RUNNING
    return 0


# ---- env -----------------------------------------------------------------------------------
def env_lines(name: str) -> list[str]:
    """The `export` lines of `gitops-lab env` for cluster NAME."""
    lines = [f"export PATH={shlex.quote(str(bin_dir()))}:$PATH"]
    kubeconfig = records.running_kubeconfig(name)
    if kubeconfig is not None:
        lines.append(f"export KUBECONFIG={shlex.quote(str(kubeconfig))}")
    return lines


def cmd_env(args: argparse.Namespace) -> int:
    name: str = args.name or records.current_name()
    lines = env_lines(name)
    for line in lines:
        print(line)
    if len(lines) == 1:
        _say(f"# cluster {name!r} is not up, so no KUBECONFIG; `gitops-lab cluster up` starts it")
    return 0


# ---- doctor --------------------------------------------------------------------------------
def cmd_doctor(args: argparse.Namespace) -> int:
    checks = doctor.doctor_checks()
    for check in checks:
        print(doctor.render(check))
    ok, summary = doctor.verdict(checks)
    if ok:
        print(f"\n{summary}")
        return 0
    return _fail(summary, "follow the → lines above, then run `gitops-lab doctor` again")


# ---- docker ---------------------------------------------------------------------------------
def cmd_docker_start(args: argparse.Namespace) -> int:
    from gitops_lab.cluster.docker import start_dockerd

    print(start_dockerd())
    return 0


def cmd_docker_stop(args: argparse.Namespace) -> int:
    from gitops_lab.cluster.docker import stop_dockerd

    print(stop_dockerd())
    return 0


def cmd_docker_status(args: argparse.Namespace) -> int:
    if docker_available():
        print("a Docker daemon answers")
        return 0
    print("no Docker daemon answers `docker info`")
    return 3


# ---- parser --------------------------------------------------------------------------------
def _no_command(parser: argparse.ArgumentParser) -> Handler:
    def handler(_args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return _fail("a command is required", f"see `{parser.prog} --help`", code=2)

    return handler


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gitops-lab",
        description="A Jupyter workbench that teaches GitOps with a real pull-based agent.",
    )
    parser.set_defaults(func=_no_command(parser))
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    doctor = sub.add_parser("doctor", help="what is installed, what is missing, how to get it")
    doctor.set_defaults(func=cmd_doctor)

    cluster = sub.add_parser("cluster", help="bring the lab's Kubernetes cluster up or down")
    cluster.set_defaults(func=_no_command(cluster))
    csub = cluster.add_subparsers(title="cluster commands", metavar="COMMAND")

    def name_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--name", default=DEFAULT_NAME,
                       help=f"cluster name (default: {DEFAULT_NAME})")

    up = csub.add_parser(
        "up", help="bring a cluster up (idempotent); last stdout line = kubeconfig path",
        description="Bring a cluster up (idempotent). Progress goes to stderr; the last line "
                    "on stdout is the kubeconfig path.",
    )
    name_arg(up)
    up.add_argument(
        "--provider", choices=PROVIDERS, default=None,
        help="auto = kind where a Docker daemon answers, else local (default: the provider "
             "NAME was made with, else auto)",
    )
    up.add_argument("--node-image", help="with --provider kind: the node image (default: "
                    "$GITOPS_LAB_NODE_IMAGE, else the lab's own gitops-lab/node image, built "
                    "here from Debian packages and Go modules; kindest/node where it cannot be)")
    up.add_argument("--kubeconfig", help="with --provider existing: the kubeconfig to use")
    up.add_argument("--context", help="with --provider existing: the context to use")
    up.set_defaults(func=cmd_cluster_up)

    down = csub.add_parser("down", help="stop the cluster and remove its state")
    name_arg(down)
    down.add_argument("--provider", choices=PROVIDERS[1:], default=None,
                      help="override the provider recorded at `up`")
    down.set_defaults(func=cmd_cluster_down)

    status = csub.add_parser(
        "status", help="is the cluster up? (exit 0 when running, 3 when not)"
    )
    name_arg(status)
    status.add_argument("--provider", choices=PROVIDERS[1:], default=None,
                        help="override the provider recorded at `up`")
    status.add_argument("-o", "--output", choices=("text", "json"), default="text")
    status.set_defaults(func=cmd_cluster_status)

    docker = sub.add_parser("docker", help="start or stop a Docker daemon for the kind provider")
    docker.set_defaults(func=_no_command(docker))
    dsub = docker.add_subparsers(title="docker commands", metavar="COMMAND")
    dsub.add_parser("start", help="start Debian's dockerd by hand (no-op when one answers)"
                    ).set_defaults(func=cmd_docker_start)
    dsub.add_parser("stop", help="stop the dockerd `start` started; restore host sysctls"
                    ).set_defaults(func=cmd_docker_stop)
    dsub.add_parser("status", help="does a Docker daemon answer? (exit 0 yes, 3 no)"
                    ).set_defaults(func=cmd_docker_status)

    env = sub.add_parser(
        "env", help='shell exports for the lab: eval "$(gitops-lab env)"',
        description="Print `export PATH=…` (kubectl, kind, control-plane binaries) and, when "
                    "the cluster is up, `export KUBECONFIG=…`.",
    )
    env.add_argument("--name", default=None,
                     help=f"cluster name (default: the current cluster, else {DEFAULT_NAME})")
    env.set_defaults(func=cmd_env)

    from gitops_lab import appcli

    # the `agent` and `app` command groups; argparse's type is invariant in the parser class
    appcli.register(cast("argparse._SubParsersAction[argparse.ArgumentParser]", sub))
    from gitops_lab import imagecli

    # `registry`, `ci` and `image`: the lab's registry, its CI and the ImagePolicies
    imagecli.register(cast("argparse._SubParsersAction[argparse.ArgumentParser]", sub))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 1
    handler: Handler = args.func
    try:
        return int(handler(args) or 0)
    except (ClusterError, BinaryError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted", "run the command again; `up` and `down` are idempotent",
                     code=130)
    except Exception as exc:  # every failure ends as one line, not a traceback
        if os.environ.get("GITOPS_LAB_DEBUG"):
            traceback.print_exc()
        return _fail(f"{type(exc).__name__}: {exc}",
                     "re-run with GITOPS_LAB_DEBUG=1 for the traceback")


if __name__ == "__main__":
    raise SystemExit(main())
