# ruff: noqa: E501  (notebook prose and code, kept as the learner reads it)
"""Chapter 99 · notebooks/99-cleanup.ipynb (run `make notebooks` after editing)."""

from chapters.cells import CONNECT, check, code, live, md, solution, starter, task_check  # noqa: F401

NAME = "99-cleanup"

CELLS = [
    md("""
    # 99 · Cleanup

    Stop the app, the agent, the Git server and the cluster. Any chapter's first cell brings
    the lab back.
    """),
    code(CONNECT),
    md("""
    ## 1. Remove the app

    Delete the Application and its namespace (Argo CD does both at once with its
    `resources-finalizer`, a [finalizer](glossary.md#finalizer)).
    """),
    live("""
    lab.delete_app("guestbook")
    !gitops-lab app list
    """),
    md("**Self-check.** No Application named guestbook is left."),
    check("""
    assert "guestbook" not in [a["metadata"]["name"] for a in lab.apps.list()]
    """),
    md("""
    ## 2. Stop the agent

    On kind: scale its Deployment to 0. On local: SIGTERM to its process.
    """),
    live("""
    agent = lab.agent_info() or {}
    lab.stop_agent()
    if lab.agent_mode == "in-cluster":
        print("scaled Deployment gitops-lab-agent to 0; its pod(s) are gone:", ", ".join(agent.get("pods", [])))
    else:
        print("stopped agent pid", agent.get("pid"))
    """),
    md("**Self-check.** The agent is gone (on kind, its pod too)."),
    check("""
    assert lab.agent_info() is None
    if lab.agent_mode == "in-cluster":
        assert lab.kubectl("-n", "gitops-lab", "get", "pods", "-l", "app.kubernetes.io/name=gitops-lab-agent",
                           "-o", "name") == "", "the agent's pod should be gone"
    """),
    md("""
    ## 3. Tear the lab down

    `lab.cleanup()` (terminal: `gitops-lab cluster down`) deletes the cluster and its state,
    config repo included. On kind: the node's Docker container, with every pod. On local: the
    control-plane processes and the `git daemon`.
    """),
    live("""
    import socket
    import subprocess

    name, provider = lab.provider.name, lab.provider_kind
    git_port = None if provider == "kind" else lab.git.port  # kind: the Git server is a pod
    lab.cleanup()
    !gitops-lab cluster status --name {name}
    """),
    md("**Self-check.** Neither the cluster nor the Git server answers."),
    check("""
    def answers(port: int) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", port)) == 0


    status = subprocess.run(["gitops-lab", "cluster", "status", "--name", name], capture_output=True)
    assert status.returncode == 3, "the cluster should be down (status exits 3)"
    if provider == "kind":
        containers = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True,
                                    text=True, check=True).stdout.split()
        assert f"{name}-control-plane" not in containers, "the kind node container should be gone"
    else:
        assert not answers(git_port), "the Git server should be stopped"
    """),
    md("Thank you! **00 · Welcome** starts again."),
]

