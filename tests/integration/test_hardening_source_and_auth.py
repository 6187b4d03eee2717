"""Issue 13, part A, against the real control plane and a real `git daemon`: kustomize stays in
the repo, Secret values never show in a diff, `app sync` reports its own operation, the agent's
HTTP bodies are bounded, and its identity survives a re-created ServiceAccount."""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from agent_helpers import LabApp, conditions, st

from gitops_lab.agent import Agent, AgentOptions
from gitops_lab.agent.server import MAX_BODY
from gitops_lab.apps import Apps, application
from gitops_lab.install import agent_token_source, cluster_role_name, install
from gitops_lab.kube import Kube, KubeError
from gitops_lab.labgit import GitServer
from gitops_lab.widgets import DiffView

pytestmark = pytest.mark.cluster


def configmap(name: str, **data: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                           "data": data or {"k": "v"}})


def cli(lab_cluster: Any, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """The real `gitops-lab` CLI, importing this checkout (PYTHONPATH) like the tests do."""
    env = {"KUBECONFIG": str(lab_cluster.kubeconfig), "PATH": "/usr/bin:/bin",
           "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "HOME": os.environ.get("HOME", "/")}
    return subprocess.run([sys.executable, "-m", "gitops_lab", *args], capture_output=True,
                          text=True, env=env, check=False, timeout=timeout)


def eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


def healthz(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


# ---- item 1 and 10: kustomize confined to the repo, symlinks judged per app ----------------------


def test_kustomize_escape_is_a_condition_and_a_bad_symlink_elsewhere_is_not(
        lab_app: LabApp, admin: Kube, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "kustomization.yaml").write_text(
        "configMapGenerator:\n- name: stolen\n  files: [secret.txt]\n")
    (host / "secret.txt").write_text("HOST-ONLY-CONTENT\n")
    good = lab_app.init({
        "base/kustomization.yaml": "resources:\n- cm.yaml\n",
        "base/cm.yaml": configmap("from-base"),
        "app/kustomization.yaml": "resources:\n- ../base\n- keep.yaml\n",
        "app/keep.yaml": configmap("keep"),
        "other/x.yaml": configmap("x"),
    })
    assert lab_app.repo is not None
    lab_app.repo.symlink("other/evil.yaml", "/etc/passwd")  # not this app's business
    lab_app.repo.symlink("junk/dangling.yaml", "nothing.yaml")
    good = lab_app.commit(message="bad symlinks elsewhere in the repo")
    lab_app.create(prune=True)
    app = lab_app.wait(lambda a: st(a, "sync", "revision") == good
                       and st(a, "sync", "status") == "Synced", "Synced despite other symlinks")
    assert not conditions(app)
    climb = "../" * 40 + str(host).lstrip("/")
    bad = lab_app.commit({"app/kustomization.yaml": f"resources:\n- ../base\n- {climb}\n"},
                         message="climb out of the repo")
    app = lab_app.wait(lambda a: st(a, "sync", "revision") == bad
                       and "ComparisonError" in conditions(a), "the ComparisonError")
    message = conditions(app)["ComparisonError"]
    assert message.startswith(f"app/kustomization.yaml: resources entry '{climb}' leaves the "
                              "repository"), message
    assert admin.get_or_none("v1", "ConfigMap", "keep", lab_app.namespace) is not None  # no prune
    stolen = [c["metadata"]["name"] for c in admin.list("v1", "ConfigMap", lab_app.namespace)
              ["items"] if c["metadata"]["name"].startswith("stolen")]
    assert stolen == []
    fixed = lab_app.commit({"app/kustomization.yaml": "resources:\n- ../base\n- keep.yaml\n"},
                           message="fix")
    lab_app.wait(lambda a: st(a, "sync", "revision") == fixed and not conditions(a)
                 and st(a, "sync", "status") == "Synced", "recovery")


# ---- item 11: Secret values never appear in a diff ----------------------------------------------

GIT_VALUE = "git-plain-VALUE-7f3"
LIVE_VALUE = "live-plain-VALUE-9c1"
SAME_VALUE = "same-plain-VALUE-2d8"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_secret_values_never_appear_in_app_diff_or_the_diff_widget(
        admin: Kube, git_server: GitServer, lab_namespace: str, lab_cluster: Any,
        tmp_path: Path) -> None:
    name = f"secret-{uuid.uuid4().hex[:6]}"
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
              "stringData": {"password": GIT_VALUE, "user": SAME_VALUE}}
    git_server.create_repo(name, {"app/secret.yaml": yaml.safe_dump(secret),
                                  "app/cm.yaml": configmap("plain")})
    admin.create({"apiVersion": "v1", "kind": "Secret",
                  "metadata": {"name": "db", "namespace": lab_namespace},
                  "data": {"password": b64(LIVE_VALUE), "user": b64(SAME_VALUE)}})
    apps = Apps(admin, lab_namespace)  # not the agent's namespace: no agent acts on it
    apps.apply(application(name, git_server.url(name), "app", namespace=lab_namespace,
                           dest_namespace=lab_namespace, automated=False))
    out = cli(lab_cluster, "app", "diff", name, "-N", lab_namespace)
    assert out.returncode == 1, out.stderr
    shown = out.stdout + out.stderr
    assert f"Secret {lab_namespace}/db" in out.stdout, out.stdout
    assert "password: ++++++++\n" in out.stdout and "password: +++++++++\n" in out.stdout
    widget = DiffView.for_app(admin, apps, name, cache_dir=tmp_path / "repos")
    html = widget.summary.value + "".join(e["html"] + e["text"] for e in widget.entries)
    assert "++++++++" in html
    for value in (GIT_VALUE, LIVE_VALUE, SAME_VALUE):
        for form in (value, b64(value)):
            assert form not in shown, f"{form} in `app diff` output"
            assert form not in html, f"{form} in the DiffView"


# ---- item 4: `app sync` reports its own operation -----------------------------------------------


def test_cli_sync_to_a_missing_revision_fails_with_the_agents_message(
        lab_app: LabApp, lab_cluster: Any) -> None:
    head = lab_app.init({"app/cm.yaml": configmap("settings")})
    lab_app.create(automated=False)
    out = cli(lab_cluster, "app", "sync", lab_app.name)
    assert out.returncode == 0, out.stderr
    assert "Last Sync:     Succeeded" in out.stdout
    missing = "0123456789abcdef0123456789abcdef01234567"
    out = cli(lab_cluster, "app", "sync", lab_app.name, "--revision", missing)
    assert out.returncode != 0, out.stdout
    assert "Succeeded" not in out.stdout, out.stdout
    assert f"revision '{missing}' not found" in out.stdout
    assert out.stderr.strip().splitlines()[-1].startswith(
        f"error: sync of {lab_app.name} error: not synced: SourceError: revision '{missing}' "
        "not found"), out.stderr
    app = lab_app.get()
    assert st(app, "operationState", "phase") == "Error"
    assert st(app, "sync", "revision") == head  # still compared with the target
    # and a good sync afterwards reports success again
    out = cli(lab_cluster, "app", "sync", lab_app.name)
    assert out.returncode == 0 and "Last Sync:     Succeeded" in out.stdout, out.stderr


# ---- item 12: the running agent bounds request bodies -------------------------------------------


def test_the_running_agent_refuses_a_huge_webhook(agent: Agent) -> None:
    host = agent.url.removeprefix("http://")
    conn = http.client.HTTPConnection(host, timeout=10)
    try:
        conn.putrequest("POST", "/webhook")
        conn.putheader("Content-Length", str(300 * 1000 * 1000))
        conn.endheaders()
        with contextlib.suppress(OSError):
            conn.send(b"{" * (2 * MAX_BODY))
        resp = conn.getresponse()
        assert resp.status == 413
        assert f"larger than the limit of {MAX_BODY} bytes" in resp.read().decode()
    finally:
        conn.close()
    assert healthz(agent.url)[0] == 200


# ---- item 13: the agent's identity: install --namespace, 401 recovery, renewal --------------------


@pytest.fixture
def agent_namespace(admin: Kube) -> Iterator[str]:
    """A namespace for a second agent install; its cluster-wide RBAC is removed afterwards."""
    name = f"agent-{secrets.token_hex(3)}"
    yield name
    for kind in ("ClusterRoleBinding", "ClusterRole"):
        with contextlib.suppress(KubeError):
            admin.delete("rbac.authorization.k8s.io/v1", kind, cluster_role_name(name))
    with contextlib.suppress(KubeError):
        admin.delete("v1", "Namespace", name, propagation="Background")


def test_agent_install_honours_namespace(admin: Kube, agent_namespace: str,
                                         lab_cluster: Any) -> None:
    ns = agent_namespace
    default_before = admin.get("rbac.authorization.k8s.io/v1", "ClusterRoleBinding",
                               "gitops-lab-agent")
    out = cli(lab_cluster, "agent", "install", "--namespace", ns)
    assert out.returncode == 0, out.stderr
    assert f"ServiceAccount {ns}/gitops-lab-agent" in out.stderr
    assert admin.get("v1", "Namespace", ns)
    assert admin.get("v1", "ServiceAccount", "gitops-lab-agent", ns)
    rb = admin.get("rbac.authorization.k8s.io/v1", "RoleBinding", "gitops-lab-agent", ns)
    assert rb["subjects"] == [{"kind": "ServiceAccount", "name": "gitops-lab-agent",
                               "namespace": ns}]
    crb = admin.get("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", cluster_role_name(ns))
    assert crb["subjects"][0]["namespace"] == ns
    assert crb["roleRef"]["name"] == cluster_role_name(ns) == f"gitops-lab-agent-{ns}"
    # the default install is untouched
    default_after = admin.get("rbac.authorization.k8s.io/v1", "ClusterRoleBinding",
                              "gitops-lab-agent")
    assert default_after["subjects"] == default_before["subjects"]
    assert default_after["subjects"][0]["namespace"] == "gitops-lab"
    # and its ServiceAccount may do what the agent needs there, as the API server says
    review = admin.create({"apiVersion": "authorization.k8s.io/v1",
                           "kind": "SubjectAccessReview",
                           "spec": {"user": f"system:serviceaccount:{ns}:gitops-lab-agent",
                                    "resourceAttributes": {"namespace": ns, "verb": "patch",
                                                           "group": "gitopslab.io",
                                                           "resource": "applications",
                                                           "subresource": "status"}}})
    assert review["status"]["allowed"] is True


def test_agent_recovers_by_itself_after_its_service_account_is_recreated(
        admin: Kube, agent_namespace: str, git_server: GitServer, tmp_path: Path) -> None:
    ns = agent_namespace
    install(admin, namespace=ns)
    source = agent_token_source(admin, ns, seconds=600)
    kube = admin.with_token_source(source, "gitops-lab-agent")
    agent = Agent(kube, AgentOptions(namespace=ns, poll_interval=0.5,
                                     cache_dir=tmp_path / "repos")).start()
    try:
        assert agent.wait_ready(30)
        assert healthz(agent.url) == (200, "ok\n")
        # the ServiceAccount goes away: its tokens are rejected, and none can be had
        admin.delete("v1", "ServiceAccount", "gitops-lab-agent", ns)
        _, body = eventually(lambda: (r := healthz(agent.url))[0] == 503 and r, 30,
                             "/healthz turning 503")
        assert "401 Unauthorized" in body and f"{ns}/gitops-lab-agent" in body, body
        # re-installed: the agent gets a new token by itself, /healthz is 200 again
        install(admin, namespace=ns)
        eventually(lambda: healthz(agent.url) == (200, "ok\n"), 40, "/healthz back to 200")
        assert source.renewals >= 1
        # and it works: an Application in its namespace is synced
        name = f"rec-{uuid.uuid4().hex[:6]}"
        git_server.create_repo(name, {"app/cm.yaml": configmap("after-recovery")})
        Apps(admin, ns).apply(application(name, git_server.url(name), "app", namespace=ns,
                                          dest_namespace=ns))
        eventually(lambda: st(Apps(admin, ns).get(name), "sync", "status") == "Synced", 30,
                   "the app synced by the recovered agent")
        assert admin.get("v1", "ConfigMap", "after-recovery", ns)
        Apps(admin, ns).delete(name)
    finally:
        agent.stop()


def test_the_agent_token_is_renewed_before_it_expires(admin: Kube,
                                                      agent_namespace: str) -> None:
    ns = agent_namespace
    install(admin, namespace=ns)
    # a 600 s token (the API server's minimum), renewed after 0.2 % of it (1.2 s) instead of
    # 80 %, so the renewal happens within the test; the tokens are real TokenRequests
    source = agent_token_source(admin, ns, seconds=600, renew_fraction=0.002)
    kube = admin.with_token_source(source, "gitops-lab-agent")
    path = f"/apis/gitopslab.io/v1alpha1/namespaces/{ns}/applications"
    first = source.token()
    assert kube.request("GET", path)["items"] == []
    time.sleep(1.5)
    assert kube.request("GET", path)["items"] == []
    assert source.renewals == 1
    second = source.token()
    assert second != first
    review = admin.create({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                           "spec": {"token": second}})
    assert review["status"]["authenticated"] is True
    assert review["status"]["user"]["username"] == f"system:serviceaccount:{ns}:gitops-lab-agent"
    assert kube.problem == ""


def test_agent_run_in_another_namespace_as_its_service_account(
        admin: Kube, agent_namespace: str, git_server: GitServer, lab_cluster: Any) -> None:
    """`agent install --namespace X` + `agent run --namespace X`: the real CLI, its own
    ServiceAccount token (TokenRequest), watching and syncing Applications in X only."""
    ns = agent_namespace
    out = cli(lab_cluster, "agent", "install", "--namespace", ns)
    assert out.returncode == 0, out.stderr
    port = free_port()
    env = {"KUBECONFIG": str(lab_cluster.kubeconfig), "PATH": "/usr/bin:/bin",
           "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "HOME": os.environ.get("HOME", "/")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitops_lab", "agent", "run", "--namespace", ns,
         "--http-address", f"127.0.0.1:{port}", "--poll-interval", "1",
         "--token-expiration", "600"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            with contextlib.suppress(OSError):
                return healthz(url)[0] == 200
            return False

        eventually(up, 30, "the agent's /healthz")
        name = f"ns-{uuid.uuid4().hex[:6]}"
        git_server.create_repo(name, {"app/cm.yaml": configmap("in-other-namespace")})
        apps = Apps(admin, ns)
        apps.apply(application(name, git_server.url(name), "app", namespace=ns,
                               dest_namespace=ns))
        apps.wait(name, lambda a: st(a, "sync", "status") == "Synced", timeout=30,
                  what="Synced by the agent of that namespace")
        cm = admin.get("v1", "ConfigMap", "in-other-namespace", ns)
        assert cm["metadata"]["annotations"]["gitopslab.io/tracking-id"].startswith(f"{ns}_")
        apps.delete(name)
    finally:
        proc.terminate()
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
