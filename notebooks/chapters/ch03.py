# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 03 · notebooks/03-deploy.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check  # noqa: F401

NAME = "03-deploy"

CELLS = [
    md("""
    # 03 · Deploy: from Git to the cluster

    You create an [Application](glossary.md#application) with a *manual* sync policy, sync
    it, look at the app, then switch on *automated* sync and ship changes by committing to
    Git. At the end you write an Application yourself.
    """),
    live("""
    from gitops_lab import Lab
    from gitops_lab.course import ch03

    lab = Lab.connect()  # cluster, Git server, agent: started or found (seconds when warm)
    # Catch-up: this chapter starts with no Application. With the agent paused (so it re-applies
    # nothing meanwhile) the lab deletes guestbook and what it deployed, puts the pristine sample
    # back in Git, and adds apps/hello for the exercise at the end.
    head = ch03.catch_up(lab)
    !git -C {lab.workcopy.path} ls-files apps
    """),
    md("""
    ## 1. The Application: what, from where, to where

    The spec: a `source` (repo, revision, path), a `destination` (namespace), a `syncPolicy`.
    Without `syncPolicy.automated` the agent only *compares* and reports; you decide when to
    apply. Applications live in `gitops-lab`, the namespace the agent watches (Argo CD's:
    `argocd`). The manifest, written to a file and applied as at work:
    """),
    live("""
    guestbook_yaml = f\"\"\"\\
    apiVersion: gitopslab.io/v1alpha1
    kind: Application
    metadata:
      name: guestbook
      namespace: gitops-lab          # where the agent looks for Applications
    spec:
      source:
        repoURL: {lab.repo_url}   # where the desired state lives (as the agent reaches it)
        targetRevision: main         # which branch, tag or commit
        path: apps/guestbook         # which directory of the repo
      destination:
        namespace: guestbook         # where the objects go
      syncPolicy:                    # no `automated:` — compare and report, apply only when asked
        syncOptions: [CreateNamespace=true]
    \"\"\"
    guestbook_file = ch03.draft_path(lab, "guestbook-app.yaml")
    guestbook_file.write_text(guestbook_yaml)
    print(guestbook_yaml)
    !kubectl apply -f {guestbook_file}
    """),
    live("""
    app = lab.wait_for(
        "guestbook", lambda a: (a.get("status") or {}).get("sync", {}).get("status") == "OutOfSync",
        what="the agent's first comparison of Git with the cluster", timeout=30)
    dash = lab.dashboard("guestbook")
    dash
    """),
    md("""
    **OutOfSync**: Git has three objects the cluster lacks; **Missing**: they do not exist
    yet. The dashboard stays live — watch it as you go.

    **Self-check.** The app and every object in it are OutOfSync and Missing.
    """),
    check("""
    assert app["status"]["sync"]["status"] == "OutOfSync"
    assert app["status"]["health"]["status"] == "Missing"
    assert all(r["status"] == "OutOfSync" for r in app["status"]["resources"]), app["status"]["resources"]
    """),
    md("""
    ## 2. Sync: make the cluster equal Git

    A sync applies every object from Git ([server-side apply](glossary.md#server-side-apply),
    namespaces first), records the revision in the app's history, then watches health: the
    Deployment is *Progressing* until its pods are reported ready, then *Healthy*. Ask for one
    with the **Sync** button above, `lab.apps.sync("guestbook")`, or in a terminal (Argo CD:
    `argocd app sync`):
    """),
    live("""
    !gitops-lab app sync guestbook --timeout 60
    app = lab.wait_for(
        "guestbook",
        lambda a: a["status"]["sync"]["status"] == "Synced" and a["status"]["health"]["status"] == "Healthy",
        what="the Deployment's 2 pods to be reported ready", timeout=60)
    for r in app["status"]["operationState"]["syncResult"]["resources"]:
        print(f'{r["kind"]:<11} {r["name"]:<17} {r["action"]}')
    dash
    """),
    md("**Self-check.** The head of `main` is live, and the sync created all three objects."),
    check("""
    assert app["status"]["sync"]["revision"] == lab.workcopy.head
    assert app["status"]["operationState"]["phase"] == "Succeeded"
    assert {r["action"] for r in app["status"]["operationState"]["syncResult"]["resources"]} == {"created"}
    """),
    md("""
    ## 3. The app itself

    Synced and Healthy come from the API server. Does the app answer? On **kind** the pods run
    the sample app, and the Service `guestbook-ui` (a [NodePort](glossary.md#nodeport) that
    kind maps to 127.0.0.1: `lab.app_url`) leads to them: the cell shows the page. On
    **local** no container runs, so nothing answers; the ConfigMap with `GREETING` the app
    would read is in the cluster all the same.
    """),
    live("""
    if lab.app_url:
        lab.wait_until(lambda: 'id="greeting"' in ch03.page(lab), timeout=30,
                       what=f"the sample app's page at {lab.app_url} (the Service leads to a ready pod)")
        html = ch03.page(lab)
        print("fetched", lab.app_url)
        display(ch03.show_page(html))
    else:
        print(f"{lab.provider_kind} provider: no container runs, so no page to fetch. The ConfigMap the app would read:")
        !kubectl get configmap guestbook-config -n guestbook -o yaml
    """),
    md("**Self-check.** Git's greeting is in the ConfigMap (both) and on the page (kind)."),
    check("""
    from gitops_lab.lab import LabError

    assert ch03.greeting_in_cluster(lab) == "Hello from Git"
    if lab.app_url:
        assert '<h1 id="greeting">Hello from Git</h1>' in html and '<b id="version">1.0.0</b>' in html, html
    else:
        try:
            lab.fetch_app()
            raise AssertionError("nothing should answer on the local provider")
        except LabError as exc:
            print("as expected:", exc)
    """),
    md("""
    ## 4. Automated sync: a commit is a deployment

    With `syncPolicy.automated` the agent syncs whenever `main` moves. Add it to the manifest
    and apply again (or tick **Auto-sync** in the dashboard), then commit 2 → 3 replicas.
    """),
    live("""
    guestbook_yaml = guestbook_yaml.replace(
        "  syncPolicy:                    # no `automated:` — compare and report, apply only when asked\\n",
        "  syncPolicy:\\n    automated: {prune: true}     # sync by itself when Git changes\\n")
    guestbook_file.write_text(guestbook_yaml)
    !kubectl apply -f {guestbook_file}
    deployment = lab.read("apps/guestbook/deployment.yaml")
    sha = lab.commit({"apps/guestbook/deployment.yaml": deployment.replace("replicas: 2", "replicas: 3")},
                     "Scale guestbook-ui to 3 replicas")
    print("pushed", sha[:7], "— no kubectl, no sync button")
    app = lab.wait_for(
        "guestbook",
        lambda a: a["status"]["sync"].get("revision") == sha and a["status"]["sync"]["status"] == "Synced"
        and a["status"]["health"]["status"] == "Healthy",
        what=f"the agent to pull {sha[:7]} and roll it out", timeout=60)
    !kubectl rollout status deployment/guestbook-ui -n guestbook --timeout=30s
    dash
    """),
    md("**Self-check.** The commit is live, with three ready replicas."),
    check("""
    assert app["spec"]["syncPolicy"]["automated"]["prune"] is True
    assert app["status"]["sync"]["revision"] == sha
    ready = lab.kubectl("get", "deployment", "guestbook-ui", "-n", "guestbook", "-o", "jsonpath={.status.readyReplicas}")
    assert ready == "3", ready
    """),
    md("""
    ## 5. A config change reaches the running app

    Commit a new `GREETING` in `apps/guestbook/configmap.yaml`; the agent updates the ConfigMap
    in a second or two. The app reads it *mounted as files*, which the kubelet refreshes: on
    kind the page changes **without a pod restart** (5–15 s). On local it stops at the
    ConfigMap. (An environment variable would need a restart — hence
    [Kustomize](glossary.md#kustomize)'s `configMapGenerator`, whose hashed names roll pods.)
    """),
    live("""
    import time

    pods_before = ch03.pod_names(lab)
    configmap = lab.read("apps/guestbook/configmap.yaml")
    greeting = "Hello from my first commit"
    assert 'GREETING: "Hello from Git"' in configmap, configmap
    started = time.monotonic()
    greeting_sha = lab.commit({"apps/guestbook/configmap.yaml":
                               configmap.replace('GREETING: "Hello from Git"', f'GREETING: "{greeting}"')},
                              "Greet from my first commit")
    lab.wait_until(lambda: ch03.greeting_in_cluster(lab) == greeting, timeout=30,
                   what=f"the agent to apply {greeting_sha[:7]} to the ConfigMap")
    print(f"ConfigMap updated {time.monotonic() - started:.0f} s after the push")
    if lab.app_url:  # the Service spreads the requests over the 3 pods; each pod's kubelet refreshes its files
        html = ch03.every_pod_serves(lab, greeting, pods_before, timeout=60)
        display(ch03.show_page(html))
    """),
    md("**Self-check.** The new greeting is in the cluster (and on kind's page); no pod was restarted or replaced."),
    check("""
    import json

    assert ch03.greeting_in_cluster(lab) == greeting
    if lab.app_url:
        assert f'<h1 id="greeting">{greeting}</h1>' in html, html
    assert ch03.pod_names(lab) == pods_before, f"the pods should be the same: {pods_before} → {ch03.pod_names(lab)}"
    pods = json.loads(lab.kubectl("get", "pods", "-n", "guestbook", "-o", "json"))["items"]
    assert all(c.get("restartCount", 0) == 0 for p in pods for c in p["status"].get("containerStatuses", []))
    """),
    md("""
    ## 6. What the agent did: one reconcile, step by step

    A [reconcile](glossary.md#reconcile) is a fixed sequence: **fetch** (Git) → **render**
    (YAML to objects) → **diff** (a server-side-apply dry run against the live objects) →
    **apply** (only what differs) → **[prune](glossary.md#prune)** (objects that left Git) →
    **health**. It runs on every Git change, every watched cluster change, and on a timer.
    First the app in a terminal (Argo CD: `argocd app get`), then the last run's timings
    (once in sync, *apply* is skipped).
    """),
    live("""
    from gitops_lab.widgets import ReconcileTrace

    !gitops-lab app get guestbook
    trace = ReconcileTrace(lab.apps, "guestbook")
    trace
    """),
    md("**Self-check.** The last reconcile fetched your commit and found nothing left to do."),
    check("""
    steps = {s["name"]: s for s in trace.steps}
    assert steps["fetch"]["state"] == "ok" and greeting_sha[:7] in steps["fetch"]["detail"], steps["fetch"]
    assert steps["diff"]["state"] == "ok", steps["diff"]
    """),
    md("""
    ## 7. ✏️ Your turn: write an Application

    The lab put a second app into Git, `apps/hello`; no Application points at it yet. Write one:

    * name `hello`, in the namespace the agent watches;
    * source: the lab's repo (the cell fills in `lab.repo_url`), branch `main`, the
      directory the lab prepared; destination: the namespace `hello`;
    * **automated** sync with prune.

    Fill in the `???`, run the cell (it writes a file), then `!kubectl apply -f {hello_file}`.
    The check waits up to 90 s for Synced and Healthy, else says what is missing.
    """),
    live("""
    print(lab.read("apps/hello/deployment.yaml"))
    """),
    starter("""
    hello_yaml = \"\"\"\\
    apiVersion: gitopslab.io/v1alpha1
    kind: Application
    metadata:
      name: hello
      namespace: ???
    spec:
      source:
        repoURL: REPO_URL
        targetRevision: main
        path: ???
      destination:
        namespace: hello
      syncPolicy:
        syncOptions: [CreateNamespace=true]
        ???
    \"\"\".replace("REPO_URL", lab.repo_url)
    hello_file = ch03.draft_path(lab, "hello-app.yaml")
    hello_file.write_text(hello_yaml)
    print("wrote", hello_file)
    # then apply it:
    # !kubectl apply -f {hello_file}
    """),
    solution("""
    hello_yaml = \"\"\"\\
    apiVersion: gitopslab.io/v1alpha1
    kind: Application
    metadata:
      name: hello
      namespace: gitops-lab
    spec:
      source:
        repoURL: REPO_URL
        targetRevision: main
        path: apps/hello
      destination:
        namespace: hello
      syncPolicy:
        syncOptions: [CreateNamespace=true]
        automated:
          prune: true
    \"\"\".replace("REPO_URL", lab.repo_url)
    hello_file = ch03.draft_path(lab, "hello-app.yaml")
    hello_file.write_text(hello_yaml)
    !kubectl apply -f {hello_file}
    """),
    task_check("03-hello"),
    md("""
    **Tidy up.** Delete the Application: its objects stay. Without the resources
    [finalizer](glossary.md#finalizer) (Argo CD's `resources-finalizer.argocd.argoproj.io`)
    an Application is deleted alone, as in Argo CD's non-cascading delete. So delete the
    namespace too; the lab then removes `apps/hello` from Git.
    """),
    live("""
    !kubectl delete application hello -n gitops-lab --ignore-not-found
    !kubectl get deployment,configmap -n hello
    !kubectl delete namespace hello --ignore-not-found
    ch03.tidy_up(lab)  # no hello left anywhere, apps/hello out of Git
    """),
    md("Next: **04 · Drift and self-heal** — what happens when someone changes the cluster by hand."),
]
