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
from gitops_lab.lab import Lab

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

    In this workbench you do GitOps for real: a Kubernetes control plane runs on your machine, a
    Git server holds the desired state, and a small **pull-based agent** (shaped after Argo CD)
    makes the cluster equal Git — and keeps it that way.

    | Chapter | You will |
    |---|---|
    | 00 · Welcome | meet the ideas and check your machine |
    | 01 · Cluster | see the cluster you deploy to, and what is simulated |
    | 02 · Config repo and agent | look at the Git repo, its history, and what the agent may do |
    | 03 · Deploy | create an Application, sync it, roll out a change from Git |
    | 04 · Drift and self-heal | change the cluster behind Git's back and watch the agent react |
    | 05 · Rollback | ship a broken release and roll it back two ways |
    | 06 · Pull vs push security | measure what the agent can and cannot do |
    | 99 · Cleanup | stop everything |

    **How to use a chapter:** run the cells top to bottom (Shift-Enter). Every chapter starts
    with the cell below: `Lab.connect()` brings the lab up if it is not, so chapters run alone
    and in any order. Cells marked *self-check* contain `assert`s: if one fails, its message
    says what to look at.
    """),
    code(CONNECT),
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

    Watch the pull happen: the agent's last reconcile started with a `fetch` from the lab's Git
    server.
    """),
    live("""
    from gitops_lab.widgets import ReconcileTrace

    ReconcileTrace(lab.apps, "guestbook")
    """),
    md("**Self-check.** Who opened the connection to Git? The agent did: its first step is a fetch."),
    check("""
    steps = {s["name"]: s for s in lab.app("guestbook")["status"]["lastReconcile"]["steps"]}
    assert steps["fetch"]["ok"], steps["fetch"]
    assert lab.repo_url in steps["fetch"]["detail"], "the agent should fetch from the lab's repo"
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

    GitOps needs a cluster to deploy to. `Lab.connect()` ran the equivalent of
    `gitops-lab cluster up`; this chapter looks at what it brought up.
    """),
    code(CONNECT),
    md("""
    ## 1. Kind where Docker answers, the local control plane here

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
    """),
    live("""
    print("provider:", lab.provider.kind, "· cluster:", lab.provider.name)
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
    md("**Self-check.** Every node is Ready — and on the local provider every node is a kwok node."),
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
    """),
    md("""
    ## 3. Pods that are Running — and, on the local provider, run nothing

    Create a Deployment by hand (just this once: from chapter 03 on, only Git changes the
    cluster). The controller-manager creates a ReplicaSet and two Pods, the scheduler puts them
    on the node, and kwok (or the kubelet on kind) reports them Running.
    """),
    live("""
    # catch-up: remove what an earlier run of this chapter left behind
    lab.kubectl("delete", "deployment", "hello", "-n", "default", "--ignore-not-found",
                "--cascade=foreground")
    print(lab.kubectl("create", "deployment", "hello", "--image=nginx:1.27-alpine",
                      "--replicas=2", "-n", "default"))


    def hello_ready() -> bool:
        return lab.kubectl("get", "deployment", "hello", "-n", "default",
                           "-o", "jsonpath={.status.readyReplicas}") == "2"


    lab.wait_until(hello_ready, timeout=60,
                   what="2 ready hello pods (scheduled, then reported Running by kwok or the kubelet)")
    ClusterView(lab.kube, namespace="default")
    """),
    md("""
    Now ask for the logs of one of them. On kind you would see nginx's log. On the local
    provider the API server asks the node's kubelet on port 10250 — and there is no kubelet:
    """),
    live("""
    pod = lab.kubectl("get", "pods", "-n", "default", "-l", "app=hello",
                      "-o", "jsonpath={.items[0].metadata.name}")
    logs = lab.kubectl("logs", "-n", "default", pod, check=False)
    print(logs)
    """),
    md("**Self-check.** Two pods Running; on the local provider, no logs to read."),
    check("""
    pods = json.loads(lab.kubectl("get", "pods", "-n", "default", "-l", "app=hello", "-o", "json"))["items"]
    assert len(pods) == 2 and all(p["status"]["phase"] == "Running" for p in pods), \\
        [p["status"]["phase"] for p in pods]
    if lab.provider.kind == "local":
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

    The lab runs its own Git server (`git daemon` on 127.0.0.1) with one repo, `lab`. Each
    directory under `apps/` is one application's desired state, as plain Kubernetes YAML.
    `lab.workcopy` is your clone of it — your laptop, in GitOps terms.
    """),
    live("""
    print("config repo:", lab.repo_url)
    print("your clone: ", lab.workcopy.path)
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

    The agent itself runs in the cluster as a Deployment on kind (`--mode in-cluster`); on the
    local provider, where no container runs, `gitops-lab agent run` runs it as a process on
    your machine that **authenticates as that ServiceAccount** (a token from the TokenRequest
    API), so RBAC limits it exactly as it would in a cluster.

    `Lab.connect()` did all of this already. Installing again is harmless: every object is
    applied with server-side apply, which is idempotent.
    """),
    live("""
    !gitops-lab agent install
    !kubectl get crd applications.gitopslab.io
    !kubectl get serviceaccount,role,rolebinding -n gitops-lab
    """),
    live("""
    info = lab.agent_info()
    print("agent pid", info["pid"], "serving", info["url"], "(/healthz, /metrics)")
    print(lab.agent_log(5))
    """),
    md("**Self-check.** The agent answers its health endpoint and its ServiceAccount exists."),
    check("""
    import urllib.request

    with urllib.request.urlopen(lab.agent_url + "/healthz", timeout=5) as resp:
        assert resp.status == 200
    assert "gitops-lab-agent" in lab.kubectl("get", "serviceaccount", "-n", "gitops-lab")
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
    then switch on *automated* sync and ship a change by committing to Git.
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
    ## 3. Automated sync: a commit is a deployment

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
    md("""
    **Self-check.** The commit is live, and the cluster runs three replicas.

    *Try it yourself afterwards:* change `GREETING` in `apps/guestbook/configmap.yaml`. The
    ConfigMap changes within a second — but the pods do not restart, because environment from
    a ConfigMap is read when a container starts. (That is why Kustomize's `configMapGenerator`
    puts a hash of the content into the name.)
    """),
    check("""
    assert app["status"]["sync"]["revision"] == sha
    assert ready_replicas() == "3"
    """),
    md("""
    ## 4. What the agent did: one reconcile, step by step

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
    assert steps["fetch"]["state"] == "ok" and sha[:7] in steps["fetch"]["detail"], steps["fetch"]
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

    Git says 2 replicas. Scale to 5 with `kubectl`, as someone fighting a fire might:
    """),
    live("""
    print(lab.kubectl("scale", "deployment/guestbook-ui", "-n", "guestbook", "--replicas=5"))
    app = lab.wait_for("guestbook", lambda a: a["status"]["sync"]["status"] == "OutOfSync",
                       what="the agent to see the change (it watches the objects it deployed)",
                       timeout=30)
    lab.wait_until(lambda: any(e["metadata"]["name"] not in seen
                               for e in lab.events("guestbook", "DriftDetected")),
                   what="the agent's DriftDetected event", timeout=30)
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
    """),
    md("""
    ## 2. What exactly differs: the diff

    The diff compares what Git would produce (a server-side-apply dry run, so defaults the API
    server fills in are never drift) with the live object. `-` is the cluster, `+` is Git.
    `gitops-lab app diff guestbook` prints the same in a terminal.
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
    md("**Self-check.** Back to what Git says."),
    check("""
    assert lab.kubectl("get", "deployment", "guestbook-ui", "-n", "guestbook",
                       "-o", "jsonpath={.spec.replicas}") == "2"
    """),
    md("""
    ## 4. Self-heal on: drift is reverted within a second

    With `selfHeal: true` the agent re-applies Git as soon as it sees drift. Switch it on (the
    **Self-heal** box in the dashboard does the same) and change the image by hand — the
    non-interactive form of `kubectl edit`:
    """),
    live("""
    import yaml

    lab.apps.set_policy("guestbook", self_heal=True)
    lab.wait_for("guestbook", lambda a: a["spec"]["syncPolicy"]["automated"]["selfHeal"],
                 what="the new policy", timeout=10)
    git_image = yaml.safe_load(lab.read("apps/guestbook/deployment.yaml"))["spec"]["template"]["spec"]["containers"][0]["image"]
    print(lab.kubectl("set", "image", "deployment/guestbook-ui", "-n", "guestbook", "web=nginx:1.26-alpine"))


    def live_image() -> str:
        return lab.kubectl("get", "deployment", "guestbook-ui", "-n", "guestbook",
                           "-o", "jsonpath={.spec.template.spec.containers[0].image}")


    lab.wait_until(lambda: live_image() == git_image, timeout=30,
                   what="the agent to put Git's image back (self-heal)")
    lab.wait_until(lambda: any(e["metadata"]["name"] not in seen
                               for e in lab.events("guestbook", "SelfHealed")),
                   what="the agent's SelfHealed event", timeout=30)
    lab.dashboard("guestbook")
    """),
    md("**Self-check.** The image is Git's again, and the agent said so in a `SelfHealed` event."),
    check("""
    assert live_image() == git_image
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
    ## 1. A bad release: an image that cannot be pulled

    Commit an image tag that does not exist. The agent syncs it like any other commit — the
    manifest is valid — and the Deployment starts a new ReplicaSet whose pods cannot pull
    their image. The old pods keep serving (a rolling update never takes them all down), and
    after `progressDeadlineSeconds` (20 s in this sample; Kubernetes' default is 10 minutes) the
    Deployment reports that its rollout failed: the app turns **Degraded**.

    *How is the failed pull simulated?* On kind the pull really fails. On the local provider no
    image is ever pulled; instead a kwok rule in `gitops_lab/cluster/kwok-stages.yaml` gives
    every pod whose image ends in `:does-not-exist` the status a kubelet would report:
    `Pending`, container waiting with reason `ImagePullBackOff`. Everything above that — the
    Deployment's progress deadline, the health check — is real Kubernetes.
    """),
    live("""
    bad = lab.commit({"apps/guestbook/deployment.yaml":
                      original.replace("image: nginx:1.27-alpine", "image: nginx:does-not-exist")},
                     "Release guestbook-ui with a broken image")
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
    """),
    md("**Self-check.** The bad commit is live — Synced! — and unhealthy: Synced says nothing about working."),
    check("""
    import json

    assert app["status"]["sync"]["revision"] == bad and app["status"]["sync"]["status"] == "Synced"
    assert app["status"]["health"]["status"] == "Degraded"
    pods = json.loads(lab.kubectl("get", "pods", "-n", "guestbook", "-o", "json"))["items"]
    reasons = {(c.get("state", {}).get("waiting") or {}).get("reason")
               for p in pods for c in p["status"].get("containerStatuses", [])}
    assert "ImagePullBackOff" in reasons, reasons
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
                            original.replace("image: nginx:1.27-alpine", "image: nginx:does-not-exist")},
                           "Release the broken image again")
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

    **Self-check.** The revert's revision is deployed again; Git's head is still the bad commit;
    automated sync is off.
    """),
    check("""
    assert app["status"]["history"][-1]["revision"] == fix
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
    | Where that credential lives | in the cluster (a projected token in the agent's pod; here a short-lived token from the TokenRequest API) | in the CI system's secret store, handed to every pipeline run |
    | Network | the agent connects *out* to Git | CI must reach the API server *in* |
    | What Git / CI hold | no cluster credentials at all | a credential at least as strong as the matrix above — usually cluster-admin, because pipelines grow |
    | Drift | detected and reverted continuously | noticed at the next pipeline run, if ever |

    The one admin credential in this lab is *your* kubeconfig (you are the platform team). The
    config repo — everything a developer touches — holds none:
    """),
    live("""
    !git -C {lab.workcopy.path} grep -n -i -E "token|password|client-key|BEGIN .*PRIVATE" -- . || echo "no credentials in the config repo"
    print("the agent authenticates as:", AGENT)
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
    md("## 2. Stop the agent"),
    live("""
    agent_pid = (lab.agent_info() or {}).get("pid")
    lab.stop_agent()
    print("stopped agent pid", agent_pid)
    """),
    md("**Self-check.** The agent's health endpoint is gone."),
    check("""
    assert lab.agent_info() is None
    """),
    md("""
    ## 3. Tear the lab down

    `lab.cleanup()` stops the Git server and the cluster and deletes their state (in a terminal:
    `gitops-lab cluster down`). The config repo goes with it: the next `Lab.connect()` starts
    from a fresh sample.
    """),
    live("""
    import socket

    name, git_port = lab.provider.name, lab.git.port
    lab.cleanup()
    !gitops-lab cluster status --name {name}
    """),
    md("**Self-check.** Nothing answers any more: not the cluster, not the Git server."),
    check("""
    import subprocess


    def answers(port: int) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", port)) == 0


    status = subprocess.run(["gitops-lab", "cluster", "status", "--name", name], capture_output=True)
    assert status.returncode == 3, "the cluster should be down (status exits 3)"
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
