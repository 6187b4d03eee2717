# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 01 · notebooks/01-cluster.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check  # noqa: F401

NAME = "01-cluster"

CELLS = [
    md("""
    # 01 · A cluster to deploy to

    `Lab.connect()` does what `gitops-lab cluster up` does. Here you look at what it brought
    up and run something by hand — just this once: from chapter 03 on, only Git changes the
    cluster.
    """),
    live("""
    from gitops_lab import Lab
    from gitops_lab.course import ch01

    lab = Lab.connect()  # cluster, Git server, agent: started or found (seconds when warm)
    ch01.catch_up(lab)   # catch-up: nothing left from an earlier run of this chapter
    """),
    md("""
    ## 1. Kind where Docker answers, else the local control plane

    A cluster is a **[control plane](glossary.md#control-plane)** (etcd, the API server, the
    controller-manager, the scheduler) plus **nodes**, where a
    [kubelet](glossary.md#kubelet) starts containers. `gitops-lab cluster up --provider auto`
    picks:

    * **[kind](glossary.md#kind)** where Docker answers: control plane and node in a Docker
      container; containers really run.
    * **local** otherwise: the same Kubernetes v1.35 binaries as processes on 127.0.0.1 and
      one node **simulated by [kwok](glossary.md#kwok)**: pods are reported Running, but no
      container runs. GitOps (compare, apply, prune, health) happens at the API server, so it
      works the same; you just cannot open the app or read its logs.
    """),
    live("""
    print("provider:", lab.provider_kind, "· cluster:", lab.provider.name)
    !gitops-lab cluster status --name {lab.provider.name}
    !kubectl version
    """),
    md("""
    ## 2. Nodes: real or simulated

    On kind a node is a container running a kubelet and containerd. On local, kwok writes the
    node's and pods' *status* (Ready, Running, IPs) following
    `gitops_lab/cluster/kwok-stages.yaml` — and the node says so: kwok's kubelet version, no
    container runtime. The picture at the end is live: nodes and pods, following every change.
    """),
    live("""
    from gitops_lab.widgets import ClusterView

    !kubectl get nodes -o wide
    !kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name}: kubelet {.status.nodeInfo.kubeletVersion}, runtime "{.status.nodeInfo.containerRuntimeVersion}"{"\\n"}{end}'
    ClusterView(lab.kube)
    """),
    md("**Self-check.** The API server is ready and every node Ready — a real kubelet with containerd on kind, a kwok node with no runtime on local."),
    check("""
    import json

    assert lab.kubectl("get", "--raw", "/readyz") == "ok", "the API server should be ready"
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
    ## 3. Pods that are Running — and, on local, run nothing

    Create a Deployment by hand: a ReplicaSet and two Pods follow, reported Running by the
    kubelet (kind) or kwok (local); `rollout status` waits at most 60 s. The image was built
    here and loaded into the kind node, so nothing is pulled. Then the logs: the API server
    asks the node's kubelet (port 10250) — the app's first lines on kind; on local, no
    kubelet, so an error.
    """),
    live("""
    !kubectl create deployment hello --image=gitops-lab/guestbook:1.0.0 --replicas=2 -n default
    !kubectl rollout status deployment/hello -n default --timeout=60s
    !kubectl get pods -n default -l app=hello -o wide
    !kubectl logs deployment/hello -n default
    """),
    md("**Self-check.** Two pods Running; the container's log on kind, none on local."),
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

    A [namespace](glossary.md#namespace) groups objects; a [label](glossary.md#label) is a
    key=value tag. With `kubectl`:

    1. create the namespace `playground` with the label `purpose=learning`;
    2. run `hello` there (`gitops-lab/guestbook:1.0.0` — only the course's images are on the
       node) with **3** replicas.

    Useful: `kubectl create namespace`, `kubectl label namespace`, `kubectl create deployment`.
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
    You changed the cluster by hand, and nothing records it. The rest of the course replaces
    that with Git. Tidy up:
    """),
    live("""
    !kubectl delete namespace playground --ignore-not-found --wait=false
    !kubectl delete deployment hello -n default --ignore-not-found
    """),
    md("Next: **02 · Config repo and agent** — where the desired state lives, and who applies it."),
]
