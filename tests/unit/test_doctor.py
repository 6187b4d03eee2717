"""gitops_lab.doctor: the lines `gitops-lab doctor` prints and its verdict, from given checks."""

from __future__ import annotations

from gitops_lab.doctor import Check, render, verdict


def test_a_check_renders_as_mark_label_found_and_hint() -> None:
    assert render(Check("git", True, "git version 2.39 (/usr/bin/git)", "apt-get")) == (
        "ok       git                      git version 2.39 (/usr/bin/git)")
    assert render(Check("go", False, "missing", "install Go")) == (
        "MISSING  go                       missing\n         → install Go")
    assert render(Check("skopeo", False, "missing", "optional", required=False)) == (
        "absent   skopeo                   missing\n         → optional")


def test_the_verdict_names_what_is_missing() -> None:
    built = [Check("kubectl", True, "v1.35.4"), Check("python", True, "3.11")]
    assert verdict(built) == (
        True, "the local lab can run (ready): `gitops-lab cluster up --provider local`")
    to_build = [Check("kubectl", False, "missing", required=False), *built[1:]]
    assert verdict(to_build)[1].startswith("the local lab can run (binaries will be built")
    broken = [*built, Check("git", False, "missing"), Check("go", False, "missing"),
              Check("chromium", False, "missing", required=False)]
    assert verdict(broken) == (False, "the local lab cannot run here: missing git, go")
