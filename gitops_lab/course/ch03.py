"""Chapter 03's helpers and exercise: the learner writes an Application for apps/hello (which
the lab prepares in Git), applies it with kubectl, and the checker reads what the agent made
of it. Also the plumbing of the chapter's demos (the app's page, catch-up, tidy-up)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitops_lab.course.core import Exercise, Verdict, done, not_yet, pending
from gitops_lab.course.probe import pushed_text

if TYPE_CHECKING:
    from gitops_lab.lab import Lab

__all__ = ["EXERCISES", "HELLO_FILES", "HELLO_PATH", "catch_up", "check_hello", "draft_path",
           "every_pod_serves", "greeting_in_cluster", "judge_hello", "page", "pod_names",
           "prepare_hello", "show_page", "tidy_up"]

Obj = dict[str, Any]
HELLO_PATH = "apps/hello"
APP_NAMESPACE = "gitops-lab"  # the namespace the agent watches for Applications

HELLO_FILES = {
    f"{HELLO_PATH}/configmap.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: hello-config
  labels:
    app.kubernetes.io/name: hello
data:
  GREETING: "Hello from apps/hello"
""",
    f"{HELLO_PATH}/deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
  labels:
    app.kubernetes.io/name: hello
spec:
  replicas: 1
  progressDeadlineSeconds: 20
  selector:
    matchLabels:
      app.kubernetes.io/name: hello
  template:
    metadata:
      labels:
        app.kubernetes.io/name: hello
    spec:
      containers:
      - name: web
        image: gitops-lab/guestbook:1.0.0
        imagePullPolicy: IfNotPresent
        ports:
        - containerPort: 8080
        readinessProbe:
          httpGet:
            path: /healthz
            port: 8080
          periodSeconds: 2
        volumeMounts:
        - name: config
          mountPath: /etc/guestbook
          readOnly: true
      volumes:
      - name: config
        configMap:
          name: hello-config
""",
}


# ---- catch-up and tidy-up ------------------------------------------------------------------------
def draft_path(lab: Lab, name: str) -> Path:
    """Where the chapter writes an Application manifest for `kubectl apply -f` (outside Git:
    Applications are applied to the cluster, the apps they point at live in Git)."""
    folder = lab.state_dir / "manifests"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def _delete_hello_apps(lab: Lab) -> None:
    found = json.loads(lab.kubectl("get", "applications", "-A", "-o", "json"))["items"]
    for app in found:
        meta = app["metadata"]
        if meta["name"] == "hello":
            if meta.get("finalizers"):  # the learner's may carry one: nobody waits for it here
                lab.kubectl("patch", "application", "hello", "-n", meta["namespace"],
                            "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
            lab.kubectl("delete", "application", "hello", "-n", meta["namespace"],
                        "--ignore-not-found")
    lab.kubectl("delete", "namespace", "hello", "--ignore-not-found", "--timeout=90s")


def prepare_hello(lab: Lab) -> str:
    """apps/hello in Git, as the lab ships it; returns the head of main."""
    changed = {p: t for p, t in HELLO_FILES.items() if pushed_text(lab, p) != t}
    if changed:
        return lab.commit(changed, "Add the hello app for chapter 03's exercise")
    return lab.workcopy.head


def catch_up(lab: Lab) -> str:
    """This chapter starts with no Application: with the agent paused (so it re-applies
    nothing meanwhile), delete guestbook and what it deployed, and any hello of an earlier run;
    put the pristine sample and apps/hello in Git. Returns the head of main."""
    with lab.paused_agent():
        lab.apps.delete("guestbook")
        lab.kubectl("delete", "deployment,service,configmap", "-n", "guestbook",
                    "-l", "app.kubernetes.io/name=guestbook", "--ignore-not-found",
                    "--cascade=foreground")
        _delete_hello_apps(lab)
        lab.reset_git()
        return prepare_hello(lab)


def tidy_up(lab: Lab) -> None:
    """After the exercise: no hello Application, no namespace hello, no apps/hello in Git —
    the next chapters start from the guestbook alone."""
    _delete_hello_apps(lab)
    present = [p for p in HELLO_FILES if pushed_text(lab, p) is not None]
    if present:
        lab.commit(None, "Remove the hello app of chapter 03's exercise", delete=(HELLO_PATH,))


# ---- the sample app's page (kind) and its config (both) -----------------------------------------
def page(lab: Lab) -> str:
    """The sample app's page, or "" while no ready pod answers (e.g. right after a rollout)."""
    from gitops_lab.lab import LabError

    try:
        return lab.fetch_app()
    except LabError:
        return ""


def show_page(html: str) -> Any:
    """The page's body, framed, for display in the notebook."""
    from IPython.display import HTML

    body = re.search(r"<body[^>]*>(.*)</body>", html, re.S)
    return HTML('<div style="border:1px solid #d0d7de;border-radius:6px;padding:0 1em">'  # type: ignore[no-untyped-call]
                f"{body.group(1) if body else html}</div>")


def greeting_in_cluster(lab: Lab) -> str:
    return lab.kubectl("get", "configmap", "guestbook-config", "-n", "guestbook",
                       "-o", "jsonpath={.data.GREETING}")


def pod_names(lab: Lab, namespace: str = "guestbook") -> list[str]:
    """The pods of a namespace that are not being deleted."""
    pods = json.loads(lab.kubectl("get", "pods", "-n", namespace, "-o", "json"))["items"]
    return sorted(p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp"))


def every_pod_serves(lab: Lab, text: str, pods: list[str], timeout: float = 60.0) -> str:
    """Wait until each of `pods` has served a page with GREETING `text` (the Service spreads
    requests over the pods; the page names its pod); returns the last page."""
    served: dict[str, str] = {}
    last = {"html": ""}

    def all_serve() -> bool:
        html = page(lab)
        found = re.search(r'id="greeting">(.*?)</h1>.*id="pod">([^<]+)<', html, re.S)
        if found:
            served[found.group(2)] = found.group(1)
            last["html"] = html
        return all(served.get(pod) == text for pod in pods)

    start = time.monotonic()
    lab.wait_until(all_serve, timeout=timeout,
                   what=f"the kubelets to refresh the mounted ConfigMap and all {len(pods)} "
                        "pods to serve the new GREETING")
    print(f"every pod served it {time.monotonic() - start:.0f} s after the ConfigMap changed")
    return last["html"]


# ---- the exercise: write an Application for apps/hello -------------------------------------------
def _clean_path(path: str) -> str:
    path = path.strip()
    while path.startswith("./"):
        path = path[2:]
    return path.strip("/")


def judge_hello(app: Obj | None, elsewhere: list[str], repo_url: str,
                draft: str | None = None) -> Verdict:
    """The pure part of the check: the learner's Application (None = not in gitops-lab),
    namespaces where an Application `hello` sits instead, the repo URL the agent uses, and the
    draft file's text if any."""
    if app is None:
        if elsewhere:
            where = ", ".join(elsewhere)
            return not_yet(f"there is an Application hello in {where}, but the agent watches "
                           f"only the namespace {APP_NAMESPACE}: set metadata.namespace: "
                           f"{APP_NAMESPACE} and apply again (and remove the stray one: "
                           f"!kubectl delete application hello -n {elsewhere[0]})")
        if draft is not None and "???" in draft:
            return not_yet("your manifest still has ??? in it: fill in metadata.namespace, "
                           "spec.source.path and the syncPolicy, run the cell, then "
                           "!kubectl apply -f it")
        return not_yet(f"no Application hello in {APP_NAMESPACE} yet: write it in the cell "
                       "above, then !kubectl apply -f the file it wrote")
    spec = app.get("spec") or {}
    source = spec.get("source") or {}
    path = _clean_path(str(source.get("path") or ""))
    if path != HELLO_PATH:
        return not_yet(f"spec.source.path is {source.get('path')!r}, but the lab put the app in "
                       f"{HELLO_PATH} (see !git -C … ls-files apps): fix it and apply again")
    if source.get("repoURL") != repo_url:
        return not_yet(f"spec.source.repoURL is {source.get('repoURL')!r}; the agent reaches "
                       f"the lab's repo as {repo_url} (lab.repo_url)")
    if str(source.get("targetRevision") or "HEAD") not in ("main", "HEAD", "refs/heads/main"):
        return not_yet(f"spec.source.targetRevision is {source.get('targetRevision')!r}: "
                       "apps/hello is on the branch main")
    dest = (spec.get("destination") or {}).get("namespace")
    if dest != "hello":
        return not_yet(f"spec.destination.namespace is {dest!r}; the task asks for hello")
    policy = spec.get("syncPolicy") or {}
    if "automated" not in policy:
        return not_yet("no syncPolicy.automated: the agent only compares and reports OutOfSync "
                       "— it applies nothing until asked. Add `automated:` with `prune: true` "
                       "under syncPolicy and apply again (a one-off sync by hand would be "
                       "!gitops-lab app sync hello; the task asks for automated)")
    status = app.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == "SharedResourceWarning":
            continue
        message = str(cond.get("message") or "")
        if "namespace" in message.lower() and \
                "CreateNamespace=true" not in (policy.get("syncOptions") or []):
            return not_yet(f"the agent reports {cond.get('type')}: {message} — add "
                           "syncOptions: [CreateNamespace=true] so the agent creates it")
        # the spec looks right: a condition here may pass (re-checked while we wait)
        return pending(f"the agent reports {cond.get('type')}: {message}")
    sync = (status.get("sync") or {}).get("status")
    health = (status.get("health") or {}).get("status")
    if sync == "Synced" and health == "Healthy":
        return done(f"hello is Synced and Healthy: the agent deployed {HELLO_PATH} into the "
                    "namespace hello, and will keep doing so on every commit.")
    if not status:
        return pending("the agent has not compared hello with Git yet")
    return pending(f"hello is {sync or 'not compared yet'} and {health or 'of unknown health'}")


def check_hello(lab: Lab) -> Verdict:
    found = json.loads(lab.kubectl("get", "applications", "-A", "-o", "json"))["items"]
    mine = [a for a in found if a["metadata"]["name"] == "hello"]
    app = next((a for a in mine if a["metadata"]["namespace"] == APP_NAMESPACE), None)
    elsewhere = [a["metadata"]["namespace"] for a in mine if a is not app]
    draft = draft_path(lab, "hello-app.yaml")
    return judge_hello(app, elsewhere, lab.repo_url,
                       draft.read_text() if draft.exists() else None)


EXERCISES = {
    "03-hello": Exercise("03-hello", "Write an Application for apps/hello", check_hello,
                         wait=90, waiting_for="the agent to sync hello and its pod to be ready"),
}
