"""Setter markers, as in Flux: a YAML line ending in `# {"$imagepolicy": "ns:name[:tag|:name]"}`
gets its value set; every other byte of the file stays as it was. Pure: bytes in, bytes out.
Used by images/writeback.py on the files under an Application's path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

import yaml

__all__ = ["Marker", "MarkerProblem", "apply_markers", "find_markers", "new_value"]

MARKER_KEY = "$imagepolicy"
# `<indent>[- ]key: value  # {"$imagepolicy": "..."}` — value quoted or plain, no '#' inside
_LINE = re.compile(
    r"^(?P<head>[ \t]*(?:-[ \t]+)?[^\s#:][^#:]*:[ \t]+)"
    r"(?P<value>\"[^\"\n]*\"|'[^'\n]*'|[^\s#\"'][^\s#]*)"
    r"(?P<gap>[ \t]+)#[ \t]*(?P<marker>\{.*\})[ \t]*$"
)
FIELDS = ("image", "tag", "name")


@dataclass(frozen=True)
class Marker:
    file: str
    line: int  # 1-based
    namespace: str
    policy: str
    field: str  # image | tag | name
    value: str  # the current value, unquoted

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def policy_key(self) -> tuple[str, str]:
        return self.namespace, self.policy


@dataclass(frozen=True)
class MarkerProblem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def _split_eol(line: bytes) -> tuple[str, bytes]:
    body = line.rstrip(b"\r\n")
    return body.decode("utf-8", "surrogateescape"), line[len(body):]


def _parse_marker(raw: str) -> tuple[str, str, str] | str:
    """(namespace, name, field) or an error sentence."""
    try:
        data = json.loads(raw)
    except ValueError:
        return f"marker {raw!r} is not valid JSON"
    if not isinstance(data, dict) or not isinstance(data.get(MARKER_KEY), str):
        return f"marker {raw!r} must be {{\"{MARKER_KEY}\": \"<namespace>:<name>\"}}"
    parts = data[MARKER_KEY].split(":")
    if len(parts) == 2:
        parts.append("image")
    if len(parts) != 3 or not parts[0] or not parts[1] or parts[2] not in FIELDS:
        return (f"marker {data[MARKER_KEY]!r} must read <namespace>:<name>, "
                "<namespace>:<name>:tag or <namespace>:<name>:name")
    return parts[0], parts[1], parts[2]


def find_markers(data: bytes, file: str) -> tuple[list[Marker], list[MarkerProblem]]:
    """Every marker in one file, and every line that looks like one but cannot be used."""
    if MARKER_KEY.encode() not in data:
        return [], []
    markers: list[Marker] = []
    problems: list[MarkerProblem] = []
    for no, line in enumerate(_lines(data), 1):
        if MARKER_KEY.encode() not in line:
            continue
        text, _ = _split_eol(line)
        m = _LINE.match(text)
        if m is None:
            if text.lstrip().startswith("#"):
                continue  # a commented-out line is documentation, not a marker
            problems.append(MarkerProblem(file, no, "a $imagepolicy marker must end a "
                                          "`key: value` line (e.g. `image: repo:tag # {...}`)"))
            continue
        parsed = _parse_marker(m["marker"])
        if isinstance(parsed, str):
            problems.append(MarkerProblem(file, no, parsed))
            continue
        value = m["value"]
        if value[:1] in "\"'":
            value = value[1:-1]
        markers.append(Marker(file, no, parsed[0], parsed[1], parsed[2], value))
    return markers, problems


def new_value(field: str, repository: str, tag: str) -> str:
    if field == "tag":
        return tag
    if field == "name":
        return repository
    return f"{repository}:{tag}"


def _render(old_raw: str, value: str) -> str:
    """Keep the old quoting; quote a plain value YAML would not read back as this string."""
    if old_raw[:1] == "'":
        return "'" + value.replace("'", "''") + "'"
    if old_raw[:1] == '"':
        return json.dumps(value)
    try:
        reads_back = yaml.safe_load(value) == value
    except yaml.YAMLError:
        reads_back = False
    return value if reads_back else json.dumps(value)


def apply_markers(data: bytes, markers: Iterable[Marker], values: dict[tuple[str, str, str], str]
                  ) -> tuple[bytes, list[tuple[Marker, str]]]:
    """Set each marker's value to `values[(namespace, policy, field)]` when it differs.

    Returns the new bytes (every other byte unchanged) and the (marker, new value) changed.
    """
    lines = _lines(data)
    changed: list[tuple[Marker, str]] = []
    for marker in markers:
        wanted = values.get((marker.namespace, marker.policy, marker.field))
        if wanted is None or wanted == marker.value:
            continue
        text, eol = _split_eol(lines[marker.line - 1])
        m = _LINE.match(text)
        if m is None:
            continue
        text = text[:m.start("value")] + _render(m["value"], wanted) + text[m.end("value"):]
        lines[marker.line - 1] = text.encode("utf-8", "surrogateescape") + eol
        changed.append((marker, wanted))
    return b"".join(lines), changed
