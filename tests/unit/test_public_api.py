"""Every name ../shared/API.md calls public Python API imports from where it says."""

from __future__ import annotations

import subprocess
import sys

import gitops_lab


def test_the_public_names_import_from_the_package() -> None:
    from gitops_lab import Agent, AgentOptions, Health, HealthStatus, Lab, assess_health

    health = assess_health({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "x"}})
    assert isinstance(health, Health) and health.status == HealthStatus.HEALTHY
    assert health.status == "Healthy"  # a str enum, as API.md says
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generation": 1},
                  "spec": {"replicas": 2},
                  "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2,
                             "availableReplicas": 1}}
    assert assess_health(deployment).status == HealthStatus.PROGRESSING
    for name in ("connect", "commit", "revert", "read", "sample_app", "app", "kubectl",
                 "registry", "app_url", "provider_kind", "agent_mode", "repo_url"):
        assert hasattr(Lab, name) or name in ("repo_url", "agent_mode"), name
    assert Agent and AgentOptions
    assert set(gitops_lab.__all__) >= {"Lab", "assess_health", "Health", "HealthStatus", "Agent"}


def test_importing_the_package_stays_light() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import sys, gitops_lab; "
         "print(sorted(m for m in ('kubernetes', 'ipywidgets', 'git', 'gitops_lab.lab') "
         "if m in sys.modules))"],
        capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
