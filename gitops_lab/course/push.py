"""Chapter 06's push pipeline, played live: a CI job that holds a kubeconfig outside the cluster
and runs `kubectl apply`, beside the agent that pulls. What each credential can reach is asked
of the API server (`kubectl auth can-i`); no Secret value is ever read or printed."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from gitops_lab.course.core import Verdict, done, not_yet

if TYPE_CHECKING:
    from gitops_lab.lab import Lab

__all__ = [
    "AGENT",
    "CI_SA",
    "OTHER_NS",
    "OTHER_SECRET",
    "PUSH_NS",
    "REACH",
    "PushPipeline",
    "check_ci_deployer",
    "cleanup",
    "pipeline",
    "reach_table",
]

AGENT = "system:serviceaccount:gitops-lab:gitops-lab-agent"
PUSH_NS = "guestbook-push"  # where the push pipeline deploys the guestbook
OTHER_NS = "payments"  # another team's namespace, with a Secret in it
OTHER_SECRET = "payments-db"
CI_SA = "ci-deployer"  # the learner's least-privilege identity for the pipeline
CI_SA_USER = f"system:serviceaccount:{PUSH_NS}:{CI_SA}"

# (what, kubectl auth can-i arguments): the questions of the side-by-side table
REACH: list[tuple[str, list[str]]] = [
    (f"patch deployments in {PUSH_NS}", ["patch", "deployments.apps", "-n", PUSH_NS]),
    ("patch deployments in guestbook", ["patch", "deployments.apps", "-n", "guestbook"]),
    (f"get secrets in {OTHER_NS} (another team)", ["get", "secrets", "-n", OTHER_NS]),
    ("get secrets in kube-system", ["get", "secrets", "-n", "kube-system"]),
    ("create pods/exec in guestbook", ["create", "pods", "--subresource=exec", "-n", "guestbook"]),
    ("create clusterrolebindings", ["create", "clusterrolebindings.rbac.authorization.k8s.io"]),
    ("delete nodes", ["delete", "nodes"]),
    ("anything, anywhere (* *)", ["*", "*", "--all-namespaces"]),
]


def _kubectl(kubectl: str, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([kubectl, f"--kubeconfig={kubeconfig}", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def _kubectl_exe() -> str:
    from gitops_lab.paths import bin_dir

    exe = bin_dir() / "kubectl"
    return str(exe) if exe.exists() else "kubectl"


@dataclass
class PushPipeline:
    """A CI job of the push model: its workspace and, in its secret store, a kubeconfig."""

    home: Path
    kubeconfig: Path  # the credential CI holds — outside the cluster
    repo_url: str

    @property
    def workspace(self) -> Path:
        return self.home / "workspace"

    def run(self, namespace: str = PUSH_NS, kubeconfig: Path | None = None) -> str:
        """One pipeline run: check out the config repo, `kubectl apply` the guestbook into
        `namespace` with CI's kubeconfig (or `kubeconfig`). Returns what it printed, the
        commands first; a refusal by the API server is part of that output, not an exception."""
        config = kubeconfig or self.kubeconfig
        shutil.rmtree(self.workspace, ignore_errors=True)
        lines = [f"$ git clone --depth 1 {self.repo_url} workspace"]
        clone = subprocess.run(["git", "clone", "--quiet", "--depth", "1", self.repo_url,
                                str(self.workspace)], capture_output=True, text=True, timeout=60,
                               check=False)
        if clone.returncode != 0:
            return "\n".join([*lines, clone.stderr.strip()])
        manifests = self.workspace / "apps" / "guestbook"
        _clusterip(manifests / "service.yaml")
        kubectl = _kubectl_exe()
        if "NotFound" in _kubectl(kubectl, config, "get", "namespace", namespace).stderr:
            lines.append(f"$ kubectl create namespace {namespace}")
            made = _kubectl(kubectl, config, "create", "namespace", namespace)
            lines.append((made.stdout + made.stderr).strip())
        lines.append(f"$ kubectl --kubeconfig $CI_KUBECONFIG apply -n {namespace} -f apps/guestbook/")
        out = _kubectl(kubectl, config, "apply", "-n", namespace, "-f", str(manifests))
        lines.append((out.stdout + out.stderr).strip().replace(str(self.workspace) + "/", ""))
        return "\n".join(lines)

    def can_i(self, *args: str, kubeconfig: Path | None = None) -> bool:
        out = _kubectl(_kubectl_exe(), kubeconfig or self.kubeconfig, "auth", "can-i", *args)
        return out.stdout.strip().startswith("yes")

    def service_account_kubeconfig(self, namespace: str = PUSH_NS, name: str = CI_SA,
                                   minutes: int = 10) -> Path:
        """A kubeconfig for ServiceAccount `namespace/name` with a short-lived token
        (TokenRequest, `kubectl create token`), stored beside CI's other one; never printed."""
        kubectl = _kubectl_exe()
        token = _kubectl(kubectl, self.kubeconfig, "create", "token", name, "-n", namespace,
                         f"--duration={minutes}m")
        if token.returncode != 0:
            raise RuntimeError(f"no token for {namespace}/{name}: {token.stderr.strip()}")
        admin = yaml.safe_load(self.kubeconfig.read_text())
        cluster = admin["clusters"][0]
        config = {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [cluster],
            "users": [{"name": name, "user": {"token": token.stdout.strip()}}],
            "contexts": [{"name": name, "context": {"cluster": cluster["name"], "user": name,
                                                   "namespace": namespace}}],
            "current-context": name,
        }
        path = self.kubeconfig.parent / f"{name}.kubeconfig"
        _write_private(path, yaml.safe_dump(config))
        return path


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _clusterip(path: Path) -> None:
    """The sample's Service as a ClusterIP one: its NodePort belongs to the lab's guestbook."""
    if not path.exists():
        return
    docs = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    for doc in docs:
        if doc.get("kind") == "Service":
            spec = doc.setdefault("spec", {})
            spec["type"] = "ClusterIP"
            for port in spec.get("ports") or []:
                port.pop("nodePort", None)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def pipeline(lab: Lab) -> PushPipeline:
    """Set up the push demo: CI's secret store holds a copy of the admin kubeconfig (what push
    pipelines are usually given), and another team's namespace holds a Secret (value random,
    never shown). Idempotent."""
    home = lab.state_dir / "ci"
    store = home / "secret-store" / "kubeconfig"
    _write_private(store, Path(lab.kubeconfig).read_text())
    kubectl = _kubectl_exe()
    admin = Path(lab.kubeconfig)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(  # an earlier run's cleanup still under way
            _kubectl(kubectl, admin, "get", "namespace", ns, "--ignore-not-found", "-o",
                     "jsonpath={.status.phase}").stdout == "Terminating"
            for ns in (PUSH_NS, OTHER_NS)):
        time.sleep(1)
    if _kubectl(kubectl, admin, "get", "namespace", OTHER_NS).returncode != 0:
        _kubectl(kubectl, admin, "create", "namespace", OTHER_NS)
    if _kubectl(kubectl, admin, "-n", OTHER_NS, "get", "secret", OTHER_SECRET).returncode != 0:
        _kubectl(kubectl, admin, "-n", OTHER_NS, "create", "secret", "generic", OTHER_SECRET,
                 f"--from-literal=password={secrets.token_urlsafe(24)}")
    return PushPipeline(home, store, lab.push_url)


def reach_table(lab: Lab, ci: PushPipeline, extra: Path | None = None) -> list[dict[str, object]]:
    """One row per REACH question: what CI's kubeconfig may (and `extra`, another kubeconfig),
    and what the agent's ServiceAccount may, each answered by `kubectl auth can-i`."""
    from concurrent.futures import ThreadPoolExecutor

    def agent(args: list[str]) -> bool:
        out = lab.kubectl("auth", "can-i", *args, f"--as={AGENT}", check=False)
        return out.strip().splitlines()[0:1] == ["yes"]

    with ThreadPoolExecutor(6) as pool:
        ci_f = [pool.submit(ci.can_i, *args) for _, args in REACH]
        ag_f = [pool.submit(agent, args) for _, args in REACH]
        ex_f = [pool.submit(ci.can_i, *args, kubeconfig=extra) if extra else None
                for _, args in REACH]
        rows: list[dict[str, object]] = []
        for (what, _), c, a, e in zip(REACH, ci_f, ag_f, ex_f, strict=True):
            row: dict[str, object] = {"what": what, "ci": c.result(), "agent": a.result()}
            if e is not None:
                row["tight"] = e.result()
            rows.append(row)
    return rows


def cleanup(lab: Lab) -> None:
    """Remove what the push demo made: its namespaces (and so the Secret and the learner's
    ServiceAccount and RBAC) and CI's copy of the kubeconfig."""
    lab.kubectl("delete", "namespace", PUSH_NS, OTHER_NS, "--ignore-not-found", "--wait=false")
    shutil.rmtree(lab.state_dir / "ci", ignore_errors=True)


# ---- the exercise: a least-privilege identity for the pipeline --------------------------------
MUST = [  # what `kubectl apply` of the guestbook needs in PUSH_NS
    ("get", "deployments.apps"), ("create", "deployments.apps"), ("patch", "deployments.apps"),
    ("get", "configmaps"), ("create", "configmaps"), ("patch", "configmaps"),
    ("get", "services"), ("create", "services"), ("patch", "services"),
]
MUST_NOT = [  # (label, can-i arguments)
    (f"read Secrets in {PUSH_NS}", ["get", "secrets", "-n", PUSH_NS]),
    (f"read Secrets in {OTHER_NS}", ["get", "secrets", "-n", OTHER_NS]),
    ("patch deployments in guestbook", ["patch", "deployments.apps", "-n", "guestbook"]),
    (f"create roles in {PUSH_NS}", ["create", "roles.rbac.authorization.k8s.io", "-n", PUSH_NS]),
    (f"create rolebindings in {PUSH_NS}",
     ["create", "rolebindings.rbac.authorization.k8s.io", "-n", PUSH_NS]),
    (f"exec into pods in {PUSH_NS}", ["create", "pods", "--subresource=exec", "-n", PUSH_NS]),
]


def verdict_for(allowed: dict[tuple[str, str], bool], forbidden: dict[str, bool],
                sa_exists: bool) -> Verdict:
    """The pure part of the check: `allowed[(verb, resource)]` for MUST, `forbidden[label]`
    (True = it may, which is wrong) for MUST_NOT."""
    if not sa_exists:
        return not_yet(f"there is no ServiceAccount {CI_SA} in {PUSH_NS} yet: run the cell "
                       "above (it applies ci-deployer.yaml)")
    lacking: dict[str, list[str]] = {}
    for (verb, res), ok in allowed.items():
        if not ok:
            lacking.setdefault(res, []).append(verb)
    missing = [f"{res} ({', '.join(verbs)})" for res, verbs in lacking.items()]
    too_much = [label for label, ok in forbidden.items() if ok]
    if too_much:
        return not_yet(f"{CI_SA} may {', '.join(too_much)} — more than a deploy needs; narrow "
                       "the Role's resources (and keep it a Role in guestbook-push, not a "
                       "ClusterRole)")
    if missing:
        return not_yet(f"in {PUSH_NS}, {CI_SA} may not yet use {'; '.join(missing)}: give the Role "
                       "a rule per API group — apiGroups [\"apps\"] for deployments, [\"\"] for "
                       "configmaps and services — with verbs get, list, create, patch, update")
    return done(f"{CI_SA} may deploy the guestbook into {PUSH_NS} and nothing else asked: no "
                "Secrets, no other namespace, no RBAC, no exec. Check it yourself with "
                f"kubectl auth can-i … --as={CI_SA_USER}")


def check_ci_deployer(lab: Lab) -> Verdict:
    def can(args: list[str]) -> bool:
        out = lab.kubectl("auth", "can-i", *args, f"--as={CI_SA_USER}", check=False)
        return out.strip().splitlines()[0:1] == ["yes"]

    sa = lab.kubectl("-n", PUSH_NS, "get", "serviceaccount", CI_SA, "--ignore-not-found",
                     "-o", "name", check=False).strip()
    allowed = {(verb, res): can([verb, res, "-n", PUSH_NS]) for verb, res in MUST}
    forbidden = {label: can(args) for label, args in MUST_NOT}
    return verdict_for(allowed, forbidden, sa.startswith("serviceaccount"))
