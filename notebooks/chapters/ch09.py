# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 09 · notebooks/09-argo-cd-and-flux.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check  # noqa: F401

NAME = "09-argo-cd-and-flux"

CELLS = [
    md("""
    # 09 · From the lab to Argo CD and Flux

    Everything you did here carries over: the lab's `Application` is shaped after Argo CD's, and
    Flux expresses the same idea in two objects. This chapter puts the lab's sample app beside
    both, lists the commands that correspond, and the defaults that differ — so nothing surprises
    you on a real cluster. Then you translate the app into Flux yourself.

    Nothing in this chapter installs Argo CD or Flux: the lab runs neither. The manifests and
    commands below are what you will use on your own cluster.
    """),
    code(CONNECT),
    live("""
    from gitops_lab.course.ch09 import comparison, poll_interval, reset_translation

    reset_translation(lab)    # catch-up: no flux/ directory in Git from an earlier run
    app = lab.reset_sample()  # the pristine sample in Git, deployed and Synced
    """),
    md("""
    ## 1. One app, three ways

    The same desired state — *the directory `apps/guestbook` of the config repo, at `main`,
    into the namespace `guestbook`, pruning what leaves Git* — written for three controllers:

    * **this lab** (`gitopslab.io/v1alpha1` Application): one object with `source`,
      `destination` and `syncPolicy`;
    * **Argo CD** (`argoproj.io/v1alpha1` Application, in the namespace `argocd`): the same
      three parts, plus two it requires — a `project` (`default` is created at install; projects
      limit which repos and clusters an app may use) and the destination cluster (`server:
      https://kubernetes.default.svc` is the cluster Argo CD runs in);
    * **Flux** splits *fetching* from *applying*: a **GitRepository**
      (`source.toolkit.fluxcd.io/v1`) fetches a branch every `interval`, and a
      **Kustomization** (`kustomize.toolkit.fluxcd.io/v1` — not Kustomize's own
      `kustomization.yaml`) builds one `path` of it and applies it every `interval`. One
      GitRepository can feed many Kustomizations.

    The three columns are generated from the live Application (read from the cluster just now)
    by `gitops_lab.course.translate`; the notes under them say what does not translate one to one.
    """),
    live("""
    !kubectl get application guestbook -n gitops-lab
    side_by_side = comparison(lab)
    side_by_side
    """),
    md("**Self-check.** The three say the same thing: the same path, the same target namespace, the same prune; Flux's Kustomization names its GitRepository."),
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

    The lab is fast on purpose, so you see cause and effect within a second. Real controllers are
    slower on purpose, to spare the Git server and the API server. What to expect at work:

    | | this lab | Argo CD | Flux |
    |---|---|---|---|
    | how often Git is checked | every **1 s** (`--poll-interval`) | every **3 min**: `timeout.reconciliation: 180s` in the `argocd-cm` ConfigMap; at once with a Git webhook (`/api/webhook`) | GitRepository `spec.interval`: **required, you choose** (commonly `1m`); at once with a webhook `Receiver` |
    | automatic sync | when `syncPolicy.automated` is set | **off** by default: an app is synced by hand until `syncPolicy.automated` is set | always on (every Kustomization `spec.interval`, commonly `10m`), unless `suspend: true` |
    | drift (someone ran `kubectl`) | seen within a second; reverted with `selfHeal` | `selfHeal` **off** by default: reported as OutOfSync, not reverted | no switch: re-applied at the next Kustomization interval |
    | pruning what left Git | `automated.prune` (the sample: on) | `automated.prune` **off** by default | `spec.prune`: **required**, no default |
    | full re-compare at rest | every 60 s | every 180 s (the same timeout) | every Kustomization interval |

    So after a commit, expect **up to 3 minutes** before Argo CD notices (plus the sync), and up to
    the GitRepository's interval with Flux — unless a webhook tells them. A `kubectl scale` you did
    by hand stays in Argo CD until you sync (without `selfHeal`), and for up to the Kustomization
    interval in Flux.

    Where this lab's 1 s is set, read from the agent that is running now (on kind: the
    Deployment's container args; on the local provider: the host process's command line):
    """),
    live("""
    value, where = poll_interval(lab)
    print(f"agent mode {lab.agent_mode}: this lab's agent polls Git every {value} — set in {where}")
    !gitops-lab agent run --help | grep -A2 '^  --poll-interval'
    """),
    md("**Self-check.** The running agent polls every second — 180 times as often as Argo CD's default."),
    check("""
    assert value == "1 s", f"the agent was started with --poll-interval {value}"
    """),
    md("""
    ## 3. The commands that correspond

    The lab's `gitops-lab app` verbs are Argo CD's. Flux has no per-app history or rollback: its
    record is Git itself. On your own cluster:

    | what | this lab | Argo CD | Flux |
    |---|---|---|---|
    | list, with sync and health | `gitops-lab app list` | `argocd app list` | `flux get kustomizations` |
    | one app and its objects | `gitops-lab app get guestbook` | `argocd app get guestbook` | `flux tree kustomization guestbook` |
    | look at Git now | `gitops-lab app refresh guestbook` | `argocd app get guestbook --refresh` | `flux reconcile source git lab` |
    | sync now | `gitops-lab app sync guestbook` | `argocd app sync guestbook` | `flux reconcile kustomization guestbook --with-source` |
    | what would change | `gitops-lab app diff guestbook` | `argocd app diff guestbook` | `flux diff kustomization guestbook --path ./apps/guestbook` (from a local checkout) |
    | deployed revisions | `gitops-lab app history guestbook` | `argocd app history guestbook` | `git log` (and the applied revision in `flux get kustomizations`) |
    | roll back | `gitops-lab app rollback guestbook ID` (turns automated sync off) | `argocd app rollback guestbook ID` (refused while automated sync is on: turn it off first) | no command: `git revert`, and Flux applies the revert |
    | pause | remove `spec.syncPolicy.automated` | `argocd app set guestbook --sync-policy none` | `flux suspend kustomization guestbook`, later `flux resume kustomization guestbook` |

    The lab's column, for real (`app diff` exits 1 when Git and the cluster differ; here they do
    not):
    """),
    live("""
    !gitops-lab app list
    !gitops-lab app history guestbook
    !gitops-lab app diff guestbook && echo "no difference between Git and the cluster"
    """),
    md("""
    ### Argo CD's UI, on your cluster

    Argo CD ships a web UI (the lab's dashboard widget imitates its colours). After installing
    Argo CD into the namespace `argocd`, you reach it without exposing anything:

    ```sh
    kubectl port-forward svc/argocd-server -n argocd 8080:443   # then open https://localhost:8080
    argocd admin initial-password -n argocd                      # the generated admin password
    argocd login localhost:8080 --username admin                 # the CLI, through the same port
    ```

    The install generates a random password for the user `admin` and keeps it in the Secret
    `argocd-initial-admin-secret` (key `password`). Change it after the first login
    (`argocd account update-password`) and delete that Secret — and never paste a password into a
    notebook, a commit or a ticket. Flux itself ships no web UI (other projects add one):
    `flux get` and `flux events` are its view.
    """),
    md("""
    ### ✏️ Your turn: translate the guestbook into Flux

    Write the guestbook as a **Flux Kustomization**, from what the live Application says, and
    commit it to the config repo as `flux/guestbook.yaml`. Fill in the four `???` of the starter:

    * `interval` — how often Flux applies again and corrects drift (a duration such as `10m`);
    * `path` — the directory Flux builds: the Application's `spec.source.path`;
    * `prune` — `true` or `false`, as the Application's `spec.syncPolicy.automated.prune`;
    * `targetNamespace` — the Application's `spec.destination.namespace`.

    (`!kubectl get application guestbook -n gitops-lab -o yaml` shows them.) Then uncomment the
    `lab.commit` line and run the cell — or, in a terminal, write the file in your clone
    (`lab.workcopy.path`), `git add flux/guestbook.yaml`, `git commit`, `git push`. You may add the
    GitRepository too (a `---` between the two documents); it is checked if present.

    Nothing applies it: the lab has no Flux, and the guestbook Application reads only
    `apps/guestbook`, so a file under `flux/` is never deployed. On a cluster with Flux, `kubectl
    apply -f flux/guestbook.yaml` (or a bootstrap Kustomization that includes `flux/`) would.
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

    * **Argo CD**: install it on a kind cluster of your own (its *Getting Started* guide), apply
      the Argo CD column above with your repo's URL, and watch the UI. Remember the 3 minutes.
    * **Flux**: `flux bootstrap` installs Flux and commits its own manifests to your repo; add a
      GitRepository and your Kustomization beside them.
    * Both read the same plain YAML and Kustomize directories you committed here: the config repo
      does not change when the controller does.

    Last: **99 · Cleanup** stops everything the lab started.
    """),
]
