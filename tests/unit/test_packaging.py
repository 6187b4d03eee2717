"""environment.yml (conda-forge) and pyproject.toml (pip) must describe the same lab.
Every pip requirement has a conda-forge counterpart with the same lower bound; `-e .` is there.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]

# PyPI name (lower case) -> conda-forge name, where they differ.
CONDA_NAME = {
    "kubernetes": "python-kubernetes",
    "gitpython": "gitpython",
    "pyyaml": "pyyaml",
    "prometheus-client": "prometheus_client",
    "types-pyyaml": "types-pyyaml",
    "playwright": "playwright-python",
    "matplotlib": "matplotlib-base",
}
# Tools the lab drives that are not Python packages, but conda-forge has.
CONDA_TOOLS = ("go", "git", "kind", "kubernetes-client")

SPEC = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:\[[^\]]*\])?\s*(.*)$")


def _split(requirement: str) -> tuple[str, str]:
    match = SPEC.match(requirement)
    assert match, requirement
    return match[1].lower(), match[2].replace(" ", "")


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _environment() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert isinstance(data, dict)
    return data


def _conda_deps() -> dict[str, str]:
    deps: dict[str, str] = {}
    for item in _environment()["dependencies"]:
        if isinstance(item, str):
            name, spec = _split(item.split("#")[0])
            deps[name] = spec
    return deps


def _pip_deps() -> list[str]:
    for item in _environment()["dependencies"]:
        if isinstance(item, dict) and "pip" in item:
            return [str(x) for x in item["pip"]]
    return []


def _covered(requirement: str) -> tuple[bool, str]:
    name = _split(requirement)[0]
    conda = _conda_deps()
    conda_name = CONDA_NAME.get(name, name)
    if conda_name in conda:
        return True, conda[conda_name]
    pip = {_split(p)[0]: _split(p)[1] for p in _pip_deps() if not p.startswith("-")}
    return name in pip, pip.get(name, "")


def test_environment_uses_conda_forge_and_python_311() -> None:
    env = _environment()
    assert env["channels"] == ["conda-forge"]
    assert _conda_deps()["python"] == "=3.11"
    assert _pyproject()["project"]["requires-python"] == ">=3.11,<3.12"


def test_every_runtime_dependency_has_a_conda_counterpart() -> None:
    for requirement in _pyproject()["project"]["dependencies"]:
        found, conda_spec = _covered(requirement)
        assert found, f"{requirement} from pyproject is missing in environment.yml"
        _, pip_spec = _split(requirement)
        assert conda_spec == pip_spec, f"{requirement}: environment.yml says {conda_spec!r}"


def test_every_test_dependency_is_in_the_environment() -> None:
    test_deps = _pyproject()["project"]["optional-dependencies"]["test"]
    names = {_split(r)[0] for r in test_deps}
    assert {"pytest", "nbval"} <= names
    for requirement in test_deps:
        found, conda_spec = _covered(requirement)
        assert found, f"test dependency {requirement} is missing in environment.yml"
        _, pip_spec = _split(requirement)
        assert conda_spec == pip_spec, f"{requirement}: environment.yml says {conda_spec!r}"


def test_the_lab_tools_and_the_package_itself() -> None:
    conda = _conda_deps()
    for tool in CONDA_TOOLS:
        assert tool in conda, f"{tool} is missing in environment.yml"
    assert "pip" in conda
    assert "-e ." in _pip_deps()


def test_every_conda_python_package_is_declared_in_pyproject() -> None:
    """Nothing in environment.yml that pip users would silently lack."""
    project = _pyproject()["project"]
    declared = {
        CONDA_NAME.get(n, n)
        for n in (_split(r)[0] for r in
                  [*project["dependencies"], *project["optional-dependencies"]["test"]])
    }
    extra = set(_conda_deps()) - declared - set(CONDA_TOOLS) - {"python", "pip"}
    assert not extra, f"in environment.yml but not in pyproject.toml: {sorted(extra)}"
