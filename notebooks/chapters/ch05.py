# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 05 · notebooks/05-rollback.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check  # noqa: F401

NAME = "05-rollback"

CELLS = [
    md("""
    # 05 · Rollback

    A release that breaks is undone in GitOps by changing Git back — `git revert` — so Git
    stays the truth and automated sync deploys the fix like any other commit. Tools also offer
    a second, emergency way: re-deploy an earlier entry of the app's history without touching
    Git (`argocd app rollback`, our `gitops-lab app rollback`). This chapter does both, and
    says what the second one costs.
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

    Release the sample app's `1.2.0-broken`: it starts and serves its page, but its `/healthz`
    answers 503, so its **readiness probe** fails. The agent syncs the commit like any other —
    the manifest is valid — and the Deployment starts a new ReplicaSet whose pod is Running but
    never Ready. The old pods keep serving (a rolling update never takes them all down), and
    after `progressDeadlineSeconds` (20 s in this sample; Kubernetes' default is 10 minutes) the
    Deployment reports that its rollout failed: the app turns **Degraded**.

    *Where does the failure come from?* On kind, from the kubelet: it really runs the
    container and really probes it every 2 s. On the local provider no container runs; a kwok
    rule in `gitops_lab/cluster/kwok-stages.yaml` gives every pod whose image tag ends in
    `-broken` the status a kubelet would report: Running, container started, not Ready.
    Everything above that — the Deployment's progress deadline, the health check — is real
    Kubernetes on both.

    The release is one changed line, committed and pushed — what CI or a colleague would do:
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
    The old pods still serve the old release. On kind, ask the page which version answers; on
    the local provider there is no page, but the two old pods are still the Ready ones. And
    the agent POSTed a `HealthDegraded` alert — on call, this is what wakes you:
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
    md("**Self-check.** The bad commit is live — Synced! — and unhealthy: Synced says nothing about working. Its pods run but are not ready; the old ones still are."),
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

    `git revert` adds a commit that undoes the bad one. History keeps both — what happened and
    how it was fixed — and automated sync deploys the revert like any other commit: no one
    needs access to the cluster, and the fix is reviewed like any change.

    ### ✏️ Your turn: revert the bad release

    In your clone (`lab.workcopy.path`), revert the last commit and push:

        git revert --no-edit HEAD
        git push

    (in a terminal, or remove the `#`s in the cell below). Then watch the dashboard of
    section 1: the agent deploys your revert, the broken pod goes away, the app turns
    Healthy. The check reads the server's `main` (a commit that reverts the broken release)
    and the app (Synced and Healthy on a good image).
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

    Every sync appends an entry to `status.history`: an id, the revision, when. The timeline
    below shows them, oldest left, the live one marked; each has a Rollback button. Rolling
    back re-deploys an entry's revision **without changing Git** — an emergency brake while
    the revert is being reviewed. Break the app once more, then roll back to the entry of your
    revert:
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
    Automated sync is on, and Git's `main` points at the broken commit: if nothing changed,
    the agent would re-deploy `main` at once and undo the rollback. Tools deal with that
    differently:

    * **Argo CD**: `argocd app rollback` **refuses** while automated sync is on — you first
      turn it off (`argocd app set guestbook --sync-policy none`). Only its web UI's Rollback
      button turns automated sync off for you.
    * **Flux** has no rollback command for a Kustomization: you revert in Git (and may
      `flux suspend kustomization …` meanwhile). Only a HelmRelease can roll itself back,
      automatically, when an upgrade fails.
    * **This lab**: `gitops-lab app rollback guestbook ID` (and the timeline's button) writes
      `operation.sync.revision` = that entry's revision on the Application. The agent syncs
      to it, and because that revision is not the head of `targetRevision`, it then removes
      `spec.syncPolicy.automated` itself and records an Event saying so — like Argo CD's UI,
      not like its CLI.

    In a terminal: `gitops-lab app history guestbook`, then `gitops-lab app rollback guestbook ID`.
    Rollback waits for the agent and prints the result:
    """),
    live("""
    mark = lab.mark_events()  # to find the agent's Event about this rollback
    !gitops-lab app history guestbook
    !gitops-lab app rollback guestbook {entry_id}
    """),
    live("""
    app = lab.wait_for("guestbook", lambda a: a["status"]["history"][-1]["revision"] == fix
                       and a["status"]["health"]["status"] == "Healthy",
                       what="the rollback to be deployed and Healthy", timeout=60)
    lab.wait_until(lambda: not lab.pods("guestbook", "gitops-lab/guestbook:1.2.0-broken"), timeout=30,
                   what="the broken release's pod to go away")
    print(mark.wait("Synced", about="rolled back")["message"])
    dash
    """),
    md("""
    Look at the dashboard: **Healthy but OutOfSync**, and *Auto-sync* is off — the agent
    turned it off, its Event above says so. Git's `main` still points at the broken commit.
    Until someone fixes Git, nothing deploys automatically: a rollback by id is a stopgap.

    **Self-check.** Your revert's revision is deployed again — no pod of 1.2.0 is left; Git's head
    is still the bad commit; automated sync is off.
    """),
    check("""
    assert app["status"]["history"][-1]["revision"] == fix
    assert not lab.pods("guestbook", "gitops-lab/guestbook:1.2.0-broken") and len(lab.pods("guestbook", "gitops-lab/guestbook:1.0.0")) == 2
    assert app["status"]["sync"]["revision"] == bad_again and app["status"]["sync"]["status"] == "OutOfSync"
    assert "automated" not in (app["spec"].get("syncPolicy") or {}), "the agent turned automated sync off"
    """),
    md("""
    ## 4. Make Git right again

    Fix Git — the same `git revert` — then hand control back to the agent by turning automated
    sync on again (the dashboard's *Auto-sync* box, or `lab.apps.set_policy`).
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
    The alert receiver of the local provider lives in this notebook's Python process; the
    last cell stops it and points the agent back (on kind the receiver is a pod and stays).

    Next: **06 · Pull vs push security** — what the agent can and cannot do.
    """),
    live("""
    alerts.close()
    """),
]
