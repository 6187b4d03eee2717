# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 06 · notebooks/06-pull-vs-push-security.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check  # noqa: F401

NAME = "06-pull-vs-push-security"

CELLS = [
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

