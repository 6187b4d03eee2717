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

    The cluster is one of two kinds (chapter 01 looks at both): **kind**, a real cluster in
    Docker where containers run, wherever a Docker daemon answers; else **local**, a real
    control plane whose node is simulated, so no container runs. The first cell prints which
    one you have and where the agent runs.

    | Chapter | You will |
    |---|---|
    | 00 · Welcome | meet the ideas and check your machine |
    | 01 · Cluster | see the cluster you deploy to, and what is simulated |
    | 02 · Config repo and agent | look at the Git repo, its history, and what the agent may do |
    | 03 · Deploy | create an Application, sync it, roll out a change from Git |
    | 04 · Drift and self-heal | change the cluster behind Git's back and watch the agent react |
    | 05 · Rollback | ship a broken release and roll it back two ways |
    | 06 · Pull vs push security | measure what the agent can and cannot do |
    | 07 · CI pushes, the cluster pulls | let CI push an image and watch it reach the cluster through Git |
    | 99 · Cleanup | stop everything |

    **How to use a chapter:** run the cells top to bottom (Shift-Enter). Every chapter starts
    with the cell below: `Lab.connect()` brings the lab up if it is not, so chapters run alone
    and in any order. Cells marked *self-check* contain `assert`s: if one fails, its message
    says what to look at.
    """),
    code(CONNECT),
    live("""
    print("cluster provider:", lab.provider_kind)  # kind: real pods in Docker · local: simulated nodes
    print("the agent runs:  ", "as a pod in the cluster" if lab.agent_mode == "in-cluster"
          else "as a process on this machine, with a token of its ServiceAccount")
    print("it pulls from:   ", lab.repo_url)
    """),
    md("""
    ## 1. Git is the single source of truth

    In GitOps the **desired state** of everything you run — Deployments, Services, config — is
    declared in files in Git. Nobody changes the cluster by hand: you change Git, and an agent
    changes the cluster to match. The four [OpenGitOps](https://opengitops.dev) principles:
    *declarative*, *versioned and immutable*, *pulled automatically*, *continuously reconciled*.

    The lab comes with a sample app, `guestbook`. Here is one of its files, straight from Git:
    """),
    live("""
    app = lab.reset_sample()  # catch-up: the pristine sample in Git, deployed and Synced
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
    ## 2. Pull, not push — and why that keeps the credentials in the cluster

    ```mermaid
    flowchart LR
      subgraph Push["Push: a CI pipeline deploys"]
        d1[developer] -->|git push| g1[(Git)]
        g1 --> ci["CI job<br/>holds an admin kubeconfig"]
        ci -->|kubectl apply| k1[cluster API]
      end
      subgraph Pull["Pull: GitOps"]
        d2[developer] -->|git push| g2[(Git)]
        a["agent inside the cluster<br/>its own ServiceAccount"] -->|git fetch| g2
        a -->|server-side apply| k2[cluster API]
      end
    ```

    * **Push**: CI runs `kubectl apply`. So CI must hold credentials that can change the cluster,
      and the API server must be reachable from CI. Whoever steals the CI secret owns the cluster.
    * **Pull**: an agent *in* the cluster fetches Git and applies what it finds. Its credentials
      are a ServiceAccount that never leaves the cluster; Git and CI hold none; the only network
      connection goes *out* from the cluster to Git. And because the agent keeps comparing, it
      also notices when the cluster changes behind Git's back.

    In this lab on **kind** the agent is exactly that: a pod in the namespace `gitops-lab`,
    using its ServiceAccount's token, fetching from the Git server's pod. On the **local**
    provider no container can run, so the agent runs as a process on your machine — but it
    authenticates with a token of the same ServiceAccount, so the API server grants it exactly
    what it would grant the pod.

    Watch the pull happen: the agent's last reconcile started with a `fetch` from the lab's Git
    server.
    """),
    live("""
    from gitops_lab.widgets import ReconcileTrace

    ReconcileTrace(lab.apps, "guestbook")
    """),
    md("""
    **Self-check.** Who opened the connection to Git? The agent did: its first step is a fetch.
    And it runs where the first cell said: a pod on kind, a process on the local provider.
    """),
    check("""
    steps = {s["name"]: s for s in lab.app("guestbook")["status"]["lastReconcile"]["steps"]}
    assert steps["fetch"]["ok"], steps["fetch"]
    assert lab.repo_url in steps["fetch"]["detail"], "the agent should fetch from the lab's repo"
    agent = lab.agent_info()
    assert agent is not None, "the agent should answer its health endpoint"
    if lab.agent_mode == "in-cluster":
        assert agent["pods"], f"the agent should run as a pod: {agent}"
    else:
        assert agent["pid"], f"the agent should run as a process: {agent}"
    print("the agent pulled from", lab.repo_url)
    """),
    md("""
    ## 3. Drift, rollback, separation of concerns — what is ahead

    * **Drift**: the live cluster differs from Git (someone ran `kubectl scale`). The agent
      detects it, reports it, and — with *self-heal* — reverts it. → chapter 04
    * **Rollback**: a bad release is undone by `git revert` (Git stays the truth) or by
      re-deploying an earlier entry of the app's history. → chapter 05
    * **Separation of concerns**: developers propose changes as commits (reviewed, tested),
      the agent deploys them, the platform team decides what the agent may touch (its RBAC).
      Nobody needs cluster-admin to ship. → chapter 06

    Because every change is a commit, Git's log is the deployment audit trail: who, what,
    when and why.
    """),
    live("""
    for sha, summary in lab.log(5):
        print(sha[:7], summary)
    """),
    md("**Self-check.** The live revision is a commit in that history — not something done by hand."),
    check("""
    shas = [sha for sha, _ in lab.log(100)]
    assert lab.app("guestbook")["status"]["sync"]["revision"] in shas
    """),
    md("""
    ## 4. Is your machine ready? `gitops-lab doctor`

    `gitops-lab doctor` lists what the lab needs (Python, the Kubernetes binaries, git) and what
    is optional (Docker for kind, Chromium for the browser tests), with how to get what is
    missing. In a notebook, `!` runs a shell command; in a terminal, type it without the `!`.
    """),
    live("""
    !gitops-lab doctor
    """),
    md("**Self-check.** `doctor` exits 0 when the local lab can run."),
    check("""
    import subprocess

    doctor = subprocess.run(["gitops-lab", "doctor"], capture_output=True, text=True)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    """),
    md("Next: **01 · Cluster** — the cluster you just used, and what in it is simulated."),
]

