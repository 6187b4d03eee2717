"""Chapter 06's exercise: a least-privilege identity for a push pipeline (gitops_lab/course/push.py)."""

from __future__ import annotations

from gitops_lab.course.core import Exercise
from gitops_lab.course.push import check_ci_deployer

EXERCISES = {
    "06-ci-deployer": Exercise("06-ci-deployer",
                               "Give the push pipeline a credential that can deploy, and no more",
                               check_ci_deployer, wait=5,
                               waiting_for="the API server to see the new RBAC"),
}
