# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 07 · notebooks/07-ci-pushes-cluster-pulls.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check  # noqa: F401

NAME = "07-ci-pushes-cluster-pulls"

CELLS = [
    md("""
    # 07 · CI pushes, the cluster pulls: image updates through Git

    New *images* come from CI, but CI must not deploy them (that makes it a pusher again). CI
    only **pushes an image**; an updater **in the agent** sees the tag and **writes it to
    Git**; the agent deploys that commit. You pin `1.0.0`, watch `1.1.0` arrive through Git,
    and see `2.0.0` ignored.
    """),
    code(CONNECT),
    live("""
    # Catch-up: no ImagePolicy left from an earlier run, pristine sample, Synced and Healthy.
    lab.kubectl("-n", "gitops-lab", "delete", "imagepolicy", "guestbook", "--ignore-not-found")
    app = lab.reset_sample()
    import json
    import urllib.request

    from gitops_lab.course.ch07 import forget_tags

    registry = lab.registry  # host:port of the lab's registry (started on first use)
    forget_tags(lab)  # the tags of section 7, if an earlier run pushed them
    print("the lab registry:", registry, "· provider:", lab.provider_kind, "· agent:", lab.agent_mode)
    """),
    md("""
    ## 1. The pull pipeline, drawn

    * CI writes to the registry only: no Git write access, no kubeconfig.
    * The image updater runs in the agent (its pod on kind, its process on local). It *reads*
      the registry (at once on a push notification; a scan every `interval` catches the rest)
      and *writes* one commit to Git.
    * The agent *pulls* Git and applies — the only thing that changes a workload. Git's
      history records every image that ran.
    """),
    code("""
    from IPython.display import HTML


    def box(x, label, sub, colour):
        return (f'<rect x="{x}" y="40" width="130" height="56" rx="8" fill="{colour}" stroke="#34495e"/>'
                f'<text x="{x + 65}" y="64" text-anchor="middle" font-size="13" font-weight="bold">{label}</text>'
                f'<text x="{x + 65}" y="82" text-anchor="middle" font-size="10">{sub}</text>')


    def arrow(x1, label):  # from the box at x1 to the next one, 64 px to its right
        x1 += 130
        return (f'<line x1="{x1}" y1="68" x2="{x1 + 60}" y2="68" stroke="#34495e" stroke-width="2" marker-end="url(#head)"/>'
                f'<text x="{x1 + 32}" y="60" text-anchor="middle" font-size="10">{label}</text>')


    X = [10 + i * 194 for i in range(6)]  # CI, registry, updater, Git, agent, cluster
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1130 200" width="100%" style="max-width:1130px" font-family="sans-serif">'
        '<defs><marker id="head" markerWidth="8" markerHeight="8" refX="6" refY="4" orient="auto">'
        '<path d="M0,0 L8,4 L0,8 z" fill="#34495e"/></marker></defs>'
        + "".join(f'<rect x="{x - 8}" y="26" width="146" height="96" rx="10" fill="none" stroke="#0b7a55" stroke-dasharray="6 4"/>'
                  f'<text x="{x + 65}" y="138" text-anchor="middle" font-size="11" fill="#0b7a55">the agent process</text>'
                  for x in (X[2], X[4]))
        + '<text x="565" y="16" text-anchor="middle" font-size="11" fill="#0b7a55">dashed: the agent (its pod on kind), the only holder of credentials that change the cluster</text>'
        + box(X[0], "CI", "builds, pushes", "#fdecee") + arrow(X[0], "push 1.1.0")
        + box(X[1], "registry", "guestbook:1.0.0, 1.1.0…", "#eef3f7") + arrow(X[1], "reads tags")
        + box(X[2], "image updater", "ImagePolicy: semver", "#d8f5ea") + arrow(X[2], "commits tag")
        + box(X[3], "Git", "apps/guestbook", "#fff4d6") + arrow(X[3], "pulls")
        + box(X[4], "agent", "Application sync", "#d8f5ea") + arrow(X[4], "applies")
        + box(X[5], "cluster", "Deployment image", "#eef3f7")
        + f'<text x="{X[0] + 65}" y="118" text-anchor="middle" font-size="11" fill="#a4272f">no Git write access,</text>'
        + f'<text x="{X[0] + 65}" y="133" text-anchor="middle" font-size="11" fill="#a4272f">no kubeconfig</text>'
        + f'<path d="M{X[5] + 65},96 C{X[5] + 65},180 {X[1] + 65},180 {X[1] + 65},99" fill="none" stroke="#8fa4b1" stroke-dasharray="4 3" marker-end="url(#head)"/>'
        + '<text x="565" y="192" text-anchor="middle" font-size="10" fill="#6b7f8c">the node pulls the image the Deployment names (on kind; on the local provider no container runs)</text>'
        + "</svg>"
    )
    HTML(svg)
    """),
    md("""
    **Self-check.** The registry answers on 127.0.0.1; the cluster knows the `ImagePolicy` kind (a [CRD](glossary.md#crd)).
    """),
    check("""
    with urllib.request.urlopen(f"http://{registry}/v2/", timeout=5) as resp:
        assert resp.status == 200, resp.status
    assert registry.startswith("127.0.0.1:"), registry
    assert lab.kubectl("get", "crd", "imagepolicies.gitopslab.io", "-o", "name").strip() == "customresourcedefinition.apiextensions.k8s.io/imagepolicies.gitopslab.io"
    """),
    md("""
    ## 2. Pin the app to an image in the registry, with a marker

    CI pushes `1.0.0` (`gitops-lab ci build 1.0.0` in a terminal). You commit the Deployment's
    image as `REGISTRY/guestbook:1.0.0` with a **marker**: a YAML comment naming the
    ImagePolicy allowed to set that line (as in Flux). The updater touches nothing else.
    """),
    live("""
    ref = lab.ci_build("1.0.0")  # CI: build the sample app at 1.0.0, push it; it never touches Git or the cluster
    print("CI pushed", ref)

    MARKER = '# {"$imagepolicy": "gitops-lab:guestbook"}'
    original = lab.read("apps/guestbook/deployment.yaml")
    pinned = original.replace("image: gitops-lab/guestbook:1.0.0", f"image: {registry}/guestbook:1.0.0 {MARKER}")
    assert pinned != original, "the sample's image line was not found"
    pin = lab.commit({"apps/guestbook/deployment.yaml": pinned}, "Run guestbook from the lab registry, marked for the image updater")
    !git -C {lab.workcopy.path} show --format='%h %an: %s' {pin}
    app = lab.wait_for(
        "guestbook",
        lambda a: a["status"]["sync"].get("revision") == pin and a["status"]["sync"]["status"] == "Synced"
        and a["status"]["health"]["status"] == "Healthy",
        what=f"the agent to deploy {pin[:7]} and the new pods to be ready (on kind the node pulls the image first)",
        timeout=120)


    def deployment_image() -> str:
        return lab.kubectl("-n", "guestbook", "get", "deployment", "guestbook-ui",
                           "-o", "jsonpath={.spec.template.spec.containers[0].image}")


    print("the Deployment runs", deployment_image())
    """),
    md("**Self-check.** The Deployment names the registry's `1.0.0`."),
    check("""
    assert ref == f"{registry}/guestbook:1.0.0", ref
    assert app["status"]["sync"]["revision"] == pin == lab.workcopy.head
    assert deployment_image() == ref
    """),
    md("""
    ## 3. The ImagePolicy: which tags may be deployed

    An `ImagePolicy` names an image, a rule for its latest tag (here the highest **semver** in
    `>=1.0.0 <2.0.0`) and the Application whose markers it may update. A person creates it;
    the agent only reads it and writes its status.
    """),
    live("""
    import yaml

    policy = lab.image_policy("guestbook", app="guestbook", semver=">=1.0.0 <2.0.0", interval="10s")
    print(yaml.safe_dump(policy, sort_keys=False))
    before = lab.workcopy.head  # Git before the updater may write: the pin commit
    lab.apps.apply(policy)  # the same as `kubectl apply -f imagepolicy.yaml`


    def status() -> dict:
        return json.loads(lab.kubectl("-n", "gitops-lab", "get", "imagepolicy", "guestbook", "-o", "json")).get("status") or {}


    def registry_tags() -> list[str]:
        with urllib.request.urlopen(f"http://{registry}/v2/guestbook/tags/list", timeout=5) as resp:
            return sorted(json.load(resp)["tags"] or [])


    lab.wait_until(lambda: bool(status().get("latestTag")),
                   what="the updater's first scan of the registry (it starts when the policy appears)", timeout=30)
    !kubectl get imagepolicies -n gitops-lab
    """),
    md("""
    **Self-check.** The policy is Ready and chose the highest tag in range (`1.0.0`, unless an
    earlier run left more tags).
    """),
    check("""
    tags = registry_tags()
    in_range = [t for t in tags if t.startswith("1.")]
    assert status()["latestTag"] == max(in_range, key=lambda t: tuple(map(int, t.split(".")))), (tags, status())
    ready = [c for c in status()["conditions"] if c["type"] == "Ready"][0]
    assert ready["status"] == "True", ready
    """),
    md("""
    ## 4. CI pushes `1.1.0` → the updater commits → the agent rolls it out

    Only CI acts: it pushes `1.1.0`; the updater rewrites the marked line in **one commit**
    (author `gitops-lab image updater`) and refreshes the Application. Nobody ran `kubectl`.
    """),
    live("""
    import time

    UPDATER = "gitops-lab image updater"


    def updater_commits() -> list:
        lab.workcopy.pull()  # fetch what the updater pushed
        return [c for c in lab.workcopy.repo.iter_commits(f"{before}..HEAD") if c.author.name == UPDATER]


    early = bool(updater_commits())  # only when this chapter ran before with the same registry
    if early:
        print("the registry already held 1.1.0 from an earlier run: the updater committed it as soon as the policy appeared")
    start = time.monotonic()
    lab.ci_build("1.1.0")
    lab.wait_until(lambda: len(updater_commits()) >= 1,
                   what="the image updater's commit in Git (the registry notifies it of the push)",
                   timeout=60, interval=1.0)
    if not early:
        print(f"CI push → commit in Git: {time.monotonic() - start:.1f} s")
    !git -C {lab.workcopy.path} log --format='%h %an: %s' -3
    !git -C {lab.workcopy.path} show --format= HEAD
    """),
    md("""
    The agent deploys it. On kind the node pulls `1.1.0` and the page shows it. On local **no
    container runs**: you see the Deployment's image and kwok's pods.
    """),
    live("""
    import re

    from gitops_lab.lab import LabError

    update = updater_commits()[0].hexsha
    app = lab.wait_for(
        "guestbook",
        lambda a: a["status"]["sync"].get("revision") == update and a["status"]["sync"]["status"] == "Synced"
        and a["status"]["health"]["status"] == "Healthy",
        what=f"the agent to deploy the updater's commit {update[:7]} and the pods of 1.1.0 to be ready",
        timeout=120)
    print("the Deployment runs", deployment_image())


    def page_version() -> str:
        try:
            found = re.search(r'id="version">([^<]+)<', lab.fetch_app())
        except LabError:  # e.g. right after a rollout, a request that reached a pod going away
            return ""
        return found.group(1) if found else ""


    if lab.app_url:
        lab.wait_until(lambda: page_version() == "1.1.0", what="the page to be served by 1.1.0", timeout=60)
        print("the page at", lab.app_url, "is served by version", page_version())
    else:
        print("local provider: no container runs, so no page; the pods name", deployment_image())
    print(f"CI push → rolled out: {time.monotonic() - start:.1f} s")
    """),
    md("""
    **Self-check.** One updater commit, changing only the marked line; the pods run `1.1.0`.
    """),
    check("""
    commits = updater_commits()
    assert len(commits) == 1, [c.summary for c in commits]
    assert list(commits[0].stats.files) == ["apps/guestbook/deployment.yaml"], commits[0].stats.files
    assert lab.read("apps/guestbook/deployment.yaml") == pinned.replace(f"{registry}/guestbook:1.0.0", f"{registry}/guestbook:1.1.0")
    assert deployment_image() == f"{registry}/guestbook:1.1.0"
    pods = json.loads(lab.kubectl("-n", "guestbook", "get", "pods", "-o", "json"))["items"]
    live_pods = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert live_pods and {p["spec"]["containers"][0]["image"] for p in live_pods} == {f"{registry}/guestbook:1.1.0"}
    assert status()["latestTag"] == "1.1.0" and status()["lastUpdate"]["revision"] == update, status()
    if lab.app_url:  # a request may still reach an old pod that is shutting down: ask until none does
        lab.wait_until(lambda: all(page_version() == "1.1.0" for _ in range(3)),
                       what="three page requests in a row answered by 1.1.0", timeout=30)
    """),
    md("""
    ## 5. CI pushes `2.0.0` → ignored, on purpose

    A new *major* version means breaking changes; `>=1.0.0 <2.0.0` takes fixes and features,
    never a major. The updater sees `2.0.0` and keeps `1.1.0`: no commit. Taking `2.x` is a
    person's decision (the range, or the marked line).
    """),
    live("""
    head = lab.workcopy.head
    lab.ci_build("2.0.0")
    lab.wait_until(lambda: status().get("observedTags", 0) >= len(registry_tags()),
                   what="the updater to scan the registry after the push (it sees every tag)", timeout=60)
    print("tags in the registry:", ", ".join(registry_tags()))
    print("the policy's latest tag:", status()["latestTag"])
    print([c["message"] for c in status()["conditions"] if c["type"] == "Ready"][0])
    !kubectl get imagepolicies -n gitops-lab
    """),
    md("**Self-check.** `2.0.0` seen, not chosen; no new commit."),
    check("""
    assert "2.0.0" in registry_tags() and status()["observedTags"] == len(registry_tags())
    assert status()["latestTag"] == "1.1.0", status()
    assert len(updater_commits()) == 1 and lab.workcopy.head == head, "no commit for a tag out of range"
    assert deployment_image() == f"{registry}/guestbook:1.1.0"
    """),
    md("""
    ## 6. The image timeline: registry, Git, cluster at a glance

    Registry **tags** (faded = out of range), the **policy**'s choice, the tag in **Git** and
    the one the pods **run**: all on one tag = settled. (It reads Git via 127.0.0.1,
    `lab.push_url`; on kind `repoURL` names the in-cluster Git server, which only pods resolve.)
    """),
    live("""
    from gitops_lab.widgets import ImageTimeline

    timeline = ImageTimeline(lab.kube, "guestbook", cluster=lab.provider.name)
    timeline
    """),
    md("**Self-check.** Policy, Git and pods agree on `1.1.0`."),
    check("""
    entries = {e["tag"]: e for e in timeline.entries}
    assert not timeline.message.value, timeline.message.value  # it could read the registry, Git and the pods
    assert {"1.0.0", "1.1.0", "2.0.0"} <= set(entries), list(entries)
    assert entries["1.1.0"]["latest"] and timeline.in_git == {"1.1.0"} and timeline.running == {"1.1.0"}, (timeline.in_git, timeline.running)
    assert entries["2.0.0"]["in_range"] is False and not entries["2.0.0"]["latest"]
    """),
    md("""
    ## 7. ✏️ Your turn: a release you must not take

    CI pushes `1.1.1` (a fix) and `1.2.0` (needs a migration you have not done; built broken:
    on kind never Ready, on local kwok fails only `-broken` tags — either way it must not
    reach Git). The current range would take `1.2.0`, so the policy goes first:
    """),
    live("""
    lab.kubectl("-n", "gitops-lab", "delete", "imagepolicy", "guestbook")
    lab.ci_build("1.1.1")
    lab.ci_build("1.2.0", broken=True)
    print("tags in the registry:", ", ".join(registry_tags()))
    !kubectl get imagepolicies -n gitops-lab
    """),
    md("""
    Re-create the ImagePolicy with a **range that takes every `1.1.x` patch and never
    `1.2.0`**. Syntax as in npm and Flux: `>=A.B.C <X.Y.Z`, `~A.B` (patches of A.B), `^A.B.C`
    (no new major). Fill in `RANGE` and run the cell (or `kubectl apply -f` the file in a
    terminal).
    """),
    starter("""
    RANGE = ""  # ✏️ a semver range: every 1.1.x patch, never 1.2.0

    POLICY = f'''\\
    apiVersion: gitopslab.io/v1alpha1
    kind: ImagePolicy
    metadata: {{name: guestbook, namespace: gitops-lab}}
    spec:
      image: {registry}/guestbook
      interval: 10s
      policy:
        semver: {{range: "{RANGE}"}}
      update:
        applicationRef: {{name: guestbook}}
    '''
    path = lab.state_dir / "imagepolicy.yaml"
    path.write_text(POLICY)
    if RANGE:
        print(POLICY)
        !kubectl apply -f {path}
    else:
        print("fill in RANGE first, then run this cell again")
    """),
    solution("""
    RANGE = ">=1.1.0 <1.2.0"  # or "~1.1"
    path.write_text(POLICY.replace('range: ""', f'range: "{RANGE}"'))
    !kubectl apply -f {path}
    """),
    task_check("07-range"),
    md("The updater's commit, and what the policy saw (every tag) and chose:"),
    live("""
    !git -C {lab.workcopy.path} log --format='%h %an: %s' -3
    chosen = [(p.get("status") or {}).get("latestTag") for p in lab.image_policies() if p["metadata"]["name"] == "guestbook"]
    print("the policy's latest tag:", chosen[0] if chosen else "(no policy yet)", "· the Deployment runs", deployment_image())
    """),
    md("""
    ## 8. Clean up

    Delete the ImagePolicy and restore the sample. The registry keeps its tags.
    """),
    live("""
    lab.kubectl("-n", "gitops-lab", "delete", "imagepolicy", "guestbook", "--ignore-not-found")
    app = lab.reset_sample()
    print("the Deployment runs", deployment_image())
    """),
    md("**Self-check.** No ImagePolicy; Git and cluster back to the sample."),
    check("""
    assert lab.image_policies() == []
    assert lab.read("apps/guestbook/deployment.yaml") == original
    assert deployment_image() == "gitops-lab/guestbook:1.0.0"
    assert app["status"]["sync"]["revision"] == lab.workcopy.head
    """),
    md("Next: **08 · Environments and promotion**."),
]

