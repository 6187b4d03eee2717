"""The provider interface every lab cluster implements: up, down, status, kubeconfig.
cluster/local.py, kind.py and existing.py implement it; cluster/__init__.py picks one.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gitops_lab.paths import current_cluster_file

__all__ = [
    "ClusterError",
    "ClusterStatus",
    "Progress",
    "Provider",
    "preserve_current",
    "read_current",
    "write_current",
]

Progress = Callable[[str], None]


class ClusterError(RuntimeError):
    """A cluster could not be brought up, reached or torn down; the message has a hint."""


@dataclass
class ClusterStatus:
    name: str
    provider: str
    running: bool
    kubeconfig: Path | None
    server: str | None = None
    detail: str = ""
    components: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["kubeconfig"] = str(self.kubeconfig) if self.kubeconfig else None
        return data


class Provider(abc.ABC):
    """One way of having a Kubernetes cluster for the lab."""

    kind: str = "abstract"

    def __init__(self, name: str = "gitops-lab") -> None:
        self.name = name

    @abc.abstractmethod
    def up(self, progress: Progress | None = None) -> Path:
        """Bring the cluster up (idempotent) and return its kubeconfig path."""

    @abc.abstractmethod
    def down(self) -> None:
        """Stop everything the provider started and remove its state."""

    @abc.abstractmethod
    def status(self) -> ClusterStatus: ...

    @abc.abstractmethod
    def kubeconfig(self) -> Path: ...


def write_current(name: str, provider: str, kubeconfig: Path) -> None:
    """Remember the lab's current cluster so CLI commands find it without --kubeconfig."""
    path = current_cluster_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps({"name": name, "provider": provider, "kubeconfig": str(kubeconfig)})
    )
    os.replace(tmp, path)


@contextlib.contextmanager
def preserve_current() -> Iterator[None]:
    """Keep the learner's "current cluster" (what `gitops-lab env` uses) as it was: for
    test sessions and benchmarks that bring their own clusters up."""
    path = current_cluster_file()
    before = path.read_bytes() if path.exists() else None
    try:
        yield
    finally:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(before)


def read_current() -> dict[str, str] | None:
    try:
        data = json.loads(current_cluster_file().read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not Path(str(data.get("kubeconfig", ""))).exists():
        return None
    return {str(k): str(v) for k, v in data.items()}
