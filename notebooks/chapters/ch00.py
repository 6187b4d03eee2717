# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 00 · notebooks/00-welcome.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check

NAME = "00-welcome"

CELLS = [
    md("""
    # 00 · Welcome: what GitOps is

    You do GitOps for real here: a Kubernetes cluster on your machine, a Git server holding the
    desired state, and a small **pull-based agent** (shaped after Argo CD) that makes the
    cluster equal Git — and keeps it so.

    **Chapters:** 00 Welcome · 01 Cluster · 02 Config repo and agent · 03 Deploy ·
    04 Drift and self-heal · 05 Rollback · 06 Pull vs push security · 07 CI pushes, the
    cluster pulls · 08 Environments and promotion · 09 Argo CD and Flux · 99 Cleanup.

    Run cells top to bottom (Shift-Enter). *Self-check* cells hold `assert`s; a failure says
    what to look at. ✏️ *Your turn* cells are tasks; the cell after them checks your result and
    hints at what is missing. Unknown word? See the [glossary](glossary.md).
    """),
    md("""
    ## 1. Is your machine ready? `gitops-lab doctor`

    `gitops-lab doctor` lists what the lab needs (Python, the Kubernetes binaries, git), what
    is optional (Docker for the *kind* provider, Chromium for browser tests), and how to get
    what is missing. It changes nothing. `!` runs a shell command; in a terminal, omit it.
    """),
    live("""
    from gitops_lab.course.ch00 import use_lab_commands

    print("gitops-lab and kubectl from", use_lab_commands())  # as your terminal finds them after `make setup`
    !gitops-lab doctor
    """),
    md("**Self-check.** `doctor` exited 0: the local lab can run."),
    check("""
    # _exit_code: the exit status of the last `!` command (IPython sets it)
    assert _exit_code == 0, "doctor found something missing: read its output above"
    """),
    md("""
    ## 2. The ideas, before anything runs

    The four [OpenGitOps](https://opengitops.dev) principles:

    1. **Declarative** — YAML says *what* should run, not how.
    2. **Versioned and immutable** — in Git: every change a commit, with a way back.
    3. **Pulled automatically** — an agent fetches it; nobody pushes it in.
    4. **Continuously reconciled** — the agent keeps correcting differences.

    ```mermaid
    flowchart LR
      subgraph Push["Push: a CI job deploys"]
        d1[developer] -->|git push| g1[(Git)]
        g1 --> ci["CI job<br/>holds an admin kubeconfig"]
        ci -->|kubectl apply| k1[cluster API]
      end
      subgraph Pull["Pull: GitOps"]
        d2[developer] -->|git push| g2[(Git)]
        a["agent<br/>its own ServiceAccount"] -->|git fetch| g2
        a -->|server-side apply| k2[cluster API]
      end
    ```

    * **Push**: CI runs `kubectl apply`, so CI holds cluster credentials and must reach the
      API server. Steal the CI secret, own the cluster.
    * **Pull**: the agent fetches Git and applies with the rights of its own
      [ServiceAccount](glossary.md#serviceaccount), limited by [RBAC](glossary.md#rbac). Git
      and CI hold no cluster credential. Argo CD and Flux run the agent *inside* the cluster;
      where this lab's runs, section 3 prints.

    Four words for every chapter (Argo CD uses them too):
    [Application](glossary.md#application) (what to deploy from Git, and where),
    [Sync](glossary.md#sync) (make the cluster equal Git; *Synced* / *OutOfSync*),
    [Health](glossary.md#health) (does it work: *Healthy*, *Progressing*, *Degraded*,
    *Missing*), [Drift](glossary.md#drift) (the cluster changed behind Git's back).
    """),
    md("""
    ## 3. Connect: the lab comes up

    `Lab.connect()` starts (or finds) the cluster, the lab's Git server and the agent. Every
    chapter starts with it, so chapters run alone. The cluster is **kind** (real pods in
    Docker, chosen when Docker answers; first start a minute or two) or **local** (a real
    control plane, node simulated by [kwok](glossary.md#kwok): no container runs; seconds).
    """),
    code(CONNECT),
    live("""
    print("cluster provider:", lab.provider_kind)  # kind: real pods in Docker · local: simulated node
    if lab.agent_mode == "in-cluster":
        print("the agent runs:   as a pod in the cluster (the Deployment gitops-lab-agent),")
        print("                  with its ServiceAccount's token — like Argo CD and Flux")
    else:
        print("the agent runs:   as a process on this machine (no container can run here),")
        print("                  authenticating with a token of its ServiceAccount, so the")
        print("                  cluster grants it exactly what it would grant the pod")
    print("it pulls from:   ", lab.repo_url)
    """),
    md("**Self-check.** The agent runs where that cell says."),
    check("""
    agent = lab.agent_info()
    assert agent is not None, "the agent should answer its health endpoint"
    if lab.agent_mode == "in-cluster":
        assert agent["pods"], f"the agent should run as a pod: {agent}"
    else:
        assert agent["pid"], f"the agent should run as a process: {agent}"
    """),
    md("""
    ## 4. The sample app, from Git to the cluster

    An Application already deploys the sample app `guestbook` (chapter 03 writes one). Below:
    one of its files in Git, then the agent's report as Argo CD's UI draws it — sync, health,
    live revision, and the objects the app owns, down to the pods.
    """),
    live("""
    from gitops_lab.course.ch00 import catch_up

    app = catch_up(lab)  # catch-up: the pristine sample in Git, deployed and Synced
    print(lab.read("apps/guestbook/deployment.yaml"))
    """),
    live("""
    lab.dashboard("guestbook")
    """),
    md("**Self-check.** The cluster runs exactly the commit at the head of `main`."),
    check("""
    app = lab.app("guestbook")
    head = lab.workcopy.head
    assert app["status"]["sync"]["status"] == "Synced", "the cluster should equal Git"
    assert app["status"]["sync"]["revision"] == head, "the live revision should be the head of main"
    print(f"live revision {head[:7]} = head of main")
    """),
    md("""
    ## 5. The pull, as it happened

    The agent's last [reconcile](glossary.md#reconcile) began with a `fetch` from the lab's
    Git server: the agent opened the connection; nobody pushed to the cluster.
    """),
    live("""
    from gitops_lab.widgets import ReconcileTrace

    ReconcileTrace(lab.apps, "guestbook")
    """),
    md("**Self-check.** The first step was a fetch from the lab's repo."),
    check("""
    steps = {s["name"]: s for s in lab.app("guestbook")["status"]["lastReconcile"]["steps"]}
    assert steps["fetch"]["ok"], steps["fetch"]
    assert lab.repo_url in steps["fetch"]["detail"], "the agent should fetch from the lab's repo"
    print("the agent pulled from", lab.repo_url)
    """),
    md("""
    ## 6. What is ahead

    Drift reverted by *self-heal* (04); rollback by `git revert` (05); developers commit, the
    agent deploys, the platform team sets its RBAC — nobody needs cluster-admin (06);
    promotion by a Git merge (08). And Git's log is the audit trail: who, what, when, why.
    """),
    live("""
    !git -C {lab.workcopy.path} log --format='%h %an %ar  %s' -5
    """),
    md("""
    ### ✏️ Your turn: which image runs? Ask the cluster, record it in Git

    `kubectl` *reads* the cluster, `git` *changes* the desired state. Find the image of
    `guestbook-ui` with `kubectl get … -o jsonpath=…` ([jsonpath](glossary.md#jsonpath) picks
    one field), write it into `notes/running-image.txt` in your clone (`lab.workcopy.path`),
    commit and push. The note is in no app, so the cluster does not change.
    """),
    starter("""
    !kubectl get deployment guestbook-ui -n guestbook -o jsonpath='{.spec.template.spec.containers[0].image}'
    # now write what it printed into notes/running-image.txt in your clone, commit and push:
    # !mkdir -p {lab.workcopy.path}/notes
    # !echo "<the image>" > {lab.workcopy.path}/notes/running-image.txt
    # !git -C {lab.workcopy.path} add notes/running-image.txt
    # !git -C {lab.workcopy.path} commit -m "Record the image the cluster runs"
    # !git -C {lab.workcopy.path} push
    """),
    solution("""
    image = !kubectl get deployment guestbook-ui -n guestbook -o jsonpath='{.spec.template.spec.containers[0].image}'
    clone = lab.workcopy.path
    !mkdir -p {clone}/notes
    !echo "{image[0]}" > {clone}/notes/running-image.txt
    !git -C {clone} add notes/running-image.txt
    !git -C {clone} commit -q -m "Record the image the cluster runs"
    !git -C {clone} push -q
    """),
    task_check("00-record"),
    md("Next: **01 · Cluster** — the cluster you just used, and what in it is simulated."),
]
