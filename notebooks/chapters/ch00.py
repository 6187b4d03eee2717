# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 00 · notebooks/00-welcome.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check  # noqa: F401

NAME = "00-welcome"

CELLS = [
    md("""
    # 00 · Welcome: what GitOps is

    In this workbench you do GitOps for real: a Kubernetes cluster runs on your machine, a
    Git server holds the desired state, and a small **pull-based agent** (shaped after Argo CD)
    makes the cluster equal Git — and keeps it that way.

    | Chapter | You will |
    |---|---|
    | 00 · Welcome | check your machine, meet the ideas, record what runs |
    | 01 · Cluster | see the cluster you deploy to, and what is simulated |
    | 02 · Config repo and agent | look at the Git repo, its history, and what the agent may do |
    | 03 · Deploy | write an Application, sync it, roll out a change from Git |
    | 04 · Drift and self-heal | change the cluster behind Git's back and watch the agent react |
    | 05 · Rollback | ship a broken release and roll it back |
    | 06 · Pull vs push security | measure what the agent can and cannot do |
    | 07 · CI pushes, the cluster pulls | let CI push an image and watch it reach the cluster through Git |
    | 08 · Environments and promotion | promote a change from staging to production through Git |
    | 09 · From the lab to Argo CD and Flux | the same app in the two tools you will meet at work |
    | 99 · Cleanup | stop everything |

    **How to use a chapter:** run the cells top to bottom (Shift-Enter). Cells marked
    *self-check* contain `assert`s: if one fails, its message says what to look at. Cells marked
    ✏️ *Your turn* are tasks for you; the cell after them checks your result and, if it is not
    there yet, says what is missing. A word you do not know? The [glossary](glossary.md) has
    one or two sentences for each.
    """),
    md("""
    ## 1. Is your machine ready? `gitops-lab doctor`

    Before anything starts: `gitops-lab doctor` lists what the lab needs (Python, the Kubernetes
    binaries built from source, git) and what is optional (a Docker daemon for the *kind*
    provider, Chromium for the browser tests), with how to get what is missing. It changes
    nothing. In a notebook, `!` runs a shell command; in a terminal, type it without the `!`.
    """),
    code("""
    from gitops_lab.course.ch00 import use_lab_commands

    print("gitops-lab and kubectl from", use_lab_commands())  # as your terminal finds them after `make setup`
    """),
    live("""
    !gitops-lab doctor
    """),
    md("**Self-check.** `doctor` exits 0 when the local lab can run."),
    check("""
    import subprocess

    doctor = subprocess.run(["gitops-lab", "doctor"], capture_output=True, text=True)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    print(doctor.stdout.strip().splitlines()[-1])
    """),
    md("""
    ## 2. The ideas, before anything runs

    **GitOps** in the four [OpenGitOps](https://opengitops.dev) principles:

    1. **Declarative** — you describe *what* should run (YAML files: Deployments, Services,
       config), not the commands to get there.
    2. **Versioned and immutable** — that description lives in Git: every change is a commit,
       with an author, a message and a way back (`git revert`).
    3. **Pulled automatically** — an agent fetches the desired state from Git; nobody pushes
       it into the cluster.
    4. **Continuously reconciled** — the agent keeps comparing the cluster with Git and
       corrects the difference, not just once at deploy time.

    **Push vs pull, in one picture.** Left, the classic pipeline; right, GitOps:

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

    * **Push**: CI runs `kubectl apply`. So CI must hold credentials that can change the cluster,
      and the API server must be reachable from CI. Whoever steals the CI secret owns the cluster.
    * **Pull**: an agent fetches Git and applies what it finds, with the rights of its own
      [ServiceAccount](glossary.md#serviceaccount) (an identity inside the cluster, limited by
      [RBAC](glossary.md#rbac)). Git and CI hold no cluster credential. Usually the agent runs
      *inside* the cluster (Argo CD and Flux do), so its only connection goes *out* to Git.
      Where this lab's agent runs depends on your machine — section 3 prints it.

    **Four words you will meet in every chapter** (Argo CD uses the same ones):

    * **[Application](glossary.md#application)** — a Kubernetes object that tells the agent
      *what* to deploy (a directory in a Git repo, at a branch or commit) and *where* (a
      namespace).
    * **[Sync](glossary.md#sync)** — making the cluster equal Git: the agent applies what
      differs. *Synced* / *OutOfSync* says whether the cluster equals Git right now.
    * **[Health](glossary.md#health)** — does what was applied actually work? *Healthy*,
      *Progressing* (e.g. pods still starting), *Degraded*, *Missing*.
    * **[Drift](glossary.md#drift)** — the cluster changed behind Git's back (someone ran
      `kubectl scale`): OutOfSync without a new commit. The agent reports it and, with
      *self-heal*, reverts it.
    """),
    md("""
    ## 3. Connect: the lab comes up

    `Lab.connect()` brings up what the doctor checked for, or finds it already running: the
    cluster, the lab's Git server with its config repo, and the agent. Every chapter starts
    with this cell, so chapters run alone and in any order. The first time takes a few seconds
    on the *local* provider, a minute or two on *kind*.

    The cluster is one of two kinds (chapter 01 looks at both): **kind**, a real cluster in
    Docker where containers run (chosen wherever a Docker daemon answers); else **local**, a
    real control plane whose node is simulated by [kwok](glossary.md#kwok), so no container
    runs.
    The cell after it prints which one you have — and where the agent runs.
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
    md("""
    **Self-check.** The agent runs where that cell says: a pod, or a process on this machine.
    """),
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

    The lab's config repo holds a sample app, `guestbook`, and an Application for it already
    exists (chapter 03 shows how you write one). Here is one of its files, straight from Git:
    """),
    live("""
    from gitops_lab.course.ch00 import catch_up

    app = catch_up(lab)  # catch-up: the pristine sample in Git, deployed and Synced
    print(lab.read("apps/guestbook/deployment.yaml"))
    """),
    md("""
    And here is what the agent reports about it — the same picture Argo CD's UI draws: sync
    status (does the cluster equal Git?), health (does it work?), the Git revision that is
    live, and the tree of objects the app owns, down to the pods.
    """),
    live("""
    lab.dashboard("guestbook")
    """),
    md("""
    **Self-check.** Which commit does the cluster run? Exactly the one at the head of `main`.
    """),
    check("""
    app = lab.app("guestbook")
    head = lab.workcopy.head
    assert app["status"]["sync"]["status"] == "Synced", "the cluster should equal Git"
    assert app["status"]["sync"]["revision"] == head, "the live revision should be the head of main"
    print(f"live revision {head[:7]} = head of main")
    """),
    md("""
    ## 5. The pull, as it happened

    The agent's last [reconcile](glossary.md#reconcile) started with a `fetch` from the lab's
    Git server: the agent opened the connection, nobody pushed to the cluster.
    """),
    live("""
    from gitops_lab.widgets import ReconcileTrace

    ReconcileTrace(lab.apps, "guestbook")
    """),
    md("**Self-check.** The agent's first step was a fetch from the lab's repo."),
    check("""
    steps = {s["name"]: s for s in lab.app("guestbook")["status"]["lastReconcile"]["steps"]}
    assert steps["fetch"]["ok"], steps["fetch"]
    assert lab.repo_url in steps["fetch"]["detail"], "the agent should fetch from the lab's repo"
    print("the agent pulled from", lab.repo_url)
    """),
    md("""
    ## 6. What is ahead

    * **Drift**: the agent detects a hand-made change and — with *self-heal* — reverts it. → 04
    * **Rollback**: a bad release is undone by `git revert`: Git stays the truth. → 05
    * **Separation of concerns**: developers propose commits, the agent deploys them, the
      platform team decides what the agent may touch (its RBAC). Nobody needs cluster-admin
      to ship. → 06
    * **Promotion**: staging and production as two directories, a change promoted by a Git
      merge. → 08

    Because every change is a commit, Git's log is the deployment audit trail: who, what,
    when and why.
    """),
    live("""
    !git -C {lab.workcopy.path} log --format='%h %an %ar  %s' -5
    """),
    md("""
    ### ✏️ Your turn: which image runs? Ask the cluster, record it in Git

    Two commands you will type every day at work: `kubectl` to *read* the cluster, `git` to
    *change* the desired state. Find the image the `guestbook-ui` Deployment runs, with
    `kubectl get … -o jsonpath=…` ([jsonpath](glossary.md#jsonpath) picks one field of the
    object), then write it into `notes/running-image.txt` in your clone of the config repo
    (`lab.workcopy.path`), commit and push. Nothing in the cluster changes — a note in Git is
    not part of any app.

    In a terminal: `cd` into the clone, `kubectl get …`, `echo … > notes/running-image.txt`,
    `git add`, `git commit -m …`, `git push`.
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
