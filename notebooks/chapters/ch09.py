# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 09 · notebooks/09-argo-cd-and-flux.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check  # noqa: F401

NAME = "09-argo-cd-and-flux"

CELLS = [
    md("""
    # 09 · From the lab to Argo CD and Flux

    The lab's `Application` is shaped after Argo CD's; Flux says the same in two objects. Here:
    the sample app in both, the matching commands, the defaults that differ — then you
    translate the app into Flux. The lab runs neither tool; this is for your own cluster.
    """),
    code(CONNECT),
    live("""
    from gitops_lab.course.ch09 import comparison, poll_interval, reset_translation

    reset_translation(lab)    # catch-up: no flux/ directory in Git from an earlier run
    app = lab.reset_sample()  # the pristine sample in Git, deployed and Synced
    """),
    md("""
    ## 1. One app, three ways

    *`apps/guestbook` at `main`, into namespace `guestbook`, pruning* — for three controllers
    (generated from the live Application by `gitops_lab.course.translate`):

    * **this lab**: one Application with `source`, `destination`, `syncPolicy`;
    * **Argo CD** (`argoproj.io` Application, namespace `argocd`): the same, plus a `project`
      (limits repos and clusters; `default` exists) and a destination `server`;
    * **Flux** splits fetching from applying: a **GitRepository** fetches a branch every
      `interval`; a **Kustomization** (not Kustomize's `kustomization.yaml`) applies one `path`
      of it every `interval`.
    """),
    live("""
    !kubectl get application guestbook -n gitops-lab
    side_by_side = comparison(lab)
    side_by_side
    """),
    md("**Self-check.** Same path, namespace and prune in all three."),
    check("""
    live_spec = lab.app("guestbook")["spec"]
    argo = side_by_side.argo
    git_repo, kustomization = side_by_side.flux
    assert argo["spec"]["source"]["path"] == live_spec["source"]["path"] == "apps/guestbook"
    assert kustomization["spec"]["path"] == "./" + live_spec["source"]["path"]
    assert (argo["spec"]["destination"]["namespace"] == kustomization["spec"]["targetNamespace"]
            == live_spec["destination"]["namespace"])
    assert (argo["spec"]["syncPolicy"]["automated"]["prune"] == kustomization["spec"]["prune"]
            == live_spec["syncPolicy"]["automated"]["prune"])
    assert kustomization["spec"]["sourceRef"] == {"kind": "GitRepository", "name": git_repo["metadata"]["name"]}
    assert git_repo["spec"]["ref"] == {"branch": live_spec["source"]["targetRevision"]}
    """),
    md("""
    ## 2. The defaults that differ

    The lab is fast so you see cause and effect; real controllers are slower to spare Git and
    the API server:

    | | this lab | Argo CD | Flux |
    |---|---|---|---|
    | Git checked | every **1 s** | every **3 min** (`timeout.reconciliation` in `argocd-cm`), or a webhook | GitRepository `interval`: **required** (often `1m`), or a webhook `Receiver` |
    | automatic sync | `syncPolicy.automated` | **off** by default | always, every Kustomization `interval` (often `10m`), unless suspended |
    | drift | reverted with `selfHeal` | `selfHeal` **off** by default: OutOfSync only | re-applied at the next interval |
    | prune | `automated.prune` | **off** by default | `spec.prune`: **required** |
    | full re-compare | every 60 s | every 180 s | every interval |

    So expect **up to 3 minutes** before Argo CD sees a commit, unless a webhook tells it.
    Where the lab's 1 s is set (kind: the Deployment's args; local: the host process's command line):
    """),
    live("""
    value, where = poll_interval(lab)
    print(f"agent mode {lab.agent_mode}: this lab's agent polls Git every {value} — set in {where}")
    !gitops-lab agent run --help | grep -A2 '^  --poll-interval'
    """),
    md("**Self-check.** The agent polls every second — 180× Argo CD's default."),
    check("""
    assert value == "1 s", f"the agent was started with --poll-interval {value}"
    """),
    md("""
    ## 3. The commands that correspond

    `gitops-lab app X` is `argocd app X` (for `list`, `get`, `sync`, `diff`, `history`,
    `rollback`). Flux has no per-app history or rollback: its record is Git.

    | what | this lab / Argo CD | Flux |
    |---|---|---|
    | list | `app list` | `flux get kustomizations` |
    | one app | `app get guestbook` | `flux tree kustomization guestbook` |
    | look at Git now | lab `app refresh`; Argo `app get --refresh` | `flux reconcile source git lab` |
    | sync now | `app sync guestbook` | `flux reconcile kustomization guestbook --with-source` |
    | what would change | `app diff guestbook` | `flux diff kustomization guestbook --path ./apps/guestbook` |
    | history | `app history guestbook` | `git log` |
    | roll back | `app rollback guestbook ID` (Argo: refused while automated) | `git revert` |
    | pause | lab: remove `syncPolicy.automated`; Argo: `app set guestbook --sync-policy none` | `flux suspend kustomization guestbook` |

    The lab's column, live (`app diff` exits 1 when Git and cluster differ):
    """),
    live("""
    !gitops-lab app list
    !gitops-lab app history guestbook
    !gitops-lab app diff guestbook && echo "no difference between Git and the cluster"
    """),
    md("""
    ### Argo CD's UI, on your cluster

    Argo CD ships a web UI (the lab's dashboard imitates its colours). Reach it without exposing anything:

    ```sh
    kubectl port-forward svc/argocd-server -n argocd 8080:443   # then open https://localhost:8080
    argocd admin initial-password -n argocd                      # the generated admin password
    argocd login localhost:8080 --username admin                 # the CLI, through the same port
    ```

    The generated password sits in the Secret `argocd-initial-admin-secret`: change it
    (`argocd account update-password`), delete that Secret, and never paste it into a
    notebook, commit or ticket. Flux has no UI of its own: `flux get`, `flux events`.
    """),
    md("""
    ### ✏️ Your turn: translate the guestbook into Flux

    Fill in the four `???` from the live Application (`kubectl get application guestbook -n
    gitops-lab -o yaml`): `interval` (e.g. `10m`), `path` (`spec.source.path`), `prune`,
    `targetNamespace`. Uncomment `lab.commit` and run — or commit `flux/guestbook.yaml` in
    your clone and push. A GitRepository too (after `---`) is checked if present.

    Nothing applies it here (no Flux; the Application reads only `apps/guestbook`).
    """),
    starter("""
    kustomization = '''\\
    apiVersion: kustomize.toolkit.fluxcd.io/v1
    kind: Kustomization
    metadata:
      name: guestbook
      namespace: flux-system
    spec:
      interval: ???          # how often Flux applies again, e.g. 10m
      sourceRef:
        kind: GitRepository
        name: lab            # the GitRepository that fetches the config repo
      path: ???              # the Application's spec.source.path, as ./dir
      prune: ???             # the Application's syncPolicy.automated.prune
      targetNamespace: ???   # the Application's destination.namespace
    '''
    # when the ??? are filled in, commit and push it:
    # lab.commit({"flux/guestbook.yaml": kustomization}, "Translate guestbook into a Flux Kustomization")
    """),
    solution("""
    spec = lab.app("guestbook")["spec"]
    translation = f'''\\
    apiVersion: source.toolkit.fluxcd.io/v1
    kind: GitRepository
    metadata:
      name: lab
      namespace: flux-system
    spec:
      interval: 1m
      url: https://git.example.com/team/lab.git   # Flux accepts http(s):// and ssh:// only
      ref:
        branch: {spec["source"]["targetRevision"]}
    ---
    apiVersion: kustomize.toolkit.fluxcd.io/v1
    kind: Kustomization
    metadata:
      name: guestbook
      namespace: flux-system
    spec:
      interval: 10m
      sourceRef:
        kind: GitRepository
        name: lab
      path: ./{spec["source"]["path"]}
      prune: {str(spec["syncPolicy"]["automated"]["prune"]).lower()}
      targetNamespace: {spec["destination"]["namespace"]}
    '''
    lab.commit({"flux/guestbook.yaml": translation}, "Translate guestbook into a Flux Kustomization")
    !git -C {lab.workcopy.path} show --stat --no-color --format='%h %s' HEAD
    """),
    task_check("09-translate"),
    md("""
    ## Where next

    * **Argo CD**: install it on your own kind cluster (*Getting Started*), apply the Argo CD
      column with your repo's URL, watch the UI.
    * **Flux**: `flux bootstrap`, then add a GitRepository and your Kustomization.
    * Both read the same YAML and Kustomize directories: the config repo stays as it is.

    Last: **99 · Cleanup**.
    """),
]
