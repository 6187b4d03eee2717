"""Rendering: the files read from Git at one revision → the list of desired Kubernetes objects.
Second step of a reconcile (source.git.read_tree → render → engine diff): picks the files,
runs kustomize where a kustomization is, and parses through source/manifests.py.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gitops_lab.paths import bin_dir
from gitops_lab.source.errors import RenderError, SourceError
from gitops_lab.source.manifests import (
    MANIFEST_SUFFIXES,
    Manifest,
    check_duplicates,
    load_yaml,
    parse_manifests,
    type_name,
)

__all__ = [
    "ALLOW_REMOTE_BASES_ENV",
    "KUSTOMIZATION_FILES",
    "Manifest",  # what render() returns; defined in manifests.py
    "allow_remote_bases",
    "find_kubectl",
    "kustomize_inputs",
    "render",
    "render_revision",
]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
KUSTOMIZE_TIMEOUT = 120.0
# Remote bases (URLs, github.com/..., git::...) fetch from the network while rendering:
# refused unless this is "1"/"true"/"yes" (`gitops-lab agent run --allow-remote-bases` sets it).
ALLOW_REMOTE_BASES_ENV = "GITOPS_LAB_ALLOW_REMOTE_BASES"
# How many rounds of "read what the kustomizations reference" render_revision does at most.
_MAX_KUSTOMIZE_ROUNDS = 64


# -- directories and kustomize ----------------------------------------------------------------


def _common_dir(paths: list[str]) -> str:
    dirs = [posixpath.dirname(p).split("/") for p in paths]
    if not dirs:
        return ""
    common: list[str] = []
    for parts in zip(*dirs, strict=False):
        if parts[0] and all(p == parts[0] for p in parts):
            common.append(parts[0])
        else:
            break
    return "/".join(common)


def _under(path: str, root: str) -> str | None:
    """`path` relative to `root`, or None when it is not below it."""
    if not root:
        return path
    if path.startswith(root + "/"):
        return path[len(root) + 1 :]
    return None


def find_kubectl(kubectl: str | None = None) -> str | None:
    """`kubectl` if given, else the lab's own kubectl, else the one on PATH, else None."""
    if kubectl:
        return kubectl
    candidate = bin_dir() / "kubectl"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which("kubectl")


def _safe_rel(path: str) -> str:
    norm = posixpath.normpath(path)
    if path.startswith("/") or norm == ".." or norm.startswith("../"):
        raise RenderError(f"{path}: file path leaves the source directory", path=path)
    return norm


# -- what a kustomization may load ------------------------------------------------------------

# resources/bases/components: a file, or a directory holding a kustomization (a base).
# Everything else: files (or, for helm, directories) that must stay in the repository.
_REMOTE = re.compile(
    r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|git::|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:|"
    r"(?:github\.com|gitlab\.com|bitbucket\.org|ssh\.dev\.azure\.com)[/:])"
)


def allow_remote_bases() -> bool:
    """Whether remote bases are allowed (the ALLOW_REMOTE_BASES_ENV switch; default off)."""
    return os.environ.get(ALLOW_REMOTE_BASES_ENV, "").strip().lower() in ("1", "true", "yes")


def _is_remote(entry: str) -> bool:
    return bool(_REMOTE.match(entry)) or "?ref=" in entry or "?version=" in entry


def _inline(entry: str) -> bool:
    """A patch or transformer config written inline instead of naming a file."""
    text = entry.lstrip()
    return "\n" in entry or text.startswith(("{", "[", "apiVersion:", "kind:"))


@dataclass(frozen=True)
class _Ref:
    """One path a kustomization names: `field` entry `entry`, resolving to repo path `target`."""

    kfile: str
    field: str
    entry: str
    target: str
    base: bool  # may be a directory with its own kustomization (resources, components…)

    def where(self) -> str:
        return f"{self.kfile}: {self.field} entry '{self.entry}'"


def _entries(k: Mapping[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(field, entry, kind) for every path a kustomization names; kind True: a file or a base
    (a directory with a kustomization), False: a file, None: a directory that may not exist
    yet (helm's chart and config homes: only where it is is checked)."""
    out: list[tuple[str, str, bool | None]] = []

    def strings(value: Any) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, list):
            return [v for v in value if isinstance(v, str)]
        return []

    def items(value: Any) -> list[Mapping[str, Any]]:
        return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []

    for field in ("resources", "bases", "components"):
        out.extend((field, e, True) for e in strings(k.get(field)))
    for field in ("generators", "transformers", "validators"):
        out.extend((field, e, True) for e in strings(k.get(field)) if not _inline(e))
    for field in ("crds", "configurations"):
        out.extend((field, e, False) for e in strings(k.get(field)))
    out.extend(("patchesStrategicMerge", e, False)
               for e in strings(k.get("patchesStrategicMerge")) if not _inline(e))
    for field in ("patches", "patchesJson6902", "replacements"):
        out.extend((f"{field}.path", str(p["path"]), False)
                   for p in items(k.get(field)) if isinstance(p.get("path"), str))
    for field in ("configMapGenerator", "secretGenerator"):
        for gen in items(k.get(field)):
            for e in strings(gen.get("files")):
                out.append((f"{field}.files", e.split("=", 1)[1] if "=" in e else e, False))
            out.extend((f"{field}.envs", e, False) for e in strings(gen.get("envs")))
            out.extend((f"{field}.env", e, False) for e in strings(gen.get("env")))
    for chart in items(k.get("helmCharts")) + items(k.get("helmChartInflationGenerator")):
        out.extend(("helmCharts.valuesFile", e, False) for e in strings(chart.get("valuesFile")))
        out.extend(("helmCharts.additionalValuesFiles", e, False)
                   for e in strings(chart.get("additionalValuesFiles")))
        out.extend(("helmCharts.chartHome", e, None) for e in strings(chart.get("chartHome")))
        out.extend(("helmCharts.values", e, False) for e in strings(chart.get("values")))
    globals_ = k.get("helmGlobals")
    if isinstance(globals_, Mapping):
        for field in ("chartHome", "configHome"):
            out.extend((f"helmGlobals.{field}", e, None) for e in strings(globals_.get(field)))
    openapi = k.get("openapi")
    if isinstance(openapi, Mapping):
        out.extend(("openapi.path", e, False) for e in strings(openapi.get("path")))
    return out


def _kustomization_in(files: Mapping[str, bytes], directory: str) -> str | None:
    for name in KUSTOMIZATION_FILES:
        if _join(directory, name) in files:
            return _join(directory, name)
    return None


def _dirs_of(files: Mapping[str, bytes]) -> set[str]:
    dirs = {""}
    for path in files:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    return dirs


def kustomize_inputs(
    files: Mapping[str, bytes], root: str, *, allow_remote: bool | None = None
) -> list[_Ref]:
    """Check every path the kustomization in `root` (and its bases) may load; [] = all present.

    Refuses, before any rendering, an entry that leaves the repository (absolute, or `..`
    above its root) and a remote base (unless allowed); each error names the kustomization
    file and the entry. Returns the references whose target is not in `files` yet (the
    caller reads them from Git and asks again); a missing base's own entries are checked once
    it is there.
    """
    remote_ok = allow_remote_bases() if allow_remote is None else allow_remote
    dirs = _dirs_of(files)
    missing: list[_Ref] = []
    todo = [root]
    seen: set[str] = set()
    while todo:
        directory = todo.pop()
        if directory in seen:
            continue
        seen.add(directory)
        kfile = _kustomization_in(files, directory)
        if kfile is None:
            continue
        docs = load_yaml(files[kfile], kfile)
        k = docs[0][2] if docs else {}
        if k is None:
            k = {}
        if not isinstance(k, Mapping):
            raise RenderError(f"{kfile}: a kustomization must be a mapping, not "
                              f"{type_name(k)}", path=kfile)
        for field, entry, base in _entries(k):
            entry = entry.strip()
            if not entry:
                continue
            where = f"{kfile}: {field} entry '{entry}'"
            if _is_remote(entry):
                if base and remote_ok:
                    continue
                if base:
                    raise RenderError(
                        f"{where} is a remote base, which would be fetched from the network "
                        f"while rendering; refused (allow remote bases with {ALLOW_REMOTE_BASES_ENV}"
                        "=1 or `gitops-lab agent run --allow-remote-bases`)", path=kfile)
                raise RenderError(f"{where} is a URL; the files a kustomization loads must be "
                                  "in the repository", path=kfile)
            if entry.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", entry):
                raise RenderError(f"{where} is an absolute path; paths in a kustomization "
                                  "must be relative and stay in the repository", path=kfile)
            target = posixpath.normpath(posixpath.join(directory, entry))
            if target == ".." or target.startswith("../"):
                raise RenderError(f"{where} leaves the repository (its '..' climbs above "
                                  "the repository root)", path=kfile)
            target = "" if target == "." else target
            if base is None or target in files:
                continue
            if target in dirs and (not base or _kustomization_in(files, target) is not None):
                if base:
                    todo.append(target)
                continue
            missing.append(_Ref(kfile, field, entry, target, base))
    return missing


def _kustomize(
    files: Mapping[str, bytes], root: str, kfile: str, kubectl: str | None
) -> list[Manifest]:
    exe = find_kubectl(kubectl)
    if exe is None:
        raise RenderError(
            f"{kfile}: kustomization.yaml needs kubectl (kustomize) to render, and none was "
            "found; run `gitops-lab doctor` or put kubectl on PATH",
            path=kfile,
        )
    with tempfile.TemporaryDirectory(prefix="gitops-lab-kustomize-") as tmp:
        for rel, data in files.items():
            target = Path(tmp, _safe_rel(rel))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        build_dir = Path(tmp, root) if root else Path(tmp)
        try:
            proc = subprocess.run(
                [exe, "kustomize", str(build_dir)],
                capture_output=True,
                timeout=KUSTOMIZE_TIMEOUT,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except FileNotFoundError:
            raise RenderError(
                f"{kfile}: kustomization.yaml needs kubectl (kustomize); {exe} does not exist",
                path=kfile,
            ) from None
        except subprocess.TimeoutExpired:
            raise RenderError(
                f"{kfile}: kustomize build did not finish within {KUSTOMIZE_TIMEOUT:g}s",
                path=kfile,
            ) from None
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").replace(tmp + "/", "").strip()
            err = " ".join(err.splitlines()[-5:]) or f"exit status {proc.returncode}"
            raise RenderError(f"{kfile}: kustomize build failed: {err}", path=kfile)
    return parse_manifests(proc.stdout, kfile)


def render(
    files: Mapping[str, bytes], *, root: str | None = None, kubectl: str | None = None
) -> list[Manifest]:
    """The desired objects in `files` (repo-relative path → content, as read_tree returns).

    `root` is the rendered directory (`spec.source.path`); by default the deepest directory
    holding all files. A kustomization file directly in `root` means `kubectl kustomize root`
    (the other files may reach it, e.g. `../base`, so pass what it references with `root` for
    overlays), after every path it and its bases may load was checked to stay in the
    repository and be in `files` (kustomize_inputs); otherwise every *.yaml, *.yml and
    *.json below `root`, recursively, sorted by path, skipping names that start with a dot.
    No namespace defaulting here (the engine's). An empty directory renders to [];
    duplicates and invalid documents raise RenderError.
    """
    if root is None:
        root = _common_dir(list(files))
    else:
        root = _safe_rel(root.strip()) if root.strip() else ""
        root = "" if root == "." else root
    for name in KUSTOMIZATION_FILES:
        kfile = _join(root, name)
        if kfile in files:
            for ref in kustomize_inputs(files, root)[:1]:
                dirs = _dirs_of(files)
                raise RenderError(
                    f"{ref.where()}: '{ref.target}' is a directory without a kustomization "
                    "file" if ref.target in dirs else
                    f"{ref.where()}: '{ref.target}' is not in the repository", path=ref.kfile)
            manifests = _kustomize(files, root, kfile, kubectl)
            break
    else:
        manifests = []
        for path in sorted(files, key=lambda p: p.split("/")):  # as a directory walk
            rel = _under(path, root)
            if rel is None or any(part.startswith(".") for part in rel.split("/")):
                continue
            if not path.lower().endswith(MANIFEST_SUFFIXES):
                continue
            manifests.extend(parse_manifests(files[path], path))
    check_duplicates(manifests)
    return manifests


def _join(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name


class _TreeSource(Protocol):
    def read_tree(self, url: str, sha: str, path: str) -> dict[str, bytes]: ...

    def read_path(self, url: str, sha: str, path: str) -> dict[str, bytes]: ...


def render_revision(
    cache: _TreeSource, url: str, sha: str, path: str, *, kubectl: str | None = None
) -> list[Manifest]:
    """`spec.source` at one commit → objects: read_tree of `path`, then render it.

    When `path` holds a kustomization, what it references is read too (bases such as
    `../../base`, patch files…), and only that: every such path is checked first and one that
    leaves the repository, or a remote base, is refused (kustomize_inputs), and a bad file
    elsewhere in the repo (a symlink out of it) does not concern this app.
    `cache` is a RepoCache (anything with its `read_tree` and `read_path`).
    """
    files = cache.read_tree(url, sha, path)
    root = posixpath.normpath(path.strip() or ".")
    root = "" if root == "." else root
    if _kustomization_in(files, root) is not None:
        tried: set[str] = set()
        for _ in range(_MAX_KUSTOMIZE_ROUNDS):
            missing = [r for r in kustomize_inputs(files, root) if r.target not in tried]
            if not missing:
                break  # all there, or read and still missing: render() says which
            for ref in missing:
                tried.add(ref.target)
                try:
                    files.update(cache.read_path(url, sha, ref.target))
                except SourceError as exc:
                    raise RenderError(f"{ref.where()}: {exc.message}", path=ref.kfile) from None
        else:
            raise RenderError(f"{_join(root, 'kustomization.yaml')}: its bases nest more than "
                              f"{_MAX_KUSTOMIZE_ROUNDS} levels deep", path=root)
    return render(files, root=root, kubectl=kubectl)
