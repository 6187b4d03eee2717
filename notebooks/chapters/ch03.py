# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 03 · notebooks/03-deploy.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check  # noqa: F401

NAME = "03-deploy"

CELLS = [
    md("""
    # 03 · Deploy: from Git to the cluster

    An **[Application](glossary.md#application)** tells the agent what to deploy (a path in a
    Git repo, at a revision) and where (a namespace). In this chapter you create one with a
    *manual* sync policy, sync it, look at the app, then switch on *automated* sync and ship
    changes by committing to Git. At the end you write an Application yourself.
    """),
    code(CONNECT),
    live("""
    from gitops_lab.course import ch03

    # Catch-up: this chapter starts with no Application. With the agent paused (so it re-applies
    # nothing meanwhile) the lab deletes guestbook and what it deployed, puts the pristine sample
    # back in Git, and adds apps/hello for the exercise at the end.
    head = ch03.catch_up(lab)
    !git -C {lab.workcopy.path} ls-files apps
    """),
    md("""
    ## 1. The Application: what, from where, to where

    Its spec has a `source` (repo, revision, path), a `destination` (namespace) and a
    `syncPolicy`. Without `syncPolicy.automated` the agent only *compares* Git with the cluster
    and reports; you decide when to apply. Applications live in the namespace `gitops-lab`,
    the one the agent watches (Argo CD's live in `argocd`). Here is the manifest, written to a
    file and applied as you would at work:
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

    A **[sync](glossary.md#sync)** applies every object from Git
    ([server-side apply](glossary.md#server-side-apply); namespaces first), records the revision
    in the app's history, and then watches [health](glossary.md#health): the Deployment is
    *Progressing* until its pods are reported ready, then *Healthy*. Three ways to ask for one:
    the **Sync** button above, Python (`lab.apps.sync("guestbook")`), or in a terminal — Argo
    CD's `argocd app sync`:
    """),
    live("""
    !gitops-lab app sync guestbook --timeout 60
    """),
    live("""
    app = lab.wait_for(
        "guestbook",
        lambda a: a["status"]["sync"]["status"] == "Synced" and a["status"]["health"]["status"] == "Healthy",
        what="the Deployment's 2 pods to be reported ready", timeout=60)
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

    Synced and Healthy are what the API server says. Does the app answer? That depends on the
    provider. On **kind** the two pods run the sample app's container, and the Service
    `guestbook-ui` (a [NodePort](glossary.md#nodeport), which kind maps to a port on
    127.0.0.1: `lab.app_url`) leads to them: the cell fetches the page and shows it. On the
    **local** provider no container runs — kwok only reports the pods Running — so nothing
    answers; what the app would read, the ConfigMap with `GREETING`, is in the cluster all the
    same.
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
    md("**Self-check.** The greeting from Git: on the page (kind), in the cluster's ConfigMap (both)."),
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

    With `syncPolicy.automated` the agent syncs by itself whenever `main` moves. Switch it on
    the declarative way — add it to the manifest and apply it again (the **Auto-sync** box in
    the dashboard does the same) — then change Git: 2 → 3 replicas.
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
    """),
    live("""
    app = lab.wait_for(
        "guestbook",
        lambda a: a["status"]["sync"].get("revision") == sha and a["status"]["sync"]["status"] == "Synced"
        and a["status"]["health"]["status"] == "Healthy",
        what=f"the agent to pull {sha[:7]} and roll it out", timeout=60)
    !kubectl rollout status deployment/guestbook-ui -n guestbook --timeout=30s
    dash
    """),
    md("**Self-check.** The commit is live, and the Deployment has three ready replicas."),
    check("""
    assert app["spec"]["syncPolicy"]["automated"]["prune"] is True
    assert app["status"]["sync"]["revision"] == sha
    ready = lab.kubectl("get", "deployment", "guestbook-ui", "-n", "guestbook", "-o", "jsonpath={.status.readyReplicas}")
    assert ready == "3", ready
    """),
    md("""
    ## 5. A config change reaches the running app

    Change `GREETING` in `apps/guestbook/configmap.yaml` and commit. The agent updates the
    ConfigMap within a second or two. The sample app reads `GREETING` from the ConfigMap
    *mounted as files*, and the kubelet refreshes mounted ConfigMaps every few seconds — so on
    kind the page changes **without restarting a pod** (about 5–15 s). On the local provider
    the change stops at the ConfigMap: no kubelet, no running app to read it.

    (Had the app read `GREETING` from an environment variable, it would only see the change
    when its pod restarts. That is why [Kustomize](glossary.md#kustomize)'s
    `configMapGenerator` puts a hash of the content into the ConfigMap's name: a new name
    changes the pod template and rolls the pods.)
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
    md("**Self-check.** The new greeting is in the cluster — and on kind on the page — and no pod was restarted or replaced."),
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

    The agent's loop — its [reconcile](glossary.md#reconcile) — is a fixed sequence:
    **fetch** (Git) → **render** (YAML to objects) → **diff** (a server-side-apply dry run,
    compared with the live objects) → **apply** (only what differs) →
    **[prune](glossary.md#prune)** (objects that left Git) → **health**. It runs on every Git
    change, every cluster change it watches, and on a timer. The bars are the last run's
    timings; once in sync, *apply* is skipped.
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
    md("""
    ## 7. ✏️ Your turn: write an Application

    The lab has put a second app into Git, in `apps/hello`: a ConfigMap and a Deployment with
    one pod (the sample app's image again). Nothing deploys it yet — no Application points at
    it. Write one:

    * name `hello`, in the namespace the agent watches (see section 1);
    * source: the lab's repo (the cell fills in `lab.repo_url`, the address the agent uses: an
      in-cluster name when the agent runs as a pod, 127.0.0.1 when it runs on this machine),
      branch `main`, the directory the lab prepared;
    * destination: the namespace `hello` (created by the agent: `CreateNamespace=true`);
    * **automated** sync, with prune — so the agent deploys it without being asked.

    Fill in the `???`, run the cell (it writes the manifest to a file), then apply it with
    `!kubectl apply -f {hello_file}` — in a terminal, `kubectl apply -f <the file>`. The check
    waits up to 90 s for the agent to report the app Synced and Healthy, and tells you what is
    missing if it does not get there.
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
    Common slips, and what the check says about them: the Application in another namespace
    (the agent never sees it), a path that is not in Git (the agent reports a
    `SourceError` naming it), no `automated:` (the app stays OutOfSync until someone
    syncs: `!gitops-lab app sync hello`, or add the policy and apply again).

    **Tidy up.** Delete the Application — and look: its objects are still there. An
    Application without the *resources finalizer* (Argo CD's
    `resources-finalizer.argocd.argoproj.io`) is deleted alone, like Argo CD's
    non-cascading delete. So delete its namespace too; the lab then removes `apps/hello` from
    Git, so the next chapters start from the guestbook alone.
    """),
    live("""
    !kubectl delete application hello -n gitops-lab --ignore-not-found
    !kubectl get deployment,configmap -n hello
    !kubectl delete namespace hello --ignore-not-found
    ch03.tidy_up(lab)  # no hello left anywhere, apps/hello out of Git
    """),
    md("Next: **04 · Drift and self-heal** — what happens when someone changes the cluster by hand."),
]
