"""The `existing` provider: any cluster a kubeconfig/context already reaches.
Nothing is started or stopped; `up` checks the API answers and remembers the kubeconfig.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from gitops_lab.cluster.base import (
    ClusterError,
    ClusterStatus,
    Progress,
    Provider,
    write_current,
)
from gitops_lab.paths import bin_dir

__all__ = ["ExistingCluster"]


class ExistingCluster(Provider):
    kind = "existing"

    def __init__(
        self, name: str = "gitops-lab", kubeconfig: Path | None = None, context: str | None = None
    ) -> None:
        super().__init__(name)
        env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
        self._kubeconfig = kubeconfig or (
            Path(env) if env else Path.home() / ".kube" / "config"
        )
        self.context = context

    def kubeconfig(self) -> Path:
        return self._kubeconfig

    def _kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        kubectl = bin_dir() / "kubectl"
        cmd = [str(kubectl) if kubectl.exists() else "kubectl", f"--kubeconfig={self._kubeconfig}"]
        if self.context:
            cmd.append(f"--context={self.context}")
        return subprocess.run(
            [*cmd, *args], capture_output=True, text=True, timeout=30, check=False
        )

    def up(self, progress: Progress | None = None) -> Path:
        if not self._kubeconfig.exists():
            raise ClusterError(f"kubeconfig {self._kubeconfig} does not exist; hint: --kubeconfig")
        out = self._kubectl("get", "--raw", "/readyz")
        if out.returncode != 0:
            raise ClusterError(
                f"the cluster in {self._kubeconfig} does not answer: {out.stderr.strip()}"
            )
        write_current(self.name, self.kind, self._kubeconfig)
        return self._kubeconfig

    def down(self) -> None:
        """An existing cluster is not ours to stop."""

    def status(self) -> ClusterStatus:
        ok = self._kubeconfig.exists() and self._kubectl("get", "--raw", "/readyz").returncode == 0
        return ClusterStatus(self.name, self.kind, ok, self._kubeconfig)
