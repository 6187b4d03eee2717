# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 04 · notebooks/04-drift-and-self-heal.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check  # noqa: F401

NAME = "04-drift-and-self-heal"

CELLS = [
    md("""
    # 04 · Drift and self-heal

    **Drift** is any difference between the live cluster and Git that no commit explains:
    someone ran `kubectl scale`, edited an image, deleted an object. A GitOps agent keeps
    comparing, so it *detects* drift; with **self-heal** on it also *reverts* it.
    """),
    code(CONNECT),
    live("""
    app = lab.reset_sample()  # catch-up: pristine sample, automated sync with prune, self-heal OFF
    seen = {e["metadata"]["name"] for e in lab.events("guestbook")}  # events from earlier runs
    """),
    md("""
    ## 1. Drift: scale by hand, behind Git's back

    Git says 2 replicas. Scale to 5 with `kubectl`, as someone fighting a fire might. The
    Deployment really gets three more pods — on kind three more containers start
    (`lab.provider_kind` says which provider you have):
    """),
    live("""
    import json


    def pods(image: str | None = None) -> list[dict]:  # the app's pods not being deleted (running IMAGE)
        items = json.loads(lab.kubectl("get", "pods", "-n", "guestbook", "-o", "json"))["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")
                and (image is None or p["spec"]["containers"][0]["image"] == image)]


    def ready(pod: dict) -> bool:
        return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


    print(lab.kubectl("scale", "deployment/guestbook-ui", "-n", "guestbook", "--replicas=5"))
    app = lab.wait_for("guestbook", lambda a: a["status"]["sync"]["status"] == "OutOfSync",
                       what="the agent to see the change (it watches the objects it deployed)",
                       timeout=30)
    lab.wait_until(lambda: any(e["metadata"]["name"] not in seen
                               for e in lab.events("guestbook", "DriftDetected")),
                   what="the agent's DriftDetected event", timeout=30)
    lab.wait_until(lambda: sum(map(ready, pods())) == 5, timeout=60,
                   what=f"5 ready pods (on {lab.provider_kind}: " + ("containers started by the kubelet)"
                         if lab.provider_kind == "kind" else "reported Running by kwok, nothing runs)"))
    print(lab.kubectl("get", "pods", "-n", "guestbook", "-o", "wide"))
    """),
    md("""
    The agent recorded a Kubernetes Event — `DriftDetected`, highlighted below — and, when an
    alert webhook is configured, POSTs an alert. This log is live; it also shows the events
    the agent records later in this chapter.
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
    drift = [e for e in lab.events("guestbook", "DriftDetected") if e["metadata"]["name"] not in seen]
    assert drift and "spec.replicas" in drift[0]["message"], drift[0]["message"] if drift else "no event"
    assert lab.app("guestbook")["status"]["sync"]["status"] == "OutOfSync"
    assert lab.kubectl("get", "deployment", "guestbook-ui", "-n", "guestbook",
                       "-o", "jsonpath={.spec.replicas}") == "5"
    assert sum(map(ready, pods())) == 5
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
    `replicas: 5` to Git, if 5 was right: then Git is the truth again.)
    """),
    live("""
    lab.apps.sync("guestbook")
    app = lab.wait_for("guestbook", lambda a: a["status"]["sync"]["status"] == "Synced",
                       what="the sync to put Git's 2 replicas back", timeout=30)
    """),
    md("**Self-check.** Back to what Git says — and the three extra pods are gone."),
    check("""
    assert lab.kubectl("get", "deployment", "guestbook-ui", "-n", "guestbook",
                       "-o", "jsonpath={.spec.replicas}") == "2"
    lab.wait_until(lambda: len(pods()) == 2, timeout=60,
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
    git_image = yaml.safe_load(lab.read("apps/guestbook/deployment.yaml"))["spec"]["template"]["spec"]["containers"][0]["image"]
    print(lab.kubectl("set", "image", "deployment/guestbook-ui", "-n", "guestbook",
                      "web=gitops-lab/guestbook:1.1.0"))


    def live_image() -> str:
        return lab.kubectl("get", "deployment", "guestbook-ui", "-n", "guestbook",
                           "-o", "jsonpath={.spec.template.spec.containers[0].image}")


    lab.wait_until(lambda: live_image() == git_image, timeout=30,
                   what="the agent to put Git's image back (self-heal)")
    lab.wait_until(lambda: any(e["metadata"]["name"] not in seen
                               for e in lab.events("guestbook", "SelfHealed")),
                   what="the agent's SelfHealed event", timeout=30)
    # the Deployment may have started a 1.1.0 pod meanwhile: it goes away again
    lab.wait_until(lambda: len(pods()) == 2 and all(map(ready, pods(git_image))) and len(pods(git_image)) == 2,
                   timeout=60, what=f"the pods to be 2 ready pods of Git's image {git_image} again")
    lab.dashboard("guestbook")
    """),
    md("**Self-check.** The image is Git's again — in the Deployment and in every pod — and the agent said so in a `SelfHealed` event."),
    check("""
    assert live_image() == git_image
    assert {p["spec"]["containers"][0]["image"] for p in pods()} == {git_image}
    healed = [e for e in lab.events("guestbook", "SelfHealed") if e["metadata"]["name"] not in seen]
    assert healed and "guestbook-ui" in healed[0]["message"], healed
    """),
    md("""
    ## 5. Deleting an object

    Deleting is drift too: Git has the ConfigMap, the cluster does not. With self-heal on the
    agent recreates it — a new object, with a new UID.
    """),
    live("""
    old_uid = lab.kubectl("get", "configmap", "guestbook-config", "-n", "guestbook",
                          "-o", "jsonpath={.metadata.uid}")
    print(lab.kubectl("delete", "configmap", "guestbook-config", "-n", "guestbook"))


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
    When to switch self-heal on? In production, usually yes: the cluster should not silently
    diverge from what was reviewed. Manual changes during an incident then have to go through
    Git — which is the point. The next chapter turns it off again (`reset_sample()` does).

    Next: **05 · Rollback**.
    """),
]

