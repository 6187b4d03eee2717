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
    as pods — a minute or two the first time). This chapter looks at what it brought up.
    """),
    code(CONNECT),
    md("""
    ## 1. Kind where Docker answers, else the local control plane

    A Kubernetes cluster is a **control plane** — etcd (the database), kube-apiserver (the only
    door to it), kube-controller-manager (Deployments → ReplicaSets → Pods) and kube-scheduler
    (which node runs a pod) — plus **nodes**, where a kubelet starts containers.

    `gitops-lab cluster up --provider auto` picks:

    * **kind** where a Docker daemon answers: control plane and nodes in Docker containers;
      your containers really run.
    * **local** otherwise: the same control-plane binaries (Kubernetes v1.35, built from
      source) as processes on 127.0.0.1 — real etcd, a real API server with RBAC — and one
      node **simulated by [kwok](https://kwok.sigs.k8s.io/)**. Pods get scheduled, get IPs and
      are reported Running, but no container ever runs. Everything GitOps does happens at the
      API server, so everything in this course works the same — you just cannot `curl` the app.

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
    into the API server, following the rules in `gitops_lab/cluster/kwok-stages.yaml`. The
    picture below is live: it lists nodes and pods and follows every change.
    """),
    live("""
    !kubectl get nodes -o wide
    """),
    live("""
    from gitops_lab.widgets import ClusterView

    ClusterView(lab.kube)
    """),
    md("**Self-check.** Every node is Ready — on kind a real kubelet with containerd, on the local provider a kwok node."),
    check("""
    import json

    nodes = json.loads(lab.kubectl("get", "nodes", "-o", "json"))["items"]
    ready = [n["metadata"]["name"] for n in nodes
             if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])]
    assert nodes and len(ready) == len(nodes), f"every node should be Ready: {ready} of {len(nodes)}"
    if lab.provider.kind == "local":
        fake = [n["metadata"]["name"] for n in nodes
                if (n["metadata"].get("annotations") or {}).get("kwok.x-k8s.io/node") == "fake"]
        assert fake == [n["metadata"]["name"] for n in nodes], "local nodes are simulated by kwok"
        print(f"{len(nodes)} simulated node(s), all Ready")
    else:
        runtimes = {n["status"]["nodeInfo"]["containerRuntimeVersion"] for n in nodes}
        assert all(r.startswith("containerd://") for r in runtimes), runtimes
        print(f"{len(nodes)} real node(s), all Ready, running", ", ".join(sorted(runtimes)))
    """),
    md("""
    ## 3. Pods that are Running — and, on the local provider, run nothing

    Create a Deployment by hand (just this once: from chapter 03 on, only Git changes the
    cluster). The controller-manager creates a ReplicaSet and two Pods, the scheduler puts them
    on the node, and the kubelet (kind) or kwok (local) reports them Running.

    The image is the course's sample app, `gitops-lab/guestbook:1.0.0`: on kind it was built on
    this machine and loaded into the node, so the kubelet starts it without pulling anything.
    """),
    live("""
    # catch-up: remove what an earlier run of this chapter left behind
    lab.kubectl("delete", "deployment", "hello", "-n", "default", "--ignore-not-found",
                "--cascade=foreground")
    print(lab.kubectl("create", "deployment", "hello", "--image=gitops-lab/guestbook:1.0.0",
                      "--replicas=2", "-n", "default"))


    def hello_ready() -> bool:
        return lab.kubectl("get", "deployment", "hello", "-n", "default",
                           "-o", "jsonpath={.status.readyReplicas}") == "2"


    lab.wait_until(hello_ready, timeout=60,
                   what="2 ready hello pods (scheduled, then reported Running by the kubelet or kwok)")
    ClusterView(lab.kube, namespace="default")
    """),
    md("""
    Now ask for the logs of one of them: the API server asks the node's kubelet (port 10250)
    for what the container printed. On kind you see the sample app's first line. On the local
    provider there is no kubelet and no container, so the request fails:
    """),
    live("""
    pod = lab.kubectl("get", "pods", "-n", "default", "-l", "app=hello",
                      "-o", "jsonpath={.items[0].metadata.name}")
    logs = lab.kubectl("logs", "-n", "default", pod, check=False)
    print(logs)
    """),
    md("**Self-check.** Two pods Running; on kind the container's own log, on the local provider no logs to read."),
    check("""
    pods = json.loads(lab.kubectl("get", "pods", "-n", "default", "-l", "app=hello", "-o", "json"))["items"]
    pods = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert len(pods) == 2 and all(p["status"]["phase"] == "Running" for p in pods), \\
        [p["status"]["phase"] for p in pods]
    if lab.provider_kind == "kind":
        assert "guestbook 1.0.0" in logs and "listening on :8080" in logs, logs
    elif lab.provider_kind == "local":
        assert "10250" in logs or "error" in logs.lower(), "no kubelet, so no container logs"
    """),
    live("""
    print(lab.kubectl("delete", "deployment", "hello", "-n", "default"))  # tidy up
    """),
    md("Next: **02 · Config repo and agent** — where the desired state lives, and who applies it."),
]

