"""`gitops-lab` parsing and failure paths, with no cluster: every failure is one line + a hint.
Each test points GITOPS_LAB_CACHE at a temporary directory, so no real lab state is touched.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gitops_lab import cli, doctor
from gitops_lab.cluster import ExistingCluster, records
from gitops_lab.cluster.base import write_current
from gitops_lab.paths import bin_dir


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("GITOPS_LAB_CACHE", str(root))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("GITOPS_LAB_DEBUG", raising=False)
    return root


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str) -> str:
    """The last stderr line is `error: <reason>; hint: <hint>`; returns it."""
    lines = err.strip().splitlines()
    assert lines, "no error printed"
    last = lines[-1]
    assert last.startswith("error: "), err
    assert "; hint: " in last, err
    reason, hint = last[len("error: "):].split("; hint: ", 1)
    assert reason.strip() and hint.strip(), last
    return last


def test_unknown_provider_is_one_line_with_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "cluster", "up", "--provider", "bogus")
    assert code != 0
    assert out == ""
    assert err.count("\n") == 1  # exactly one line
    line = assert_one_line_error(err)
    assert "bogus" in line and "local" in line and "--help" in line


def test_get_provider_rejects_unknown_names_with_a_hint() -> None:
    from gitops_lab.cluster import ClusterError, get_provider

    with pytest.raises(ClusterError, match=r"unknown provider 'nope'; hint: one of auto"):
        get_provider("nope")


def test_unknown_command_and_missing_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "frobnicate")
    assert code == 2
    assert_one_line_error(err)

    code, _, err = run(capsys)
    assert code == 2
    assert "a command is required" in assert_one_line_error(err)

    code, _, err = run(capsys, "cluster")
    assert code == 2
    assert_one_line_error(err)


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("doctor", "cluster", "env"):
        assert command in out
    code, out, _ = run(capsys, "cluster", "up", "--help")
    assert code == 0
    assert "--provider" in out and "kubeconfig" in out


def test_env_prints_path_export_only_when_no_cluster_is_up(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "env", "--name", "not-there")
    assert code == 0
    assert out.splitlines() == [f"export PATH={bin_dir()}:$PATH"]
    assert "not up" in err


def test_env_quotes_paths_for_the_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITOPS_LAB_CACHE", str(tmp_path / "with space"))
    code, out, _ = run(capsys, "env")
    assert code == 0
    assert out.splitlines() == [f"export PATH='{bin_dir()}':$PATH"]
    shell = subprocess.run(
        ["bash", "-c", f'{out.strip()}; printf %s "${{PATH%%:*}}"'],
        capture_output=True, text=True, check=True,
    )
    assert shell.stdout == str(bin_dir())


def test_env_defaults_to_the_current_cluster(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = cache / "clusters" / "mine" / "kubeconfig"
    kubeconfig.parent.mkdir(parents=True)
    kubeconfig.write_text("")
    write_current("mine", "local", kubeconfig)
    code, _, err = run(capsys, "env")
    assert code == 0
    assert "'mine' is not up" in err  # it has no live processes


def test_status_of_an_unknown_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "cluster", "status", "--name", "ghost", "-o", "json")
    assert code == cli.EXIT_NOT_RUNNING
    data = json.loads(out)
    assert data["name"] == "ghost" and data["running"] is False
    assert "cluster up --name ghost" in err

    code, out, _ = run(capsys, "cluster", "status", "--name", "ghost")
    assert code == cli.EXIT_NOT_RUNNING
    assert "running:    no" in out


def test_down_of_an_unknown_cluster_is_a_no_op(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "cluster", "down", "--name", "ghost")
    assert code == 0
    assert out == ""
    assert "nothing to stop" in err


def test_provider_is_remembered_per_name(cache: Path) -> None:
    state = cache / "clusters"
    (state / "a").mkdir(parents=True)
    (state / "a" / "state.json").write_text("{}")
    (state / "b").mkdir()
    (state / "b" / "kind-config.yaml").write_text("kind: Cluster\n")
    (state / "c").mkdir()
    (state / "c" / records.PROVIDER_MARKER).write_text('{"provider": "existing"}')
    (state / "d").mkdir()  # a partial local state dir: `up` killed early
    assert records.recorded_provider("a") == "local"
    assert records.recorded_provider("b") == "kind"
    assert records.recorded_provider("c") == "existing"
    assert records.recorded_provider("d") == "local"
    assert records.recorded_provider("e") is None


def test_up_refuses_a_second_provider_for_one_name(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (cache / "clusters" / "lab").mkdir(parents=True)
    (cache / "clusters" / "lab" / "kind-config.yaml").write_text("kind: Cluster\n")
    code, out, err = run(capsys, "cluster", "up", "--provider", "local", "--name", "lab")
    assert code == 1
    assert out == ""
    line = assert_one_line_error(err)
    assert "'kind'" in line and "cluster down --name lab" in line


def test_kind_without_docker_fails_with_a_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import gitops_lab.cluster.kind as kind

    monkeypatch.setattr(kind, "docker_available", lambda timeout=5.0: False)
    code, out, err = run(capsys, "cluster", "up", "--provider", "kind", "--name", "k")
    assert code == 1
    assert out == ""
    line = assert_one_line_error(err)
    assert "kind" in line or "Docker" in line


def test_existing_provider_with_a_missing_kubeconfig(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.yaml"
    code, out, err = run(
        capsys, "cluster", "up", "--provider", "existing", "--kubeconfig", str(missing)
    )
    assert code == 1
    assert out == ""
    line = assert_one_line_error(err)
    assert str(missing) in line and "--kubeconfig" in line


def test_error_line_splits_reason_hint_and_detail() -> None:
    detail, line = cli._error_line("go build failed (exit 1); log: /x/build.log\ntail 1\ntail 2",
                                   "run `gitops-lab doctor`")
    assert detail == ["tail 1", "tail 2"]
    assert line == (
        "error: go build failed (exit 1); log: /x/build.log; hint: run `gitops-lab doctor`"
    )
    _, line = cli._error_line("no kubeconfig; hint: pass --kubeconfig", "unused")
    assert line == "error: no kubeconfig; hint: pass --kubeconfig"


def test_unexpected_exceptions_become_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(_args: object) -> int:
        raise ValueError("something odd")

    monkeypatch.setattr(cli, "cmd_doctor", boom)
    code, _, err = run(capsys, "doctor")
    assert code == 1
    line = assert_one_line_error(err)
    assert "ValueError: something odd" in line and "GITOPS_LAB_DEBUG" in line


def test_doctor_lists_every_tool_and_how_to_get_what_is_missing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "doctor")  # GITOPS_LAB_CACHE is empty: no binaries
    for label in ("python", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
                  "kubectl", "etcd", "kwok", "kind", "go", "git", "docker daemon", "chromium",
                  "docker-registry", "skopeo"):
        assert label in out
    assert "make setup" in out  # how to get the missing binaries
    checks = doctor.doctor_checks()
    if doctor.lab_can_run(checks):  # Go is here: the binaries can be built on first `up`
        assert code == 0
        assert "binaries will be built" in out
    else:
        assert code == 1
        assert_one_line_error(err)


def test_python_dash_m_runs_the_cli() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gitops_lab", "--help"], capture_output=True, text=True,
        timeout=60, check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "gitops-lab" in out.stdout


def test_down_of_an_existing_cluster_forgets_it_and_its_current_record(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`existing` is never stopped, only forgotten: its record goes, and so does the current
    cluster when it was this one; another name's current record stays."""
    kubeconfig = cache.parent / "elsewhere.yaml"
    kubeconfig.write_text("")
    records.record("ext", ExistingCluster("ext", kubeconfig))
    assert records.open_cluster("ext", "existing").kubeconfig() == kubeconfig
    write_current("other", "local", kubeconfig)
    code, _, err = run(capsys, "cluster", "down", "--name", "ext")
    assert code == 0 and "cluster 'ext' (existing) is down" in err
    assert records.recorded_provider("ext") is None
    assert kubeconfig.exists()  # not ours: never touched
    assert records.current_name() == "other"
    records.record("ext", ExistingCluster("ext", kubeconfig))
    write_current("ext", "existing", kubeconfig)
    assert records.take_down("ext") is not None
    assert records.current_name() == records.DEFAULT_NAME
    assert records.take_down("ext") is None  # idempotent: nothing left to stop


def test_lab_teardown_takes_the_cluster_down_and_forgets_the_lab(cache: Path) -> None:
    from gitops_lab.lab import teardown
    from gitops_lab.paths import lab_state_dir

    kubeconfig = cache.parent / "kubeconfig.yaml"
    kubeconfig.write_text("")
    records.record("gone", ExistingCluster("gone", kubeconfig))
    write_current("gone", "existing", kubeconfig)
    (lab_state_dir("gone") / "git").mkdir(parents=True)
    teardown("gone")
    assert records.recorded_provider("gone") is None
    assert records.current_name() == records.DEFAULT_NAME
    assert not lab_state_dir("gone").exists()
    assert kubeconfig.exists()
    teardown("gone")  # idempotent
