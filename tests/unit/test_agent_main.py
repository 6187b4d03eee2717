"""`python -m gitops_lab.agent` starts the agent without the CLI, with the same flags and the
same one-line errors as `gitops-lab agent run`; the CLI does not import the agent."""

from __future__ import annotations

import subprocess
import sys

from gitops_lab.cli import build_parser


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\n"
                          "print(' '.join(m for m in sys.modules if m.startswith('gitops_lab')))"],
                         capture_output=True, text=True, check=True, timeout=60)
    return set(out.stdout.split())


def test_the_agent_entry_point_does_not_import_the_cli() -> None:
    loaded = _modules_after("import contextlib, io\nfrom gitops_lab.agent.main import main\n"
                            "with contextlib.redirect_stdout(io.StringIO()):\n"
                            "    assert main(['--help']) == 0")
    assert "gitops_lab.agent.main" in loaded
    assert not {"gitops_lab.cli", "gitops_lab.appcli"} & loaded


def test_the_cli_does_not_import_the_agent_to_build_its_parser() -> None:
    loaded = _modules_after("from gitops_lab.cli import build_parser\nbuild_parser()")
    assert "gitops_lab.agent.controller" not in loaded and "gitops_lab.engine.reconcile" \
        not in loaded


def test_both_entry_points_take_the_same_flags() -> None:
    argv = ["--kubeconfig", "/k", "-N", "ns", "--poll-interval", "3", "--no-leader-elect",
            "--lease-name", "l", "--as-admin"]
    cli = vars(build_parser().parse_args(["agent", "run", *argv]))
    from gitops_lab.agent.main import _Parser, add_run_arguments

    parser = _Parser()
    parser.add_argument("--kubeconfig")
    parser.add_argument("--namespace", "-N")
    add_run_arguments(parser)
    direct = vars(parser.parse_args(argv))
    assert direct == {k: v for k, v in cli.items() if k in direct}
    assert direct["poll_interval"] == 3.0 and direct["leader_elect"] is False


def test_a_bad_kubeconfig_ends_in_one_error_line() -> None:
    out = subprocess.run([sys.executable, "-m", "gitops_lab.agent", "--kubeconfig",
                          "/nonexistent/kubeconfig", "--as-admin"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "; hint: " in lines[-1]
    assert "Traceback" not in out.stderr
