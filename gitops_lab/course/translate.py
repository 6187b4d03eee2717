"""From the lab to Argo CD and Flux: the live Application, translated into the manifests those
tools read, and a checker for a learner's own translation. Pure functions over dicts (no I/O).

Field names follow the published APIs: Argo CD's ``argoproj.io/v1alpha1`` Application, Flux's
``source.toolkit.fluxcd.io/v1`` GitRepository and ``kustomize.toolkit.fluxcd.io/v1``
Kustomization. Nothing here is applied anywhere: the lab runs neither tool.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import urlparse

import yaml

from gitops_lab.course.core import Verdict, done, not_yet

__all__ = [
    "ARGO_API",
    "FLUX_KUSTOMIZE_API",
    "FLUX_SOURCE_API",
    "Comparison",
    "argo_application",
    "check_flux_kustomization",
    "compare",
    "flux_objects",
    "is_go_duration",
]

Obj = dict[str, Any]

ARGO_API = "argoproj.io/v1alpha1"
FLUX_SOURCE_API = "source.toolkit.fluxcd.io/v1"
FLUX_KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/v1"
ARGO_NAMESPACE = "argocd"
FLUX_NAMESPACE = "flux-system"
# Argo CD's name for the cluster it runs in; an Application needs a destination server or name
IN_CLUSTER = "https://kubernetes.default.svc"
ARGO_FINALIZER = "resources-finalizer.argocd.argoproj.io"
OUR_FINALIZER = "resources-finalizer.gitopslab.io"
# Flux's intervals are the user's choice (both fields are required); these are common values
SOURCE_INTERVAL = "1m"
KUSTOMIZATION_INTERVAL = "10m"
# the pattern Flux's CRDs give every interval (a Go duration such as 1m, 10m, 1h30m)
_GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")
_SHA = re.compile(r"^[0-9a-f]{40}$")
# the schemes Flux's GitRepository accepts in spec.url (its CRD's validation pattern)
_FLUX_SCHEMES = ("http", "https", "ssh")


def is_go_duration(value: object) -> bool:
    """True for what Flux accepts as an interval: ``30s``, ``1m``, ``10m``, ``1h30m``…"""
    return isinstance(value, str) and bool(_GO_DURATION.match(value))


def _spec(app: Mapping[str, Any]) -> Mapping[str, Any]:
    return app.get("spec") or {}


def _source(app: Mapping[str, Any]) -> Mapping[str, Any]:
    return _spec(app).get("source") or {}


def _automated(app: Mapping[str, Any]) -> Mapping[str, Any] | None:
    policy = _spec(app).get("syncPolicy") or {}
    automated = policy.get("automated")
    return automated if isinstance(automated, Mapping) else None


def app_path(app: Mapping[str, Any]) -> str:
    """The Application's directory in the repo, normalised (``apps/guestbook``)."""
    return normalise_path(str(_source(app).get("path") or "."))


def normalise_path(path: str) -> str:
    """``./apps/guestbook/`` and ``apps/guestbook`` name the same directory."""
    path = path.strip()
    while path.startswith("./"):
        path = path[2:]
    path = path.strip("/")
    return path or "."


def repo_name(url: str) -> str:
    """A name for the repository: ``git://127.0.0.1:9418/lab.git`` → ``lab``."""
    last = urlparse(url).path.rstrip("/").rsplit("/", 1)[-1] or "repo"
    return re.sub(r"[^a-z0-9-]", "-", last.removesuffix(".git").lower()).strip("-") or "repo"


def argo_application(app: Mapping[str, Any]) -> Obj:
    """Our Application as Argo CD's: the same source, destination and sync policy, plus what
    Argo CD requires that we do not (a project and a destination cluster)."""
    spec = _spec(app)
    meta = app.get("metadata") or {}
    source = _source(app)
    out_spec: Obj = {
        "project": "default",
        "source": {"repoURL": source.get("repoURL", ""),
                   "targetRevision": source.get("targetRevision", "HEAD"),
                   "path": source.get("path", ".")},
        "destination": {"server": IN_CLUSTER,
                        "namespace": (spec.get("destination") or {}).get("namespace", "")},
    }
    policy = spec.get("syncPolicy") or {}
    automated = _automated(app)
    out_policy: Obj = {}
    if automated is not None:
        out_policy["automated"] = {key: bool(automated.get(key, False))
                                   for key in ("prune", "selfHeal", "allowEmpty")}
    # CreateNamespace=true is an Argo CD sync option too; AppOfApps=true is the lab's own
    options = [o for o in policy.get("syncOptions") or [] if not str(o).startswith("AppOfApps")]
    if options:
        out_policy["syncOptions"] = list(options)
    if out_policy:
        out_spec["syncPolicy"] = out_policy
    if "revisionHistoryLimit" in spec:
        out_spec["revisionHistoryLimit"] = spec["revisionHistoryLimit"]
    out_meta: Obj = {"name": meta.get("name", ""), "namespace": ARGO_NAMESPACE}
    if OUR_FINALIZER in (meta.get("finalizers") or []):
        out_meta["finalizers"] = [ARGO_FINALIZER]
    return {"apiVersion": ARGO_API, "kind": "Application", "metadata": out_meta,
            "spec": out_spec}


def flux_repo_url(url: str) -> str:
    """The URL a GitRepository may carry: Flux accepts only http(s):// and ssh:// URLs, so the
    lab's ``git://`` server is written as the HTTPS address such a repo has at work."""
    if urlparse(url).scheme in _FLUX_SCHEMES:
        return url
    return f"https://git.example.com/team/{repo_name(url)}.git"


def flux_objects(app: Mapping[str, Any], *, source_interval: str = SOURCE_INTERVAL,
                 interval: str = KUSTOMIZATION_INTERVAL) -> list[Obj]:
    """Our Application as Flux's pair: a GitRepository (where, which ref, how often to fetch)
    and a Kustomization (which path, where to, prune, how often to apply)."""
    meta = app.get("metadata") or {}
    source = _source(app)
    url = str(source.get("repoURL", ""))
    revision = str(source.get("targetRevision") or "HEAD")
    ref: Obj = {"commit": revision} if _SHA.match(revision) else \
        {"branch": "main" if revision == "HEAD" else revision}
    name = repo_name(url)
    git_repo: Obj = {
        "apiVersion": FLUX_SOURCE_API, "kind": "GitRepository",
        "metadata": {"name": name, "namespace": FLUX_NAMESPACE},
        "spec": {"interval": source_interval, "url": flux_repo_url(url), "ref": ref},
    }
    automated = _automated(app)
    ks_spec: Obj = {
        "interval": interval,
        "sourceRef": {"kind": "GitRepository", "name": name},
        "path": "./" + app_path(app) if app_path(app) != "." else "./",
        "prune": bool(automated.get("prune", False)) if automated is not None else False,
        "targetNamespace": (_spec(app).get("destination") or {}).get("namespace", ""),
    }
    if automated is None:
        ks_spec["suspend"] = True  # Flux has no manual-only mode: a suspended one waits
    kustomization: Obj = {
        "apiVersion": FLUX_KUSTOMIZE_API, "kind": "Kustomization",
        "metadata": {"name": meta.get("name", ""), "namespace": FLUX_NAMESPACE},
        "spec": ks_spec,
    }
    return [git_repo, kustomization]


def notes(app: Mapping[str, Any]) -> list[str]:
    """What does not translate one to one, for this Application."""
    source = _source(app)
    automated = _automated(app)
    options = [str(o) for o in (_spec(app).get("syncPolicy") or {}).get("syncOptions") or []]
    out = []
    if urlparse(str(source.get("repoURL", ""))).scheme not in _FLUX_SCHEMES:
        out.append("The lab's Git server speaks git://, which Flux's GitRepository does not "
                   "accept (only http://, https:// and ssh://): the Flux column shows the HTTPS "
                   "address such a repo has at work (git.example.com is a placeholder). Argo "
                   "CD would also be given your Git host's https:// or ssh:// URL.")
    if automated is None:
        out.append("Manual sync: Argo CD simply omits syncPolicy.automated. Flux has no "
                   "manual-only mode; the nearest is suspend: true (nothing is applied until "
                   "`flux resume kustomization`).")
    else:
        if not automated.get("selfHeal"):
            out.append("selfHeal is off here (and off by default in Argo CD: drift is reported, "
                       "not reverted). Flux has no such switch: every Kustomization interval it "
                       "applies again, so drift is corrected within the interval.")
        out.append("prune: Argo CD's automated.prune defaults to false; Flux's spec.prune has no "
                   "default — the v1 API requires it.")
    if any(o == "CreateNamespace=true" for o in options):
        out.append("CreateNamespace=true is an Argo CD sync option too. Flux has none: the target "
                   "namespace must exist, or be one of the manifests (a Namespace object).")
    out.append("Intervals: Argo CD compares every app with Git every 3 minutes "
               "(timeout.reconciliation, 180 s, in the argocd-cm ConfigMap). Flux's "
               "GitRepository and Kustomization intervals are yours to set — 1m and 10m here, "
               "as commonly used. This lab's agent polls Git every second.")
    return out


def _yaml(obj: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(obj), sort_keys=False, default_flow_style=False)


@dataclass(frozen=True)
class Comparison:
    """One app three ways; shown in a notebook as three columns, as YAML in a terminal."""

    ours: Obj
    argo: Obj
    flux: list[Obj]
    notes: list[str] = field(default_factory=list)

    def columns(self) -> list[tuple[str, str]]:
        return [("gitops-lab (this lab)", _yaml(self.ours)),
                ("Argo CD", _yaml(self.argo)),
                ("Flux", "---\n".join(_yaml(o) for o in self.flux))]

    def __repr__(self) -> str:
        parts = [f"# ---- {title}\n{text}" for title, text in self.columns()]
        return "\n".join(parts + ["# ---- notes"] + [f"# - {n}" for n in self.notes])

    def _repr_html_(self) -> str:
        cols = "".join(
            '<div style="flex:1;min-width:260px">'
            f'<div style="font-weight:bold;margin-bottom:4px">{escape(title)}</div>'
            '<pre style="font-size:11px;background:#f6f8fa;padding:6px;margin:0;'
            f'white-space:pre-wrap">{escape(text)}</pre></div>'
            for title, text in self.columns())
        items = "".join(f"<li>{escape(n)}</li>" for n in self.notes)
        return (f'<div style="display:flex;gap:10px;align-items:flex-start">{cols}</div>'
                f'<ul style="font-size:12px">{items}</ul>')


def essentials(app: Mapping[str, Any]) -> Obj:
    """The Application as a learner writes it: no status, no server-set metadata."""
    meta = app.get("metadata") or {}
    kept_meta: Obj = {"name": meta.get("name", ""), "namespace": meta.get("namespace", "")}
    if meta.get("finalizers"):
        kept_meta["finalizers"] = list(meta["finalizers"])
    return {"apiVersion": app.get("apiVersion", ""), "kind": app.get("kind", ""),
            "metadata": kept_meta, "spec": dict(_spec(app))}


def compare(app: Mapping[str, Any]) -> Comparison:
    """The live Application beside its Argo CD and Flux translations."""
    return Comparison(essentials(app), argo_application(app), flux_objects(app), notes(app))


# ---- the learner's translation, checked against the live Application -------------------------
def _kind_summary(docs: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(f"{d.get('apiVersion', '?')} {d.get('kind', '?')}" for d in docs) or "nothing"


def check_flux_kustomization(app: Mapping[str, Any], docs: Sequence[Mapping[str, Any]],
                             path: str) -> Verdict:
    """Is ``docs`` (the YAML documents of the learner's file ``path``) a Flux Kustomization that
    deploys what ``app`` deploys? A GitRepository in the same file is checked too."""
    kustomizations = [d for d in docs if d.get("kind") == "Kustomization"]
    if not kustomizations:
        return not_yet(f"{path} has no Kustomization (it has: {_kind_summary(docs)}); "
                       f"write one with apiVersion: {FLUX_KUSTOMIZE_API}")
    ks = kustomizations[0]
    api = ks.get("apiVersion")
    if api == "kustomize.config.k8s.io/v1beta1":
        return not_yet(f"{path}: kustomize.config.k8s.io/v1beta1 is Kustomize's own "
                       "kustomization.yaml (a list of files to build). Flux's Kustomization is "
                       f"a cluster object with apiVersion: {FLUX_KUSTOMIZE_API}")
    if api != FLUX_KUSTOMIZE_API:
        return not_yet(f"{path}: the Kustomization's apiVersion is {api!r}; Flux's current API "
                       f"is {FLUX_KUSTOMIZE_API} (v1beta2 is deprecated)")
    spec = ks.get("spec")
    if not isinstance(spec, Mapping):
        return not_yet(f"{path}: the Kustomization has no spec")
    want_path = app_path(app)
    got_path = spec.get("path")
    if not isinstance(got_path, str) or "?" in got_path:
        return not_yet(f"{path}: spec.path is not set; it is the directory Flux builds — our "
                       f"Application's spec.source.path, here ./{want_path}")
    if normalise_path(got_path) != want_path:
        return not_yet(f"{path}: spec.path is {got_path!r}, but the Application deploys "
                       f"{want_path!r} (spec.source.path); write ./{want_path}")
    automated = _automated(app)
    want_prune = bool(automated.get("prune", False)) if automated is not None else False
    prune = spec.get("prune")
    if not isinstance(prune, bool):
        return not_yet(f"{path}: spec.prune must be true or false (Flux's v1 API requires it, "
                       f"with no default); the Application's automated.prune is "
                       f"{str(want_prune).lower()}")
    if prune != want_prune:
        return not_yet(f"{path}: spec.prune is {str(prune).lower()}, but the Application has "
                       f"automated.prune: {str(want_prune).lower()} — objects deleted from Git "
                       f"{'are' if want_prune else 'are not'} deleted from the cluster")
    want_ns = (_spec(app).get("destination") or {}).get("namespace", "")
    got_ns = spec.get("targetNamespace")
    if got_ns != want_ns:
        shown = "not set" if got_ns is None else repr(got_ns)
        return not_yet(f"{path}: spec.targetNamespace is {shown}; the Application deploys into "
                       f"{want_ns!r} (spec.destination.namespace)")
    interval = spec.get("interval")
    if interval is None or interval == "???":
        return not_yet(f"{path}: spec.interval is required — how often Flux applies again and "
                       "corrects drift, e.g. 10m")
    if not is_go_duration(interval):
        return not_yet(f"{path}: spec.interval {interval!r} is not a duration Flux accepts; "
                       "write it like 30s, 5m, 10m or 1h")
    ref = spec.get("sourceRef")
    if not isinstance(ref, Mapping) or ref.get("kind") != "GitRepository" or not ref.get("name"):
        return not_yet(f"{path}: spec.sourceRef must name the GitRepository Flux fetches from: "
                       "{kind: GitRepository, name: <its name>}")
    repos = [d for d in docs if d.get("kind") == "GitRepository"]
    also = ""
    if repos:
        verdict = _check_git_repository(app, repos[0], str(ref.get("name")), path)
        if verdict is not None:
            return verdict
        also = f" and the GitRepository {ref.get('name')!r} fetches {_branch(app)!r}"
    return done(f"{path} is a Flux Kustomization of ./{want_path} into {want_ns!r} with "
                f"prune: {str(want_prune).lower()} every {interval}{also} — the same app as "
                "our Application. (Nothing applied it: the lab has no Flux.)")


def _branch(app: Mapping[str, Any]) -> str:
    revision = str(_source(app).get("targetRevision") or "HEAD")
    return "main" if revision == "HEAD" else revision


def _check_git_repository(app: Mapping[str, Any], repo: Mapping[str, Any], name: str,
                          path: str) -> Verdict | None:
    if repo.get("apiVersion") != FLUX_SOURCE_API:
        return not_yet(f"{path}: the GitRepository's apiVersion is {repo.get('apiVersion')!r}; "
                       f"Flux's current API is {FLUX_SOURCE_API}")
    if (repo.get("metadata") or {}).get("name") != name:
        return not_yet(f"{path}: the Kustomization's sourceRef names {name!r}, but the "
                       f"GitRepository is called {(repo.get('metadata') or {}).get('name')!r}")
    spec = repo.get("spec") or {}
    url = str(spec.get("url") or "")
    if urlparse(url).scheme not in _FLUX_SCHEMES:
        return not_yet(f"{path}: the GitRepository's spec.url {url!r} is not an http://, "
                       "https:// or ssh:// URL, the only ones Flux accepts (the lab's git:// "
                       "server cannot be used: write the HTTPS address the repo would have)")
    if not is_go_duration(spec.get("interval")):
        return not_yet(f"{path}: the GitRepository needs spec.interval (how often Flux "
                       "fetches), e.g. 1m")
    branch = (spec.get("ref") or {}).get("branch")
    if branch != _branch(app):
        return not_yet(f"{path}: the GitRepository's spec.ref.branch is {branch!r}; the "
                       f"Application tracks {_branch(app)!r} (spec.source.targetRevision)")
    return None
