# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 06 · notebooks/06-pull-vs-push-security.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check  # noqa: F401

NAME = "06-pull-vs-push-security"

CELLS = [
    md("""
    # 06 · Pull vs push: what the agent can and cannot do

    In the pull model the credentials that change the cluster belong to the agent. So the
    security question is precise: *what exactly may the agent do?* Kubernetes answers it for
    any identity with `kubectl auth can-i`. Then a push pipeline runs beside it, live: where
    its credential lives, and what it can reach that the agent cannot.
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
    file and the object.

    Who would have stopped that commit before it reached Git? In this lab, nobody:
    `lab.commit` (like `git push origin main`) puts a commit straight on `main`, unreviewed.
    Teams protect `main` on their Git server and change it only by merging a reviewed branch
    (a pull or merge request) — chapter 08 does exactly that, with `git checkout -b`, a review
    of `git diff main...branch`, and `git merge`. RBAC is the second gate, and the one that
    holds even when a review misses something.
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
    ## 3. A push pipeline, live

    Now the other model, for real. `gitops_lab.course.push` plays a CI job of a *push*
    pipeline: like many, it was given a kubeconfig — a copy of the administrator's — kept in
    CI's secret store, **outside the cluster**. Each run checks out the config repo and runs
    `kubectl apply` against the API server. It deploys the guestbook into the namespace
    `guestbook-push` (with a ClusterIP Service: the NodePort belongs to the lab's guestbook).

    To show what such a credential reaches, the platform team (you) also keeps a Secret in
    another team's namespace, `payments`. Its value is random and never printed; only names
    are.
    """),
    live("""
    from gitops_lab.course import push

    ci = push.pipeline(lab)  # CI's workspace and secret store; the payments Secret
    print("CI's credential lives in its secret store, outside the cluster:", ci.kubeconfig)
    print(ci.run())  # one pipeline run: git clone, then kubectl apply with CI's kubeconfig
    !kubectl -n guestbook-push get deployments,configmaps,services
    """),
    md("""
    What can that credential do? Ask the API server, once as CI (`--kubeconfig` from its
    secret store) and once as the agent (`--as` its ServiceAccount). Reading the *names* of
    another team's Secrets is enough to show the difference — `-o name` prints no value:
    """),
    live("""
    !kubectl --kubeconfig {ci.kubeconfig} auth can-i get secrets -n payments
    !kubectl --kubeconfig {ci.kubeconfig} get secrets -n payments -o name
    !kubectl auth can-i get secrets -n payments --as={AGENT}
    !kubectl get secrets -n payments -o name --as={AGENT}
    """),
    md("""
    Side by side, each cell one `kubectl auth can-i`. The push pipeline of one app holds the
    keys to the whole cluster; the agent, which deploys every app, may write the kinds it
    deploys and nothing that reads secrets or grows its own rights:
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
    md("**Self-check.** The pipeline deployed; its credential reads another team's Secrets and may do anything; the agent's may not."),
    check("""
    rows = {r["what"]: r for r in reach}
    assert lab.kubectl("-n", "guestbook-push", "get", "deployment", "guestbook-ui", "-o", "name").strip()
    assert rows["get secrets in payments (another team)"]["ci"] and not rows["get secrets in payments (another team)"]["agent"]
    assert rows["anything, anywhere (* *)"]["ci"] and not rows["anything, anywhere (* *)"]["agent"]
    assert not rows["create clusterrolebindings"]["agent"]
    """),
    md("""
    ### ✏️ Your turn: a push credential that can deploy, and no more

    If you must push, give the pipeline its own identity with the least it needs. Make a
    ServiceAccount `ci-deployer` in `guestbook-push`, a **Role** there (a Role is namespaced:
    it grants nothing elsewhere) with what `kubectl apply` of the guestbook needs — get, list,
    create, patch, update on `deployments` (API group `apps`), `configmaps` and `services`
    (the core group, `""`) — and a RoleBinding from the Role to the ServiceAccount. No
    Secrets, no RBAC kinds, no `*`.

    The cell below writes `ci-deployer.yaml` and applies it; its Role has no rules yet. Fill in
    `rules:` and run it again. In a terminal: edit the file, `kubectl apply -f` it, and ask
    `kubectl auth can-i patch deployments -n guestbook-push
    --as=system:serviceaccount:guestbook-push:ci-deployer`.
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
    Now run the pipeline as that identity instead of the admin: a short-lived token for
    `ci-deployer` (TokenRequest, `kubectl create token`, ten minutes) in a kubeconfig of its
    own. The deploy still works; another team's Secrets are out of reach. (While the Role is
    not right, the API server refuses the apply too, naming the verb.) That is the best a push
    pipeline gets: the credential still lives outside the cluster, and the cluster trusts
    whoever holds it — while the agent needs no credential outside the cluster at all.
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
    md("""
    ## 5. Clean up

    Remove what the push demo made — the namespaces `guestbook-push` and `payments` (with the
    Secret, your ServiceAccount and its RBAC) and CI's copy of the kubeconfig — so the next
    chapter starts clean.
    """),
    live("""
    push.cleanup(lab)
    !kubectl get namespaces
    """),
    md("**Self-check.** CI's secret store is gone, and both namespaces are going."),
    check("""
    assert not ci.kubeconfig.exists()
    phases = {ns: lab.kubectl("get", "namespace", ns, "--ignore-not-found", "-o", "jsonpath={.status.phase}")
              for ns in ("guestbook-push", "payments")}
    assert all(p in ("", "Terminating") for p in phases.values()), phases
    """),
    md("Next: **07 · CI pushes, the cluster pulls** — image updates through Git."),
]

