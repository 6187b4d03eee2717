# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 02 · notebooks/02-config-repo-and-agent.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check  # noqa: F401

NAME = "02-config-repo-and-agent"

CELLS = [
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
    md("""
    ### ✏️ Your turn: scale the app — through Git

    Git asks for 2 replicas of `guestbook-ui`. Make it **3**, the GitOps way: change
    `spec.replicas` in `apps/guestbook/deployment.yaml`, commit and push. Do not touch the
    cluster — the agent will. Either edit the cell below (`lab.commit` writes the file in your
    clone, commits and pushes), or do it in a terminal in your clone (`lab.workcopy.path`):
    edit the file, then `git commit -am "Scale to 3"` and `git push`.
    """),
    starter("""
    text = lab.read("apps/guestbook/deployment.yaml")
    # change the replicas line in `text`, then commit and push it, e.g.:
    # lab.commit({"apps/guestbook/deployment.yaml": text.replace(..., ...)}, "Scale guestbook-ui to 3")
    """),
    solution("""
    text = lab.read("apps/guestbook/deployment.yaml")
    lab.commit({"apps/guestbook/deployment.yaml": text.replace("replicas: 2", "replicas: 3")},
               "Scale guestbook-ui to 3")
    """),
    task_check("02-scale"),
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

