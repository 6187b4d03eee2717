# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 05 · notebooks/05-rollback.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check  # noqa: F401

NAME = "05-rollback"

CELLS = [
    md("""
    # 05 · Rollback

    A release that breaks is undone in GitOps by changing Git back — `git revert` — so Git
    stays the truth. When that is too slow, you can also re-deploy an earlier entry of the
    app's history, as `argocd app rollback` does. This chapter does both.
    """),
    code(CONNECT),
    live("""
    app = lab.reset_sample()  # catch-up: pristine sample, automated sync, Synced and Healthy
    good = app["status"]["sync"]["revision"]
    original = lab.read("apps/guestbook/deployment.yaml")
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
    """),
    live("""
    assert "image: gitops-lab/guestbook:1.0.0" in original, original
    bad = lab.commit({"apps/guestbook/deployment.yaml":
                      original.replace("image: gitops-lab/guestbook:1.0.0", "image: gitops-lab/guestbook:1.2.0-broken")},
                     "Release guestbook-ui 1.2.0")
    print("pushed", bad[:7])
    dash = lab.dashboard("guestbook")
    dash
    """),
    live("""
    app = lab.wait_for(
        "guestbook", lambda a: a["status"]["health"]["status"] == "Degraded",
        what="the Deployment to miss its 20 s progress deadline (watch the dashboard above)",
        timeout=90)
    print(app["status"]["health"]["message"])
    print(lab.kubectl("get", "pods", "-n", "guestbook"))
    if lab.provider_kind == "kind":  # what the kubelet saw when it probed the new pod
        print(lab.kubectl("get", "events", "-n", "guestbook", "--field-selector=reason=Unhealthy"))
    """),
    md("""
    The old pods still serve the old release. On kind, ask the page which version answers; on
    the local provider there is no page, but the two old pods are still the Ready ones:
    """),
    live("""
    import json
    import re


    def pods(image: str) -> list[dict]:
        items = json.loads(lab.kubectl("get", "pods", "-n", "guestbook", "-o", "json"))["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")
                and p["spec"]["containers"][0]["image"] == image]


    def ready(pod: dict) -> bool:
        return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


    old, broken = pods("gitops-lab/guestbook:1.0.0"), pods("gitops-lab/guestbook:1.2.0-broken")
    print(f"1.0.0: {sum(map(ready, old))} of {len(old)} ready · 1.2.0-broken: {sum(map(ready, broken))} of {len(broken)} ready")
    if lab.app_url:
        version = re.search(r'id="version">([^<]+)<', lab.fetch_app()).group(1)
        print("the page at", lab.app_url, "is served by version", version)
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
    how it was fixed — and automated sync deploys the revert like any other commit.
    """),
    live("""
    fix = lab.revert(bad)
    print("pushed", fix[:7], "=", lab.log(1)[0][1])
    app = lab.wait_for(
        "guestbook",
        lambda a: a["status"]["sync"].get("revision") == fix and a["status"]["health"]["status"] == "Healthy",
        what=f"the agent to deploy the revert {fix[:7]} and the old image's pods to be ready", timeout=60)
    """),
    md("**Self-check.** Git is back to the original file, and the revert commit is live and Healthy."),
    check("""
    assert lab.read("apps/guestbook/deployment.yaml") == original
    assert app["status"]["sync"]["revision"] == fix and app["status"]["sync"]["status"] == "Synced"
    """),
    md("""
    ## 3. Roll back by history id

    Every sync appends an entry to `status.history`: an id, the revision, when. The timeline
    below shows them, oldest left, the live one marked; each has a Rollback button.
    Rolling back re-deploys an entry's revision **without changing Git** — like
    `argocd app rollback`. Break the app once more, then roll back to the entry of the revert:
    """),
    live("""
    bad_again = lab.commit({"apps/guestbook/deployment.yaml":
                            original.replace("image: gitops-lab/guestbook:1.0.0", "image: gitops-lab/guestbook:1.2.0-broken")},
                           "Release guestbook-ui 1.2.0 again")
    app = lab.wait_for("guestbook", lambda a: a["status"]["sync"].get("revision") == bad_again
                       and a["status"]["history"][-1]["revision"] == bad_again,
                       what=f"the agent to deploy {bad_again[:7]}", timeout=30)
    entry_id = [h for h in app["status"]["history"] if h["revision"] == fix][-1]["id"]
    print(f"will roll back to history entry #{entry_id} ({fix[:7]}, the revert)")

    from gitops_lab.widgets import HistoryTimeline

    HistoryTimeline(lab.apps, "guestbook", messages=dict(lab.log(20)))
    """),
    md("""
    In a terminal: `gitops-lab app history guestbook`, then `gitops-lab app rollback guestbook ID`.
    Rollback waits for the agent and prints the result:
    """),
    live("""
    !gitops-lab app history guestbook
    !gitops-lab app rollback guestbook {entry_id}
    """),
    live("""
    app = lab.wait_for("guestbook", lambda a: a["status"]["history"][-1]["revision"] == fix
                       and a["status"]["health"]["status"] == "Healthy",
                       what="the rollback to be deployed and Healthy", timeout=60)
    dash
    """),
    md("""
    Look at the dashboard: **Healthy but OutOfSync**, and *Auto-sync* is off. Git's `main` still
    points at the broken commit; had automated sync stayed on, the agent would have re-deployed
    it at once and undone your rollback. So a rollback switches automated sync off — as Argo CD
    does — until Git is fixed.

    **Self-check.** The revert's revision is deployed again — no pod of 1.2.0 is left; Git's head
    is still the bad commit; automated sync is off.
    """),
    check("""
    assert app["status"]["history"][-1]["revision"] == fix
    assert not pods("gitops-lab/guestbook:1.2.0-broken") and len(pods("gitops-lab/guestbook:1.0.0")) == 2
    assert app["status"]["sync"]["revision"] == bad_again and app["status"]["sync"]["status"] == "OutOfSync"
    assert "automated" not in (app["spec"].get("syncPolicy") or {}), "a rollback turns automated sync off"
    """),
    md("""
    ## 4. Make Git right again

    A rollback by id is a stopgap. Fix Git, then hand control back to the agent.
    """),
    live("""
    fixed_again = lab.revert(bad_again)
    lab.apps.set_policy("guestbook", automated=True, prune=True)
    app = lab.wait_for(
        "guestbook",
        lambda a: a["status"]["sync"].get("revision") == fixed_again and a["status"]["sync"]["status"] == "Synced"
        and a["status"]["health"]["status"] == "Healthy",
        what="automated sync to deploy the fixed head of main", timeout=60)
    """),
    md("**Self-check.** Synced, Healthy, automated — and Git says what runs."),
    check("""
    assert app["spec"]["syncPolicy"]["automated"] is not None
    assert app["status"]["sync"]["revision"] == lab.workcopy.head
    assert lab.read("apps/guestbook/deployment.yaml") == original
    """),
    md("Next: **06 · Pull vs push security** — what the agent can and cannot do."),
]

