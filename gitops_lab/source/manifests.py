"""Parsing: one file's bytes (YAML, multi-document, or JSON) → its Kubernetes objects, checked.
source/: what render.py (plain files and kustomize output) reads every file through; pure.

Safe loading only (no Python tags), alias expansion capped (billion laughs), duplicate keys and
documents that are no Kubernetes object refused: each RenderError names the file, and the
document or line where it is known.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from gitops_lab.api.types import ResourceKey
from gitops_lab.source.errors import RenderError

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

__all__ = [
    "MANIFEST_SUFFIXES",
    "MAX_ALIAS_EXPANSION",
    "Manifest",
    "check_duplicates",
    "load_yaml",
    "parse_manifests",
    "type_name",
]

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
# How many nodes aliases may add to one YAML document when expanded (billion-laughs guard).
MAX_ALIAS_EXPANSION = 10_000


@dataclass(frozen=True)
class Manifest:
    """One desired object, with where it came from: repo-relative file and 0-based document.

    Objects flattened out of a `kind: List` share their List's document index. For a
    kustomize build, `path` is the kustomization file and `index` the output document.
    """

    obj: dict[str, Any]
    path: str
    index: int

    @property
    def key(self) -> ResourceKey:
        return ResourceKey.from_object(self.obj)

    @property
    def source(self) -> str:
        """`apps/x.yaml#2` (1-based document), for messages."""
        return f"{self.path}#{self.index + 1}"


# -- YAML loading ---------------------------------------------------------------------------


class _Loader(_BaseLoader):
    """Safe loader; timestamps and binaries stay strings, as Kubernetes' own YAML reads them."""


def _construct_str(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


def _construct_binary(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return "".join(str(loader.construct_scalar(node)).split())  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_str)
_Loader.add_constructor("tag:yaml.org,2002:binary", _construct_binary)

_MERGE_TAG = "tag:yaml.org,2002:merge"
_SIZE_CAP = 1 << 62


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_node(root: yaml.Node, path: str, doc: int) -> None:
    """Refuse alias bombs, recursive aliases and duplicate keys before constructing anything.

    One post-order walk over the composed node graph, memoised per node, so the expanded
    size (what a consumer would see with every alias copied out) costs linear time.
    """
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    shared = False
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        nid = id(node)
        if done:
            total = 1 + sum(sizes[id(c)] for c in _children(node))
            sizes[nid] = min(total, _SIZE_CAP)
            visiting.discard(nid)
            continue
        if nid in sizes:
            shared = True
            continue
        if nid in visiting:
            line = node.start_mark.line + 1
            raise RenderError(
                f"{path}: document {doc + 1} has a recursive alias (an anchor used inside "
                f"itself, near line {line})",
                path=path,
                line=line,
            )
        visiting.add(nid)
        stack.append((node, True))
        if isinstance(node, yaml.MappingNode):
            seen: set[tuple[str, str]] = set()
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE_TAG:
                    ident = (key.tag, str(key.value))
                    if ident in seen:
                        line = key.start_mark.line + 1
                        raise RenderError(
                            f"{path}: line {line}: duplicate key '{key.value}' in document "
                            f"{doc + 1}",
                            path=path,
                            line=line,
                        )
                    seen.add(ident)
        for child in reversed(_children(node)):
            stack.append((child, False))
    if shared and sizes[id(root)] - len(sizes) > MAX_ALIAS_EXPANSION:
        line = root.start_mark.line + 1
        raise RenderError(
            f"{path}: document {doc + 1} (line {line}) expands its YAML aliases to more than "
            f"{MAX_ALIAS_EXPANSION} extra nodes; refusing it as a possible 'billion laughs' "
            "alias bomb",
            path=path,
            line=line,
        )


def load_yaml(data: bytes, path: str) -> list[tuple[int, int, Any]]:
    """(document index, 1-based line, value) for each document of one YAML stream."""
    out: list[tuple[int, int, Any]] = []
    loader = _Loader(data)
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            line = node.start_mark.line + 1
            _check_node(node, path, index)
            out.append((index, line, loader.construct_document(node)))
            index += 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        cause = "; ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        if mark is None:
            raise RenderError(f"{path}: malformed YAML: {cause}", path=path) from None
        line = mark.line + 1
        raise RenderError(
            f"{path}: malformed YAML at line {line}, column {mark.column + 1}: {cause}",
            path=path,
            line=line,
        ) from None
    except yaml.YAMLError as exc:
        raise RenderError(f"{path}: malformed YAML: {exc}", path=path) from None
    finally:
        loader.dispose()
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key '{key}'")
        out[key] = value
    return out


def _load_json(data: bytes, path: str) -> list[tuple[int, int, Any]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RenderError(f"{path}: not valid UTF-8 ({exc.reason})", path=path) from None
    if not text.strip():
        return []
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise RenderError(
            f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            path=path,
            line=exc.lineno,
        ) from None
    except ValueError as exc:
        raise RenderError(f"{path}: malformed JSON: {exc}", path=path) from None
    if not isinstance(value, dict):
        raise RenderError(
            f"{path}: a JSON manifest must be one object or a List, not {type_name(value)}",
            path=path,
            line=1,
        )
    return [(0, 1, value)]


# -- validation -----------------------------------------------------------------------------


def type_name(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


def _is_list(obj: Mapping[str, Any]) -> bool:
    kind = obj.get("kind")
    return isinstance(kind, str) and kind.endswith("List") and "items" in obj


def _objects(value: Any, path: str, index: int, line: int, where: str) -> list[Manifest]:
    """Validate one document (or List item) and return the objects it holds."""
    if value is None:
        return []
    if not isinstance(value, dict):
        raise RenderError(
            f"{where} of {path} (line {line}) is {type_name(value)}, not a mapping "
            "(a Kubernetes object)",
            path=path,
            line=line,
        )
    if _is_list(value):
        items = value.get("items")
        if items is None:
            return []
        if not isinstance(items, list):
            raise RenderError(
                f"{where} of {path} (line {line}) is a {value['kind']} whose items are "
                f"{type_name(items)}, not a list",
                path=path,
                line=line,
            )
        # Typed lists (ConfigMapList) may leave kind/apiVersion off their items.
        item_kind = value["kind"][: -len("List")]
        out: list[Manifest] = []
        for n, item in enumerate(items):
            if isinstance(item, dict) and item_kind:
                item.setdefault("kind", item_kind)
                if "apiVersion" in value:
                    item.setdefault("apiVersion", value["apiVersion"])
            out.extend(_objects(item, path, index, line, f"item {n + 1} of {where}"))
        return out
    for field in ("apiVersion", "kind"):
        v = value.get(field)
        if v is None or (isinstance(v, str) and not v.strip()):
            raise RenderError(
                f"{where} of {path} (line {line}) has no {field}", path=path, line=line
            )
        if not isinstance(v, str):
            raise RenderError(
                f"{where} of {path} (line {line}): {field} must be a string, not {type_name(v)}",
                path=path,
                line=line,
            )
    meta = value.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise RenderError(
            f"{where} of {path} (line {line}): metadata must be a mapping, not {type_name(meta)}",
            path=path,
            line=line,
        )
    meta = meta or {}
    name, generate = meta.get("name"), meta.get("generateName")
    namespace = meta.get("namespace")
    for field, v in (("name", name), ("generateName", generate), ("namespace", namespace)):
        if v is not None and not isinstance(v, str):
            raise RenderError(
                f"{where} of {path} (line {line}): metadata.{field} must be a string, not "
                f"{type_name(v)} ({v!r}); quote it",
                path=path,
                line=line,
            )
    if not name and not generate:
        raise RenderError(
            f"{where} of {path} (line {line}) has no metadata.name (kind {value['kind']})",
            path=path,
            line=line,
        )
    return [Manifest(obj=value, path=path, index=index)]


def parse_manifests(data: bytes, path: str) -> list[Manifest]:
    """The objects in one file (YAML, multi-document, or JSON by the `.json` suffix).

    Empty documents are skipped and `*List` documents flattened; raises RenderError naming
    `path` for anything that is not a valid set of Kubernetes objects.
    """
    docs = _load_json(data, path) if path.lower().endswith(".json") else load_yaml(data, path)
    out: list[Manifest] = []
    for index, line, value in docs:
        out.extend(_objects(value, path, index, line, f"document {index + 1}"))
    return out


def check_duplicates(manifests: list[Manifest]) -> None:
    """RenderError when two manifests name one object, naming both files and documents."""
    seen: dict[ResourceKey, Manifest] = {}
    for m in manifests:
        if not (m.obj.get("metadata") or {}).get("name"):
            continue  # generateName: the API server picks the name
        key = m.key
        first = seen.get(key)
        if first is not None:
            here = (
                f"{first.path} (document {first.index + 1}) and {m.path} (document {m.index + 1})"
            )
            raise RenderError(f"{key} is defined twice: in {here}", path=m.path)
        seen[key] = m
