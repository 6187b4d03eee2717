# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 05 · notebooks/05-rollback.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check  # noqa: F401

NAME = "05-rollback"

CELLS = [
    md("""
    # 05 · Rollback

    Two ways to undo a bad release: `git revert` (Git stays the truth), and, in an emergency,
    re-deploying an earlier history entry without touching Git (`argocd app rollback`,
    `gitops-lab app rollback`). You do both, and see what the second one costs.
    """),
    code(CONNECT),
    live("""
    from gitops_lab.course.observe import ready  # a pod's Ready condition is True

    app = lab.reset_sample()  # catch-up: pristine sample, automated sync, Synced and Healthy
    original = lab.read("apps/guestbook/deployment.yaml")
    alerts = lab.alerts()  # the alert receiver of chapter 04: a bad release pages someone
    """),
    md("""
    ## 1. A bad release: pods that never become ready

    Image `1.2.0-broken` serves its page, but `/healthz` answers 503: its **readiness probe**
    fails. The agent syncs it (the manifest is valid); the new pod is Running, never Ready; the
    old pods stay Ready. After `progressDeadlineSeconds` (20 s here; default 10 min) the
    rollout fails and the app turns **Degraded**.

    Where the failure comes from: on kind, the kubelet really probes the container. On local no
    container runs; a [kwok](glossary.md#kwok) rule (`gitops_lab/cluster/kwok-stages.yaml`) marks pods of a
    `-broken` tag Running but not Ready. The progress deadline and health check are real
    Kubernetes on both. The release, one changed line:
    """),
    live("""
    assert "image: gitops-lab/guestbook:1.0.0" in original, original
    bad = lab.commit({"apps/guestbook/deployment.yaml":
                      original.replace("image: gitops-lab/guestbook:1.0.0", "image: gitops-lab/guestbook:1.2.0-broken")},
                     "Release guestbook-ui 1.2.0")
    !git -C {lab.workcopy.path} show --format='%h %s' HEAD
    dash = lab.dashboard("guestbook")
    dash
    """),
    live("""
    app = lab.wait_for(
        "guestbook", lambda a: a["status"]["health"]["status"] == "Degraded",
        what="the Deployment to miss its 20 s progress deadline (watch the dashboard above)",
        timeout=90)
    print(app["status"]["health"]["message"])
    !kubectl get pods -n guestbook
    if lab.provider_kind == "kind":  # what the kubelet saw when it probed the new pod
        !kubectl get events -n guestbook --field-selector=reason=Unhealthy
    """),
    md("""
    The old pods stay Ready (on kind they serve the page). And the agent
    POSTed a `HealthDegraded` alert — what wakes you on call:
    """),
    live("""
    import re

    old, broken = lab.pods("guestbook", "gitops-lab/guestbook:1.0.0"), lab.pods("guestbook", "gitops-lab/guestbook:1.2.0-broken")
    print(f"1.0.0: {sum(map(ready, old))} of {len(old)} ready · 1.2.0-broken: {sum(map(ready, broken))} of {len(broken)} ready")
    if lab.app_url:
        version = re.search(r'id="version">([^<]+)<', lab.fetch_app()).group(1)
        print("the page at", lab.app_url, "is served by version", version)
    lab.wait_until(lambda: alerts.alerts("HealthDegraded"), timeout=15, what="the agent's HealthDegraded alert")
    alerts.widget()
    """),
    md("**Self-check.** Synced *and* Degraded: Synced says nothing about working."),
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

    `git revert` adds a commit that undoes the bad one; history keeps both, the fix is
    reviewed like any change, and nobody needs cluster access.

    ### ✏️ Your turn: revert the bad release

    In your clone (`lab.workcopy.path`): `git revert --no-edit HEAD`, then `git push` (in a
    terminal, or uncomment the cell below). Watch the dashboard turn Healthy. The check reads
    the server's `main` and the app.
    """),
    starter("""
    # !git -C {lab.workcopy.path} revert --no-edit HEAD
    # !git -C {lab.workcopy.path} push
    """),
    solution("""
    !git -C {lab.workcopy.path} revert --no-edit HEAD
    !git -C {lab.workcopy.path} push -q
    """),
    task_check("05-revert"),
    md("""
    ## 3. Roll back by history id — and what it costs

    Every sync appends an entry (id, revision, time) to `status.history`; the timeline below
    shows them, each with a Rollback button. A rollback re-deploys an entry **without changing
    Git** — an emergency brake while a revert is reviewed. Break the app again, then roll back
    to your revert's entry:
    """),
    live("""
    fix = lab.workcopy.head  # your revert, from section 2
    assert lab.read("apps/guestbook/deployment.yaml") == original, "do section 2's task first: main still deploys 1.2.0-broken"
    !git -C {lab.workcopy.path} log --format='%h %s' -3
    bad_again = lab.commit({"apps/guestbook/deployment.yaml":
                            original.replace("image: gitops-lab/guestbook:1.0.0", "image: gitops-lab/guestbook:1.2.0-broken")},
                           "Release guestbook-ui 1.2.0 again")
    app = lab.wait_for("guestbook", lambda a: a["status"]["sync"].get("revision") == bad_again
                       and a["status"]["history"][-1]["revision"] == bad_again,
                       what=f"the agent to deploy {bad_again[:7]}", timeout=30)
    entry_id = [h for h in app["status"]["history"] if h["revision"] == fix][-1]["id"]
    print(f"will roll back to history entry #{entry_id} ({fix[:7]}, your revert)")

    from gitops_lab.widgets import HistoryTimeline

    HistoryTimeline(lab.apps, "guestbook", messages=dict(lab.log(20)))
    """),
    md("""
    With automated sync on, the agent would re-deploy `main` (the broken commit) at once. So:

    * **Argo CD**: `argocd app rollback` **refuses** while automated sync is on (turn it off
      first); only its UI's button turns it off for you.
    * **Flux**: no rollback for a Kustomization — revert in Git (maybe `flux suspend`
      meanwhile); only a HelmRelease rolls back itself, when an upgrade fails.
    * **This lab**: `gitops-lab app rollback guestbook ID` sets `operation.sync.revision`; the
      agent syncs it, then removes `spec.syncPolicy.automated` and records an Event — like
      Argo CD's UI.
    """),
    live("""
    mark = lab.mark_events()  # to find the agent's Event about this rollback
    !gitops-lab app history guestbook
    !gitops-lab app rollback guestbook {entry_id}
    app = lab.wait_for("guestbook", lambda a: a["status"]["history"][-1]["revision"] == fix
                       and a["status"]["health"]["status"] == "Healthy",
                       what="the rollback to be deployed and Healthy", timeout=60)
    lab.wait_until(lambda: not lab.pods("guestbook", "gitops-lab/guestbook:1.2.0-broken"), timeout=30,
                   what="the broken release's pod to go away")
    print(mark.wait("Synced", about="rolled back")["message"])
    dash
    """),
    md("""
    **Healthy but OutOfSync**, *Auto-sync* off: `main` is still broken, and nothing deploys
    automatically until Git is fixed. A rollback by id is a stopgap.

    **Self-check.** Your revert runs; Git's head is still the bad commit; automated sync is off.
    """),
    check("""
    assert app["status"]["history"][-1]["revision"] == fix
    assert not lab.pods("guestbook", "gitops-lab/guestbook:1.2.0-broken") and len(lab.pods("guestbook", "gitops-lab/guestbook:1.0.0")) == 2
    assert app["status"]["sync"]["revision"] == bad_again and app["status"]["sync"]["status"] == "OutOfSync"
    assert "automated" not in (app["spec"].get("syncPolicy") or {}), "the agent turned automated sync off"
    """),
    md("""
    ## 4. Make Git right again

    Revert in Git again, then turn automated sync back on (the dashboard's *Auto-sync* box, or
    `lab.apps.set_policy`).
    """),
    live("""
    !git -C {lab.workcopy.path} revert --no-edit HEAD
    !git -C {lab.workcopy.path} push -q
    lab.apps.set_policy("guestbook", automated=True, prune=True)
    head = lab.workcopy.head
    app = lab.wait_for(
        "guestbook",
        lambda a: a["status"]["sync"].get("revision") == head and a["status"]["sync"]["status"] == "Synced"
        and a["status"]["health"]["status"] == "Healthy",
        what="automated sync to deploy the fixed head of main", timeout=60)
    """),
    md("**Self-check.** Synced, Healthy, automated — and Git says what runs."),
    check("""
    assert app["spec"]["syncPolicy"]["automated"] is not None
    assert app["status"]["sync"]["revision"] == lab.workcopy.head
    assert lab.read("apps/guestbook/deployment.yaml") == original
    """),
    md("""
    The last cell stops the local alert receiver (on kind it is a pod and stays).

    Next: **06 · Pull vs push security**.
    """),
    live("""
    alerts.close()
    """),
]
