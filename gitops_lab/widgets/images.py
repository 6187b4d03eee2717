"""ImageTimeline: an ImagePolicy's repository tags in version order, marking the one the policy
chose, the one Git holds (its markers) and the one(s) running — the pull pipeline at a glance.
Reads the registry, the config repo (a mirror of its own) and the API server; writes nothing.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import ipywidgets as w

from gitops_lab.images.policy import FLOATING_TAGS, PolicyError, PolicySpec, parse_spec
from gitops_lab.images.registry import RegistryClient, RegistryError
from gitops_lab.images.semver import Version, parse_version
from gitops_lab.images.setters import find_markers
from gitops_lab.kube import Kube, KubeError
from gitops_lab.source import RepoCache, SourceError
from gitops_lab.widgets._style import AMBER, BLUE, GREEN, GREY, esc

__all__ = ["ImageTimeline", "image_entries"]

Obj = dict[str, Any]
POLICIES = "/apis/gitopslab.io/v1alpha1/namespaces/{ns}/imagepolicies/{name}"
APPS = "/apis/gitopslab.io/v1alpha1/namespaces/{ns}/applications/{name}"


def _order(tag: str) -> tuple[int, Version | None, str]:
    version = parse_version(tag)
    return (0, version, tag) if version is not None else (1, None, tag)


def image_entries(tags: Iterable[str], spec: PolicySpec | None, latest: str,
                  in_git: Iterable[str], running: Iterable[str], *, keep: int = 12) -> list[Obj]:
    """One dict per tag, oldest version first (non-versions after): tag, latest, git, running,
    floating, in_range (None when the policy is not semver). Long lists keep the last `keep`
    plus every marked tag."""
    git, run = set(in_git), set(running)
    versions = sorted((t for t in tags if parse_version(t) is not None),
                      key=lambda t: _order(t)[1])  # type: ignore[arg-type,return-value]
    others = sorted(t for t in tags if parse_version(t) is None)
    entries = []
    for tag in [*versions, *others]:
        version = parse_version(tag)
        in_range = None
        if spec is not None and spec.kind == "semver" and spec.range is not None:
            in_range = version is not None and spec.range.matches(version)
        entries.append({"tag": tag, "latest": tag == latest, "git": tag in git,
                        "running": tag in run, "floating": tag.lower() in FLOATING_TAGS,
                        "in_range": in_range})
    if len(entries) > keep:
        marked = [e for e in entries if e["latest"] or e["git"] or e["running"]]
        tail = entries[-keep:]
        entries = [e for e in entries if e in marked and e not in tail] + tail
    return entries


def _chip(entry: Mapping[str, Any]) -> str:
    marks = []
    if entry["latest"]:
        marks.append(f'<span style="color:{BLUE}">policy</span>')
    if entry["git"]:
        marks.append(f'<span style="color:{AMBER}">Git</span>')
    if entry["running"]:
        marks.append(f'<span style="color:{GREEN}">running</span>')
    colour = GREEN if entry["running"] else AMBER if entry["git"] else \
        BLUE if entry["latest"] else GREY
    faded = entry["in_range"] is False or entry["floating"]
    return (f'<div class="gitops-image-tag" data-tag="{esc(entry["tag"])}" style="display:inline-'
            f'block;margin:0 6px 6px 0;padding:2px 8px;border:2px solid {colour};border-radius:'
            f'10px;font-size:12px;opacity:{0.45 if faded else 1}">'
            f'<code>{esc(entry["tag"])}</code>'
            + (f' <small>{" · ".join(marks)}</small>' if marks else "") + "</div>")


class ImageTimeline(w.VBox):  # type: ignore[misc]
    """`ImageTimeline(kube, "guestbook")`: tags in the registry; which one the policy chose,
    which one Git holds, which one runs. `reload()` (or the button) reads them again;
    `.entries`, `.in_git` and `.running` are there for tests. `cluster`: the lab's cluster name
    (default: the machine's current cluster), to reach its Git server from this machine."""

    def __init__(self, kube: Kube, name: str, namespace: str = "gitops-lab", *,
                 repos: RepoCache | None = None, load: bool = True,
                 cluster: str | None = None) -> None:
        self.kube = kube
        self.name = name
        self.namespace = namespace
        if repos is None:
            from gitops_lab.install.incluster import host_git_urls

            # on kind the Application names the Git server inside the cluster: read it through
            # its NodePort from here
            repos = RepoCache(Path(tempfile.gettempdir()) / "gitops-lab-widget-repos",
                              fetch_urls=host_git_urls(cluster))
        self.repos = repos
        self.entries: list[Obj] = []
        self.in_git: set[str] = set()
        self.running: set[str] = set()
        self.title = w.HTML()
        self.chips = w.HTML()
        self.message = w.HTML()
        self.button = w.Button(description="Reload", icon="refresh",
                               layout=w.Layout(width="110px"))
        self.button.on_click(lambda _b: self.reload())
        super().__init__(children=[w.HBox([self.title, self.button]), self.chips, self.message])
        self.add_class("gitops-image-timeline")
        if load:
            self.reload()

    def update(self, policy: Mapping[str, Any], tags: list[str], in_git: set[str],
               running: set[str], problems: list[str]) -> None:
        spec: PolicySpec | None
        try:
            spec = parse_spec(policy)
        except PolicyError:
            spec = None
        status = policy.get("status") or {}
        latest = str(status.get("latestTag") or "")
        self.in_git, self.running = in_git, running
        self.entries = image_entries(tags, spec, latest, in_git, running)
        image = (policy.get("spec") or {}).get("image", "")
        self.title.value = (f'<div style="font-size:13px;margin-right:12px"><b>{esc(image)}</b>: '
                            f"{len(tags)} tag(s); "
                            f'<span style="color:{BLUE}">policy</span> = what the ImagePolicy '
                            f'chose, <span style="color:{AMBER}">Git</span> = what the markers '
                            f'hold, <span style="color:{GREEN}">running</span> = what pods run'
                            "</div>")
        self.chips.value = "".join(_chip(e) for e in self.entries) or \
            '<span style="color:#8fa4b1">no tags yet</span>'
        conds = [c for c in status.get("conditions") or [] if c.get("type") != "Ready"
                 and c.get("status") == "True"]
        notes = [f"{esc(c.get('type'))}: {esc(c.get('message'))}" for c in conds] + \
            [esc(p) for p in problems]
        self.message.value = "<br>".join(f'<span style="color:#a4272f">{n}</span>'
                                         for n in notes)

    def reload(self) -> None:
        problems: list[str] = []
        try:
            policy = self.kube.request("GET", POLICIES.format(ns=self.namespace, name=self.name))
        except KubeError as exc:
            self.message.value = f'<span style="color:#a4272f">{esc(exc.message)}</span>'
            return
        tags: list[str] = []
        in_git: set[str] = set()
        running: set[str] = set()
        try:
            spec = parse_spec(policy)
        except PolicyError as exc:
            self.update(policy, [], set(), set(), [str(exc)])
            return
        client = RegistryClient(spec.image.registry, plain_http=spec.image.plain_http)
        try:
            tags = client.tags(spec.image.repository).tags
        except RegistryError as exc:
            problems.append(str(exc))
        finally:
            client.close()
        if spec.update is not None:
            try:
                app = self.kube.request("GET", APPS.format(ns=spec.update.app_namespace,
                                                           name=spec.update.app_name))
            except KubeError as exc:
                problems.append(exc.message)
            else:
                # what runs does not depend on reading Git: one failing leaves the other
                for read, into in ((self._git_tags, in_git), (self._running_tags, running)):
                    try:
                        into.update(read(app, spec))
                    except (KubeError, SourceError) as exc:
                        problems.append(getattr(exc, "message", None) or str(exc))
        self.update(policy, tags, in_git, running, problems)

    def _git_tags(self, app: Mapping[str, Any], spec: PolicySpec) -> set[str]:
        source = (app.get("spec") or {}).get("source") or {}
        url = str(source.get("repoURL") or "")
        self.repos.fetch(url, timeout=10)
        sha = self.repos.resolve(url, str(source.get("targetRevision") or "HEAD"))
        files = self.repos.read_tree(url, sha, str(source.get("path") or "."))
        found: set[str] = set()
        for path, data in files.items():
            for marker in find_markers(data, path)[0]:
                if marker.policy_key != (self.namespace, self.name):
                    continue
                if marker.field == "tag":
                    found.add(marker.value)
                elif marker.field == "image" and ":" in marker.value.rsplit("/", 1)[-1]:
                    found.add(marker.value.rsplit(":", 1)[1])
        return found

    def _running_tags(self, app: Mapping[str, Any], spec: PolicySpec) -> set[str]:
        dest = str(((app.get("spec") or {}).get("destination") or {}).get("namespace") or "")
        if not dest:
            return set()
        pods = self.kube.request("GET", f"/api/v1/namespaces/{dest}/pods").get("items") or []
        prefix = f"{spec.image}:"
        tags = set()
        for pod in pods:
            if (pod.get("status") or {}).get("phase") != "Running" or \
                    (pod.get("metadata") or {}).get("deletionTimestamp"):
                continue
            for container in (pod.get("spec") or {}).get("containers") or []:
                image = str(container.get("image") or "")
                if image.startswith(prefix):
                    tags.add(image[len(prefix):])
        return tags
