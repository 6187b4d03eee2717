# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Writes the chapters notebooks/NN-*.ipynb (without outputs) from the cells below.

Edit the chapters here, then `python notebooks/_build.py`; the .ipynb files are the product
(`make lab` opens them, tests/notebooks runs them with nbval). Conventions (STYLE.md):
each chapter starts with `lab = Lab.connect()` so it runs alone, in any order; one idea per
section: the concept in markdown, the live demo, then a self-check cell with plain asserts.
Cells whose output is live state start with `# NBVAL_IGNORE_OUTPUT`.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
IGNORE = "# NBVAL_IGNORE_OUTPUT\n"

CONNECT = IGNORE + """\
from gitops_lab import Lab

lab = Lab.connect()  # catch the lab up from nothing: cluster, Git server, agent (seconds when warm)
"""


def md(text: str) -> tuple[str, str]:
    return ("md", textwrap.dedent(text).strip("\n"))


def code(text: str) -> tuple[str, str]:
    return ("code", textwrap.dedent(text).strip("\n"))


def live(text: str) -> tuple[str, str]:
    """A code cell whose output is live state: nbval runs it but never compares its output."""
    return ("code", IGNORE + textwrap.dedent(text).strip("\n"))


def check(text: str) -> tuple[str, str]:
    """A self-check: asserts the learner can read (their output is not compared either)."""
    return ("code", IGNORE + "# ✔ self-check\n" + textwrap.dedent(text).strip("\n"))


# ------------------------------------------------------------------------------------------------
CH00 = [
    md("""
    # 00 · Welcome: what GitOps is

    In this workbench you do GitOps for real: a Kubernetes cluster runs on your machine, a
    Git server holds the desired state, and a small **pull-based agent** (shaped after Argo CD)
    makes the cluster equal Git — and keeps it that way.

    The cluster is one of two kinds (chapter 01 looks at both): **kind**, a real cluster in
    Docker where containers run, wherever a Docker daemon answers; else **local**, a real
    control plane whose node is simulated, so no container runs. The first cell prints which
    one you have and where the agent runs.

    | Chapter | You will |
    |---|---|
    | 00 · Welcome | meet the ideas and check your machine |
    | 01 · Cluster | see the cluster you deploy to, and what is simulated |
    | 02 · Config repo and agent | look at the Git repo, its history, and what the agent may do |
    | 03 · Deploy | create an Application, sync it, roll out a change from Git |
    | 04 · Drift and self-heal | change the cluster behind Git's back and watch the agent react |
    | 05 · Rollback | ship a broken release and roll it back two ways |
    | 06 · Pull vs push security | measure what the agent can and cannot do |
    | 07 · CI pushes, the cluster pulls | let CI push an image and watch it reach the cluster through Git |
    | 99 · Cleanup | stop everything |

    **How to use a chapter:** run the cells top to bottom (Shift-Enter). Every chapter starts
    with the cell below: `Lab.connect()` brings the lab up if it is not, so chapters run alone
    and in any order. Cells marked *self-check* contain `assert`s: if one fails, its message
    says what to look at.
    """),
    code(CONNECT),
    live("""
    print("cluster provider:", lab.provider_kind)  # kind: real pods in Docker · local: simulated nodes
    print("the agent runs:  ", "as a pod in the cluster" if lab.agent_mode == "in-cluster"
          else "as a process on this machine, with a token of its ServiceAccount")
    print("it pulls from:   ", lab.repo_url)
    """),
    md("""
    ## 1. Git is the single source of truth

    In GitOps the **desired state** of everything you run — Deployments, Services, config — is
    declared in files in Git. Nobody changes the cluster by hand: you change Git, and an agent
    changes the cluster to match. The four [OpenGitOps](https://opengitops.dev) principles:
    *declarative*, *versioned and immutable*, *pulled automatically*, *continuously reconciled*.

    The lab comes with a sample app, `guestbook`. Here is one of its files, straight from Git:
    """),
    live("""
    app = lab.reset_sample()  # catch-up: the pristine sample in Git, deployed and Synced
    print(lab.read("apps/guestbook/deployment.yaml"))
    """),
    md("""
    And here is what the agent reports about it — the same picture Argo CD's UI draws: sync
    status (does the cluster equal Git?), health (does it work?), the Git revision that is
    live, and the tree of objects the app owns, down to the pods.
    """),
    live("""
    lab.dashboard("guestbook")
    """),
    md("""
    **Self-check.** Which commit does the cluster run? Exactly the one at the head of `main`.
    """),
    check("""
    app = lab.app("guestbook")
    head = lab.workcopy.head
    assert app["status"]["sync"]["status"] == "Synced", "the cluster should equal Git"
    assert app["status"]["sync"]["revision"] == head, "the live revision should be the head of main"
    print(f"live revision {head[:7]} = head of main")
    """),
    md("""
    ## 2. Pull, not push — and why that keeps the credentials in the cluster

    ```mermaid
    flowchart LR
      subgraph Push["Push: a CI pipeline deploys"]
        d1[developer] -->|git push| g1[(Git)]
        g1 --> ci["CI job<br/>holds an admin kubeconfig"]
        ci -->|kubectl apply| k1[cluster API]
      end
      subgraph Pull["Pull: GitOps"]
        d2[developer] -->|git push| g2[(Git)]
        a["agent inside the cluster<br/>its own ServiceAccount"] -->|git fetch| g2
        a -->|server-side apply| k2[cluster API]
      end
    ```

    * **Push**: CI runs `kubectl apply`. So CI must hold credentials that can change the cluster,
      and the API server must be reachable from CI. Whoever steals the CI secret owns the cluster.
    * **Pull**: an agent *in* the cluster fetches Git and applies what it finds. Its credentials
      are a ServiceAccount that never leaves the cluster; Git and CI hold none; the only network
      connection goes *out* from the cluster to Git. And because the agent keeps comparing, it
      also notices when the cluster changes behind Git's back.

    In this lab on **kind** the agent is exactly that: a pod in the namespace `gitops-lab`,
    using its ServiceAccount's token, fetching from the Git server's pod. On the **local**
    provider no container can run, so the agent runs as a process on your machine — but it
    authenticates with a token of the same ServiceAccount, so the API server grants it exactly
    what it would grant the pod.

    Watch the pull happen: the agent's last reconcile started with a `fetch` from the lab's Git
    server.
    """),
    live("""
    from gitops_lab.widgets import ReconcileTrace

    ReconcileTrace(lab.apps, "guestbook")
    """),
    md("""
    **Self-check.** Who opened the connection to Git? The agent did: its first step is a fetch.
    And it runs where the first cell said: a pod on kind, a process on the local provider.
    """),
    check("""
    steps = {s["name"]: s for s in lab.app("guestbook")["status"]["lastReconcile"]["steps"]}
    assert steps["fetch"]["ok"], steps["fetch"]
    assert lab.repo_url in steps["fetch"]["detail"], "the agent should fetch from the lab's repo"
    agent = lab.agent_info()
    assert agent is not None, "the agent should answer its health endpoint"
    if lab.agent_mode == "in-cluster":
        assert agent["pods"], f"the agent should run as a pod: {agent}"
    else:
        assert agent["pid"], f"the agent should run as a process: {agent}"
    print("the agent pulled from", lab.repo_url)
    """),
    md("""
    ## 3. Drift, rollback, separation of concerns — what is ahead

    * **Drift**: the live cluster differs from Git (someone ran `kubectl scale`). The agent
      detects it, reports it, and — with *self-heal* — reverts it. → chapter 04
    * **Rollback**: a bad release is undone by `git revert` (Git stays the truth) or by
      re-deploying an earlier entry of the app's history. → chapter 05
    * **Separation of concerns**: developers propose changes as commits (reviewed, tested),
      the agent deploys them, the platform team decides what the agent may touch (its RBAC).
      Nobody needs cluster-admin to ship. → chapter 06

    Because every change is a commit, Git's log is the deployment audit trail: who, what,
    when and why.
    """),
    live("""
    for sha, summary in lab.log(5):
        print(sha[:7], summary)
    """),
    md("**Self-check.** The live revision is a commit in that history — not something done by hand."),
    check("""
    shas = [sha for sha, _ in lab.log(100)]
    assert lab.app("guestbook")["status"]["sync"]["revision"] in shas
    """),
    md("""
    ## 4. Is your machine ready? `gitops-lab doctor`

    `gitops-lab doctor` lists what the lab needs (Python, the Kubernetes binaries, git) and what
    is optional (Docker for kind, Chromium for the browser tests), with how to get what is
    missing. In a notebook, `!` runs a shell command; in a terminal, type it without the `!`.
    """),
    live("""
    !gitops-lab doctor
    """),
    md("**Self-check.** `doctor` exits 0 when the local lab can run."),
    check("""
    import subprocess

    doctor = subprocess.run(["gitops-lab", "doctor"], capture_output=True, text=True)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    """),
    md("Next: **01 · Cluster** — the cluster you just used, and what in it is simulated."),
]

# ------------------------------------------------------------------------------------------------
CH01 = [
    md("""
    # 01 · A cluster to deploy to

    GitOps needs a cluster to deploy to. `Lab.connect()` runs the equivalent of
    `gitops-lab cluster up`; when no cluster is up yet, its progress bar shows the steps (on
    kind: the node container, the images loaded into it, the Git server and the agent started
    as pods — a minute or two the first time). This chapter looks at what it brought up.
    """),
    code(CONNECT),
    md("""
    ## 1. Kind where Docker answers, else the local control plane

    A Kubernetes cluster is a **control plane** — etcd (the database), kube-apiserver (the only
    door to it), kube-controller-manager (Deployments → ReplicaSets → Pods) and kube-scheduler
    (which node runs a pod) — plus **nodes**, where a kubelet starts containers.

    `gitops-lab cluster up --provider auto` picks:

    * **kind** where a Docker daemon answers: control plane and nodes in Docker containers;
      your containers really run.
    * **local** otherwise: the same control-plane binaries (Kubernetes v1.35, built from
      source) as processes on 127.0.0.1 — real etcd, a real API server with RBAC — and one
      node **simulated by [kwok](https://kwok.sigs.k8s.io/)**. Pods get scheduled, get IPs and
      are reported Running, but no container ever runs. Everything GitOps does happens at the
      API server, so everything in this course works the same — you just cannot `curl` the app.

    The first line below says which one you have.
    """),
    live("""
    print("provider:", lab.provider_kind, "· cluster:", lab.provider.name)
    !gitops-lab cluster status --name {lab.provider.name}
    !kubectl version
    """),
    md("**Self-check.** The API server answers its readiness probe."),
    check("""
    assert lab.kubectl("get", "--raw", "/readyz") == "ok", "the API server should be ready"
    """),
    md("""
    ## 2. Nodes: real or simulated

    On kind a node is a container running a kubelet and containerd. On the local provider,
    kwok plays the kubelet: it writes the node's and pods' *status* (Ready, Running, pod IPs)
    into the API server, following the rules in `gitops_lab/cluster/kwok-stages.yaml`. The
    picture below is live: it lists nodes and pods and follows every change.
    """),
    live("""
    !kubectl get nodes -o wide
    """),
    live("""
    from gitops_lab.widgets import ClusterView

    ClusterView(lab.kube)
    """),
    md("**Self-check.** Every node is Ready — on kind a real kubelet with containerd, on the local provider a kwok node."),
    check("""
    import json

    nodes = json.loads(lab.kubectl("get", "nodes", "-o", "json"))["items"]
    ready = [n["metadata"]["name"] for n in nodes
             if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])]
    assert nodes and len(ready) == len(nodes), f"every node should be Ready: {ready} of {len(nodes)}"
    if lab.provider.kind == "local":
        fake = [n["metadata"]["name"] for n in nodes
                if (n["metadata"].get("annotations") or {}).get("kwok.x-k8s.io/node") == "fake"]
        assert fake == [n["metadata"]["name"] for n in nodes], "local nodes are simulated by kwok"
        print(f"{len(nodes)} simulated node(s), all Ready")
    else:
        runtimes = {n["status"]["nodeInfo"]["containerRuntimeVersion"] for n in nodes}
        assert all(r.startswith("containerd://") for r in runtimes), runtimes
        print(f"{len(nodes)} real node(s), all Ready, running", ", ".join(sorted(runtimes)))
    """),
    md("""
    ## 3. Pods that are Running — and, on the local provider, run nothing

    Create a Deployment by hand (just this once: from chapter 03 on, only Git changes the
    cluster). The controller-manager creates a ReplicaSet and two Pods, the scheduler puts them
    on the node, and the kubelet (kind) or kwok (local) reports them Running.

    The image is the course's sample app, `gitops-lab/guestbook:1.0.0`: on kind it was built on
    this machine and loaded into the node, so the kubelet starts it without pulling anything.
    """),
    live("""
    # catch-up: remove what an earlier run of this chapter left behind
    lab.kubectl("delete", "deployment", "hello", "-n", "default", "--ignore-not-found",
                "--cascade=foreground")
    print(lab.kubectl("create", "deployment", "hello", "--image=gitops-lab/guestbook:1.0.0",
                      "--replicas=2", "-n", "default"))


    def hello_ready() -> bool:
        return lab.kubectl("get", "deployment", "hello", "-n", "default",
                           "-o", "jsonpath={.status.readyReplicas}") == "2"


    lab.wait_until(hello_ready, timeout=60,
                   what="2 ready hello pods (scheduled, then reported Running by the kubelet or kwok)")
    ClusterView(lab.kube, namespace="default")
    """),
    md("""
    Now ask for the logs of one of them: the API server asks the node's kubelet (port 10250)
    for what the container printed. On kind you see the sample app's first line. On the local
    provider there is no kubelet and no container, so the request fails:
    """),
    live("""
    pod = lab.kubectl("get", "pods", "-n", "default", "-l", "app=hello",
                      "-o", "jsonpath={.items[0].metadata.name}")
    logs = lab.kubectl("logs", "-n", "default", pod, check=False)
    print(logs)
    """),
    md("**Self-check.** Two pods Running; on kind the container's own log, on the local provider no logs to read."),
    check("""
    pods = json.loads(lab.kubectl("get", "pods", "-n", "default", "-l", "app=hello", "-o", "json"))["items"]
    pods = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert len(pods) == 2 and all(p["status"]["phase"] == "Running" for p in pods), \\
        [p["status"]["phase"] for p in pods]
    if lab.provider_kind == "kind":
        assert "guestbook 1.0.0" in logs and "listening on :8080" in logs, logs
    elif lab.provider_kind == "local":
        assert "10250" in logs or "error" in logs.lower(), "no kubelet, so no container logs"
    """),
    live("""
    print(lab.kubectl("delete", "deployment", "hello", "-n", "default"))  # tidy up
    """),
    md("Next: **02 · Config repo and agent** — where the desired state lives, and who applies it."),
]

# ------------------------------------------------------------------------------------------------
CH02 = [
    md("""
    # 02 · The config repo and the agent

    Two halves of GitOps: a Git repository that holds the desired state, and an agent that
    makes the cluster equal it.
    """),
    code(CONNECT),
    live("""
    app = lab.reset_sample()  # catch-up: the pristine sample in Git, deployed and Synced
    """),
    md("""
    ## 1. The config repo

    The desired state lives in a **config repo** (also called environment or deployment
    repo), usually separate from the application's source code: CI builds images from the
    source repo; the config repo says which image, how many replicas, with what config.

    The lab runs its own Git server (`git daemon`) with one repo, `lab`. On kind it is a pod
    (`git-server` in the namespace `gitops-lab`): you push to it through 127.0.0.1, the agent
    pulls from it inside the cluster. On the local provider it is a process on 127.0.0.1, and
    both use the same address. Each directory under `apps/` is one application's desired state,
    as plain Kubernetes YAML. `lab.workcopy` is your clone of it — your laptop, in GitOps terms.
    """),
    live("""
    print("you push to:       ", lab.push_url)
    print("the agent pulls from", lab.repo_url)
    print("your clone:        ", lab.workcopy.path)
    !git -C {lab.workcopy.path} ls-files
    """),
    live("""
    print(lab.read("apps/guestbook/deployment.yaml"))
    """),
    md("**Self-check.** How many replicas of `guestbook-ui` does Git ask for?"),
    check("""
    import yaml

    deployment = yaml.safe_load(lab.read("apps/guestbook/deployment.yaml"))
    assert deployment["kind"] == "Deployment"
    assert deployment["spec"]["replicas"] == 2
    """),
    md("""
    ## 2. History: every change is a commit

    Desired state changes only through commits, so the repo's history is the record of every
    deployment: who changed what, when, and why (the commit message). Make a commit — `lab.commit`
    writes files in your clone, commits and pushes — and watch the agent pick it up.
    """),
    live("""
    from datetime import datetime, timezone

    note = f"Visited chapter 2 at {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC\\n"
    sha = lab.commit({"notes/chapter-02.md": note}, "Leave a note from chapter 2")
    print("pushed", sha[:7])
    !git -C {lab.workcopy.path} log --format='%h %an %ar  %s' -5
    """),
    live("""
    app = lab.wait_for(
        "guestbook", lambda a: a["status"]["sync"].get("revision") == sha,
        what="the agent to notice the new commit (it polls Git every second)", timeout=30)
    """),
    md("""
    **Self-check.** Which revision is live now? The new commit — even though it did not touch
    `apps/guestbook`: the app tracks the branch `main`, and `main` moved.
    """),
    check("""
    assert app["status"]["sync"]["revision"] == sha
    assert app["status"]["sync"]["status"] == "Synced"
    """),
    md("""
    ## 3. Installing the agent

    `gitops-lab agent install` puts into the cluster:

    * the CustomResourceDefinition `applications.gitopslab.io` — a new kind, `Application`
      (chapter 03);
    * the namespace `gitops-lab`, the agent's ServiceAccount `gitops-lab-agent`, and its RBAC.

    Where the agent itself runs depends on the provider (`lab.agent_mode`):

    * **kind** (`--mode in-cluster`): the agent's image is built on this machine and loaded
      into the node, and the agent runs as the Deployment `gitops-lab-agent` — a pod with the
      ServiceAccount's token, like Argo CD's application controller.
    * **local** (`--mode local`): no container runs, so `gitops-lab agent run` runs it as a
      process on your machine that **authenticates as that ServiceAccount** (a token from the
      TokenRequest API), so RBAC limits it exactly as it would in a cluster.

    `Lab.connect()` did all of this already. Installing again is harmless: every object is
    applied with server-side apply, which is idempotent.
    """),
    live("""
    print("agent mode:", lab.agent_mode)
    !gitops-lab agent install --mode {lab.agent_mode} --cluster-name {lab.provider.name}
    !kubectl get crd applications.gitopslab.io
    !kubectl get serviceaccount,role,rolebinding -n gitops-lab
    """),
    md("""
    The pods in `gitops-lab`: on kind the agent and the Git server; on the local provider none
    (the agent and the Git server are processes on your machine). Then where the agent answers,
    and the last lines of its log — from the pod on kind, from its log file on the local
    provider:
    """),
    live("""
    !kubectl -n gitops-lab get pods
    info = lab.agent_info()
    if lab.agent_mode == "in-cluster":
        print("agent pod(s):", ", ".join(info["pods"]), "· serving", info["url"], "(/healthz, /metrics)")
    else:
        print("agent process pid", info["pid"], "· serving", info["url"], "(/healthz, /metrics)")
    print(lab.agent_log(5))
    """),
    md("**Self-check.** The agent answers its health endpoint, runs as its ServiceAccount, and has written a log."),
    check("""
    import json
    import os
    import urllib.request

    with urllib.request.urlopen(lab.agent_url + "/healthz", timeout=5) as resp:
        assert resp.status == 200
    assert "gitops-lab-agent" in lab.kubectl("get", "serviceaccount", "-n", "gitops-lab")
    assert lab.agent_log(5).strip(), "the agent's log should not be empty"
    if lab.agent_mode == "in-cluster":
        pod = json.loads(lab.kubectl("-n", "gitops-lab", "get", "pod", info["pods"][0], "-o", "json"))
        assert pod["spec"]["serviceAccountName"] == "gitops-lab-agent", pod["spec"]
        assert pod["status"]["phase"] == "Running" and pod["status"]["containerStatuses"][0]["ready"]
    else:
        os.kill(info["pid"], 0)  # raises if no such process
    """),
    md("""
    ## 4. What the agent's RBAC allows

    Least privilege: the agent gets exactly what deploying the lab's apps needs — full rights
    on the kinds it deploys (cluster-wide, since an app may target any namespace), read-only on
    Pods and ReplicaSets (for health), and in `gitops-lab` its own Applications and Events.
    What is *not* there matters as much: no Secrets, no Roles or bindings (it cannot grant
    itself more), no `pods/exec`, no Nodes. Here are the rules as the cluster stores them:
    """),
    live("""
    import json
    from html import escape

    from IPython.display import HTML

    rules = []
    for kind, namespace in (("clusterrole", None), ("role", "gitops-lab")):
        args = ["get", kind, "gitops-lab-agent", "-o", "json"] + (["-n", namespace] if namespace else [])
        for rule in json.loads(lab.kubectl(*args))["rules"]:
            rules.append({"where": f"Role in {namespace}" if namespace else "ClusterRole (all namespaces)",
                          **rule})


    def cell(values):
        return escape(", ".join(v or '""' for v in values))


    rows = "".join(f"<tr><td>{escape(r['where'])}</td><td>{cell(r.get('apiGroups', []))}</td>"
                   f"<td><b>{cell(r.get('resources', []))}</b></td><td>{cell(r.get('verbs', []))}</td></tr>"
                   for r in rules)
    HTML("<table><tr><th>granted by</th><th>API groups</th><th>resources</th><th>verbs</th></tr>"
         f"{rows}</table>")
    """),
    md("**Self-check.** Nothing in those rules reaches Secrets, RBAC or `pods/exec`."),
    check("""
    resources = {res for rule in rules for res in rule.get("resources", [])}
    groups = {group for rule in rules for group in rule.get("apiGroups", [])}
    assert "secrets" not in resources, "the agent must not read Secrets"
    assert "pods/exec" not in resources, "the agent must not exec into pods"
    assert "rbac.authorization.k8s.io" not in groups, "the agent must not change RBAC"
    """),
    md("Next: **03 · Deploy** — your first Application, from Git to the cluster."),
]

# ------------------------------------------------------------------------------------------------
CH03 = [
    md("""
    # 03 · Deploy: from Git to the cluster

    An **Application** tells the agent what to deploy (a path in a Git repo, at a revision) and
    where (a namespace). In this chapter you create one with a *manual* sync policy, sync it,
    look at the app, then switch on *automated* sync and ship changes by committing to Git.
    """),
    code(CONNECT),
    live("""
    # Catch-up: this chapter starts with no app. With the agent paused (so it cannot re-apply
    # anything meanwhile): delete the Application and what it deployed, and put the pristine
    # sample back in Git.
    with lab.paused_agent():
        lab.apps.delete("guestbook")
        print(lab.kubectl("delete", "deployment,service,configmap", "-n", "guestbook",
                          "-l", "app.kubernetes.io/name=guestbook", "--ignore-not-found",
                          "--cascade=foreground"))
        lab.reset_git()
    """),
    md("""
    ## 1. The Application: what, from where, to where

    Its spec has a `source` (repo, revision, path), a `destination` (namespace) and a
    `syncPolicy`. Without `syncPolicy.automated` the agent only *compares* Git with the cluster
    and reports; you decide when to apply. Here is the manifest — you could `kubectl apply` it
    as YAML just the same:
    """),
    code("""
    import yaml

    from gitops_lab.apps import application

    guestbook = application(
        "guestbook",
        repo_url=lab.repo_url,       # where the desired state lives
        path="apps/guestbook",       # which directory of the repo
        target_revision="main",      # which branch, tag or commit
        dest_namespace="guestbook",  # where the objects go (created if missing)
        automated=False,             # manual: compare and report, but apply only when asked
    )
    print(yaml.safe_dump(guestbook, sort_keys=False))
    """),
    live("""
    lab.apps.apply(guestbook)  # the same as `kubectl apply -f application.yaml`
    app = lab.wait_for(
        "guestbook", lambda a: (a.get("status") or {}).get("sync", {}).get("status") == "OutOfSync",
        what="the agent's first comparison of Git with the cluster", timeout=30)
    dash = lab.dashboard("guestbook")
    dash
    """),
    md("""
    **OutOfSync**: Git has three objects the cluster does not. **Missing**: their health — they
    do not exist yet. The dashboard stays live: keep an eye on it while you run the next cells.

    **Self-check.** The app is OutOfSync and Missing, and so is every object in it.
    """),
    check("""
    assert app["status"]["sync"]["status"] == "OutOfSync"
    assert app["status"]["health"]["status"] == "Missing"
    assert all(r["status"] == "OutOfSync" for r in app["status"]["resources"]), app["status"]["resources"]
    """),
    md("""
    ## 2. Sync: make the cluster equal Git

    A **sync** applies every object from Git (server-side apply; namespaces first), records the
    revision in the app's history, and then watches health: the Deployment is *Progressing*
    until its pods are ready, then *Healthy*. Three ways to ask for one: the **Sync** button
    above, `gitops-lab app sync guestbook` in a terminal, or:
    """),
    live("""
    lab.apps.sync("guestbook")
    app = lab.wait_for(
        "guestbook",
        lambda a: a["status"]["sync"]["status"] == "Synced" and a["status"]["health"]["status"] == "Healthy",
        what="the sync to create 3 objects and the Deployment's 2 pods to become ready", timeout=60)
    for r in app["status"]["operationState"]["syncResult"]["resources"]:
        print(f'{r["kind"]:<11} {r["name"]:<17} {r["action"]}')
    dash
    """),
    md("**Self-check.** Which revision is live? The head of `main` — and the sync created all three objects."),
    check("""
    assert app["status"]["sync"]["revision"] == lab.workcopy.head
    assert app["status"]["operationState"]["phase"] == "Succeeded"
    assert {r["action"] for r in app["status"]["operationState"]["syncResult"]["resources"]} == {"created"}
    """),
    md("""
    ## 3. The app itself

    Synced and Healthy are what the API server says. Does the app answer? On **kind** its two
    pods really run the sample app's container, and the Service `guestbook-ui` (a NodePort,
    which kind maps to a port on 127.0.0.1: `lab.app_url`) leads to them: fetch the page and
    show it here. On the **local** provider no container runs — the pods are only reported
    Running — so nothing serves the page; what the pods would read, the ConfigMap with
    `GREETING`, is in the cluster all the same.
    """),
    live("""
    import re

    from IPython.display import HTML, display

    from gitops_lab.lab import LabError


    def page() -> str:
        try:
            return lab.fetch_app()
        except LabError:  # e.g. right after a rollout, before the Service leads to a ready pod
            return ""


    def show(html: str) -> HTML:
        body = re.search(r"<body[^>]*>(.*)</body>", html, re.S)
        return HTML('<div style="border:1px solid #d0d7de;border-radius:6px;padding:0 1em">'
                    f"{body.group(1) if body else html}</div>")


    def greeting_in_cluster() -> str:
        return lab.kubectl("get", "configmap", "guestbook-config", "-n", "guestbook",
                           "-o", "jsonpath={.data.GREETING}")


    if lab.app_url:
        lab.wait_until(lambda: 'id="greeting"' in page(), timeout=30,
                       what=f"the sample app's page at {lab.app_url} (the Service leads to a ready pod)")
        html = page()
        print("fetched", lab.app_url)
        display(show(html))
    else:
        print(f"{lab.provider_kind} provider: no container runs, so no page to fetch. The ConfigMap the pods would read:")
        print(lab.kubectl("get", "configmap", "guestbook-config", "-n", "guestbook", "-o", "yaml"))
    """),
    md("**Self-check.** The greeting from Git: on the page (kind), in the cluster's ConfigMap (both)."),
    check("""
    assert greeting_in_cluster() == "Hello from Git"
    if lab.app_url:
        assert '<h1 id="greeting">Hello from Git</h1>' in html and '<b id="version">1.0.0</b>' in html, html
    else:
        try:
            lab.fetch_app()
            raise AssertionError("no pod should serve the page on the local provider")
        except LabError as exc:
            print("as expected:", exc)
    """),
    md("""
    ## 4. Automated sync: a commit is a deployment

    With `syncPolicy.automated` the agent syncs by itself whenever `main` moves. Switch it on
    (the **Auto-sync** box in the dashboard does the same), then change Git: 2 → 3 replicas.
    """),
    live("""
    lab.apps.set_policy("guestbook", automated=True)
    deployment = lab.read("apps/guestbook/deployment.yaml")
    sha = lab.commit({"apps/guestbook/deployment.yaml": deployment.replace("replicas: 2", "replicas: 3")},
                     "Scale guestbook-ui to 3 replicas")
    print("pushed", sha[:7], "— no kubectl, no sync button")
    """),
    live("""
    app = lab.wait_for(
        "guestbook",
        lambda a: a["status"]["sync"].get("revision") == sha and a["status"]["sync"]["status"] == "Synced"
        and a["status"]["health"]["status"] == "Healthy",
        what=f"the agent to pull {sha[:7]} and roll it out", timeout=60)


    def ready_replicas() -> str:
        return lab.kubectl("get", "deployment", "guestbook-ui", "-n", "guestbook",
                           "-o", "jsonpath={.status.readyReplicas}")


    lab.wait_until(lambda: ready_replicas() == "3", what="the third pod to be ready", timeout=30)
    dash
    """),
    md("**Self-check.** The commit is live, and the cluster runs three replicas."),
    check("""
    assert app["status"]["sync"]["revision"] == sha
    assert ready_replicas() == "3"
    """),
    md("""
    ## 5. A config change reaches the running app

    Change `GREETING` in `apps/guestbook/configmap.yaml` and commit. The agent updates the
    ConfigMap within a second or two. The sample app reads `GREETING` from the ConfigMap
    *mounted as files*, and the kubelet refreshes mounted ConfigMaps every few seconds — so on
    kind the page changes **without restarting a pod** (about 5–15 s). On the local provider
    the change stops at the ConfigMap: there is no kubelet and no running app to read it.

    (Had the app read `GREETING` from an environment variable, it would only see the change
    when its pod restarts. That is why Kustomize's `configMapGenerator` puts a hash of the
    content into the ConfigMap's name: a new name changes the pod template and rolls the pods.)
    """),
    live("""
    import json
    import time


    def pod_names() -> list[str]:
        pods = json.loads(lab.kubectl("get", "pods", "-n", "guestbook", "-o", "json"))["items"]
        return sorted(p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp"))


    pods_before = pod_names()
    configmap = lab.read("apps/guestbook/configmap.yaml")
    greeting = "Hello from my first commit"
    assert 'GREETING: "Hello from Git"' in configmap, configmap
    started = time.monotonic()
    greeting_sha = lab.commit({"apps/guestbook/configmap.yaml":
                               configmap.replace('GREETING: "Hello from Git"', f'GREETING: "{greeting}"')},
                              "Greet from my first commit")
    lab.wait_until(lambda: greeting_in_cluster() == greeting, timeout=30,
                   what=f"the agent to apply {greeting_sha[:7]} to the ConfigMap")
    print(f"ConfigMap updated {time.monotonic() - started:.0f} s after the push")
    served: dict[str, str] = {}  # pod name → the greeting it served last (the page names its pod)


    def every_pod_serves(text: str) -> bool:
        found = re.search(r'id="greeting">(.*?)</h1>.*id="pod">([^<]+)<', page(), re.S)
        if found:
            served[found.group(2)] = found.group(1)
        return all(served.get(pod) == text for pod in pods_before)


    if lab.app_url:  # the Service spreads the requests over the 3 pods; each pod's kubelet refreshes its files
        lab.wait_until(lambda: every_pod_serves(greeting), timeout=60,
                       what="the kubelets to refresh the mounted ConfigMap and all 3 pods to serve the new GREETING")
        html = page()
        print(f"page changed {time.monotonic() - started:.0f} s after the push")
        display(show(html))
    """),
    md("**Self-check.** The new greeting is in the cluster — and on kind on the page — and no pod was restarted or replaced."),
    check("""
    assert greeting_in_cluster() == greeting
    if lab.app_url:
        assert f'<h1 id="greeting">{greeting}</h1>' in html, html
    assert pod_names() == pods_before, f"the pods should be the same: {pods_before} → {pod_names()}"
    pods = json.loads(lab.kubectl("get", "pods", "-n", "guestbook", "-o", "json"))["items"]
    assert all(c.get("restartCount", 0) == 0 for p in pods for c in p["status"].get("containerStatuses", []))
    """),
    md("""
    ## 6. What the agent did: one reconcile, step by step

    The agent's loop is a fixed sequence: **fetch** (Git) → **render** (YAML to objects) →
    **diff** (a server-side-apply dry run, compared with the live objects) → **apply** (only
    what differs) → **prune** (objects that left Git) → **health**. It runs on every Git change,
    every cluster change it watches, and on a timer. The bars are the last run's timings;
    once in sync, *apply* is skipped.
    """),
    live("""
    from gitops_lab.widgets import ReconcileTrace

    trace = ReconcileTrace(lab.apps, "guestbook")
    trace
    """),
    md("**Self-check.** The last reconcile fetched your commit and found nothing left to do."),
    check("""
    steps = {s["name"]: s for s in trace.steps}
    assert steps["fetch"]["state"] == "ok" and greeting_sha[:7] in steps["fetch"]["detail"], steps["fetch"]
    assert steps["diff"]["state"] == "ok", steps["diff"]
    """),
    md("The same app in a terminal — Argo CD's `argocd app get`:"),
    live("""
    !gitops-lab app get guestbook
    """),
    md("Next: **04 · Drift and self-heal** — what happens when someone changes the cluster by hand."),
]

# ------------------------------------------------------------------------------------------------
CH04 = [
    md("""
    # 04 · Drift and self-heal

    **Drift** is any difference between the live cluster and Git that no commit explains:
    someone ran `kubectl scale`, edited an image, deleted an object. A GitOps agent keeps
    comparing, so it *detects* drift; with **self-heal** on it also *reverts* it.
    """),
    code(CONNECT),
    live("""
    app = lab.reset_sample()  # catch-up: pristine sample, automated sync with prune, self-heal OFF
    seen = {e["metadata"]["name"] for e in lab.events("guestbook")}  # events from earlier runs
    """),
    md("""
    ## 1. Drift: scale by hand, behind Git's back

    Git says 2 replicas. Scale to 5 with `kubectl`, as someone fighting a fire might. The
    Deployment really gets three more pods — on kind three more containers start
    (`lab.provider_kind` says which provider you have):
    """),
    live("""
    import json


    def pods(image: str | None = None) -> list[dict]:  # the app's pods not being deleted (running IMAGE)
        items = json.loads(lab.kubectl("get", "pods", "-n", "guestbook", "-o", "json"))["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")
                and (image is None or p["spec"]["containers"][0]["image"] == image)]


    def ready(pod: dict) -> bool:
        return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


    print(lab.kubectl("scale", "deployment/guestbook-ui", "-n", "guestbook", "--replicas=5"))
    app = lab.wait_for("guestbook", lambda a: a["status"]["sync"]["status"] == "OutOfSync",
                       what="the agent to see the change (it watches the objects it deployed)",
                       timeout=30)
    lab.wait_until(lambda: any(e["metadata"]["name"] not in seen
                               for e in lab.events("guestbook", "DriftDetected")),
                   what="the agent's DriftDetected event", timeout=30)
    lab.wait_until(lambda: sum(map(ready, pods())) == 5, timeout=60,
                   what=f"5 ready pods (on {lab.provider_kind}: " + ("containers started by the kubelet)"
                         if lab.provider_kind == "kind" else "reported Running by kwok, nothing runs)"))
    print(lab.kubectl("get", "pods", "-n", "guestbook", "-o", "wide"))
    """),
    md("""
    The agent recorded a Kubernetes Event — `DriftDetected`, highlighted below — and, when an
    alert webhook is configured, POSTs an alert. This log is live; it also shows the events
    the agent records later in this chapter.
    """),
    live("""
    from gitops_lab.widgets import EventLog

    EventLog(lab.kube, "guestbook", limit=12)  # the newest 12
    """),
    md("""
    **Self-check.** Self-heal is off, so the agent *reports* the drift and leaves it alone:
    the cluster still runs 5 replicas, and the event names the field that differs.
    """),
    check("""
    drift = [e for e in lab.events("guestbook", "DriftDetected") if e["metadata"]["name"] not in seen]
    assert drift and "spec.replicas" in drift[0]["message"], drift[0]["message"] if drift else "no event"
    assert lab.app("guestbook")["status"]["sync"]["status"] == "OutOfSync"
    assert lab.kubectl("get", "deployment", "guestbook-ui", "-n", "guestbook",
                       "-o", "jsonpath={.spec.replicas}") == "5"
    assert sum(map(ready, pods())) == 5
    """),
    md("""
    ## 2. What exactly differs: the diff

    The diff compares what Git would produce (a server-side-apply dry run, so defaults the API
    server fills in are never drift) with the live object. `-` is the cluster, `+` is Git.
    `gitops-lab app diff guestbook` prints the same in a terminal.

    This diff is computed here, on your machine, so it fetches Git from here. On kind the
    app's `repoURL` is the Git server's address *inside* the cluster; your machine reaches the
    same server through 127.0.0.1 (`lab.push_url`), and the diff fetches from there.
    """),
    live("""
    from gitops_lab.widgets import DiffView

    diff = DiffView.for_app(lab.kube, lab.apps, "guestbook")
    diff
    """),
    md("**Self-check.** One object differs — the Deployment — and the difference is `replicas`."),
    check("""
    assert [e["key"] for e in diff.entries] and len(diff.entries) == 1, [e["key"] for e in diff.entries]
    assert "guestbook-ui" in diff.entries[0]["key"] and "replicas" in diff.entries[0]["text"]
    """),
    md("""
    ## 3. Repair by hand: sync

    Without self-heal, drift stays until someone syncs — a person decides. (Or commits
    `replicas: 5` to Git, if 5 was right: then Git is the truth again.)
    """),
    live("""
    lab.apps.sync("guestbook")
    app = lab.wait_for("guestbook", lambda a: a["status"]["sync"]["status"] == "Synced",
                       what="the sync to put Git's 2 replicas back", timeout=30)
    """),
    md("**Self-check.** Back to what Git says — and the three extra pods are gone."),
    check("""
    assert lab.kubectl("get", "deployment", "guestbook-ui", "-n", "guestbook",
                       "-o", "jsonpath={.spec.replicas}") == "2"
    lab.wait_until(lambda: len(pods()) == 2, timeout=60,
                   what="the ReplicaSet to remove the 3 extra pods (on kind: their containers stop)")
    """),
    md("""
    ## 4. Self-heal on: drift is reverted within a second

    With `selfHeal: true` the agent re-applies Git as soon as it sees drift. Switch it on (the
    **Self-heal** box in the dashboard does the same) and change the image by hand — the
    non-interactive form of `kubectl edit` — to the sample app's next release, 1.1.0:
    """),
    live("""
    import yaml

    lab.apps.set_policy("guestbook", self_heal=True)
    lab.wait_for("guestbook", lambda a: a["spec"]["syncPolicy"]["automated"]["selfHeal"],
                 what="the new policy", timeout=10)
    git_image = yaml.safe_load(lab.read("apps/guestbook/deployment.yaml"))["spec"]["template"]["spec"]["containers"][0]["image"]
    print(lab.kubectl("set", "image", "deployment/guestbook-ui", "-n", "guestbook",
                      "web=gitops-lab/guestbook:1.1.0"))


    def live_image() -> str:
        return lab.kubectl("get", "deployment", "guestbook-ui", "-n", "guestbook",
                           "-o", "jsonpath={.spec.template.spec.containers[0].image}")


    lab.wait_until(lambda: live_image() == git_image, timeout=30,
                   what="the agent to put Git's image back (self-heal)")
    lab.wait_until(lambda: any(e["metadata"]["name"] not in seen
                               for e in lab.events("guestbook", "SelfHealed")),
                   what="the agent's SelfHealed event", timeout=30)
    # the Deployment may have started a 1.1.0 pod meanwhile: it goes away again
    lab.wait_until(lambda: len(pods()) == 2 and all(map(ready, pods(git_image))) and len(pods(git_image)) == 2,
                   timeout=60, what=f"the pods to be 2 ready pods of Git's image {git_image} again")
    lab.dashboard("guestbook")
    """),
    md("**Self-check.** The image is Git's again — in the Deployment and in every pod — and the agent said so in a `SelfHealed` event."),
    check("""
    assert live_image() == git_image
    assert {p["spec"]["containers"][0]["image"] for p in pods()} == {git_image}
    healed = [e for e in lab.events("guestbook", "SelfHealed") if e["metadata"]["name"] not in seen]
    assert healed and "guestbook-ui" in healed[0]["message"], healed
    """),
    md("""
    ## 5. Deleting an object

    Deleting is drift too: Git has the ConfigMap, the cluster does not. With self-heal on the
    agent recreates it — a new object, with a new UID.
    """),
    live("""
    old_uid = lab.kubectl("get", "configmap", "guestbook-config", "-n", "guestbook",
                          "-o", "jsonpath={.metadata.uid}")
    print(lab.kubectl("delete", "configmap", "guestbook-config", "-n", "guestbook"))


    def configmap_uid() -> str:
        return lab.kubectl("get", "configmap", "guestbook-config", "-n", "guestbook",
                           "--ignore-not-found", "-o", "jsonpath={.metadata.uid}")


    lab.wait_until(lambda: configmap_uid() not in ("", old_uid), timeout=30,
                   what="the agent to recreate the ConfigMap from Git")
    """),
    md("**Self-check.** The ConfigMap is back — recreated, not the old one — and the app is Synced."),
    check("""
    assert configmap_uid() not in ("", old_uid)
    app = lab.wait_for("guestbook", lambda a: a["status"]["sync"]["status"] == "Synced",
                       what="the app to be Synced again", timeout=30)
    """),
    md("""
    When to switch self-heal on? In production, usually yes: the cluster should not silently
    diverge from what was reviewed. Manual changes during an incident then have to go through
    Git — which is the point. The next chapter turns it off again (`reset_sample()` does).

    Next: **05 · Rollback**.
    """),
]

# ------------------------------------------------------------------------------------------------
CH05 = [
    md("""
    # 05 · Rollback

    A release that breaks is undone in GitOps by changing Git back — `git revert` — so Git
    stays the truth. When that is too slow, you can also re-deploy an earlier entry of the
    app's history, as `argocd app rollback` does. This chapter does both.
    """),
    code(CONNECT),
    live("""
    app = lab.reset_sample()  # catch-up: pristine sample, automated sync, Synced and Healthy
    good = app["status"]["sync"]["revision"]
    original = lab.read("apps/guestbook/deployment.yaml")
    """),
    md("""
    ## 1. A bad release: pods that never become ready

    Release the sample app's `1.2.0-broken`: it starts and serves its page, but its `/healthz`
    answers 503, so its **readiness probe** fails. The agent syncs the commit like any other —
    the manifest is valid — and the Deployment starts a new ReplicaSet whose pod is Running but
    never Ready. The old pods keep serving (a rolling update never takes them all down), and
    after `progressDeadlineSeconds` (20 s in this sample; Kubernetes' default is 10 minutes) the
    Deployment reports that its rollout failed: the app turns **Degraded**.

    *Where does the failure come from?* On kind, from the kubelet: it really runs the
    container and really probes it every 2 s. On the local provider no container runs; a kwok
    rule in `gitops_lab/cluster/kwok-stages.yaml` gives every pod whose image tag ends in
    `-broken` the status a kubelet would report: Running, container started, not Ready.
    Everything above that — the Deployment's progress deadline, the health check — is real
    Kubernetes on both.
    """),
    live("""
    assert "image: gitops-lab/guestbook:1.0.0" in original, original
    bad = lab.commit({"apps/guestbook/deployment.yaml":
                      original.replace("image: gitops-lab/guestbook:1.0.0", "image: gitops-lab/guestbook:1.2.0-broken")},
                     "Release guestbook-ui 1.2.0")
    print("pushed", bad[:7])
    dash = lab.dashboard("guestbook")
    dash
    """),
    live("""
    app = lab.wait_for(
        "guestbook", lambda a: a["status"]["health"]["status"] == "Degraded",
        what="the Deployment to miss its 20 s progress deadline (watch the dashboard above)",
        timeout=90)
    print(app["status"]["health"]["message"])
    print(lab.kubectl("get", "pods", "-n", "guestbook"))
    if lab.provider_kind == "kind":  # what the kubelet saw when it probed the new pod
        print(lab.kubectl("get", "events", "-n", "guestbook", "--field-selector=reason=Unhealthy"))
    """),
    md("""
    The old pods still serve the old release. On kind, ask the page which version answers; on
    the local provider there is no page, but the two old pods are still the Ready ones:
    """),
    live("""
    import json
    import re


    def pods(image: str) -> list[dict]:
        items = json.loads(lab.kubectl("get", "pods", "-n", "guestbook", "-o", "json"))["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")
                and p["spec"]["containers"][0]["image"] == image]


    def ready(pod: dict) -> bool:
        return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


    old, broken = pods("gitops-lab/guestbook:1.0.0"), pods("gitops-lab/guestbook:1.2.0-broken")
    print(f"1.0.0: {sum(map(ready, old))} of {len(old)} ready · 1.2.0-broken: {sum(map(ready, broken))} of {len(broken)} ready")
    if lab.app_url:
        version = re.search(r'id="version">([^<]+)<', lab.fetch_app()).group(1)
        print("the page at", lab.app_url, "is served by version", version)
    """),
    md("**Self-check.** The bad commit is live — Synced! — and unhealthy: Synced says nothing about working. Its pods run but are not ready; the old ones still are."),
    check("""
    assert app["status"]["sync"]["revision"] == bad and app["status"]["sync"]["status"] == "Synced"
    assert app["status"]["health"]["status"] == "Degraded"
    assert broken, "the broken release should have a pod"
    for pod in broken:  # running (the container started), but failing its readiness probe
        status = pod["status"]["containerStatuses"][0]
        assert pod["status"]["phase"] == "Running" and "running" in status["state"], pod["status"]
        assert status["ready"] is False and not ready(pod), status
    assert len(old) == 2 and all(map(ready, old)), "the old release's 2 pods keep serving"
    if lab.app_url:
        assert version == "1.0.0", version
    """),
    md("""
    ## 2. Roll back the GitOps way: `git revert`

    `git revert` adds a commit that undoes the bad one. History keeps both — what happened and
    how it was fixed — and automated sync deploys the revert like any other commit.
    """),
    live("""
    fix = lab.revert(bad)
    print("pushed", fix[:7], "=", lab.log(1)[0][1])
    app = lab.wait_for(
        "guestbook",
        lambda a: a["status"]["sync"].get("revision") == fix and a["status"]["health"]["status"] == "Healthy",
        what=f"the agent to deploy the revert {fix[:7]} and the old image's pods to be ready", timeout=60)
    """),
    md("**Self-check.** Git is back to the original file, and the revert commit is live and Healthy."),
    check("""
    assert lab.read("apps/guestbook/deployment.yaml") == original
    assert app["status"]["sync"]["revision"] == fix and app["status"]["sync"]["status"] == "Synced"
    """),
    md("""
    ## 3. Roll back by history id

    Every sync appends an entry to `status.history`: an id, the revision, when. The timeline
    below shows them, oldest left, the live one marked; each has a Rollback button.
    Rolling back re-deploys an entry's revision **without changing Git** — like
    `argocd app rollback`. Break the app once more, then roll back to the entry of the revert:
    """),
    live("""
    bad_again = lab.commit({"apps/guestbook/deployment.yaml":
                            original.replace("image: gitops-lab/guestbook:1.0.0", "image: gitops-lab/guestbook:1.2.0-broken")},
                           "Release guestbook-ui 1.2.0 again")
    app = lab.wait_for("guestbook", lambda a: a["status"]["sync"].get("revision") == bad_again
                       and a["status"]["history"][-1]["revision"] == bad_again,
                       what=f"the agent to deploy {bad_again[:7]}", timeout=30)
    entry_id = [h for h in app["status"]["history"] if h["revision"] == fix][-1]["id"]
    print(f"will roll back to history entry #{entry_id} ({fix[:7]}, the revert)")

    from gitops_lab.widgets import HistoryTimeline

    HistoryTimeline(lab.apps, "guestbook", messages=dict(lab.log(20)))
    """),
    md("""
    In a terminal: `gitops-lab app history guestbook`, then `gitops-lab app rollback guestbook ID`.
    Rollback waits for the agent and prints the result:
    """),
    live("""
    !gitops-lab app history guestbook
    !gitops-lab app rollback guestbook {entry_id}
    """),
    live("""
    app = lab.wait_for("guestbook", lambda a: a["status"]["history"][-1]["revision"] == fix
                       and a["status"]["health"]["status"] == "Healthy",
                       what="the rollback to be deployed and Healthy", timeout=60)
    dash
    """),
    md("""
    Look at the dashboard: **Healthy but OutOfSync**, and *Auto-sync* is off. Git's `main` still
    points at the broken commit; had automated sync stayed on, the agent would have re-deployed
    it at once and undone your rollback. So a rollback switches automated sync off — as Argo CD
    does — until Git is fixed.

    **Self-check.** The revert's revision is deployed again — no pod of 1.2.0 is left; Git's head
    is still the bad commit; automated sync is off.
    """),
    check("""
    assert app["status"]["history"][-1]["revision"] == fix
    assert not pods("gitops-lab/guestbook:1.2.0-broken") and len(pods("gitops-lab/guestbook:1.0.0")) == 2
    assert app["status"]["sync"]["revision"] == bad_again and app["status"]["sync"]["status"] == "OutOfSync"
    assert "automated" not in (app["spec"].get("syncPolicy") or {}), "a rollback turns automated sync off"
    """),
    md("""
    ## 4. Make Git right again

    A rollback by id is a stopgap. Fix Git, then hand control back to the agent.
    """),
    live("""
    fixed_again = lab.revert(bad_again)
    lab.apps.set_policy("guestbook", automated=True, prune=True)
    app = lab.wait_for(
        "guestbook",
        lambda a: a["status"]["sync"].get("revision") == fixed_again and a["status"]["sync"]["status"] == "Synced"
        and a["status"]["health"]["status"] == "Healthy",
        what="automated sync to deploy the fixed head of main", timeout=60)
    """),
    md("**Self-check.** Synced, Healthy, automated — and Git says what runs."),
    check("""
    assert app["spec"]["syncPolicy"]["automated"] is not None
    assert app["status"]["sync"]["revision"] == lab.workcopy.head
    assert lab.read("apps/guestbook/deployment.yaml") == original
    """),
    md("Next: **06 · Pull vs push security** — what the agent can and cannot do."),
]

# ------------------------------------------------------------------------------------------------
CH06 = [
    md("""
    # 06 · Pull vs push: what the agent can and cannot do

    In the pull model the credentials that change the cluster belong to the agent. So the
    security question is precise: *what exactly may the agent do?* Kubernetes answers it for
    any identity with `kubectl auth can-i`.
    """),
    code(CONNECT),
    live("""
    app = lab.reset_sample()  # catch-up: pristine sample, Synced and Healthy
    AGENT = "system:serviceaccount:gitops-lab:gitops-lab-agent"
    """),
    md("""
    ## 1. Ask the API server: `kubectl auth can-i`

    `--as` impersonates the agent's ServiceAccount (you may: the lab's kubeconfig is an
    administrator's), and the API server evaluates its RBAC rules — the same check it makes
    when the agent itself calls.
    """),
    live("""
    !kubectl auth can-i patch deployments -n guestbook --as={AGENT}
    !kubectl auth can-i get secrets -n guestbook --as={AGENT}
    """),
    md("""
    Now the whole matrix — verbs × resources — as a table (each cell is one `kubectl auth can-i`):
    """),
    live("""
    from concurrent.futures import ThreadPoolExecutor
    from html import escape

    from IPython.display import HTML

    VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
    RESOURCES = [  # (label, kubectl arguments)
        ("deployments · guestbook", ["deployments.apps", "-n", "guestbook"]),
        ("configmaps · guestbook", ["configmaps", "-n", "guestbook"]),
        ("services · guestbook", ["services", "-n", "guestbook"]),
        ("namespaces", ["namespaces"]),
        ("pods · guestbook", ["pods", "-n", "guestbook"]),
        ("pods/exec · guestbook", ["pods", "--subresource=exec", "-n", "guestbook"]),
        ("secrets · guestbook", ["secrets", "-n", "guestbook"]),
        ("roles · guestbook", ["roles.rbac.authorization.k8s.io", "-n", "guestbook"]),
        ("clusterrolebindings", ["clusterrolebindings.rbac.authorization.k8s.io"]),
        ("nodes", ["nodes"]),
        ("applications · gitops-lab", ["applications.gitopslab.io", "-n", "gitops-lab"]),
        ("applications/status · gitops-lab", ["applications.gitopslab.io", "--subresource=status", "-n", "gitops-lab"]),
        ("events · gitops-lab", ["events", "-n", "gitops-lab"]),
    ]


    def can_i(verb: str, args: list[str]) -> bool:
        out = lab.kubectl("auth", "can-i", verb, *args, f"--as={AGENT}", check=False)
        return out.strip().splitlines()[0] == "yes"


    with ThreadPoolExecutor(8) as pool:
        futures = {(label, verb): pool.submit(can_i, verb, args)
                   for label, args in RESOURCES for verb in VERBS}
        matrix = {key: future.result() for key, future in futures.items()}

    YES = '<td style="background:#d8f5ea;color:#0b7a55;text-align:center">✔</td>'
    NO = '<td style="background:#fdecee;color:#a4272f;text-align:center">✘</td>'
    head = "".join(f"<th>{v}</th>" for v in VERBS)
    body = "".join(f"<tr><td><b>{escape(label)}</b></td>"
                   + "".join(YES if matrix[label, v] else NO for v in VERBS) + "</tr>"
                   for label, _ in RESOURCES)
    HTML(f"<table><tr><th>{escape(AGENT)} may…</th>{head}</tr>{body}</table>")
    """),
    md("""
    Read it row by row: full control of what it deploys; read-only on pods (health); its own
    Applications it may read and update (status, clearing `operation`) but not create or
    delete — people do that; no Secrets, no RBAC (so it can never grant itself more), no exec,
    no nodes.

    **Self-check.** The rows that matter for security:
    """),
    check("""
    assert matrix["deployments · guestbook", "patch"] and matrix["deployments · guestbook", "delete"]
    assert not any(matrix["secrets · guestbook", v] for v in VERBS), "no Secrets"
    assert not matrix["pods/exec · guestbook", "create"], "no exec into pods"
    assert not matrix["roles · guestbook", "create"] and not matrix["clusterrolebindings", "create"], "no RBAC"
    assert not matrix["applications · gitops-lab", "delete"], "people own the Applications"
    """),
    md("""
    ## 2. RBAC in action: a commit that asks for too much

    Suppose someone commits a Role granting everything. Git accepts any file; the cluster does
    not: the agent acts as its ServiceAccount, which may not touch Roles, so the API server
    refuses and nothing is created. The app reports the refusal as a condition naming the
    file and the object. Git review plus RBAC: two independent gates.
    """),
    live("""
    role = '''\\
    apiVersion: rbac.authorization.k8s.io/v1
    kind: Role
    metadata:
      name: make-me-admin
    rules:
    - apiGroups: ["*"]
      resources: ["*"]
      verbs: ["*"]
    '''
    greedy = lab.commit({"apps/guestbook/role.yaml": role}, "Add a Role that grants everything")
    app = lab.wait_for(
        "guestbook",
        lambda a: any("make-me-admin" in c.get("message", "")
                      for c in a["status"].get("conditions") or []),
        what="the API server to refuse the agent the Role (a condition on the app)", timeout=30)
    for c in app["status"].get("conditions") or []:
        print(f"condition {c['type']}: {c['message']}")
    """),
    md("**Self-check.** The refusal is on the app, naming the file; no Role was created — the "
       "agent could not, whatever Git said; and nothing else was applied or pruned meanwhile."),
    check("""
    messages = " ".join(c["message"] for c in app["status"]["conditions"])
    assert "apps/guestbook/role.yaml" in messages and "forbidden" in messages
    assert lab.kubectl("get", "role", "make-me-admin", "-n", "guestbook", "--ignore-not-found") == ""
    """),
    live("""
    undo = lab.revert(greedy)  # take the Role out of Git again
    app = lab.wait_for(
        "guestbook",
        lambda a: a["status"]["sync"].get("revision") == undo and a["status"]["sync"]["status"] == "Synced"
        and not a["status"].get("conditions"),
        what="the app to be clean again at the revert", timeout=60)
    """),
    md("""
    ## 3. Where the credentials live — and what a push pipeline would need

    | | Pull (this lab) | Push (CI runs `kubectl apply`) |
    |---|---|---|
    | Who can write to the cluster | the agent's ServiceAccount | the CI job's kubeconfig |
    | Where that credential lives | in the cluster: on kind the projected ServiceAccount token in the agent's pod; on the local provider a short-lived token of that ServiceAccount (TokenRequest API), held by the agent process on your machine | in the CI system's secret store, handed to every pipeline run |
    | Network | the agent connects *out* to Git | CI must reach the API server *in* |
    | What Git / CI hold | no cluster credentials at all | a credential at least as strong as the matrix above — usually cluster-admin, because pipelines grow |
    | Drift | detected and reverted continuously | noticed at the next pipeline run, if ever |

    The one admin credential in this lab is *your* kubeconfig (you are the platform team). The
    config repo — everything a developer touches — holds none:
    """),
    live("""
    !git -C {lab.workcopy.path} grep -n -i -E "token|password|client-key|BEGIN .*PRIVATE" -- . || echo "no credentials in the config repo"
    print("the agent authenticates as:", AGENT)
    if lab.agent_mode == "in-cluster":
        print("with the token mounted in its pod:", ", ".join(lab.agent_info()["pods"]))
        print(lab.kubectl("-n", "gitops-lab", "get", "pods", "-l", "app.kubernetes.io/name=gitops-lab-agent",
                          "-o", "custom-columns=POD:.metadata.name,SERVICEACCOUNT:.spec.serviceAccountName"))
    else:
        print("with a TokenRequest token, held by the agent process", lab.agent_info()["pid"], "on this machine")
    """),
    md("**Self-check.** No file in the config repo contains a credential."),
    check("""
    import re
    import subprocess

    files = subprocess.run(["git", "-C", str(lab.workcopy.path), "ls-files"], capture_output=True,
                           text=True, check=True).stdout.split()
    pattern = re.compile(r"token|password|client-key|BEGIN .*PRIVATE", re.I)
    leaks = [f for f in files if pattern.search(lab.read(f))]
    assert not leaks, f"credentials in Git: {leaks}"
    """),
    md("Next: **07 · CI pushes, the cluster pulls** — image updates through Git."),
]

# ------------------------------------------------------------------------------------------------
CH07 = [
    md("""
    # 07 · CI pushes, the cluster pulls: image updates through Git

    So far a person committed every change. A new *image* comes from CI — yet in GitOps CI must
    not deploy it (that would make CI a pusher with cluster credentials again). Instead: CI only
    **pushes an image** to a registry; an operator **inside the cluster** notices the new tag and
    **writes it to Git**; the agent deploys that commit like any other. This chapter draws that
    pipeline, then lives it: pin the app to `1.0.0`, let CI push `1.1.0` and watch it arrive
    through Git, then push `2.0.0` and see why it is ignored.
    """),
    code(CONNECT),
    live("""
    # Catch-up: no ImagePolicy left from an earlier run, pristine sample, Synced and Healthy.
    lab.kubectl("-n", "gitops-lab", "delete", "imagepolicy", "guestbook", "--ignore-not-found")
    app = lab.reset_sample()
    import json
    import urllib.request

    registry = lab.registry  # host:port of the lab's registry (started on first use)
    print("the lab registry:", registry, "· provider:", lab.provider_kind, "· agent:", lab.agent_mode)
    """),
    md("""
    ## 1. The pull pipeline, drawn

    Follow the arrows: every one points *away* from the thing that holds the credentials.
    CI writes to the registry and nothing else — no Git write access, no kubeconfig. The image
    updater runs inside the agent (its pod on kind, its process on the local provider); it
    *reads* the registry (a push notification makes it look at once, a scan every `interval`
    catches anything missed) and *writes* one commit to Git. The agent *pulls* Git and applies
    — the only thing that ever changes a workload. Git's history records every image that ran.
    """),
    code("""
    from IPython.display import HTML


    def box(x, label, sub, colour):
        return (f'<rect x="{x}" y="40" width="130" height="56" rx="8" fill="{colour}" stroke="#34495e"/>'
                f'<text x="{x + 65}" y="64" text-anchor="middle" font-size="13" font-weight="bold">{label}</text>'
                f'<text x="{x + 65}" y="82" text-anchor="middle" font-size="10">{sub}</text>')


    def arrow(x1, label):  # from the box at x1 to the next one, 64 px to its right
        x1 += 130
        return (f'<line x1="{x1}" y1="68" x2="{x1 + 60}" y2="68" stroke="#34495e" stroke-width="2" marker-end="url(#head)"/>'
                f'<text x="{x1 + 32}" y="60" text-anchor="middle" font-size="10">{label}</text>')


    X = [10 + i * 194 for i in range(6)]  # CI, registry, updater, Git, agent, cluster
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1130 200" width="100%" style="max-width:1130px" font-family="sans-serif">'
        '<defs><marker id="head" markerWidth="8" markerHeight="8" refX="6" refY="4" orient="auto">'
        '<path d="M0,0 L8,4 L0,8 z" fill="#34495e"/></marker></defs>'
        + "".join(f'<rect x="{x - 8}" y="26" width="146" height="96" rx="10" fill="none" stroke="#0b7a55" stroke-dasharray="6 4"/>'
                  f'<text x="{x + 65}" y="138" text-anchor="middle" font-size="11" fill="#0b7a55">the agent process</text>'
                  for x in (X[2], X[4]))
        + '<text x="565" y="16" text-anchor="middle" font-size="11" fill="#0b7a55">dashed: the agent (its pod on kind), the only holder of credentials that change the cluster</text>'
        + box(X[0], "CI", "builds, pushes", "#fdecee") + arrow(X[0], "push 1.1.0")
        + box(X[1], "registry", "guestbook:1.0.0, 1.1.0…", "#eef3f7") + arrow(X[1], "reads tags")
        + box(X[2], "image updater", "ImagePolicy: semver", "#d8f5ea") + arrow(X[2], "commits tag")
        + box(X[3], "Git", "apps/guestbook", "#fff4d6") + arrow(X[3], "pulls")
        + box(X[4], "agent", "Application sync", "#d8f5ea") + arrow(X[4], "applies")
        + box(X[5], "cluster", "Deployment image", "#eef3f7")
        + f'<text x="{X[0] + 65}" y="118" text-anchor="middle" font-size="11" fill="#a4272f">no Git write access,</text>'
        + f'<text x="{X[0] + 65}" y="133" text-anchor="middle" font-size="11" fill="#a4272f">no kubeconfig</text>'
        + f'<path d="M{X[5] + 65},96 C{X[5] + 65},180 {X[1] + 65},180 {X[1] + 65},99" fill="none" stroke="#8fa4b1" stroke-dasharray="4 3" marker-end="url(#head)"/>'
        + '<text x="565" y="192" text-anchor="middle" font-size="10" fill="#6b7f8c">the node pulls the image the Deployment names (on kind; on the local provider no container runs)</text>'
        + "</svg>"
    )
    HTML(svg)
    """),
    md("""
    **Self-check.** The parts are here: the registry answers the OCI distribution API on
    127.0.0.1, and the cluster knows the `ImagePolicy` kind the updater watches.
    """),
    check("""
    with urllib.request.urlopen(f"http://{registry}/v2/", timeout=5) as resp:
        assert resp.status == 200, resp.status
    assert registry.startswith("127.0.0.1:"), registry
    assert lab.kubectl("get", "crd", "imagepolicies.gitopslab.io", "-o", "name").strip() == "customresourcedefinition.apiextensions.k8s.io/imagepolicies.gitopslab.io"
    """),
    md("""
    ## 2. Pin the app to an image in the registry, with a marker

    CI builds `1.0.0` and pushes it (`gitops-lab ci build 1.0.0` in a terminal). Then *you* make
    one commit: the Deployment runs `REGISTRY/guestbook:1.0.0`, and the line carries a
    **marker** — a YAML comment naming the ImagePolicy allowed to set it, as in Flux. The
    updater will touch that line and nothing else.
    """),
    live("""
    ref = lab.ci_build("1.0.0")  # CI: build the sample app at 1.0.0, push it; it never touches Git or the cluster
    print("CI pushed", ref)

    MARKER = '# {"$imagepolicy": "gitops-lab:guestbook"}'
    original = lab.read("apps/guestbook/deployment.yaml")
    pinned = original.replace("image: gitops-lab/guestbook:1.0.0", f"image: {registry}/guestbook:1.0.0 {MARKER}")
    assert pinned != original, "the sample's image line was not found"
    pin = lab.commit({"apps/guestbook/deployment.yaml": pinned}, "Run guestbook from the lab registry, marked for the image updater")
    !git -C {lab.workcopy.path} show --format='%h %an: %s' {pin}
    """),
    live("""
    app = lab.wait_for(
        "guestbook",
        lambda a: a["status"]["sync"].get("revision") == pin and a["status"]["sync"]["status"] == "Synced"
        and a["status"]["health"]["status"] == "Healthy",
        what=f"the agent to deploy {pin[:7]} and the new pods to be ready (on kind the node pulls the image first)",
        timeout=120)


    def deployment_image() -> str:
        return lab.kubectl("-n", "guestbook", "get", "deployment", "guestbook-ui",
                           "-o", "jsonpath={.spec.template.spec.containers[0].image}")


    print("the Deployment runs", deployment_image())
    """),
    md("**Self-check.** Git's commit is live: the Deployment names the registry's `1.0.0`."),
    check("""
    assert ref == f"{registry}/guestbook:1.0.0", ref
    assert app["status"]["sync"]["revision"] == pin == lab.workcopy.head
    assert deployment_image() == ref
    """),
    md("""
    ## 3. The ImagePolicy: which tags may be deployed

    An `ImagePolicy` names an image repository, a rule for choosing its latest tag — here the
    highest **semver** version in the range `>=1.0.0 <2.0.0` — and the Application whose
    markers it may update. Like the Application, it lives in the agent's namespace and is
    created by a person; the agent may only read it and write its status.
    """),
    code("""
    import yaml

    policy = lab.image_policy("guestbook", app="guestbook", semver=">=1.0.0 <2.0.0", interval="10s")
    print(yaml.safe_dump(policy, sort_keys=False))
    """),
    live("""
    before = lab.workcopy.head  # Git before the updater may write: the pin commit
    lab.apps.apply(policy)  # the same as `kubectl apply -f imagepolicy.yaml`


    def status() -> dict:
        return json.loads(lab.kubectl("-n", "gitops-lab", "get", "imagepolicy", "guestbook", "-o", "json")).get("status") or {}


    def registry_tags() -> list[str]:
        with urllib.request.urlopen(f"http://{registry}/v2/guestbook/tags/list", timeout=5) as resp:
            return sorted(json.load(resp)["tags"] or [])


    lab.wait_until(lambda: bool(status().get("latestTag")),
                   what="the updater's first scan of the registry (it starts when the policy appears)", timeout=30)
    !kubectl get imagepolicies -n gitops-lab
    """),
    md("""
    **Self-check.** The policy is Ready and chose the highest tag in its range among those in
    the registry — `1.0.0`, the only one so far (if you run this chapter a second time, the
    registry still holds the tags of the first run).
    """),
    check("""
    tags = registry_tags()
    in_range = [t for t in tags if t.startswith("1.")]
    assert status()["latestTag"] == max(in_range, key=lambda t: tuple(map(int, t.split(".")))), (tags, status())
    ready = [c for c in status()["conditions"] if c["type"] == "Ready"][0]
    assert ready["status"] == "True", ready
    """),
    md("""
    ## 4. CI pushes `1.1.0` → the updater commits → the agent rolls it out

    Now only CI acts. It pushes `1.1.0`; the registry notifies the agent; the updater sees a
    newer tag in range, rewrites the marked line and pushes **one commit**, authored
    `gitops-lab image updater`; then it refreshes the Application, which deploys that commit.
    Nobody ran `kubectl`, and CI held no credential for Git or the cluster.
    """),
    live("""
    import time

    UPDATER = "gitops-lab image updater"


    def updater_commits() -> list:
        lab.workcopy.pull()  # fetch what the updater pushed
        return [c for c in lab.workcopy.repo.iter_commits(f"{before}..HEAD") if c.author.name == UPDATER]


    early = bool(updater_commits())  # only when this chapter ran before with the same registry
    if early:
        print("the registry already held 1.1.0 from an earlier run: the updater committed it as soon as the policy appeared")
    start = time.monotonic()
    lab.ci_build("1.1.0")
    lab.wait_until(lambda: len(updater_commits()) >= 1,
                   what="the image updater's commit in Git (the registry notifies it of the push)",
                   timeout=60, interval=1.0)
    if not early:
        print(f"CI push → commit in Git: {time.monotonic() - start:.1f} s")
    !git -C {lab.workcopy.path} log --format='%h %an: %s' -3
    !git -C {lab.workcopy.path} show --format= HEAD
    """),
    md("""
    The commit is in Git. Now the agent deploys it. On kind the node pulls `1.1.0` from the
    registry and the page answers with the new version. On the local provider the nodes are
    simulated: **no container runs** and nothing is pulled — what you can see is the
    Deployment's image and its pods (kwok's), which is what the agent changed.
    """),
    live("""
    import re

    from gitops_lab.lab import LabError

    update = updater_commits()[0].hexsha
    app = lab.wait_for(
        "guestbook",
        lambda a: a["status"]["sync"].get("revision") == update and a["status"]["sync"]["status"] == "Synced"
        and a["status"]["health"]["status"] == "Healthy",
        what=f"the agent to deploy the updater's commit {update[:7]} and the pods of 1.1.0 to be ready",
        timeout=120)
    print("the Deployment runs", deployment_image())


    def page_version() -> str:
        try:
            found = re.search(r'id="version">([^<]+)<', lab.fetch_app())
        except LabError:  # e.g. right after a rollout, a request that reached a pod going away
            return ""
        return found.group(1) if found else ""


    if lab.app_url:
        lab.wait_until(lambda: page_version() == "1.1.0", what="the page to be served by 1.1.0", timeout=60)
        print("the page at", lab.app_url, "is served by version", page_version())
    else:
        print("local provider: no container runs, so no page; the pods name", deployment_image())
    print(f"CI push → rolled out: {time.monotonic() - start:.1f} s")
    """),
    md("""
    **Self-check.** Exactly one updater commit; it changed only the marked line (every other
    byte of the file is as you wrote it); the Deployment and its pods run `1.1.0`; the
    policy's status records the tag and the commit.
    """),
    check("""
    commits = updater_commits()
    assert len(commits) == 1, [c.summary for c in commits]
    assert list(commits[0].stats.files) == ["apps/guestbook/deployment.yaml"], commits[0].stats.files
    assert lab.read("apps/guestbook/deployment.yaml") == pinned.replace(f"{registry}/guestbook:1.0.0", f"{registry}/guestbook:1.1.0")
    assert deployment_image() == f"{registry}/guestbook:1.1.0"
    pods = json.loads(lab.kubectl("-n", "guestbook", "get", "pods", "-o", "json"))["items"]
    live_pods = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert live_pods and {p["spec"]["containers"][0]["image"] for p in live_pods} == {f"{registry}/guestbook:1.1.0"}
    assert status()["latestTag"] == "1.1.0" and status()["lastUpdate"]["revision"] == update, status()
    if lab.app_url:
        assert page_version() == "1.1.0"
    """),
    md("""
    ## 5. CI pushes `2.0.0` → ignored, on purpose

    In semver a new *major* version announces breaking changes. The range `>=1.0.0 <2.0.0`
    says: take fixes and features automatically, never a major upgrade. So `2.0.0` lands in the
    registry, the updater scans it — and chooses `1.1.0` again: no commit, nothing deployed.
    Taking `2.x` is a person's decision: change the policy's range, or the marked line in Git.
    """),
    live("""
    head = lab.workcopy.head
    lab.ci_build("2.0.0")
    lab.wait_until(lambda: status().get("observedTags", 0) >= len(registry_tags()),
                   what="the updater to scan the registry after the push (it sees every tag)", timeout=60)
    print("tags in the registry:", ", ".join(registry_tags()))
    print("the policy's latest tag:", status()["latestTag"])
    print([c["message"] for c in status()["conditions"] if c["type"] == "Ready"][0])
    !kubectl get imagepolicies -n gitops-lab
    """),
    md("**Self-check.** `2.0.0` is in the registry, seen by the updater, and not chosen: no new commit; `1.1.0` still runs."),
    check("""
    assert "2.0.0" in registry_tags() and status()["observedTags"] == len(registry_tags())
    assert status()["latestTag"] == "1.1.0", status()
    assert len(updater_commits()) == 1 and lab.workcopy.head == head, "no commit for a tag out of range"
    assert deployment_image() == f"{registry}/guestbook:1.1.0"
    """),
    md("""
    ## 6. The image timeline: registry, Git, cluster at a glance

    `ImageTimeline` reads the three places the pipeline connects: the **tags** in the registry
    (oldest version first; faded = outside the policy's range), the one the **policy** chose,
    the one **Git** holds (the marked line) and the one the pods **run**. When all three marks
    sit on the same tag, the pipeline has settled. Press *Reload* after the next push.

    The widget reads Git from *your machine*. On kind the Application's `repoURL` is the Git
    server's name inside the cluster (`git-server.gitops-lab`), which only pods resolve; the
    widget reads the same repository through 127.0.0.1 (`lab.push_url`, where your commits go).
    """),
    live("""
    from gitops_lab.widgets import ImageTimeline

    timeline = ImageTimeline(lab.kube, "guestbook")
    timeline
    """),
    md("**Self-check.** The policy, Git and the pods agree on `1.1.0`; `2.0.0` is there, out of range."),
    check("""
    entries = {e["tag"]: e for e in timeline.entries}
    assert not timeline.message.value, timeline.message.value  # it could read the registry, Git and the pods
    assert {"1.0.0", "1.1.0", "2.0.0"} <= set(entries), list(entries)
    assert entries["1.1.0"]["latest"] and timeline.in_git == {"1.1.0"} and timeline.running == {"1.1.0"}, (timeline.in_git, timeline.running)
    assert entries["2.0.0"]["in_range"] is False and not entries["2.0.0"]["latest"]
    """),
    md("""
    ## 7. Clean up

    Delete the ImagePolicy (the updater stops writing to Git) and put the pristine sample back,
    so the next chapter starts clean. The tags stay in the registry: run this chapter again and
    the updater commits `1.1.0` as soon as the policy appears.
    """),
    live("""
    lab.kubectl("-n", "gitops-lab", "delete", "imagepolicy", "guestbook")
    app = lab.reset_sample()
    print("the Deployment runs", deployment_image())
    """),
    md("**Self-check.** No ImagePolicy left; Git and the cluster are back to the sample."),
    check("""
    assert lab.image_policies() == []
    assert lab.read("apps/guestbook/deployment.yaml") == original
    assert deployment_image() == "gitops-lab/guestbook:1.0.0"
    assert app["status"]["sync"]["revision"] == lab.workcopy.head
    """),
    md("Next: **99 · Cleanup** — when you are done."),
]

# ------------------------------------------------------------------------------------------------
CH99 = [
    md("""
    # 99 · Cleanup

    Stop everything the lab started: the app, the agent, the Git server and the cluster. You
    can start over any time — every chapter's first cell brings the lab back in seconds.
    """),
    code(CONNECT),
    md("""
    ## 1. Remove the app

    Deleting the Application stops the agent from managing it; deleting its namespace removes
    what it deployed. (Argo CD does both in one step when the Application has its
    `resources-finalizer`.)
    """),
    live("""
    lab.delete_app("guestbook")
    !gitops-lab app list
    """),
    md("**Self-check.** No Application named guestbook is left."),
    check("""
    assert "guestbook" not in [a["metadata"]["name"] for a in lab.apps.list()]
    """),
    md("""
    ## 2. Stop the agent

    On kind the agent is a Deployment: stopping it scales it to 0 replicas (its pod goes). On
    the local provider it is a process on your machine: it gets SIGTERM and exits cleanly.
    """),
    live("""
    agent = lab.agent_info() or {}
    lab.stop_agent()
    if lab.agent_mode == "in-cluster":
        print("scaled Deployment gitops-lab-agent to 0; its pod(s) are gone:", ", ".join(agent.get("pods", [])))
    else:
        print("stopped agent pid", agent.get("pid"))
    """),
    md("**Self-check.** The agent's health endpoint is gone — and on kind, so is its pod."),
    check("""
    assert lab.agent_info() is None
    if lab.agent_mode == "in-cluster":
        assert lab.kubectl("-n", "gitops-lab", "get", "pods", "-l", "app.kubernetes.io/name=gitops-lab-agent",
                           "-o", "name") == "", "the agent's pod should be gone"
    """),
    md("""
    ## 3. Tear the lab down

    `lab.cleanup()` stops the Git server and the cluster and deletes their state (in a terminal:
    `gitops-lab cluster down`). On kind that deletes the node's Docker container — and with it
    every pod: the app, the Git server, the agent. On the local provider it stops the
    control-plane processes and the `git daemon`. The config repo goes with it: the next
    `Lab.connect()` starts from a fresh sample.
    """),
    live("""
    import socket
    import subprocess

    name, provider = lab.provider.name, lab.provider_kind
    git_port = None if provider == "kind" else lab.git.port  # kind: the Git server is a pod
    lab.cleanup()
    !gitops-lab cluster status --name {name}
    """),
    md("**Self-check.** Nothing answers any more: not the cluster, not the Git server — and on kind no node container is left."),
    check("""
    def answers(port: int) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", port)) == 0


    status = subprocess.run(["gitops-lab", "cluster", "status", "--name", name], capture_output=True)
    assert status.returncode == 3, "the cluster should be down (status exits 3)"
    if provider == "kind":
        containers = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True,
                                    text=True, check=True).stdout.split()
        assert f"{name}-control-plane" not in containers, "the kind node container should be gone"
    else:
        assert not answers(git_port), "the Git server should be stopped"
    """),
    md("Thank you for doing GitOps with us. Back to **00 · Welcome** to start again."),
]

CHAPTERS = {
    "00-welcome": CH00,
    "01-cluster": CH01,
    "02-config-repo-and-agent": CH02,
    "03-deploy": CH03,
    "04-drift-and-self-heal": CH04,
    "05-rollback": CH05,
    "06-pull-vs-push-security": CH06,
    "07-ci-pushes-cluster-pulls": CH07,
    "99-cleanup": CH99,
}


def build(name: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                       "name": "python3"},
        "language_info": {"name": "python"},
    }
    for i, (kind, text) in enumerate(cells):
        cell = new_markdown_cell(text) if kind == "md" else new_code_cell(text)
        cell["id"] = f"{name[:2]}-{i:02d}"  # stable ids: rebuilding gives the same file
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def main(argv: list[str]) -> int:
    only = set(argv)
    for name, cells in CHAPTERS.items():
        if only and name not in only and name[:2] not in only:
            continue
        path = HERE / f"{name}.ipynb"
        nbformat.write(build(name, cells), path)
        print(f"wrote {path.relative_to(HERE.parent)} ({len(cells)} cells)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
