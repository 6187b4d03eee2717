# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 08 · notebooks/08-environments-and-promotion.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check  # noqa: F401

NAME = "08-environments-and-promotion"

CELLS = [
    md("""
    # 08 · Environments and promotion

    Each environment is a directory in Git with its own Application; they share a **base** and
    differ where an **overlay** says. **Promotion** (staging → production) is a Git change: a
    branch, a reviewed diff, a merge into `main`.
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

    **[Kustomize](glossary.md#kustomize)** (in `kubectl`; the agent uses it for a directory with a `kustomization.yaml`)
    patches a **base** with an **overlay**:

    * `envs/guestbook/base/`: Deployment, ConfigMap, ClusterIP Service;
    * `envs/guestbook/overlays/{staging,production}/`: `kustomization.yaml` (namespace,
      replicas, image tag) and `config.yaml` (the ConfigMap's `GREETING` and `THEME`).

    The agent refuses paths that leave the repository.
    """),
    live("""
    !git -C {CLONE} ls-files envs
    !cat {CLONE}/envs/guestbook/overlays/production/kustomization.yaml
    !cat {CLONE}/envs/guestbook/overlays/production/config.yaml
    """),
    md("What the agent applies for production is what `kubectl kustomize` prints:"),
    live("""
    !kubectl kustomize {CLONE}/envs/guestbook/overlays/production
    """),
    md("""
    ## 2. Two Applications, one per environment

    Each has its own `spec.source.path` and namespace (`guestbook-staging`,
    `guestbook-production`); both track `main` (some teams give production its own branch or
    tag). On kind their pods really run; on local kwok reports them Running. Their Services
    are ClusterIP: `lab.app_url` serves only the sample guestbook.
    """),
    live("""
    import yaml

    print(yaml.safe_dump({k: apps["production"][k] for k in ("apiVersion", "kind", "spec")}, sort_keys=False))
    !kubectl get applications -n gitops-lab
    !kubectl get deployments -A -l app.kubernetes.io/name=guestbook
    !kubectl get pods -n guestbook-staging -o wide
    !kubectl get pods -n guestbook-production -o wide
    print("lab.app_url:", lab.app_url, "— the sample guestbook only (None on the local provider)")
    """),
    md("**Self-check.** Both Synced and Healthy at the same commit."),
    check("""
    revs = {env: app["status"]["sync"]["revision"] for env, app in apps.items()}
    assert revs["staging"] == revs["production"] == lab.workcopy.head, revs
    assert all(app["status"]["health"]["status"] == "Healthy" for app in apps.values())
    assert lab.kubectl("-n", "guestbook-production", "get", "deployment", "guestbook-ui", "-o", "jsonpath={.spec.replicas}") == "2"
    assert lab.kubectl("-n", "guestbook-staging", "get", "deployment", "guestbook-ui", "-o", "jsonpath={.spec.replicas}") == "1"
    """),
    md("""
    ## 3. A change reaches staging first — and the environments drift apart

    `1.1.0` goes to staging: one commit to its overlay, straight to `main` (often CI or chapter
    07's updater writes it). Production stays on `1.0.0`.
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
    **Drift between environments**: namespace, size, theme differ on purpose; a differing
    release value (image, GREETING) is drift waiting to be promoted.
    """),
    live("""
    print(envs.rendered_diff(lab))  # `diff -u` of the two rendered overlays, then Git vs live per field
    HTML(envs.table_html(envs.compare(lab)))
    """),
    md("**Self-check.** Staging runs `1.1.0`, production still `1.0.0`."),
    check("""
    rows = {r["field"]: r for r in envs.compare(lab)}
    assert rows["image"]["staging"] == rows["image"]["staging_live"] == "gitops-lab/guestbook:1.1.0", rows["image"]
    assert rows["image"]["production"] == rows["image"]["production_live"] == "gitops-lab/guestbook:1.0.0", rows["image"]
    """),
    md("""
    ## 4. Promotion as a Git change: branch, review, merge

    Make production's overlay say what staging's says, with plain `git`:

    1. a **branch** `promote-1.1.0` with the commit;
    2. **push** it (on GitHub/GitLab: open a pull/merge request);
    3. **review** `git diff main...promote-1.1.0` (what the request shows);
    4. **merge** with `--no-ff` (`git revert -m 1` undoes the whole promotion), push `main`.

    The agent watches `main` only: the branch changes nothing until merged.
    """),
    live("""
    !git -C {CLONE} checkout -b promote-1.1.0
    prod = CLONE / "envs/guestbook/overlays/production/kustomization.yaml"
    prod.write_text(prod.read_text().replace("newTag: 1.0.0", "newTag: 1.1.0"))  # your editor, in real life
    !git -C {CLONE} commit -qam "production: guestbook 1.1.0, as tested in staging"
    !git -C {CLONE} push -q -u origin promote-1.1.0
    """),
    md("The review — one line, in production's overlay:"),
    live("""
    !git -C {CLONE} diff main...promote-1.1.0
    """),
    md("**Self-check.** The branch is pushed; `main` and production are unchanged."),
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
    md("Approved: merge, push `main`, delete the branch; the agent syncs production:"),
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
    md("**Self-check.** A merge commit; production runs `1.1.0`; only on-purpose values differ."),
    check("""
    parents = lab.workcopy.repo.commit(merged).parents
    assert len(parents) == 2, "a merge commit has two parents"
    rows = {r["field"]: r for r in envs.compare(lab)}
    assert rows["image"]["production_live"] == rows["image"]["staging_live"] == "gitops-lab/guestbook:1.1.0"
    assert [r["field"] for r in rows.values() if r["staging"] != r["production"]] == ["namespace", "replicas", "THEME"]
    """),
    md("""
    ## 5. ✏️ Your turn: promote the new greeting

    A teammate tries a new `GREETING` in staging (run the cell):
    """),
    live("""
    tried = envs.teammate_greeting(lab)
    staging = envs.wait_synced(lab, "staging", tried)
    HTML(envs.table_html(envs.compare(lab)))
    """),
    md("""
    **Promote it by branch and merge**: branch `promote-greeting`; set `GREETING` in
    `envs/guestbook/overlays/production/config.yaml` to staging's (keep `THEME`); commit, push
    the branch, review, `git merge --no-ff promote-greeting` on `main`, push `main`. The check
    wants the merge, not a commit on `main`. Use a terminal in your clone or `!git -C {CLONE} …`.
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

    Delete both Applications (their [finalizer](glossary.md#finalizer) makes the agent delete what they deployed) and
    their namespaces; take `envs/` and `promote-*` branches out of Git.
    """),
    live("""
    envs.teardown(lab)
    !kubectl get applications -n gitops-lab
    !git -C {CLONE} branch -a
    """),
    md("**Self-check.** No environment Application, no `envs/`, clone on `main`."),
    check("""
    names = [a["metadata"]["name"] for a in lab.apps.list()]
    assert "guestbook-staging" not in names and "guestbook-production" not in names, names
    assert not (CLONE / "envs").exists()
    assert lab.workcopy.branch == "main"
    """),
    md("Next: **09 · From the lab to Argo CD and Flux**."),
]
