# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 04 · notebooks/04-drift-and-self-heal.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check  # noqa: F401

NAME = "04-drift-and-self-heal"

CELLS = [
    md("""
    # 04 · Drift, self-heal and prune

    **Drift** is any difference between the live cluster and Git that no commit explains:
    someone ran `kubectl scale`, edited an image, deleted an object. A GitOps agent keeps
    comparing, so it *detects* drift; with **self-heal** on it also *reverts* it. **Prune** is
    the other direction: an object whose file left Git is deleted from the cluster.

    Two helpers watch with you through this chapter (section 7 shows what they saw): an
    **alert receiver** the agent POSTs to whenever something needs a human, and a sampler of
    the agent's Prometheus **/metrics**.
    """),
    code(CONNECT),
    live("""
    app = lab.reset_sample()  # catch-up: pristine sample, automated sync with prune, self-heal OFF
    alerts = lab.alerts()            # the alert receiver, and the agent's --alert-webhook pointed at it
    metrics = lab.sample_metrics()   # reads the agent's /metrics every second, in the background
    mark = lab.mark_events()         # from here on, only new Events count (not those of earlier runs)
    print("alerts go to", alerts.where)
    """),
    md("""
    ## 1. Drift: scale by hand, behind Git's back

    Git says 2 replicas. Scale to 5 with `kubectl`, as someone fighting a fire might — this is
    the command you would type in a terminal. The Deployment really gets three more pods
    (`lab.provider_kind` says which provider you have: on kind three more containers start; on
    the local provider kwok reports them Running and nothing runs):
    """),
    live("""
    metrics.mark("scale to 5")
    !kubectl scale deployment guestbook-ui -n guestbook --replicas=5
    """),
    live("""
    from gitops_lab.course.observe import ready  # a pod's Ready condition is True

    app = lab.wait_for("guestbook", lambda a: a["status"]["sync"]["status"] == "OutOfSync",
                       what="the agent to see the change (it watches the objects it deployed)",
                       timeout=30)
    drift = mark.wait("DriftDetected", about="spec.replicas")
    lab.wait_until(lambda: sum(map(ready, lab.pods("guestbook"))) == 5, timeout=60,
                   what=f"5 ready pods (on {lab.provider_kind}: " + ("containers started by the kubelet)"
                         if lab.provider_kind == "kind" else "reported Running by kwok, nothing runs)"))
    !kubectl get pods -n guestbook -o wide
    """),
    md("""
    The agent recorded a Kubernetes Event — `DriftDetected`, highlighted below — and POSTed
    the same as an alert to the receiver (section 7). This log is live; it also shows the
    events the agent records later in this chapter.
    """),
    live("""
    from gitops_lab.widgets import EventLog

    EventLog(lab.kube, "guestbook", limit=12)  # the newest 12
    """),
    md("""
    **Self-check.** Self-heal is off, so the agent *reports* the drift and leaves it alone:
    the cluster still runs 5 replicas, and the event names the field that differs.
    """),
    check("""
    assert "spec.replicas" in drift["message"] and "self-heal is off" in drift["message"], drift["message"]
    assert lab.app("guestbook")["status"]["sync"]["status"] == "OutOfSync"
    assert lab.kubectl("get", "deployment", "guestbook-ui", "-n", "guestbook",
                       "-o", "jsonpath={.spec.replicas}") == "5"
    assert sum(map(ready, lab.pods("guestbook"))) == 5
    """),
    md("""
    ## 2. What exactly differs: the diff

    The diff compares what Git would produce (a server-side-apply dry run, so defaults the API
    server fills in are never drift) with the live object. `-` is the cluster, `+` is Git.
    `gitops-lab app diff guestbook` prints the same in a terminal.

    This diff is computed here, on your machine, so it fetches Git from here. On kind the
    app's `repoURL` is the Git server's address *inside* the cluster; your machine reaches the
    same server through 127.0.0.1 (`lab.push_url`), and the diff fetches from there.
    """),
    live("""
    from gitops_lab.widgets import DiffView

    diff = DiffView.for_app(lab.kube, lab.apps, "guestbook")
    diff
    """),
    md("**Self-check.** One object differs — the Deployment — and the difference is `replicas`."),
    check("""
    assert [e["key"] for e in diff.entries] and len(diff.entries) == 1, [e["key"] for e in diff.entries]
    assert "guestbook-ui" in diff.entries[0]["key"] and "replicas" in diff.entries[0]["text"]
    """),
    md("""
    ## 3. Repair by hand: sync

    Without self-heal, drift stays until someone syncs — a person decides. (Or commits
    `replicas: 5` to Git, if 5 was right: then Git is the truth again.) In a terminal, as with
    `argocd app sync`; it waits for the agent and prints the result:
    """),
    live("""
    metrics.mark("sync by hand")
    !gitops-lab app sync guestbook
    """),
    md("**Self-check.** Back to what Git says — and the three extra pods are gone."),
    check("""
    app = lab.wait_for("guestbook", lambda a: a["status"]["sync"]["status"] == "Synced",
                       what="the sync to put Git's 2 replicas back", timeout=30)
    assert lab.kubectl("get", "deployment", "guestbook-ui", "-n", "guestbook",
                       "-o", "jsonpath={.spec.replicas}") == "2"
    lab.wait_until(lambda: len(lab.pods("guestbook")) == 2, timeout=60,
                   what="the ReplicaSet to remove the 3 extra pods (on kind: their containers stop)")
    """),
    md("""
    ## 4. Self-heal on: drift is reverted within a second

    With `selfHeal: true` the agent re-applies Git as soon as it sees drift. Switch it on (the
    **Self-heal** box in the dashboard does the same) and change the image by hand — the
    non-interactive form of `kubectl edit` — to the sample app's next release, 1.1.0:
    """),
    live("""
    import yaml

    lab.apps.set_policy("guestbook", self_heal=True)
    lab.wait_for("guestbook", lambda a: a["spec"]["syncPolicy"]["automated"]["selfHeal"],
                 what="the new policy", timeout=10)
    mark = lab.mark_events()  # self-heal is on from here: new Events only
    git_image = yaml.safe_load(lab.read("apps/guestbook/deployment.yaml"))["spec"]["template"]["spec"]["containers"][0]["image"]
    metrics.mark("image by hand")
    !kubectl set image deployment/guestbook-ui -n guestbook web=gitops-lab/guestbook:1.1.0
    """),
    live("""
    def live_image() -> str:
        return lab.kubectl("get", "deployment", "guestbook-ui", "-n", "guestbook",
                           "-o", "jsonpath={.spec.template.spec.containers[0].image}")


    lab.wait_until(lambda: live_image() == git_image, timeout=30,
                   what="the agent to put Git's image back (self-heal)")
    healed = mark.wait("SelfHealed", about="guestbook-ui")
    # the Deployment may have started a 1.1.0 pod meanwhile: it goes away again
    lab.wait_until(lambda: len(lab.pods("guestbook")) == 2 and len(lab.pods("guestbook", git_image)) == 2
                   and all(map(ready, lab.pods("guestbook"))),
                   timeout=60, what=f"the pods to be 2 ready pods of Git's image {git_image} again")
    lab.dashboard("guestbook")
    """),
    md("**Self-check.** The image is Git's again — in the Deployment and in every pod — and the agent said so in a `SelfHealed` event."),
    check("""
    assert live_image() == git_image
    assert {p["spec"]["containers"][0]["image"] for p in lab.pods("guestbook")} == {git_image}
    assert "guestbook-ui" in healed["message"], healed
    """),
    md("""
    ### ✏️ Your turn: scale by hand — with self-heal on

    Do what section 1 did, now that self-heal is on: scale `guestbook-ui` to 5 replicas by
    hand. In a terminal (`eval "$(gitops-lab env)"` gives it the lab's `kubectl`):

        kubectl scale deployment guestbook-ui -n guestbook --replicas=5

    or remove the `#` in front of the `!kubectl` line below and run the cell. Then watch the
    dashboard above: the agent sees the drift and scales back to Git's 2 within a second or
    two. The check reads the cluster (2 replicas again) and the app's Events since the mark
    above: a `DriftDetected` on `spec.replicas`, then a `SelfHealed`.
    """),
    starter("""
    # !kubectl scale deployment guestbook-ui -n guestbook --replicas=5
    """),
    solution("""
    metrics.mark("learner scales")
    !kubectl scale deployment guestbook-ui -n guestbook --replicas=5
    """),
    task_check("04-self-heal"),
    md("""
    ## 5. Deleting an object

    Deleting is drift too: Git has the ConfigMap, the cluster does not. With self-heal on the
    agent recreates it — a new object, with a new UID.
    """),
    live("""
    old_uid = lab.kubectl("get", "configmap", "guestbook-config", "-n", "guestbook",
                          "-o", "jsonpath={.metadata.uid}")
    !kubectl delete configmap guestbook-config -n guestbook


    def configmap_uid() -> str:
        return lab.kubectl("get", "configmap", "guestbook-config", "-n", "guestbook",
                           "--ignore-not-found", "-o", "jsonpath={.metadata.uid}")


    lab.wait_until(lambda: configmap_uid() not in ("", old_uid), timeout=30,
                   what="the agent to recreate the ConfigMap from Git")
    """),
    md("**Self-check.** The ConfigMap is back — recreated, not the old one — and the app is Synced."),
    check("""
    assert configmap_uid() not in ("", old_uid)
    app = lab.wait_for("guestbook", lambda a: a["status"]["sync"]["status"] == "Synced",
                       what="the app to be Synced again", timeout=30)
    """),
    md("""
    ## 6. Prune: a file leaves Git, its object leaves the cluster

    Self-heal puts back what Git has. The opposite case — an object Git no longer has — is
    **pruning**. The agent deletes only objects it created for this app: those in the app's
    inventory that carry its `gitopslab.io/tracking-id` annotation; nothing else in the
    namespace is ever touched. Pruning is a policy, `syncPolicy.automated.prune` — off by
    default in Argo CD; a Flux Kustomization says `prune: true` or `false` itself.
    `reset_sample()` switched it on.

    Add a file to Git — a ConfigMap `guestbook-notes` — then delete it again:
    """),
    live("""
    NOTES = "apps/guestbook/notes.yaml"
    notes = '''apiVersion: v1
    kind: ConfigMap
    metadata:
      name: guestbook-notes
    data:
      note: "release notes for the next version"
    '''


    def notes_uid() -> str:
        return lab.kubectl("get", "configmap", "guestbook-notes", "-n", "guestbook",
                           "--ignore-not-found", "-o", "jsonpath={.metadata.uid}")


    lab.commit({NOTES: notes}, "Add release notes")
    lab.wait_until(lambda: notes_uid() != "", timeout=30, what="the agent to create ConfigMap guestbook-notes")
    mark = lab.mark_events()
    lab.commit(delete=(NOTES,), message="Drop the release notes")
    lab.wait_until(lambda: notes_uid() == "", timeout=30, what="the agent to prune ConfigMap guestbook-notes")
    pruned = mark.wait("Pruned", about="guestbook-notes")
    print(pruned["reason"], "·", pruned["message"])
    """),
    md("**Self-check.** The ConfigMap is gone, the `Pruned` event names it, and the app is Synced — the rest of the app untouched."),
    check("""
    assert notes_uid() == "" and "guestbook-notes" in pruned["message"]
    app = lab.wait_for("guestbook", lambda a: a["status"]["sync"]["status"] == "Synced",
                       what="the app to be Synced", timeout=30)
    assert {r["name"] for r in app["status"]["resources"]} == {"guestbook-config", "guestbook-ui"}
    """),
    md("""
    ### Without `prune`: OutOfSync, and "requires pruning"

    Now the same with `prune: false`. The agent applies the new commit but deletes nothing:
    the ConfigMap stays live, the app is **OutOfSync**, and the object is listed in
    `status.resources` with `requiresPruning: true` — the field Argo CD's status has too. A
    person decides: sync once with `--prune`, or put the file back.
    """),
    live("""
    lab.apps.set_policy("guestbook", prune=False)
    lab.commit({NOTES: notes}, "Add release notes again")
    lab.wait_until(lambda: notes_uid() != "", timeout=30, what="the agent to create ConfigMap guestbook-notes")
    removed = lab.commit(delete=(NOTES,), message="Drop the release notes again")
    app = lab.wait_for("guestbook", lambda a: a["status"]["sync"].get("revision") == removed
                       and a["status"]["sync"]["status"] == "OutOfSync",
                       what=f"the agent to sync {removed[:7]} — without pruning", timeout=30)
    waiting = [r for r in app["status"]["resources"] if r.get("requiresPruning")]
    for r in app["status"]["resources"]:
        print(f"{r['kind']:<11} {r['name']:<17} {r['status']:<10} requiresPruning={r.get('requiresPruning', False)}")
    !kubectl get configmaps -n guestbook
    """),
    md("**Self-check.** Git no longer has `guestbook-notes`, the cluster still does, and the app says it requires pruning."),
    check("""
    assert notes_uid() != ""
    assert [r["name"] for r in waiting] == ["guestbook-notes"], waiting
    assert app["status"]["sync"]["status"] == "OutOfSync"
    """),
    md("Sync once with `--prune` (the terminal form of the dashboard's *Sync* with *Prune* ticked), and turn automated pruning back on:"),
    live("""
    !gitops-lab app sync guestbook --prune
    lab.apps.set_policy("guestbook", prune=True)
    lab.wait_until(lambda: notes_uid() == "", timeout=30, what="the sync to prune ConfigMap guestbook-notes")
    """),
    md("""
    ### ✏️ Your turn: delete a file from Git

    The cell below puts `apps/guestbook/notes.yaml` back (prune is on again). Remove it the
    way you would at work — `git rm`, commit, push — and watch the agent prune the ConfigMap.
    In a terminal, in your clone (`lab.workcopy.path`):

        git rm apps/guestbook/notes.yaml
        git commit -m "Drop the release notes"
        git push

    or remove the `#`s in the starter cell. The check reads Git on the server (the file is
    gone from `main`) and the cluster (the ConfigMap is gone, with a `Pruned` event).
    """),
    live("""
    lab.commit({NOTES: notes}, "Add release notes for the exercise")
    lab.wait_until(lambda: notes_uid() != "", timeout=30, what="the agent to create ConfigMap guestbook-notes")
    mark = lab.mark_events()
    print("in Git and live: ConfigMap guestbook-notes — your clone is", lab.workcopy.path)
    """),
    starter("""
    # !git -C {lab.workcopy.path} rm apps/guestbook/notes.yaml
    # !git -C {lab.workcopy.path} commit -m "Drop the release notes"
    # !git -C {lab.workcopy.path} push
    """),
    solution("""
    metrics.mark("learner deletes a file")
    !git -C {lab.workcopy.path} rm -q apps/guestbook/notes.yaml
    !git -C {lab.workcopy.path} commit -q -m "Drop the release notes"
    !git -C {lab.workcopy.path} push -q
    """),
    task_check("04-prune"),
    md("""
    ## 7. Alerts and metrics: what would have paged you

    Events live in the cluster; a person on call learns about drift from an **alert**. The
    agent POSTs a small JSON document — app, reason, message, revision, the objects named —
    to its `--alert-webhook` for `DriftDetected`, `SyncFailed` and `HealthDegraded`. (Argo CD
    does this with Argo CD Notifications, Flux with its notification-controller's `Alert` and
    `Provider`; both send to Slack, Teams, a webhook…) The receiver this chapter started shows
    what arrived — where it runs depends on where the agent runs:
    """),
    live("""
    print(alerts.where)
    alerts.widget()  # live: refreshed every 2 s
    """),
    md("**Self-check.** The drift of section 1 (self-heal off) and those of section 4 (self-heal on) reached the receiver."),
    check("""
    drifts = alerts.alerts("DriftDetected")
    assert any("self-heal is off" in a["message"] and "spec.replicas" in a["message"] for a in drifts), drifts
    assert any("self-heal reverts it" in a["message"] for a in drifts), drifts
    assert all(a["app"] == "gitops-lab/guestbook" for a in drifts)
    """),
    md("""
    The agent also serves Prometheus metrics on `/metrics` (`lab.agent_url`): reconciles by
    result, drift detections, and a histogram of how long each reconcile took. A Prometheus
    server would scrape them; here a background thread sampled them every second since the
    chapter started. The dashed lines are the moments you changed something:
    """),
    live("""
    import urllib.request

    with urllib.request.urlopen(lab.agent_url + "/metrics", timeout=5) as resp:
        print("\\n".join(line for line in resp.read().decode().splitlines()
                        if line.startswith(("gitopslab_reconcile_total", "gitopslab_drift_detected_total"))))
    metrics.plot()
    """),
    md("**Self-check.** The sampler saw reconciles and at least the two drifts of sections 1 and 4 (with counter restarts folded in)."),
    check("""
    last = metrics.samples[-1]
    assert len(metrics.samples) > 10 and last["reconciles"] > metrics.samples[0]["reconciles"]
    assert last["drift"] - metrics.samples[0]["drift"] >= 2, (metrics.samples[0], last)
    """),
    md("""
    When to switch self-heal on? In production, usually yes: the cluster should not silently
    diverge from what was reviewed. Manual changes during an incident then have to go through
    Git — which is the point. The next chapter turns it off again (`reset_sample()` does).

    The alert receiver of the local provider lives in this notebook's Python process; the
    last cell stops it and points the agent back (on kind the receiver is a pod and stays).

    Next: **05 · Rollback**.
    """),
    live("""
    metrics.stop()
    alerts.close()
    """),
]
