# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 08 · notebooks/08-environments-and-promotion.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check  # noqa: F401

NAME = "08-environments-and-promotion"

CELLS = [
    md("""
    # 08 · Environments and promotion

    "Production matches what you tested": with GitOps that is a property of Git. Each
    environment is a directory in the config repo, watched by its own Application; they share a
    **base** and differ only where an **overlay** says so. Moving a release from staging to
    production — **promotion** — is a Git change like any other: a branch, a review of its diff,
    a merge into `main`. The agent does the rest.
    """),
    code(CONNECT),
    live("""
    from IPython.display import HTML

    from gitops_lab.course import environments as envs

    # Catch-up: your clone on main, the staging and production overlays in Git, their two
    # Applications Synced and Healthy (this chapter removes them again at its end)
    apps = envs.setup(lab)
    CLONE = lab.workcopy.path  # your clone of the config repo, for the git commands below
    print("provider:", lab.provider_kind, "· agent:", lab.agent_mode, "· clone:", CLONE)
    """),
    md("""
    ## 1. One base, two overlays

    **Kustomize** (built into `kubectl`, and what the agent renders a directory with when it
    holds a `kustomization.yaml`) builds an environment from a **base** — the app's manifests
    — and an **overlay** that patches it. The config repo now has:

    * `envs/guestbook/base/` — the guestbook's Deployment, ConfigMap and a ClusterIP Service;
    * `envs/guestbook/overlays/staging/` and `overlays/production/` — each a `kustomization.yaml`
      (its namespace, replica count and image tag) and `config.yaml` (a patch of the ConfigMap:
      its `GREETING` and `THEME`).

    Overlays reach the base with `../../base`; the agent reads exactly the files a
    kustomization names, and refuses paths that leave the repository.
    """),
    live("""
    !git -C {CLONE} ls-files envs
    !cat {CLONE}/envs/guestbook/overlays/production/kustomization.yaml
    !cat {CLONE}/envs/guestbook/overlays/production/config.yaml
    """),
    md("What the agent will apply for production is what `kubectl kustomize` prints — try it in a terminal too:"),
    live("""
    !kubectl kustomize {CLONE}/envs/guestbook/overlays/production
    """),
    md("""
    ## 2. Two Applications, one per environment

    Each environment is an Application with its own `spec.source.path` and destination
    namespace: `guestbook-staging` and `guestbook-production`. Both track `main`. (Larger teams
    often point production at a branch or tag of its own; one branch and a reviewed merge
    into it is the simplest setup that still makes every change to production a reviewed
    commit.)
    """),
    live("""
    import yaml

    print(yaml.safe_dump({k: apps["production"][k] for k in ("apiVersion", "kind", "spec")}, sort_keys=False))
    !kubectl get applications -n gitops-lab
    !kubectl get deployments -A -l app.kubernetes.io/name=guestbook
    """),
    md("""
    Where they run: on kind their pods really run, both environments side by side on the one
    node (each in its namespace); on the local provider kwok reports them Running and no
    container runs. Either way their Services are ClusterIP ones: `lab.app_url` serves only
    the lab's sample guestbook (its NodePort), not these two.
    """),
    live("""
    !kubectl get pods -n guestbook-staging -o wide
    !kubectl get pods -n guestbook-production -o wide
    print("lab.app_url:", lab.app_url, "— the sample guestbook only (None on the local provider)")
    """),
    md("**Self-check.** Both environments are Synced and Healthy at the same commit, each in its own namespace."),
    check("""
    revs = {env: app["status"]["sync"]["revision"] for env, app in apps.items()}
    assert revs["staging"] == revs["production"] == lab.workcopy.head, revs
    assert all(app["status"]["health"]["status"] == "Healthy" for app in apps.values())
    assert lab.kubectl("-n", "guestbook-production", "get", "deployment", "guestbook-ui", "-o", "jsonpath={.spec.replicas}") == "2"
    assert lab.kubectl("-n", "guestbook-staging", "get", "deployment", "guestbook-ui", "-o", "jsonpath={.spec.replicas}") == "1"
    """),
    md("""
    ## 3. A change reaches staging first — and the environments drift apart

    Release `1.1.0` goes to staging: one commit to the staging overlay's image tag, straight to
    `main` (many teams let CI, or chapter 07's image updater, write staging's tag). Staging
    syncs; production, whose overlay did not change, stays on `1.0.0`.
    """),
    live("""
    path = CLONE / "envs/guestbook/overlays/staging/kustomization.yaml"
    to_staging = lab.commit({"envs/guestbook/overlays/staging/kustomization.yaml":
                             path.read_text().replace("newTag: 1.0.0", "newTag: 1.1.0")},
                            "staging: guestbook 1.1.0")
    !git -C {CLONE} show --stat --format='%h %s' HEAD
    staging = envs.wait_synced(lab, "staging", to_staging)
    """),
    md("""
    **Drift between environments**: compare what each renders from Git and what runs. Some
    values differ on purpose (namespace, size, theme: that is what an overlay is for); a
    release value that differs — the image, the GREETING — is drift waiting to be promoted.
    """),
    live("""
    HTML(envs.table_html(envs.compare(lab)))
    """),
    live("""
    print(envs.rendered_diff(lab))  # the same, as `diff -u` of the two rendered overlays
    """),
    md("**Self-check.** Staging runs `1.1.0`, production still `1.0.0`."),
    check("""
    rows = {r["field"]: r for r in envs.compare(lab)}
    assert rows["image"]["staging"] == rows["image"]["staging_live"] == "gitops-lab/guestbook:1.1.0", rows["image"]
    assert rows["image"]["production"] == rows["image"]["production_live"] == "gitops-lab/guestbook:1.0.0", rows["image"]
    """),
    md("""
    ## 4. Promotion as a Git change: branch, review, merge

    Promoting `1.1.0` means: make production's overlay say what staging's says. Done as a team
    does it, in your clone with plain `git`:

    1. a **branch** for the change, `promote-1.1.0`, and a commit on it;
    2. **push the branch** — on GitHub or GitLab you would now open a pull/merge request;
    3. **review**: `git diff main...promote-1.1.0` is exactly what the request shows — the
       change since the branch left `main`;
    4. **merge** into `main` with `--no-ff` (a merge commit records that a reviewed branch came
       in, and `git revert -m 1` of it undoes the whole promotion) and push `main`.

    The agent watches `main` only: the pushed branch changes nothing in the cluster until it
    is merged.
    """),
    live("""
    !git -C {CLONE} checkout -b promote-1.1.0
    prod = CLONE / "envs/guestbook/overlays/production/kustomization.yaml"
    prod.write_text(prod.read_text().replace("newTag: 1.0.0", "newTag: 1.1.0"))  # your editor, in real life
    !git -C {CLONE} commit -qam "production: guestbook 1.1.0, as tested in staging"
    !git -C {CLONE} push -q -u origin promote-1.1.0
    """),
    md("The review: what would merge into `main`. One line, in production's overlay only:"),
    live("""
    !git -C {CLONE} diff main...promote-1.1.0
    """),
    md("**Self-check.** The branch is on the server, `main` is not changed, and production still runs `1.0.0`."),
    check("""
    import subprocess

    def server_ref(ref):
        out = subprocess.run(["git", "-C", str(CLONE), "ls-remote", "origin", ref], capture_output=True, text=True, check=True)
        return out.stdout.split()[0] if out.stdout.strip() else None

    assert server_ref("refs/heads/promote-1.1.0")
    assert server_ref("refs/heads/main") == to_staging
    assert lab.app("guestbook-production")["status"]["sync"]["revision"] == to_staging
    assert envs.live_summary(lab, "production")["image"] == "gitops-lab/guestbook:1.0.0"
    """),
    md("Approved. Merge, push `main`, delete the merged branch; then the agent syncs production:"),
    live("""
    !git -C {CLONE} checkout -q main
    !git -C {CLONE} merge --no-ff -m "Merge branch 'promote-1.1.0': guestbook 1.1.0 to production" promote-1.1.0
    !git -C {CLONE} push -q origin main
    !git -C {CLONE} push -q origin --delete promote-1.1.0
    !git -C {CLONE} branch -d promote-1.1.0
    !git -C {CLONE} log --graph --format='%h %s' -4
    merged = lab.workcopy.head
    production = envs.wait_synced(lab, "production", merged)
    HTML(envs.table_html(envs.compare(lab)))
    """),
    md("**Self-check.** `main` has a merge commit; production runs `1.1.0`, like staging; only the on-purpose values still differ."),
    check("""
    parents = lab.workcopy.repo.commit(merged).parents
    assert len(parents) == 2, "a merge commit has two parents"
    rows = {r["field"]: r for r in envs.compare(lab)}
    assert rows["image"]["production_live"] == rows["image"]["staging_live"] == "gitops-lab/guestbook:1.1.0"
    assert [r["field"] for r in rows.values() if r["staging"] != r["production"]] == ["namespace", "replicas", "THEME"]
    """),
    md("""
    ## 5. ✏️ Your turn: promote the new greeting

    A teammate tries a new `GREETING` in staging — a commit to the staging overlay's
    `config.yaml`, straight to `main` (run the cell):
    """),
    live("""
    tried = envs.teammate_greeting(lab)
    staging = envs.wait_synced(lab, "staging", tried)
    HTML(envs.table_html(envs.compare(lab)))
    """),
    md("""
    It works in staging. **Promote it to production, by branch and merge**: make a branch
    `promote-greeting`, set `GREETING` in `envs/guestbook/overlays/production/config.yaml` to
    staging's (keep production's `THEME`), commit, push the branch, review
    `git diff main...promote-greeting`, then on `main` `git merge --no-ff promote-greeting`
    and push `main`. A commit straight on `main` does not count: the check looks for the merge.

    Do it in a terminal in your clone (the cell prints its path), or with `!git -C {CLONE} …`
    cells below. The starter only shows where you are.
    """),
    starter("""
    print("your clone:", CLONE)
    !git -C {CLONE} status --short --branch
    !grep GREETING {CLONE}/envs/guestbook/overlays/staging/config.yaml {CLONE}/envs/guestbook/overlays/production/config.yaml
    # !git -C {CLONE} checkout -b promote-greeting
    # … edit envs/guestbook/overlays/production/config.yaml, then commit, push the branch, review, merge, push main
    """),
    solution("""
    !git -C {CLONE} checkout -b promote-greeting
    config = CLONE / "envs/guestbook/overlays/production/config.yaml"
    config.write_text(config.read_text().replace('GREETING: "Hello from Git"', f'GREETING: "{envs.NEW_GREETING}"'))
    !git -C {CLONE} commit -qam "production: the new greeting, as tried in staging"
    !git -C {CLONE} push -q -u origin promote-greeting
    !git -C {CLONE} diff main...promote-greeting
    !git -C {CLONE} checkout -q main
    !git -C {CLONE} merge --no-ff -m "Merge branch 'promote-greeting': the new greeting to production" promote-greeting
    !git -C {CLONE} push -q origin main
    """),
    task_check("08-promote"),
    live("""
    HTML(envs.table_html(envs.compare(lab)))
    """),
    md("""
    ## 6. Clean up

    Delete both Applications — they carry the resources finalizer, so the agent deletes what
    they deployed — with their namespaces, and take `envs/` out of Git (and any `promote-*`
    branch), so other chapters start clean. Running this chapter again sets it all up anew.
    """),
    live("""
    envs.teardown(lab)
    !kubectl get applications -n gitops-lab
    !git -C {CLONE} branch -a
    """),
    md("**Self-check.** No environment Application is left, `envs/` is gone from Git, and your clone is on `main`."),
    check("""
    names = [a["metadata"]["name"] for a in lab.apps.list()]
    assert "guestbook-staging" not in names and "guestbook-production" not in names, names
    assert not (CLONE / "envs").exists()
    assert lab.workcopy.branch == "main"
    """),
    md("Next: **99 · Cleanup** — when you are done."),
]
