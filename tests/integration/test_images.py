"""The image updater end to end: a real Distribution registry (notifying the agent), a real
`git daemon`, the agent in-process as its ServiceAccount. A pushed tag becomes one Git commit
and a Synced app; bad input (ranges, patterns, registry, markers, pushes) commits nothing and
says why in a condition, and recovers when fixed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import AlertReceiver, LabApp, st

from gitops_lab.agent import Agent
from gitops_lab.images.controller import IMAGEPOLICY_INFO
from gitops_lab.images.oci import build_image, ci_build, push_image
from gitops_lab.images.registry import RegistryClient
from gitops_lab.images.registry_server import LabRegistry
from gitops_lab.kube import Kube, KubeError
from gitops_lab.labgit import WorkingCopy
from gitops_lab.source import RepoCache
from gitops_lab.widgets.images import ImageTimeline

pytestmark = pytest.mark.cluster

NS = "gitops-lab"
AUTHOR = "gitops-lab image updater"
FAKE = build_image(b"\x7fELF not really a binary\n" * 64, version="test")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def registry(agent: Agent, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The lab registry on a free port, notifying this session's agent."""
    reg = LabRegistry("im-test", root=tmp_path_factory.mktemp("registry"))
    address = reg.up(port=_free_port(), notify=f"{agent.url}/registry-webhook")
    yield address
    reg.down()


def push(registry: str, repo: str, *tags: str) -> None:
    client = RegistryClient(registry)
    try:
        push_image(client, repo, FAKE, list(tags))
    finally:
        client.close()


class Policies:
    """Create ImagePolicies, read them back, wait on them; deleted after the test."""

    def __init__(self, admin: Kube) -> None:
        self.admin = admin
        self.names: list[str] = []

    def apply(self, name: str, image: str, *, app: str | None = None, interval: str = "1h",
              rng: str = ">=1.0.0 <2.0.0", **extra: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {"image": image, "interval": interval,
                                "policy": {"semver": {"range": rng}}}
        if app:
            spec["update"] = {"applicationRef": {"name": app}}
        spec.update(extra)
        self.names.append(name)
        return self.admin.apply({"apiVersion": "gitopslab.io/v1alpha1", "kind": "ImagePolicy",
                                 "metadata": {"name": name, "namespace": NS}, "spec": spec},
                                field_manager="test")

    def patch(self, name: str, spec: dict[str, Any]) -> None:
        self.admin.request("PATCH", IMAGEPOLICY_INFO.path(NS, name), body={"spec": spec},
                           content_type="application/merge-patch+json")

    def get(self, name: str) -> dict[str, Any]:
        return self.admin.request("GET", IMAGEPOLICY_INFO.path(NS, name))

    def wait(self, name: str, pred: Callable[[dict[str, Any]], bool], what: str,
             timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        pol: dict[str, Any] = {}
        while time.monotonic() < deadline:
            pol = self.get(name)
            if pred(pol):
                return pol
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what} on ImagePolicy {name}; status: "
                             f"{json.dumps(pol.get('status'), indent=1)}")

    def events(self, name: str) -> list[dict[str, Any]]:
        items = self.admin.request(
            "GET", f"/api/v1/namespaces/{NS}/events",
            query={"fieldSelector": f"involvedObject.kind=ImagePolicy,involvedObject.name={name}"}
        ).get("items") or []
        return list(items)

    def cleanup(self) -> None:
        for name in self.names:
            with contextlib.suppress(KubeError):
                self.admin.request("DELETE", IMAGEPOLICY_INFO.path(NS, name))


@pytest.fixture
def policies(admin: Kube) -> Iterator[Policies]:
    pols = Policies(admin)
    yield pols
    pols.cleanup()


def cond(pol: dict[str, Any], type_: str) -> dict[str, Any]:
    for c in st(pol, "conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return {}


def ready(pol: dict[str, Any]) -> bool:
    return cond(pol, "Ready").get("status") == "True"


def failing(type_: str, reason: str) -> Callable[[dict[str, Any]], bool]:
    def pred(pol: dict[str, Any]) -> bool:
        c = cond(pol, type_)
        return c.get("status") == "True" and c.get("reason") == reason and \
            cond(pol, "Ready").get("status") == "False"
    return pred


def deployment(image_line: str, name: str = "web") -> str:
    return f"""# {name}: the image line is written by the image updater, nothing else is
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}   # keep this comment
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: web
        {image_line}
        ports: [{{containerPort: 8080}}]
"""


def marker(name: str, field: str = "") -> str:
    ref = f"{NS}:{name}" + (f":{field}" if field else "")
    return f'# {{"$imagepolicy": "{ref}"}}'


def git_log(lab_app: LabApp, n: int = 20) -> list[tuple[str, str, str]]:
    """(sha, author, subject) on main of the app's bare repo, newest first."""
    out = subprocess.run(["git", "--git-dir", str(lab_app.server.repo_path(lab_app.name)),
                          "log", f"-{n}", "--format=%H%x09%an%x09%s", "main"],
                         capture_output=True, text=True, check=True)
    return [tuple(line.split("\t", 2)) for line in out.stdout.splitlines()]  # type: ignore[misc]


def git_show(lab_app: LabApp, sha: str) -> str:
    return subprocess.run(["git", "--git-dir", str(lab_app.server.repo_path(lab_app.name)),
                           "show", "--format=", "--unified=0", sha],
                          capture_output=True, text=True, check=True).stdout


def git_file(lab_app: LabApp, path: str, rev: str = "main") -> bytes:
    return subprocess.run(["git", "--git-dir", str(lab_app.server.repo_path(lab_app.name)),
                           "show", f"{rev}:{path}"], capture_output=True, check=True).stdout


def metric(agent: Agent, name: str, **labels: str) -> float:
    with urllib.request.urlopen(f"{agent.url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{"):
            body = line[len(name) + 1:line.index("}")]
            if ",".join(sorted(body.split(","))) == want:
                total += float(line.rsplit(" ", 1)[1])
    return total


def setup_app(lab_app: LabApp, registry: str, extra: dict[str, str] | None = None,
              tag: str = "1.0.0") -> str:
    """Repo with a marked Deployment at `tag`, the app Synced; returns the image repository."""
    repo = f"{registry}/{lab_app.name}"
    files = {"app/deployment.yaml": deployment(f"image: {repo}:{tag} {marker(lab_app.name)}")}
    files.update(extra or {})
    head = lab_app.init(files)
    lab_app.create()
    lab_app.wait(lambda a: st(a, "sync", "status") == "Synced"
                 and st(a, "sync", "revision") == head, "the first sync")
    return repo


def assert_no_commit_for(lab_app: LabApp, head: str, seconds: float = 2.5) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert git_log(lab_app, 1)[0][0] == head, "the updater committed although it must not"
        time.sleep(0.25)


# ---- the registry and the lab's CI ------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")
def test_ci_build_pushes_an_image_skopeo_can_inspect_and_copy(registry: str,
                                                               tmp_path: Path) -> None:
    ref = ci_build(registry, "1.1.0", repository="ci-guestbook", tags=["latest"])
    assert ref == f"{registry}/ci-guestbook:1.1.0"
    out = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert sorted(info["RepoTags"]) == ["1.1.0", "latest"]
    assert info["Os"] == "linux" and info["Labels"]["org.opencontainers.image.version"] == "1.1.0"
    raw = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--config",
                          f"docker://{ref}"], capture_output=True, text=True, timeout=60)
    config = json.loads(raw.stdout)["config"]
    assert config["Entrypoint"] == ["/guestbook"] and config["User"] == "65532"
    dest = tmp_path / "copy"
    out = subprocess.run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}",
                          f"dir:{dest}"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    manifest = json.loads((dest / "manifest.json").read_text())
    layer = dest / manifest["layers"][0]["digest"].split(":", 1)[1]
    assert layer.stat().st_size == manifest["layers"][0]["size"]


# ---- the pull pipeline ---------------------------------------------------------------------------------
def test_new_tag_becomes_one_commit_and_a_synced_app(
        registry: str, lab_app: LabApp, policies: Policies, agent: Agent,
        alerts: AlertReceiver, tmp_path: Path) -> None:
    name = lab_app.name
    repo = setup_app(lab_app, registry)
    push(registry, name, "1.0.0", "latest")
    before = git_log(lab_app)
    deploy_before = git_file(lab_app, "app/deployment.yaml")
    policies.apply(name, repo, app=name)  # interval 1h: only the registry notification scans
    pol = policies.wait(name, lambda p: ready(p) and st(p, "latestTag") == "1.0.0",
                        "the first scan")
    assert "Git holds it" in cond(pol, "Ready")["message"]
    assert git_log(lab_app) == before, "Git already held 1.0.0: no commit"

    t0 = time.monotonic()
    push(registry, name, "1.1.0")  # CI pushes; the registry notifies the agent
    pol = policies.wait(name, lambda p: (st(p, "lastUpdate") or {}).get("revision") is not None,
                        "the write-back", timeout=15)
    commit = pol["status"]["lastUpdate"]["revision"]
    app = lab_app.wait(lambda a: st(a, "sync", "status") == "Synced"
                       and st(a, "sync", "revision") == commit, "Synced to the updater's commit")
    elapsed = time.monotonic() - t0
    assert elapsed < 10, f"tag push → Synced took {elapsed:.1f} s although the webhook is instant"
    assert st(app, "sync", "revision") == commit

    log = git_log(lab_app)
    assert log[1:] == before, "exactly one new commit"
    assert log[0][0] == commit and log[0][1] == AUTHOR
    assert "1.1.0" in log[0][2]
    after = git_file(lab_app, "app/deployment.yaml")
    assert after == deploy_before.replace(f"{repo}:1.0.0 ".encode(), f"{repo}:1.1.0 ".encode())
    diff = git_show(lab_app, commit)
    changed = [ln for ln in diff.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++",
                                                                                       "---"))]
    assert changed == [f"-        image: {repo}:1.0.0 {marker(name)}",
                       f"+        image: {repo}:1.1.0 {marker(name)}"]
    live = agent.kube.get("apps/v1", "Deployment", "web", name)
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == f"{repo}:1.1.0"
    assert pol["status"]["latestImage"] == f"{repo}:1.1.0"
    assert pol["status"]["observedTags"] == 3
    reasons = [e["reason"] for e in policies.events(name)]
    assert "NewImage" in reasons and "ImageUpdateCommitted" in reasons
    alerts.wait_for(lambda a: a["reason"] == "ImageUpdateCommitted" and a["revision"] == commit
                    and a["app"] == f"{NS}/{name}")
    assert metric(agent, "gitopslab_image_updates_total", policy=f"{NS}/{name}",
                  result="committed") == 1.0
    timeline = ImageTimeline(lab_app.admin, name, repos=RepoCache(tmp_path / "widget-repos"))
    marks = {e["tag"]: (e["latest"], e["git"]) for e in timeline.entries}
    assert marks == {"1.0.0": (False, False), "1.1.0": (True, True), "latest": (False, False)}
    assert timeline.in_git == {"1.1.0"}

    # out of range, and floating: nothing changes, and the updater never loops
    push(registry, name, "2.0.0", "stable")
    policies.patch(name, {"interval": "1s"})
    policies.wait(name, lambda p: st(p, "observedTags") == 5, "a scan that sees 2.0.0")
    assert_no_commit_for(lab_app, commit, seconds=3.0)
    pol = policies.get(name)
    assert st(pol, "latestTag") == "1.1.0" and ready(pol)
    assert metric(agent, "gitopslab_image_updates_total", policy=f"{NS}/{name}",
                  result="committed") == 1.0


def test_kustomization_images_tag_and_name_markers(registry: str, lab_app: LabApp,
                                                   policies: Policies) -> None:
    name = lab_app.name
    repo = f"{registry}/{name}"
    kust = (f"# images are set by the image updater\nresources:\n- deployment.yaml\nimages:\n"
            f"- name: placeholder\n  newName: {repo} {marker(name, 'name')}\n"
            f"  newTag: \"1.0.0\" {marker(name, 'tag')}\n")
    lab_app.init({"app/kustomization.yaml": kust,
                  "app/deployment.yaml": deployment("image: placeholder")})
    lab_app.create()
    push(registry, name, "1.0.0", "1.2.0", "1.2.1-rc.1")
    policies.apply(name, repo, app=name, interval="1s", update={
        "applicationRef": {"name": name},
        "commit": {"author": {"name": "Release Bot", "email": "bot@example.test"},
                   "messageTemplate": "chore({app}): {image} (was {old}) by {policy}"}})
    pol = policies.wait(name, lambda p: bool(st(p, "lastUpdate")), "the write-back")
    commit = pol["status"]["lastUpdate"]["revision"]
    sha, author, subject = git_log(lab_app, 1)[0]
    assert (sha, author) == (commit, "Release Bot")
    assert subject == f"chore({NS}/{name}): {repo}:1.2.0 (was 1.0.0) by {NS}/{name}"
    lab_app.wait(lambda a: st(a, "sync", "status") == "Synced"
                 and st(a, "sync", "revision") == commit, "Synced")
    assert git_file(lab_app, "app/kustomization.yaml").decode() == kust.replace(
        '"1.0.0"', '"1.2.0"')
    live = lab_app.admin.get("apps/v1", "Deployment", "web", name)
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == f"{repo}:1.2.0"


# ---- bad input: a condition, no commit, recovery when fixed -----------------------------------------
def test_invalid_range_then_fixed(registry: str, lab_app: LabApp, policies: Policies,
                                  alerts: AlertReceiver) -> None:
    name = lab_app.name
    repo = setup_app(lab_app, registry)
    push(registry, name, "1.0.0", "1.3.0")
    head = git_log(lab_app, 1)[0][0]
    policies.apply(name, repo, app=name, interval="1s", rng=">=1.0.0 <")
    pol = policies.wait(name, failing("PolicyError", "InvalidRange"), "PolicyError")
    assert "policy.semver.range" in cond(pol, "PolicyError")["message"]
    assert any(e["reason"] == "ScanFailed" for e in policies.events(name))
    alert = alerts.wait_for(lambda a: a["reason"] == "ScanFailed"
                            and a["resources"] == [f"ImagePolicy {NS}/{name}"])
    assert alert["message"].startswith("PolicyError: policy.semver.range")
    assert_no_commit_for(lab_app, head)
    policies.patch(name, {"policy": {"semver": {"range": ">=1.0.0 <2.0.0"}}})
    pol = policies.wait(name, lambda p: ready(p) and bool(st(p, "lastUpdate")), "recovery")
    assert not cond(pol, "PolicyError")
    assert git_log(lab_app, 1)[0][1] == AUTHOR


def test_invalid_pattern_then_fixed(registry: str, lab_app: LabApp,
                                    policies: Policies) -> None:
    name = lab_app.name
    repo = setup_app(lab_app, registry)
    push(registry, name, "v1.0.0", "v1.4.0")
    head = git_log(lab_app, 1)[0][0]
    policies.apply(name, repo, app=name, interval="1s",
                   filterTags={"pattern": "^v(?P<version>[0-9.]+", "extract": "$version"})
    pol = policies.wait(name, failing("PolicyError", "InvalidFilter"), "PolicyError")
    assert "not a valid regular expression" in cond(pol, "PolicyError")["message"]
    assert_no_commit_for(lab_app, head)
    policies.patch(name, {"filterTags": {"pattern": "^v(?P<version>[0-9.]+)$"}})
    pol = policies.wait(name, lambda p: ready(p) and st(p, "latestTag") == "v1.4.0", "recovery")
    assert f"{repo}:v1.4.0" in git_file(lab_app, "app/deployment.yaml").decode()


def test_registry_down_then_up(lab_app: LabApp, policies: Policies, agent: Agent,
                               tmp_path: Path) -> None:
    reg = LabRegistry("im-test-down", root=tmp_path / "reg")
    port = _free_port()
    address = reg.up(port=port, notify=f"{agent.url}/registry-webhook")
    try:
        name = lab_app.name
        repo = setup_app(lab_app, address)
        push(address, name, "1.0.0", "1.5.0")
        reg.down()
        head = git_log(lab_app, 1)[0][0]
        policies.apply(name, repo, app=name, interval="1s")
        pol = policies.wait(name, failing("ScanError", "RegistryUnreachable"), "ScanError")
        assert address in cond(pol, "ScanError")["message"]
        assert "unreachable" in cond(pol, "ScanError")["message"]
        assert_no_commit_for(lab_app, head)
        reg.up(port=port)
        policies.wait(name, lambda p: ready(p) and st(p, "latestTag") == "1.5.0", "recovery")
        assert git_log(lab_app, 1)[0][1] == AUTHOR
    finally:
        reg.down()


def test_repository_not_found_then_pushed(registry: str, lab_app: LabApp,
                                          policies: Policies) -> None:
    name = lab_app.name
    repo = setup_app(lab_app, registry)
    head = git_log(lab_app, 1)[0][0]
    policies.apply(name, repo, app=name, interval="1h")
    pol = policies.wait(name, failing("ScanError", "RepositoryNotFound"), "ScanError")
    assert f"repository '{name}' not found" in cond(pol, "ScanError")["message"]
    assert_no_commit_for(lab_app, head, seconds=1.0)
    push(registry, name, "1.2.0")  # the notification alone brings the recovery (interval 1h)
    policies.wait(name, lambda p: ready(p) and bool(st(p, "lastUpdate")), "recovery")


def test_tags_that_are_not_versions_and_floating_tags(registry: str, lab_app: LabApp,
                                                      policies: Policies) -> None:
    name = lab_app.name
    repo = setup_app(lab_app, registry)
    push(registry, name, "latest")
    head = git_log(lab_app, 1)[0][0]
    policies.apply(name, repo, app=name, interval="1s")
    pol = policies.wait(name, failing("FloatingTag", "OnlyFloatingTags"), "FloatingTag")
    assert "only floating tags ('latest')" in cond(pol, "FloatingTag")["message"]
    push(registry, name, "main-3f2a1c", "feature-x")
    pol = policies.wait(name, failing("PolicyError", "NoVersionTags"), "PolicyError")
    assert "is a semantic version" in cond(pol, "PolicyError")["message"]
    assert not cond(pol, "FloatingTag")
    assert_no_commit_for(lab_app, head, seconds=1.5)
    push(registry, name, "1.1.0")
    policies.wait(name, lambda p: ready(p) and st(p, "latestTag") == "1.1.0", "recovery")
    assert git_log(lab_app, 1)[0][1] == AUTHOR


def test_marker_naming_no_policy_commits_nothing(registry: str, lab_app: LabApp,
                                                 policies: Policies) -> None:
    name = lab_app.name
    repo = setup_app(lab_app, registry, extra={
        "app/worker.yaml": deployment(f"image: {repo_of(registry, name)}:1.0.0 "
                                      f"{marker('no-such-policy')}", name="worker")})
    push(registry, name, "1.0.0", "1.1.0")
    head = git_log(lab_app, 1)[0][0]
    policies.apply(name, repo, app=name, interval="1s")
    pol = policies.wait(name, failing("UpdateError", "InvalidMarker"), "UpdateError")
    msg = cond(pol, "UpdateError")["message"]
    assert "app/worker.yaml:14" in msg and "gitops-lab/no-such-policy" in msg
    assert any(e["reason"] == "UpdateFailed" for e in policies.events(name))
    assert st(pol, "latestTag") == "1.1.0"  # the scan worked; only the write-back refused
    assert_no_commit_for(lab_app, head)
    lab_app.commit({"app/worker.yaml": deployment(f"image: {repo}:1.0.0", name="worker")},
                   message="worker: pin by hand")
    pol = policies.wait(name, lambda p: ready(p) and bool(st(p, "lastUpdate")), "recovery")
    assert git_log(lab_app, 1)[0][1] == AUTHOR


def repo_of(registry: str, name: str) -> str:
    return f"{registry}/{name}"


def test_marker_outside_the_app_path_commits_nothing(registry: str, lab_app: LabApp,
                                                     policies: Policies) -> None:
    name = lab_app.name
    repo = setup_app(lab_app, registry, extra={
        "other/deployment.yaml": deployment(f"image: {repo_of(registry, name)}:1.0.0 "
                                            f"{marker(name)}")})
    push(registry, name, "1.1.0")
    head = git_log(lab_app, 1)[0][0]
    policies.apply(name, repo, app=name, interval="1s")
    pol = policies.wait(name, failing("UpdateError", "InvalidMarker"), "UpdateError")
    msg = cond(pol, "UpdateError")["message"]
    assert "other/deployment.yaml:14" in msg and "outside the Application's path 'app'" in msg
    assert_no_commit_for(lab_app, head)
    assert b"1.0.0" in git_file(lab_app, "other/deployment.yaml")
    lab_app.commit(delete=("other/deployment.yaml",), message="drop the stray copy")
    policies.wait(name, lambda p: ready(p) and bool(st(p, "lastUpdate")), "recovery")
    assert f"{repo}:1.1.0".encode() in git_file(lab_app, "app/deployment.yaml")


def test_push_race_is_retried_on_top(registry: str, lab_app: LabApp, policies: Policies,
                                     agent: Agent, tmp_path: Path) -> None:
    name = lab_app.name
    repo = setup_app(lab_app, registry, extra={
        "app/notes.txt": "v0\n",
        "app/README.md": 'Markers look like `# {"$imagepolicy": "ns:name"}`; not a marker.\n'})
    push(registry, name, "1.0.0", "1.1.0")
    other = WorkingCopy(lab_app.url, tmp_path / "someone-else")
    raced: list[int] = []

    def someone_pushes(attempt: int) -> None:
        if attempt == 1 and not raced:
            raced.append(attempt)
            other.pull()
            other.write({"app/notes.txt": "someone else was faster\n"})
            other.commit("a human pushes meanwhile")
            other.push()

    agent.images.writer.before_push = someone_pushes
    try:
        policies.apply(name, repo, app=name, interval="1h")
        pol = policies.wait(name, lambda p: ready(p) and bool(st(p, "lastUpdate")), "the commit")
    finally:
        agent.images.writer.before_push = None
        other.close()
    assert raced == [1]
    log = git_log(lab_app, 3)
    assert log[0][1] == AUTHOR and log[1][2] == "a human pushes meanwhile"
    assert pol["status"]["lastUpdate"]["revision"] == log[0][0]
    assert git_file(lab_app, "app/notes.txt") == b"someone else was faster\n"  # nothing lost
    assert metric(agent, "gitopslab_image_push_retries_total", policy=f"{NS}/{name}") == 1.0


def test_push_refused_by_a_hook_then_allowed(registry: str, lab_app: LabApp,
                                             policies: Policies) -> None:
    name = lab_app.name
    repo = setup_app(lab_app, registry)
    push(registry, name, "1.0.0", "1.1.0")
    hook = lab_app.server.repo_path(name) / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is protected: changes need a review' >&2\nexit 1\n")
    hook.chmod(0o755)
    head = git_log(lab_app, 1)[0][0]
    policies.apply(name, repo, app=name, interval="1s")
    pol = policies.wait(name, failing("UpdateError", "PushRefused"), "UpdateError")
    msg = cond(pol, "UpdateError")["message"]
    assert "refused" in msg and "main is protected: changes need a review" in msg
    assert "pre-receive hook declined" in msg
    assert_no_commit_for(lab_app, head)
    hook.unlink()
    pol = policies.wait(name, lambda p: ready(p) and bool(st(p, "lastUpdate")), "recovery")
    log = git_log(lab_app, 3)
    assert log[0][1] == AUTHOR and log[1][0] == head, "exactly one commit after the fix"


def test_a_thousand_tags(registry: str, lab_app: LabApp, policies: Policies) -> None:
    name = lab_app.name
    repo = setup_app(lab_app, registry)
    client = RegistryClient(registry)
    try:
        tags = [f"1.{i // 100}.{i % 100}" for i in range(990)] + \
            [f"2.0.{i}" for i in range(5)] + ["latest", "stable", "main-a1", "main-b2", "x"]
        push_image(client, name, FAKE, tags)
        listed = client.tags(name)
    finally:
        client.close()
    assert len(listed.tags) == 1000
    policies.apply(name, repo, app=name, interval="1h")
    pol = policies.wait(name, lambda p: ready(p) and bool(st(p, "lastUpdate")), "the commit",
                        timeout=30)
    assert st(pol, "observedTags") == 1000
    assert st(pol, "latestTag") == "1.9.89"
    assert f"{repo}:1.9.89".encode() in git_file(lab_app, "app/deployment.yaml")


def test_agent_rbac_reads_policies_and_writes_only_their_status(lab_cluster: Any,
                                                                admin: Kube) -> None:
    who = "--as=system:serviceaccount:gitops-lab:gitops-lab-agent"

    def can(*args: str) -> str:
        out = lab_cluster.kubectl("auth", "can-i", *args, "-n", NS, who)
        return str(out.stdout.strip())

    assert [can(v, "imagepolicies.gitopslab.io") for v in ("get", "list", "watch")] == \
        ["yes"] * 3
    assert can("patch", "imagepolicies.gitopslab.io", "--subresource=status") == "yes"
    assert [can(v, "imagepolicies.gitopslab.io") for v in ("create", "update", "delete")] == \
        ["no"] * 3


def test_printer_columns(lab_cluster: Any, registry: str, policies: Policies) -> None:
    push(registry, "columns", "1.0.0", "1.4.2")
    policies.apply("columns", f"{registry}/columns")
    policies.wait("columns", ready, "Ready")
    out = lab_cluster.kubectl("get", "imagepolicies", "-n", NS, "columns")
    header, row = out.stdout.splitlines()[:2]
    assert header.split()[:5] == ["NAME", "IMAGE", "LATEST", "READY", "REASON"]
    assert row.split()[:5] == ["columns", f"{registry}/columns", "1.4.2", "True", "Succeeded"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cli = [sys.executable, "-m", "gitops_lab", "image"]
    kc = ["--kubeconfig", str(lab_cluster.kubeconfig)]
    out = subprocess.run([*cli, "list", *kc], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("columns "))
    assert line.split()[:7] == ["columns", f"{registry}/columns", "semver", ">=1.0.0", "<2.0.0",
                                "1.4.2", "True"]
    out = subprocess.run([*cli, "get", "columns", *kc], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"Latest:      {registry}/columns:1.4.2" in out.stdout
    assert "CONDITION    Ready=True (Succeeded): latest" in out.stdout
    out = subprocess.run([*cli, "get", "nope", *kc], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 1
    assert out.stderr.strip() == ("error: ImagePolicy gitops-lab/nope not found; hint: "
                                  "`gitops-lab image list`")


def test_target_revision_that_is_not_a_branch(registry: str, lab_app: LabApp,
                                              policies: Policies) -> None:
    name = lab_app.name
    repo = f"{registry}/{name}"
    head = lab_app.init({"app/deployment.yaml": deployment(f"image: {repo}:1.0.0 "
                                                           f"{marker(name)}")})
    lab_app.create(target_revision=head)  # pinned to a commit: nothing to push to
    push(registry, name, "1.1.0")
    policies.apply(name, repo, app=name, interval="1s")
    pol = policies.wait(name, failing("UpdateError", "NotABranch"), "UpdateError")
    assert f"targetRevision '{head}'" in cond(pol, "UpdateError")["message"]
    assert_no_commit_for(lab_app, head, seconds=1.0)


def test_lab_facade_registry_ci_build_and_image_policy(lab_cluster: Any, git_server: Any,
                                                       policies: Policies, agent: Agent,
                                                       tmp_path: Path) -> None:
    """`lab.registry` (started on first use), `lab.ci_build`, `lab.image_policy` — with the
    session's agent acting on the policy."""
    import secrets

    from gitops_lab.lab import Lab

    name = f"im-lab-{secrets.token_hex(3)}"
    lab = Lab(lab_cluster.provider, lab_cluster.kubeconfig, git_server, tmp_path / name)
    registry = LabRegistry(name)
    try:
        address = lab.registry
        assert address.startswith("127.0.0.1:") and registry.status().running
        assert lab.registry == address  # idempotent
        ref = lab.ci_build("1.1.0", tags=("latest",), repository=name)
        assert ref == f"{address}/{name}:1.1.0"
        manifest = lab.image_policy(name, app=None, repository=name, interval="1h")
        assert manifest["spec"]["image"] == f"{address}/{name}"
        policies.names.append(name)
        lab.apps.apply(manifest)
        pol = policies.wait(name, lambda p: ready(p) and st(p, "latestTag") == "1.1.0",
                            "the lab's policy to see 1.1.0")
        assert cond(pol, "Ready")["message"] == (
            f"latest {address}/{name}:1.1.0 (semver range >=1.0.0 <2.0.0, 2 tags; scanned every "
            "1h and at once on a registry push)")
        assert [p["metadata"]["name"] for p in lab.image_policies()].count(name) == 1
    finally:
        registry.purge()


def test_a_revert_of_the_updaters_commit_sticks_until_a_newer_tag(
        registry: str, lab_app: LabApp, policies: Policies, agent: Agent) -> None:
    """`git revert` is GitOps' rollback: the updater never writes the same tag twice, so it
    does not fight the revert; the next, newer tag is written as usual."""
    name = lab_app.name
    repo = setup_app(lab_app, registry)
    push(registry, name, "1.0.0", "1.1.0")
    policies.apply(name, repo, app=name, interval="1s")
    pol = policies.wait(name, lambda p: bool(st(p, "lastUpdate")), "the write-back")
    commit = pol["status"]["lastUpdate"]["revision"]
    assert lab_app.repo is not None
    lab_app.repo.pull()
    reverted = lab_app.repo.revert(commit)
    lab_app.repo.push()
    pol = policies.wait(name, lambda p: "not written again" in cond(p, "Ready")["message"],
                        "the updater to notice the revert")
    assert ready(pol) and "app/deployment.yaml:14 holds" in cond(pol, "Ready")["message"]
    assert_no_commit_for(lab_app, reverted, seconds=2.5)
    assert metric(agent, "gitopslab_image_updates_total", policy=f"{NS}/{name}",
                  result="committed") == 1.0
    push(registry, name, "1.2.0")
    pol = policies.wait(name, lambda p: (st(p, "lastUpdate") or {}).get("images") ==
                        [f"{repo}:1.2.0"], "the newer tag to be written")
    log = git_log(lab_app, 2)
    assert log[0][1] == AUTHOR and log[1][0] == reverted
