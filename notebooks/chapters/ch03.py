# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 03 · notebooks/03-deploy.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check  # noqa: F401

NAME = "03-deploy"

CELLS = [
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

