# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 01 · notebooks/01-cluster.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check  # noqa: F401

NAME = "01-cluster"

CELLS = [
    md("""
    # 01 · A cluster to deploy to

    GitOps needs a cluster to deploy to. `Lab.connect()` runs the equivalent of
    `gitops-lab cluster up`; when no cluster is up yet, its progress bar shows the steps (on
    kind: the node container, the images loaded into it, the Git server and the agent started
    as pods — a minute or two the first time). This chapter looks at what it brought up, and
    you run something on it by hand — just this once: from chapter 03 on, only Git changes
    the cluster.
    """),
    code(CONNECT),
    live("""
    from gitops_lab.course import ch01

    ch01.catch_up(lab)  # catch-up: nothing left from an earlier run of this chapter
    """),
    md("""
    ## 1. Kind where Docker answers, else the local control plane

    A Kubernetes cluster is a **[control plane](glossary.md#control-plane)** — etcd (the
    database), kube-apiserver (the only door to it), kube-controller-manager (Deployments →
    ReplicaSets → Pods) and kube-scheduler (which node runs a pod) — plus **nodes**, where a
    [kubelet](glossary.md#kubelet) starts containers.

    `gitops-lab cluster up --provider auto` picks:

    * **[kind](glossary.md#kind)** where a Docker daemon answers: the control plane and a
      node in a Docker container; your containers really run.
    * **local** otherwise: the same control-plane binaries (Kubernetes v1.35, built from
      source) as processes on 127.0.0.1 — real etcd, a real API server with
      [RBAC](glossary.md#rbac) — and one node **simulated by [kwok](glossary.md#kwok)**. Pods
      get scheduled, get IPs and are reported Running, but no container ever runs. What
      GitOps does — compare, apply, prune, report health — happens at the API server, so it
      works the same; you just cannot open the app's page or read its logs.

    The first line below says which one you have.
    """),
    live("""
    print("provider:", lab.provider_kind, "· cluster:", lab.provider.name)
    !gitops-lab cluster status --name {lab.provider.name}
    !kubectl version
    """),
    md("**Self-check.** The API server answers its readiness probe."),
    check("""
    assert lab.kubectl("get", "--raw", "/readyz") == "ok", "the API server should be ready"
    """),
    md("""
    ## 2. Nodes: real or simulated

    On kind a node is a container running a kubelet and containerd. On the local provider,
    kwok plays the kubelet: it writes the node's and pods' *status* (Ready, Running, pod IPs)
    into the API server, following the rules in `gitops_lab/cluster/kwok-stages.yaml` — and
    the node says so itself: its *kubelet version* is kwok's, and it has no container runtime.
    """),
    live("""
    !kubectl get nodes -o wide
    !kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name}: kubelet {.status.nodeInfo.kubeletVersion}, runtime "{.status.nodeInfo.containerRuntimeVersion}"{"\\n"}{end}'
    """),
    md("The picture below is live: it lists nodes and pods and follows every change."),
    live("""
    from gitops_lab.widgets import ClusterView

    ClusterView(lab.kube)
    """),
    md("**Self-check.** Every node is Ready — on kind a real kubelet with containerd, on the local provider a kwok node with no runtime."),
    check("""
    import json

    nodes = json.loads(lab.kubectl("get", "nodes", "-o", "json"))["items"]
    ready = [n["metadata"]["name"] for n in nodes
             if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])]
    assert nodes and len(ready) == len(nodes), f"every node should be Ready: {ready} of {len(nodes)}"
    facts = ch01.node_facts(lab)
    if lab.provider_kind == "local":
        assert all(f["simulated"] and f["kubelet"].startswith("kwok") for f in facts), facts
        print(f"{len(nodes)} simulated node(s), all Ready, kubelet played by", facts[0]["kubelet"])
    else:
        assert all(f["runtime"].startswith("containerd://") for f in facts), facts
        print(f"{len(nodes)} real node(s), all Ready, running", ", ".join(sorted({f["runtime"] for f in facts})))
    """),
    md("""
    ## 3. Pods that are Running — and, on the local provider, run nothing

    Create a Deployment by hand. The controller-manager creates a ReplicaSet and two Pods, the
    scheduler puts them on the node, and the kubelet (kind) or kwok (local) reports them
    Running. `kubectl rollout status` waits — here at most 60 s — until every pod is ready.

    The image is the course's sample app, `gitops-lab/guestbook:1.0.0`: on kind it was built on
    this machine and loaded into the node, so the kubelet starts it without pulling anything;
    on the local provider nobody starts it.
    """),
    live("""
    !kubectl create deployment hello --image=gitops-lab/guestbook:1.0.0 --replicas=2 -n default
    !kubectl rollout status deployment/hello -n default --timeout=60s
    !kubectl get pods -n default -l app=hello -o wide
    """),
    md("""
    Now ask for the logs of one of them: the API server asks the node's kubelet (port 10250)
    for what the container printed. On kind you see the sample app's first lines. On the local
    provider there is no kubelet and no container, so the request fails:
    """),
    live("""
    !kubectl logs deployment/hello -n default
    """),
    md("**Self-check.** Two pods Running; on kind the container's own log, on the local provider no logs to read."),
    check("""
    pods = json.loads(lab.kubectl("get", "pods", "-n", "default", "-l", "app=hello", "-o", "json"))["items"]
    pods = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert len(pods) == 2 and all(p["status"]["phase"] == "Running" for p in pods), \\
        [p["status"]["phase"] for p in pods]
    logs = lab.kubectl("logs", "deployment/hello", "-n", "default", check=False)
    if lab.provider_kind == "kind":
        assert "guestbook 1.0.0" in logs and "listening on :8080" in logs, logs
    else:
        assert "10250" in logs or "error" in logs.lower(), "no kubelet, so no container logs"
    """),
    md("""
    ### ✏️ Your turn: a namespace of your own, and three pods in it

    A **[namespace](glossary.md#namespace)** groups objects (and, with RBAC, who may touch
    them); a **[label](glossary.md#label)** is a key=value tag that tools select by. With `kubectl`, as you would in a terminal:

    1. create the namespace `playground` and give it the label `purpose=learning`;
    2. run `hello` there (`gitops-lab/guestbook:1.0.0` — only the course's images are on the
       node, nothing is pulled from a registry) with **3** replicas.

    Useful: `kubectl create namespace …`, `kubectl label namespace … key=value`,
    `kubectl create deployment … --image=… --replicas=… -n …`, `kubectl get pods -n …`.
    """),
    starter("""
    !kubectl get namespaces --show-labels
    # your commands here, e.g.
    # !kubectl create namespace ...
    """),
    solution("""
    !kubectl create namespace playground
    !kubectl label namespace playground purpose=learning
    !kubectl create deployment hello --image=gitops-lab/guestbook:1.0.0 --replicas=3 -n playground
    """),
    task_check("01-playground"),
    md("""
    On kind these are three real containers; on the local provider three pods that kwok
    reports Running. Either way you changed the cluster by hand, and nothing records that you
    did. That is what the rest of the course replaces with Git. Tidy up:
    """),
    live("""
    !kubectl delete namespace playground --ignore-not-found --wait=false
    !kubectl delete deployment hello -n default --ignore-not-found
    """),
    md("Next: **02 · Config repo and agent** — where the desired state lives, and who applies it."),
]
