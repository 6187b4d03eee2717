"""Chapter 01's helpers and exercise: the learner makes a namespace with a label and runs a
Deployment in it with kubectl; the checker reads the cluster."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from gitops_lab.course.core import Exercise, Verdict, done, not_yet, pending
from gitops_lab.course.probe import live_object

if TYPE_CHECKING:
    from gitops_lab.lab import Lab

__all__ = ["EXERCISES", "NAMESPACE", "catch_up", "check_playground", "judge_playground",
           "node_facts", "tidy_up"]

NAMESPACE = "playground"
LABEL = ("purpose", "learning")
IMAGE = "gitops-lab/guestbook:1.0.0"
Obj = dict[str, Any]


def tidy_up(lab: Lab) -> None:
    """Remove what this chapter creates by hand: `hello` in default, the namespace playground."""
    lab.kubectl("delete", "deployment", "hello", "-n", "default", "--ignore-not-found",
                "--cascade=foreground")
    lab.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found")


def catch_up(lab: Lab) -> None:
    """Start the chapter as if it never ran: nothing of an earlier run left."""
    tidy_up(lab)


def node_facts(lab: Lab) -> list[Obj]:
    """Per node: its name, who plays the kubelet (version), and the container runtime."""
    nodes = json.loads(lab.kubectl("get", "nodes", "-o", "json"))["items"]
    out = []
    for node in nodes:
        info = node["status"].get("nodeInfo") or {}
        out.append({"name": node["metadata"]["name"],
                    "kubelet": info.get("kubeletVersion", ""),
                    "runtime": info.get("containerRuntimeVersion") or "(none: no container runs)",
                    "simulated": (node["metadata"].get("annotations") or {})
                    .get("kwok.x-k8s.io/node") == "fake"})
    return out


def judge_playground(namespace: Obj | None, deployment: Obj | None, pods: list[Obj]) -> Verdict:
    """The pure part of the check, over what kubectl returned (None = not there)."""
    key, value = LABEL
    if namespace is None:
        return not_yet(f"no namespace {NAMESPACE} yet: !kubectl create namespace {NAMESPACE}")
    labels = (namespace.get("metadata") or {}).get("labels") or {}
    if labels.get(key) != value:
        has = f"its {key} label is {labels[key]!r}" if key in labels else f"it has no {key} label"
        return not_yet(f"{NAMESPACE} is there but {has}: !kubectl label namespace {NAMESPACE} "
                       f"{key}={value} --overwrite")
    if deployment is None:
        return not_yet(f"no Deployment hello in {NAMESPACE} yet (the demo's is in default): "
                       f"!kubectl create deployment hello --image={IMAGE} --replicas=3 "
                       f"-n {NAMESPACE}")
    replicas = (deployment.get("spec") or {}).get("replicas")
    if replicas != 3:
        return not_yet(f"hello in {NAMESPACE} asks for {replicas} replicas, not 3: "
                       f"!kubectl scale deployment hello -n {NAMESPACE} --replicas=3")
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            reason = ((status.get("state") or {}).get("waiting") or {}).get("reason", "")
            if reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName"):
                return not_yet(f"the pods cannot get their image ({reason}): nothing is pulled "
                               f"from a registry in this lab; use --image={IMAGE}, which the "
                               "lab loaded onto the node (delete and re-create the Deployment)")
    ready = (deployment.get("status") or {}).get("readyReplicas") or 0
    if ready < 3:
        return pending(f"3 replicas asked, {ready} ready so far")
    return done(f"3 pods of hello ready in {NAMESPACE} ({key}={value}).")


def check_playground(lab: Lab) -> Verdict:
    try:
        pods = json.loads(lab.kubectl("get", "pods", "-n", NAMESPACE, "-o", "json"))["items"]
    except Exception:  # no such namespace yet: the verdict says so
        pods = []
    return judge_playground(live_object(lab, "namespace", NAMESPACE),
                            live_object(lab, "deployment", "hello", NAMESPACE), pods)


EXERCISES = {
    "01-playground": Exercise("01-playground",
                              "A namespace with a label, and 3 pods of hello in it",
                              check_playground, wait=60,
                              waiting_for="the pods to be scheduled and reported ready"),
}
