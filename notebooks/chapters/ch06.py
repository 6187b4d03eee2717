# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 06 · notebooks/06-pull-vs-push-security.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check  # noqa: F401

NAME = "06-pull-vs-push-security"

CELLS = [
    md("""
    # 06 · Pull vs push: what the agent can and cannot do

    In the pull model only the agent holds credentials that change the cluster. So: *what
    exactly may it do?* — `kubectl auth can-i` answers. Then a live push pipeline beside it.
    """),
    code(CONNECT),
    live("""
    app = lab.reset_sample()  # catch-up: pristine sample, Synced and Healthy
    AGENT = "system:serviceaccount:gitops-lab:gitops-lab-agent"
    """),
    md("""
    ## 1. Ask the API server: `kubectl auth can-i`

    `--as` impersonates the agent's ServiceAccount (your kubeconfig is an admin's); the API
    server checks its [RBAC](glossary.md#rbac) as when the agent calls. Two questions, then the whole matrix (each
    table cell is one `can-i`):
    """),
    live("""
    !kubectl auth can-i patch deployments -n guestbook --as={AGENT}
    !kubectl auth can-i get secrets -n guestbook --as={AGENT}

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
    Full control of what it deploys; read-only pods (health); its Applications: read and
    update, never create or delete (people do); no Secrets, no RBAC (it cannot grant itself
    more), no exec, no nodes.

    **Self-check.** The rows that matter:
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

    Someone commits a Role granting everything. Git accepts it; the API server refuses the
    agent (no Roles for it), and the app shows a condition naming the file and object.

    Here `lab.commit` pushes straight to `main`, unreviewed. Teams protect `main` and merge
    only reviewed branches (chapter 08 does). RBAC is the second gate — it holds even when a
    review misses something.
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
    md("**Self-check.** The refusal names the file; no Role exists."),
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
    ## 3. A push pipeline, live

    `gitops_lab.course.push` plays a *push* CI job. Like many, it holds a copy of the admin
    [kubeconfig](glossary.md#kubeconfig) in CI's secret store, **outside the cluster**; each run clones the config repo
    and runs `kubectl apply`, into namespace `guestbook-push`.

    Another team's namespace, `payments`, holds a Secret (random value, never printed; only
    names are).
    """),
    live("""
    from gitops_lab.course import push

    ci = push.pipeline(lab)  # CI's workspace and secret store; the payments Secret
    print("CI's credential lives in its secret store, outside the cluster:", ci.kubeconfig)
    print(ci.run())  # one pipeline run: git clone, then kubectl apply with CI's kubeconfig
    !kubectl -n guestbook-push get deployments,configmaps,services
    """),
    md("""
    Can CI's credential, and the agent's, list another team's Secrets (`-o name`: names only)?
    """),
    live("""
    !kubectl --kubeconfig {ci.kubeconfig} auth can-i get secrets -n payments
    !kubectl --kubeconfig {ci.kubeconfig} get secrets -n payments -o name
    !kubectl auth can-i get secrets -n payments --as={AGENT}
    !kubectl get secrets -n payments -o name --as={AGENT}
    """),
    md("""
    Side by side: one app's push pipeline holds the keys to the whole cluster; the agent,
    which deploys every app, may write what it deploys and nothing more:
    """),
    live("""
    from html import escape

    from IPython.display import HTML

    MAY = '<td style="background:#fdecee;color:#a4272f;text-align:center">✔ may</td>'
    MAY_NOT = '<td style="background:#d8f5ea;color:#0b7a55;text-align:center">✘ may not</td>'
    reach = push.reach_table(lab, ci)
    HTML("<table><tr><th>can it …</th><th>CI's kubeconfig (push)</th><th>the agent (pull)</th></tr>"
         + "".join(f"<tr><td>{escape(r['what'])}</td>{MAY if r['ci'] else MAY_NOT}{MAY if r['agent'] else MAY_NOT}</tr>"
                   for r in reach) + "</table>")
    """),
    md("**Self-check.** CI's credential may do anything; the agent's may not."),
    check("""
    rows = {r["what"]: r for r in reach}
    assert lab.kubectl("-n", "guestbook-push", "get", "deployment", "guestbook-ui", "-o", "name").strip()
    assert rows["get secrets in payments (another team)"]["ci"] and not rows["get secrets in payments (another team)"]["agent"]
    assert rows["anything, anywhere (* *)"]["ci"] and not rows["anything, anywhere (* *)"]["agent"]
    assert not rows["create clusterrolebindings"]["agent"]
    """),
    md("""
    ### ✏️ Your turn: a push credential that can deploy, and no more

    If you must push, give the pipeline the least it needs: a ServiceAccount `ci-deployer` in
    `guestbook-push`, a **Role** there (namespaced: nothing elsewhere) allowing get, list,
    create, patch, update on `deployments` (group `apps`), `configmaps` and `services` (core
    group `""`), and a RoleBinding. No Secrets, no RBAC kinds, no `*`.

    The cell writes and applies `ci-deployer.yaml` with empty `rules:` — fill them in and run
    it again (or edit the file and `kubectl apply -f` it in a terminal).
    """),
    starter("""
    CI_DEPLOYER = '''\\
    apiVersion: v1
    kind: ServiceAccount
    metadata: {name: ci-deployer, namespace: guestbook-push}
    ---
    apiVersion: rbac.authorization.k8s.io/v1
    kind: Role
    metadata: {name: ci-deployer, namespace: guestbook-push}
    rules: []   # ✏️ replace [] with a rule for apps/deployments and one for core configmaps, services
    ---
    apiVersion: rbac.authorization.k8s.io/v1
    kind: RoleBinding
    metadata: {name: ci-deployer, namespace: guestbook-push}
    roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: ci-deployer}
    subjects:
    - {kind: ServiceAccount, name: ci-deployer, namespace: guestbook-push}
    '''
    path = ci.home / "ci-deployer.yaml"
    path.write_text(CI_DEPLOYER)
    !kubectl apply -f {path}
    !kubectl auth can-i patch deployments -n guestbook-push --as=system:serviceaccount:guestbook-push:ci-deployer
    """),
    solution("""
    RULES = '''rules:
    - apiGroups: ["apps"]
      resources: ["deployments"]
      verbs: ["get", "list", "create", "patch", "update"]
    - apiGroups: [""]
      resources: ["configmaps", "services"]
      verbs: ["get", "list", "create", "patch", "update"]'''
    head, tail = CI_DEPLOYER.split("rules: []")
    path.write_text(head + RULES + tail[tail.index("\\n"):])  # the rules instead of [] and its comment
    !kubectl apply -f {path}
    !kubectl auth can-i patch deployments -n guestbook-push --as=system:serviceaccount:guestbook-push:ci-deployer
    """),
    task_check("06-ci-deployer"),
    md("""
    The pipeline again, as `ci-deployer` (a 10-minute token, `kubectl create token`): the
    deploy works, `payments` is out of reach. That is the best push gets — the credential
    still lives outside the cluster; the agent needs none there.
    """),
    live("""
    tight = ci.service_account_kubeconfig()
    print(ci.run(kubeconfig=tight))
    !kubectl --kubeconfig {tight} get secrets -n payments -o name
    reach = push.reach_table(lab, ci, extra=tight)
    HTML("<table><tr><th>can it …</th><th>CI, admin kubeconfig</th><th>CI, ci-deployer</th><th>the agent</th></tr>"
         + "".join(f"<tr><td>{escape(r['what'])}</td>{MAY if r['ci'] else MAY_NOT}{MAY if r['tight'] else MAY_NOT}{MAY if r['agent'] else MAY_NOT}</tr>"
                   for r in reach) + "</table>")
    """),
    md("""
    ## 4. Where the credentials live

    | | Pull (this lab) | Push (CI runs `kubectl apply`) |
    |---|---|---|
    | Who can write to the cluster | the agent's ServiceAccount | the CI job's kubeconfig |
    | Where that credential lives | in the cluster: on kind the projected ServiceAccount token in the agent's pod; on the local provider a short-lived token of that ServiceAccount (TokenRequest API), held by the agent process on your machine | in the CI system's secret store, handed to every pipeline run |
    | Network | the agent connects *out* to Git | CI must reach the API server *in* |
    | What Git / CI hold | no cluster credentials at all | a credential for the cluster: often the admin's (section 3), at best a narrow ServiceAccount token like `ci-deployer`'s |
    | Drift | detected and reverted continuously | noticed at the next pipeline run, if ever |

    The lab's one admin credential is *your* kubeconfig (platform team). The config repo holds none:
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
    md("""
    ## 5. Clean up

    Remove the namespaces `guestbook-push` and `payments` and CI's copy of the kubeconfig.
    """),
    live("""
    push.cleanup(lab)
    !kubectl get namespaces
    """),
    md("**Self-check.** CI's kubeconfig is gone; both namespaces are going."),
    check("""
    assert not ci.kubeconfig.exists()
    phases = {ns: lab.kubectl("get", "namespace", ns, "--ignore-not-found", "-o", "jsonpath={.status.phase}")
              for ns in ("guestbook-push", "payments")}
    assert all(p in ("", "Terminating") for p in phases.values()), phases
    """),
    md("Next: **07 · CI pushes, the cluster pulls**."),
]

