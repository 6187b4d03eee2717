# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 02 · notebooks/02-config-repo-and-agent.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check  # noqa: F401

NAME = "02-config-repo-and-agent"

CELLS = [
    md("""
    # 02 · The config repo and the agent

    GitOps has two halves: a Git repo holding the desired state, and an agent making the
    cluster equal it.
    """),
    live("""
    from gitops_lab import Lab

    lab = Lab.connect()        # cluster, Git server, agent: started or found (seconds when warm)
    app = lab.reset_sample()   # catch-up: the pristine sample in Git, deployed and Synced
    """),
    md("""
    ## 1. The config repo

    The desired state lives in a [config repo](glossary.md#config-repo), apart from the
    app's source (CI builds images from that); it says which image, how many replicas, what
    config. Each directory under `apps/` is one app, as plain YAML. The lab's Git server
    (`git daemon`) holds one repo, `lab`: on kind a pod, reached by you through 127.0.0.1 and
    by the agent inside the cluster; on local a process on 127.0.0.1. `lab.workcopy` is your
    clone.
    """),
    live("""
    print("you push to:       ", lab.push_url)
    print("the agent pulls from", lab.repo_url)
    print("your clone:        ", lab.workcopy.path)
    !git -C {lab.workcopy.path} ls-files
    print(lab.read("apps/guestbook/deployment.yaml"))
    """),
    md("""
    ### ✏️ Your turn: scale the app — through Git

    Git asks for 2 replicas of `guestbook-ui`. Make it **3**: change `spec.replicas` in
    `apps/guestbook/deployment.yaml`, commit and push; the agent does the rest. Edit the cell
    below (`lab.commit` writes the file in your clone, commits and pushes), or in a terminal
    in your clone: edit, `git commit -am "Scale to 3"`, `git push`.
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

    The repo's history records every deployment: who, what, when, why. Commit a note — outside
    `apps/guestbook` — and watch the agent take it: the app tracks the branch `main`, and
    `main` moved.
    """),
    live("""
    from datetime import datetime, timezone

    note = f"Visited chapter 2 at {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC\\n"
    sha = lab.commit({"notes/chapter-02.md": note}, "Leave a note from chapter 2")
    !git -C {lab.workcopy.path} log --format='%h %an %ar  %s' -5
    app = lab.wait_for(
        "guestbook", lambda a: a["status"]["sync"].get("revision") == sha,
        what=f"the agent to notice {sha[:7]} (it polls Git every second)", timeout=30)
    """),
    md("**Self-check.** The new commit is the live revision."),
    check("""
    assert app["status"]["sync"]["revision"] == sha
    assert app["status"]["sync"]["status"] == "Synced"
    """),
    md("""
    ## 3. Installing the agent

    `gitops-lab agent install` creates the [CRD](glossary.md#crd) `applications.gitopslab.io`
    (the kind `Application`), the namespace `gitops-lab`, the ServiceAccount
    `gitops-lab-agent` and its RBAC. Where the agent runs (`lab.agent_mode`):

    * **kind** (`in-cluster`): a pod of the Deployment `gitops-lab-agent` with the
      ServiceAccount's token, like Argo CD's application controller (the Git server is a pod
      too).
    * **local**: a process on your machine authenticating as that ServiceAccount (a
      [TokenRequest](glossary.md#tokenrequest) token), so RBAC limits it as in a cluster;
      `gitops-lab` has no pods.

    `Lab.connect()` installed it; installing again is harmless (server-side apply is
    idempotent). Below:
    the objects, the pods, the agent's address and last log lines.
    """),
    live("""
    print("agent mode:", lab.agent_mode)
    !gitops-lab agent install --mode {lab.agent_mode} --cluster-name {lab.provider.name}
    !kubectl get crd applications.gitopslab.io
    !kubectl get serviceaccount,role,rolebinding -n gitops-lab
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

    Least privilege: full rights on the kinds it deploys (in any namespace), read-only on
    Pods and ReplicaSets (for health), its Applications and Events in `gitops-lab`. Not
    there: Secrets, RBAC (it cannot grant itself more), `pods/exec`, Nodes.
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
