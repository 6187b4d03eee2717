"""Chapter 08's environments: staging and production as Kustomize overlays of one base in the
config repo, one Application each; what each renders (from Git, at any commit) and runs; the
promotion exercise's checker (a reviewed branch merged into main)."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gitops_lab.apps import application
from gitops_lab.course.core import Verdict, done, not_yet, pending
from gitops_lab.samples import sample_files
from gitops_lab.source.render import render

if TYPE_CHECKING:
    import git

    from gitops_lab.lab import Lab

__all__ = ["ENVS", "FIELDS", "NEW_GREETING", "ROOT", "app_name", "check_promote", "compare",
           "env_files", "live_summary", "rendered", "rendered_diff", "setup", "summary",
           "table_html", "teammate_greeting", "teardown", "wait_synced"]

ROOT = "envs/guestbook"
ENVS = ("staging", "production")
GREETING = "Hello from Git"
NEW_GREETING = "Hello from Git, tried in staging first"
# (field, differs on purpose between environments?)
FIELDS = [("namespace", True), ("replicas", True), ("THEME", True), ("image", False),
          ("GREETING", False)]
_SETTINGS = {"staging": {"replicas": 1, "theme": "dark"},
             "production": {"replicas": 2, "theme": "light"}}


def app_name(env: str) -> str:
    """The Application of `env`, and the namespace it deploys to (the same name)."""
    return f"guestbook-{env}"


def overlay(env: str) -> str:
    return f"{ROOT}/overlays/{env}"


def _kustomization(env: str, tag: str = "1.0.0") -> str:
    return f"""\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: {app_name(env)}
resources:
- ../../base
replicas:
- name: guestbook-ui
  count: {_SETTINGS[env]['replicas']}
images:
- name: gitops-lab/guestbook
  newTag: {tag}
patches:
- path: config.yaml
"""


def _config(env: str, greeting: str = GREETING) -> str:
    return f"""\
apiVersion: v1
kind: ConfigMap
metadata:
  name: guestbook-config
data:
  GREETING: "{greeting}"
  THEME: "{_SETTINGS[env]['theme']}"
"""


def env_files() -> dict[str, str]:
    """The pristine layout: base = the sample (its Service a ClusterIP one: the NodePort
    belongs to the lab's guestbook), and an overlay per environment."""
    files: dict[str, str] = {}
    for path, text in sample_files("guestbook", f"{ROOT}/base").items():
        if path.endswith("service.yaml"):
            text = text.replace("  type: NodePort\n", "  type: ClusterIP\n")
            text = text.replace("    nodePort: 30080\n", "")
        files[path] = text
    files[f"{ROOT}/base/kustomization.yaml"] = (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
        "- configmap.yaml\n- deployment.yaml\n- service.yaml\n")
    for env in ENVS:
        files[f"{overlay(env)}/kustomization.yaml"] = _kustomization(env)
        files[f"{overlay(env)}/config.yaml"] = _config(env)
    return files


def _repo(lab: Lab) -> git.Repo:
    """The learner's clone, as it is (no pull: it may be on a branch the server lacks)."""
    wc = lab._workcopy or lab.workcopy
    return wc.repo


def back_to_main(lab: Lab) -> list[str]:
    """Catch-up for the clone: no merge half done, on main, no promote-* branch left here or on
    the server (from an earlier run). Returns what it did, for the learner to read."""
    repo = _repo(lab)
    notes = []
    if (Path(repo.git_dir) / "MERGE_HEAD").exists():
        repo.git.merge("--abort")
        notes.append("aborted a merge in progress")
    if repo.head.is_detached or repo.active_branch.name != "main":
        repo.git.checkout("-f", "main")
        notes.append("switched your clone back to main")
    repo.git.fetch("--quiet", "--prune", "origin")
    for ref in repo.remotes.origin.refs:
        branch = ref.remote_head
        if branch.startswith("promote-"):
            repo.git.push("--quiet", "origin", "--delete", branch)
            notes.append(f"deleted branch {branch} on the server")
    for head in repo.heads:
        if head.name.startswith("promote-"):
            repo.git.branch("-D", head.name)
            notes.append(f"deleted branch {head.name} in your clone")
    return notes


def setup(lab: Lab, *, timeout: float = 120.0) -> dict[str, Any]:
    """Catch up: the clone on main; the pristine overlays in Git; both Applications Synced and
    Healthy at the head of main. Returns {env: Application}."""
    back_to_main(lab)
    wc = lab.workcopy
    wanted = env_files()
    changed = {p: t for p, t in wanted.items() if not _same(wc.path / p, t)}
    folder = wc.path / ROOT
    extra = tuple(str(f.relative_to(wc.path)) for f in folder.rglob("*")
                  if f.is_file() and str(f.relative_to(wc.path)) not in wanted) \
        if folder.exists() else ()
    if changed or extra:
        lab.commit(changed, "Environments: staging and production overlays of guestbook",
                   delete=extra)
    for env in ENVS:
        lab.apps.apply(application(app_name(env), lab.repo_url, overlay(env),
                                   dest_namespace=app_name(env), cascade=True))
    head = wc.head
    out = {}
    for env in ENVS:
        out[env] = lab.wait_for(
            app_name(env),
            lambda a: _st(a, "sync", "status") == "Synced" and _st(a, "sync", "revision") == head
            and _st(a, "health", "status") == "Healthy",
            what=f"{app_name(env)} to be Synced and Healthy at the head of main", timeout=timeout)
    return out


def _same(path: Any, text: str) -> bool:
    try:
        return bool(path.read_text() == text)
    except OSError:
        return False


def _st(app: dict[str, Any], *path: str) -> Any:
    node: Any = app.get("status") or {}
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node


# ---- what each environment renders and runs ----------------------------------------------------
def _tree(repo: git.Repo, rev: str) -> dict[str, bytes]:
    """Every file under ROOT at `rev` (repo path → bytes), read from Git's objects."""
    from git.objects import Blob

    try:
        tree = repo.commit(rev).tree / ROOT
    except KeyError:
        return {}
    out: dict[str, bytes] = {}
    for item in tree.traverse():
        if isinstance(item, Blob):
            out[str(item.path)] = item.data_stream.read()
    return out


def rendered(lab: Lab, env: str, rev: str = "origin/main") -> list[dict[str, Any]]:
    """The objects `env`'s overlay renders at `rev` (kustomize, as the agent renders it)."""
    files = _tree(_repo(lab), rev)
    return [m.obj for m in render(files, root=overlay(env))] if files else []


def summary(objs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fields of FIELDS, from a Deployment and a ConfigMap (rendered or live)."""
    out: dict[str, Any] = {name: None for name, _ in FIELDS}
    for obj in objs:
        if obj.get("kind") == "Deployment":
            out["namespace"] = (obj.get("metadata") or {}).get("namespace")
            spec = obj.get("spec") or {}
            out["replicas"] = spec.get("replicas")
            containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
            out["image"] = containers[0].get("image") if containers else None
        elif obj.get("kind") == "ConfigMap":
            data = obj.get("data") or {}
            out["GREETING"], out["THEME"] = data.get("GREETING"), data.get("THEME")
    return out


def live_summary(lab: Lab, env: str) -> dict[str, Any]:
    """The same fields, from what runs in `env`'s namespace."""
    from gitops_lab.course.probe import live_object

    ns = app_name(env)
    objs = [o for o in (live_object(lab, "deployment", "guestbook-ui", ns),
                        live_object(lab, "configmap", "guestbook-config", ns)) if o]
    return summary(objs)


def compare(lab: Lab, rev: str = "origin/main") -> list[dict[str, Any]]:
    """One row per field: Git (rendered at `rev`) and live, for staging and production."""
    _repo(lab).git.fetch("--quiet", "origin")
    git_side = {env: summary(rendered(lab, env, rev)) for env in ENVS}
    live_side = {env: live_summary(lab, env) for env in ENVS}
    return [{"field": name, "on_purpose": purpose,
             "staging": git_side["staging"][name], "production": git_side["production"][name],
             "staging_live": live_side["staging"][name],
             "production_live": live_side["production"][name]}
            for name, purpose in FIELDS]


def table_html(rows: list[dict[str, Any]]) -> str:
    """The comparison as an HTML table: a release value that differs is drift to promote."""
    from html import escape

    def cell(value: Any, colour: str = "") -> str:
        style = f' style="background:{colour}"' if colour else ""
        return f"<td{style}><code>{escape(str(value))}</code></td>"

    body = []
    for r in rows:
        same = r["staging"] == r["production"]
        colour = "" if same else ("#eef3f7" if r["on_purpose"] else "#fff4d6")
        note = "same" if same else ("differs on purpose" if r["on_purpose"]
                                    else "drift: promote it")
        body.append(f"<tr><td><b>{escape(r['field'])}</b></td>"
                    + cell(r["staging"], colour) + cell(r["production"], colour)
                    + cell(r["staging_live"]) + cell(r["production_live"])
                    + f"<td>{escape(note)}</td></tr>")
    return ("<table><tr><th></th><th>staging (Git)</th><th>production (Git)</th>"
            "<th>staging (runs)</th><th>production (runs)</th><th></th></tr>"
            + "".join(body) + "</table>")


def rendered_diff(lab: Lab, rev: str = "origin/main") -> str:
    """`diff -u` of what staging and production render at `rev` (as `kubectl kustomize`)."""
    _repo(lab).git.fetch("--quiet", "origin")
    texts = {env: yaml.safe_dump_all(rendered(lab, env, rev), sort_keys=True).splitlines(True)
             for env in ENVS}
    return "".join(difflib.unified_diff(texts["staging"], texts["production"],
                                        f"{overlay('staging')} (rendered)",
                                        f"{overlay('production')} (rendered)"))


def teammate_greeting(lab: Lab) -> str:
    """A teammate's change, straight to staging: the new GREETING. Returns the commit."""
    path = f"{overlay('staging')}/config.yaml"
    text = lab.read(path)
    if NEW_GREETING in text:
        return lab.workcopy.head
    return lab.commit({path: text.replace(f'"{GREETING}"', f'"{NEW_GREETING}"')},
                      "staging: try the new greeting")


def teardown(lab: Lab, *, timeout: float = 60.0) -> None:
    """Delete both Applications (their finalizer deletes what they deployed) and their
    namespaces, and take the overlays out of Git; the clone ends on main."""
    back_to_main(lab)
    for env in ENVS:
        try:
            lab.delete_app(app_name(env), timeout=timeout)
        except Exception:
            lab.kubectl("delete", "namespace", app_name(env), "--ignore-not-found",
                        "--wait=false", check=False)
    if (lab.workcopy.path / ROOT).exists():
        lab.commit(None, "Remove the environments of chapter 08", delete=(ROOT.split("/")[0],))


# ---- the exercise: promote the new GREETING by branch + merge ----------------------------------
def greeting_at(lab: Lab, env: str, rev: str) -> str | None:
    return summary(rendered(lab, env, rev)).get("GREETING")


def promotion_commit(lab: Lab, value: str, *, depth: int = 50) -> tuple[str, bool] | None:
    """The commit on main's first-parent line that gave production's GREETING `value` (the
    oldest of the run of commits, back from the head, where it has that value), and whether it
    is a merge; None if the head's production does not have it."""
    repo = _repo(lab)
    found = None
    for sha in repo.git.rev_list("--first-parent", f"-n{depth}", "origin/main").split():
        if greeting_at(lab, "production", sha) != value:
            break
        found = str(sha)
    if found is None:
        return None
    parents = repo.git.rev_list("--parents", "-n1", found).split()[1:]
    return found, len(parents) > 1


def _where_is_the_learner(lab: Lab) -> Verdict:
    """Production still differs on the server: say what the clone shows."""
    repo = _repo(lab)
    branch = "(detached)" if repo.head.is_detached else repo.active_branch.name
    dirty = [line[3:] for line in str(repo.git.status("--porcelain")).splitlines()]
    if dirty:
        return not_yet(f"{', '.join(dirty)} changed in your clone (branch {branch}) but not "
                       "committed: git commit -am \"Promote the new greeting to production\"")
    if branch != "main":
        return not_yet(f"your change is on branch {branch}: push it for review (git push -u "
                       f"origin {branch}), then git checkout main, git merge --no-ff {branch} "
                       "and git push origin main")
    ahead = int(repo.git.rev_list("--count", "origin/main..main") or 0)
    if ahead:
        return not_yet("your clone's main has the merge but the server does not: git push "
                       "origin main — the agent pulls from the server")
    return not_yet(f"production's GREETING is not staging's yet: on a branch (git checkout -b "
                   f"promote-greeting) set GREETING in {overlay('production')}/config.yaml to "
                   f"\"{NEW_GREETING}\", commit, push the branch, then merge it into main with "
                   "--no-ff and push main")


def check_promote(lab: Lab) -> Verdict:
    repo = _repo(lab)
    repo.git.fetch("--quiet", "origin")
    staging = greeting_at(lab, "staging", "origin/main")
    production = greeting_at(lab, "production", "origin/main")
    if staging is None or production is None:
        return not_yet(f"{ROOT} does not render both environments on main: run the "
                       "chapter's first cells (its catch-up writes the overlays)")
    if staging == GREETING:
        return not_yet("staging has no new GREETING yet: run the cell above the task (a "
                       "teammate's change to staging)")
    if production != staging:
        return _where_is_the_learner(lab)
    found = promotion_commit(lab, staging)
    if found is None or not found[1]:
        where = f" ({found[0][:7]})" if found else ""
        return not_yet(f"production has staging's GREETING, but by a commit that is no merge"
                       f"{where} — one straight on main, or a fast-forward merge — so no "
                       "reviewed branch shows in main's history: git revert it, push, and "
                       "promote again on a branch merged with git merge --no-ff")
    merge = found[0]
    head = str(repo.git.rev_parse("origin/main"))
    status = lab.app(app_name("production")).get("status") or {}
    sync = status.get("sync") or {}
    if sync.get("revision") != head or sync.get("status") != "Synced":
        return pending(f"{app_name('production')} has not synced {head[:7]} yet")
    live = live_summary(lab, "production")
    if live.get("GREETING") != staging:
        return pending("the ConfigMap in guestbook-production does not carry the new "
                       "GREETING yet")
    return done(f"Merge {merge[:7]} promoted staging's GREETING to production, and "
                f"{app_name('production')} runs it (Synced at {head[:7]}).")


def wait_synced(lab: Lab, env: str, rev: str, timeout: float = 90.0) -> dict[str, Any]:
    """Wait until `env`'s Application is Synced and Healthy at `rev`."""
    return lab.wait_for(
        app_name(env),
        lambda a: _st(a, "sync", "revision") == rev and _st(a, "sync", "status") == "Synced"
        and _st(a, "health", "status") == "Healthy",
        what=f"{app_name(env)} to sync {rev[:7]} and be Healthy", timeout=timeout)
