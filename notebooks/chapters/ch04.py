# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 04 · notebooks/04-drift-and-self-heal.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check  # noqa: F401

NAME = "04-drift-and-self-heal"

CELLS = [
    md("""
    # 04 · Drift, self-heal and prune

    [Drift](glossary.md#drift) is a difference between cluster and Git that no commit explains
    (a `kubectl scale`, an edited image, a deleted object). The agent *detects* it; with
    [self-heal](glossary.md#self-heal) it also *reverts* it. [Prune](glossary.md#prune) is the
    other direction: an object whose file left Git is deleted. Two helpers watch along
    (section 7): an **alert receiver** and a sampler of the agent's **/metrics**.
    """),
    live("""
    from gitops_lab import Lab

    lab = Lab.connect()              # cluster, Git server, agent: started or found (seconds when warm)
    app = lab.reset_sample()         # catch-up: pristine sample, automated sync with prune, self-heal OFF
    alerts = lab.alerts()            # the alert receiver, and the agent's --alert-webhook pointed at it
    metrics = lab.sample_metrics()   # reads the agent's /metrics every second, in the background
    mark = lab.mark_events()         # from here on, only new Events count (not those of earlier runs)
    print("alerts go to", alerts.where)
    """),
    md("""
    ## 1. Drift: scale by hand, behind Git's back

    Git says 2 replicas. Scale to 5 by hand, as someone fighting a fire might. Three more pods
    appear (on kind, containers start; on local, kwok reports them Running).
    """),
    live("""
    from gitops_lab.course.observe import ready  # a pod's Ready condition is True

    metrics.mark("scale to 5")
    !kubectl scale deployment guestbook-ui -n guestbook --replicas=5

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
    The agent recorded an [Event](glossary.md#event), `DriftDetected` (highlighted; the log is
    live for the whole chapter), and POSTed it as an alert (section 7).
    """),
    live("""
    from gitops_lab.widgets import EventLog

    EventLog(lab.kube, "guestbook", limit=12)  # the newest 12
    """),
    md("""
    **Self-check.** Self-heal is off: the agent *reports* the drift (naming the field) and
    leaves 5 replicas running.
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

    Git's version (a server-side-apply dry run, so API-server defaults are never drift) against
    the live object: `-` cluster, `+` Git. Terminal: `gitops-lab app diff guestbook`. The diff
    runs on your machine, so it fetches Git via `lab.push_url` (on kind the app's `repoURL`
    is the in-cluster address).
    """),
    live("""
    from gitops_lab.widgets import DiffView

    diff = DiffView.for_app(lab.kube, lab.apps, "guestbook")
    diff
    """),
    md("**Self-check.** One object differs, the Deployment, in `replicas`."),
    check("""
    assert [e["key"] for e in diff.entries] and len(diff.entries) == 1, [e["key"] for e in diff.entries]
    assert "guestbook-ui" in diff.entries[0]["key"] and "replicas" in diff.entries[0]["text"]
    """),
    md("""
    ## 3. Repair by hand: sync

    Without self-heal, drift stays until a person syncs (or commits `replicas: 5`, if 5 was
    right). Terminal, like `argocd app sync`:
    """),
    live("""
    metrics.mark("sync by hand")
    !gitops-lab app sync guestbook
    """),
    md("**Self-check.** Back to Git's 2 replicas; the extra pods are gone."),
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

    With `selfHeal: true` the agent re-applies Git as soon as it sees drift. Switch it on (or
    tick **Self-heal** in the dashboard) and set the image by hand to release 1.1.0:
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
    md("**Self-check.** Git's image again, in the Deployment and every pod, and a `SelfHealed` event."),
    check("""
    assert live_image() == git_image
    assert {p["spec"]["containers"][0]["image"] for p in lab.pods("guestbook")} == {git_image}
    assert "guestbook-ui" in healed["message"], healed
    """),
    md("""
    ### ✏️ Your turn: scale by hand — with self-heal on

    Scale `guestbook-ui` to 5 by hand again, now with self-heal on: uncomment the line below,
    or in a terminal (after `eval "$(gitops-lab env)"`):

        kubectl scale deployment guestbook-ui -n guestbook --replicas=5

    The agent scales back to 2 within seconds. The check wants 2 replicas, then
    `DriftDetected` on `spec.replicas` and `SelfHealed` since the mark above.
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

    Deleting an object is drift too: self-heal recreates it, with a new UID.
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
    md("**Self-check.** The ConfigMap is back (a new one) and the app Synced."),
    check("""
    assert configmap_uid() not in ("", old_uid)
    app = lab.wait_for("guestbook", lambda a: a["status"]["sync"]["status"] == "Synced",
                       what="the app to be Synced again", timeout=30)
    """),
    md("""
    ## 6. Prune: a file leaves Git, its object leaves the cluster

    Pruning deletes only objects the agent created for this app (in its inventory, with its
    `gitopslab.io/tracking-id` annotation). The policy `syncPolicy.automated.prune` is off by
    default in Argo CD, explicit in a Flux Kustomization, on here. Add a ConfigMap
    `guestbook-notes` to Git, then delete it:
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
    md("**Self-check.** Gone, named in a `Pruned` event, the app Synced, the rest untouched."),
    check("""
    assert notes_uid() == "" and "guestbook-notes" in pruned["message"]
    app = lab.wait_for("guestbook", lambda a: a["status"]["sync"]["status"] == "Synced",
                       what="the app to be Synced", timeout=30)
    assert {r["name"] for r in app["status"]["resources"]} == {"guestbook-config", "guestbook-ui"}
    """),
    md("""
    ### Without `prune`: OutOfSync, and "requires pruning"

    With `prune: false` the agent applies the commit but deletes nothing: the ConfigMap stays,
    the app is **OutOfSync**, and `status.resources` lists it with `requiresPruning: true` (as
    in Argo CD). A person decides: sync with `--prune`, or restore the file.
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
    md("**Self-check.** Gone from Git, still live, marked as requiring pruning."),
    check("""
    assert notes_uid() != ""
    assert [r["name"] for r in waiting] == ["guestbook-notes"], waiting
    assert app["status"]["sync"]["status"] == "OutOfSync"
    """),
    md("Sync once with `--prune` (the dashboard's *Sync* with *Prune* ticked), turn automated pruning back on, and put the file back for your turn:"),
    live("""
    !gitops-lab app sync guestbook --prune
    lab.apps.set_policy("guestbook", prune=True)
    lab.wait_until(lambda: notes_uid() == "", timeout=30, what="the sync to prune ConfigMap guestbook-notes")

    lab.commit({NOTES: notes}, "Add release notes for the exercise")
    lab.wait_until(lambda: notes_uid() != "", timeout=30, what="the agent to create ConfigMap guestbook-notes")
    mark = lab.mark_events()
    print("in Git and live: ConfigMap guestbook-notes — your clone is", lab.workcopy.path)
    """),
    md("""
    ### ✏️ Your turn: delete a file from Git

    Remove `apps/guestbook/notes.yaml` as at work — uncomment the starter, or in your clone:

        git rm apps/guestbook/notes.yaml
        git commit -m "Drop the release notes"
        git push

    The check wants the file gone from `main` on the server, and the ConfigMap pruned with a
    `Pruned` event.
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

    On call, you learn of drift from an **alert**, not an Event. For `DriftDetected`,
    `SyncFailed` and `HealthDegraded` the agent POSTs JSON (app, reason, message, revision,
    objects) to its `--alert-webhook` — as Argo CD Notifications or Flux's
    notification-controller (`Alert`, `Provider`) send to Slack, Teams, webhooks. What this
    chapter's receiver got (where it runs follows the agent):
    """),
    live("""
    print(alerts.where)
    alerts.widget()  # live: refreshed every 2 s
    """),
    md("**Self-check.** The drifts of section 1 (self-heal off) and section 4 (on) arrived."),
    check("""
    drifts = alerts.alerts("DriftDetected")
    assert any("self-heal is off" in a["message"] and "spec.replicas" in a["message"] for a in drifts), drifts
    assert any("self-heal reverts it" in a["message"] for a in drifts), drifts
    assert all(a["app"] == "gitops-lab/guestbook" for a in drifts)
    """),
    md("""
    The agent's Prometheus `/metrics` (`lab.agent_url`): reconciles by result, drift
    detections, a histogram of reconcile time. A thread sampled them every second; dashed
    lines mark your changes. The cell then stops the sampler and the receiver (on local it
    lives in this notebook; on kind it is a pod and stays).
    """),
    live("""
    import urllib.request

    with urllib.request.urlopen(lab.agent_url + "/metrics", timeout=5) as resp:
        print("\\n".join(line for line in resp.read().decode().splitlines()
                        if line.startswith(("gitopslab_reconcile_total", "gitopslab_drift_detected_total"))))
    metrics.stop()  # the sampler ends here
    alerts.close()  # local: the receiver stops, the agent restarts without the webhook · kind: nothing
    metrics.plot()
    """),
    md("**Self-check.** The sampler saw reconciles and at least the two drifts of sections 1 and 4."),
    check("""
    last = metrics.samples[-1]
    assert len(metrics.samples) > 10 and last["reconciles"] > metrics.samples[0]["reconciles"]
    assert last["drift"] - metrics.samples[0]["drift"] >= 2, (metrics.samples[0], last)
    """),
    md("""
    Self-heal in production? Usually yes: the cluster should not silently diverge from what
    was reviewed; incident fixes then go through Git, which is the point. (05's catch-up
    turns it off.)

    Next: **05 · Rollback**.
    """),
]
