"""The package's layers import only downward: paths and cluster/ at the bottom, the agent's
source/ beneath the engine, and nothing of the agent's side reaching up to the lab or the CLI.
Read from the code's own import statements (lazy imports inside functions included).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gitops_lab

PACKAGE = Path(gitops_lab.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n == "gitops_lab" or n.startswith("gitops_lab.")}


def _files(place: str) -> list[Path]:
    target = PACKAGE / place
    return sorted(target.rglob("*.py")) if target.is_dir() else [target.with_suffix(".py")]


def _reaches(name: str, layer: str) -> bool:
    return name == f"gitops_lab.{layer}" or name.startswith(f"gitops_lab.{layer}.")


# place -> the gitops_lab modules and packages it must never import
NEVER = {
    "paths": ["api", "agent", "appcli", "apps", "cli", "cluster", "doctor", "engine", "images",
              "install", "kube", "lab", "labgit", "source", "testing", "watch", "widgets"],
    "cluster": ["agent", "appcli", "apps", "cli", "doctor", "engine", "images", "install",
                "kube", "lab", "labgit", "source", "widgets"],
    "source": ["agent", "appcli", "cli", "cluster", "doctor", "engine", "images", "install",
               "lab", "labgit", "widgets"],
    "labgit": ["agent", "appcli", "cli", "cluster", "engine", "images", "install", "lab",
               "widgets"],
    # the agent may resolve a kubeconfig through cluster/ (the bottom layer), but takes its
    # paths from paths, never from the binary toolchain
    "agent": ["appcli", "cli", "cluster.binaries", "doctor", "lab", "labgit", "widgets"],
    "doctor": ["agent", "appcli", "cli", "engine", "lab", "widgets"],
    # the reconcile path reads one way: agent → source → engine stages; nothing above it
    "engine": ["agent", "appcli", "cli", "cluster", "course", "doctor", "images", "install",
               "lab", "labgit", "widgets"],
}
# Known arrows up, each removed by its own change: the lead drops an entry once it lands.
PENDING: set[tuple[str, str]] = set()


@pytest.mark.parametrize("place", sorted(NEVER))
def test_a_layer_imports_nothing_above_it(place: str) -> None:
    wrong = []
    for path in _files(place):
        rel = str(path.relative_to(PACKAGE))
        for name in sorted(_imports(path)):
            for layer in NEVER[place]:
                if _reaches(name, layer) and (rel, layer) not in PENDING:
                    wrong.append(f"{rel} imports {name}")
    assert wrong == []


def test_the_lab_git_server_is_not_in_the_agents_source_package() -> None:
    assert not (PACKAGE / "source" / "gitserver.py").exists()
    from gitops_lab import labgit, source

    assert not hasattr(source, "GitServer") and not hasattr(source, "WorkingCopy")
    assert labgit.GitServer and labgit.WorkingCopy and labgit.GitServerError
