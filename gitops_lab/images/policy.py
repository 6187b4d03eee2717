"""An ImagePolicy's spec (API.md §1b) read and checked, and the choice of the latest tag. Pure.
Used by images/controller.py: spec → (registry tags) → Selection, or a PolicyError saying why.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gitops_lab.images.semver import Range, RangeError, Version, parse_version

__all__ = [
    "DEFAULT_AUTHOR",
    "DEFAULT_INTERVAL",
    "FLOATING_TAGS",
    "ImageRef",
    "PolicyError",
    "PolicySpec",
    "Selection",
    "UpdateSpec",
    "parse_duration",
    "parse_spec",
    "select",
]

DEFAULT_INTERVAL = 60.0
MIN_INTERVAL = 0.5
DEFAULT_AUTHOR = ("gitops-lab image updater", "images@gitops-lab.local")
# Tags that name no release but move from one to the next: a policy that only sees these would
# "look healthy forever" while nothing is ever pinned.
FLOATING_TAGS = frozenset({
    "latest", "stable", "edge", "nightly", "dev", "develop", "development", "main", "master",
    "head", "canary", "next", "current", "release", "prod", "production", "staging", "test",
    "testing", "unstable", "lts", "beta", "alpha", "snapshot",
})
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_REPO_PART = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_HOST = re.compile(r"^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::\d{1,5})?$")


class PolicyError(ValueError):
    """The spec is invalid or no tag qualifies. `reason` is the condition's reason; `type`
    the condition type (PolicyError or FloatingTag)."""

    def __init__(self, message: str, reason: str = "InvalidSpec", type_: str = "PolicyError"):
        super().__init__(message)
        self.reason = reason
        self.type = type_


def parse_duration(text: str) -> float:
    """Go's duration strings as Flux writes them: `10s`, `1m30s`, `500ms`, `1h`."""
    raw = str(text).strip()
    if not raw or _DURATION.sub("", raw) != "":
        raise PolicyError(f"interval {text!r} is not a duration (write e.g. 10s, 1m, 1m30s)",
                          "InvalidInterval")
    return sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(raw))


@dataclass(frozen=True)
class ImageRef:
    """`registry/repository` (no tag): where tags are listed."""

    registry: str  # host[:port]
    repository: str

    @classmethod
    def parse(cls, image: str) -> ImageRef:
        raw = str(image or "").strip()
        if not raw:
            raise PolicyError("spec.image is empty; write e.g. 127.0.0.1:5001/guestbook",
                              "InvalidImage")
        host, _, path = raw.partition("/")
        if "@" in raw or (path and ":" in path):
            raise PolicyError(f"spec.image {raw!r} must not carry a tag or digest: the policy "
                              "chooses the tag", "InvalidImage")
        if not path or not ("." in host or ":" in host or host == "localhost") \
                or not _HOST.match(host):
            raise PolicyError(f"spec.image {raw!r} names no registry host; write "
                              "host[:port]/name, e.g. 127.0.0.1:5001/guestbook", "InvalidImage")
        if not all(_REPO_PART.match(p) for p in path.split("/")):
            raise PolicyError(f"spec.image {raw!r}: repository {path!r} is not a valid name "
                              "(lower-case letters, digits, '.', '_', '-', '/')", "InvalidImage")
        return cls(host, path)

    @property
    def host(self) -> str:
        return self.registry.rsplit(":", 1)[0] if not self.registry.startswith("[") else \
            self.registry.split("]")[0] + "]"

    @property
    def plain_http(self) -> bool:
        """Loopback registries are spoken to in plain HTTP (as `docker` treats localhost)."""
        host = self.host.strip("[]")
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}"


@dataclass(frozen=True)
class UpdateSpec:
    app_namespace: str
    app_name: str
    author: tuple[str, str]
    message_template: str = ""


@dataclass(frozen=True)
class PolicySpec:
    image: ImageRef
    interval: float
    kind: str  # semver | numerical | alphabetical
    range: Range | None = None
    order: str = "asc"
    pattern: re.Pattern[str] | None = None
    extract: str = ""
    update: UpdateSpec | None = None

    def describe(self) -> str:
        if self.kind == "semver":
            return f"semver range {self.range}"
        return f"{self.kind} ({self.order})"


_EXPAND = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def _check_extract(pattern: re.Pattern[str], extract: str) -> None:
    for m in _EXPAND.finditer(extract):
        name = m[1] or m[2]
        ok = int(name) <= pattern.groups if name.isdigit() else name in pattern.groupindex
        if not ok:
            raise PolicyError(f"filterTags.extract {extract!r} names group {name!r}, which "
                              f"filterTags.pattern {pattern.pattern!r} does not define",
                              "InvalidFilter")


def _expand(match: re.Match[str], extract: str) -> str:
    def one(m: re.Match[str]) -> str:
        name = m[1] or m[2]
        value = match.group(int(name) if name.isdigit() else name)
        return value or ""

    return _EXPAND.sub(one, extract)


def parse_spec(obj: Mapping[str, Any]) -> PolicySpec:
    """The ImagePolicy's spec, checked; PolicyError names the field and the cause."""
    spec = obj.get("spec") or {}
    meta = obj.get("metadata") or {}
    image = ImageRef.parse(str(spec.get("image") or ""))
    interval = parse_duration(spec.get("interval") or "1m")
    if interval < MIN_INTERVAL:
        raise PolicyError(f"interval {spec.get('interval')!r} is below the minimum of "
                          f"{MIN_INTERVAL:g}s", "InvalidInterval")
    filt = spec.get("filterTags") or {}
    pattern = None
    extract = str(filt.get("extract") or "")
    if filt.get("pattern"):
        try:
            pattern = re.compile(str(filt["pattern"]))
        except re.error as exc:
            raise PolicyError(f"filterTags.pattern {filt['pattern']!r} is not a valid regular "
                              f"expression: {exc}", "InvalidFilter") from None
        if extract:
            _check_extract(pattern, extract)
    elif extract:
        raise PolicyError("filterTags.extract needs filterTags.pattern", "InvalidFilter")
    policy = spec.get("policy") or {}
    chosen = [k for k in ("semver", "numerical", "alphabetical") if policy.get(k) is not None]
    if len(chosen) != 1:
        raise PolicyError("spec.policy must name exactly one of semver, numerical, alphabetical"
                          f" (found {', '.join(chosen) or 'none'})", "InvalidPolicy")
    kind = chosen[0]
    rng = None
    order = "asc"
    if kind == "semver":
        try:
            rng = Range.parse(str((policy["semver"] or {}).get("range") or ""))
        except RangeError as exc:
            raise PolicyError(f"policy.semver.range: {exc}", "InvalidRange") from None
    else:
        order = str((policy[kind] or {}).get("order") or "asc")
        if order not in ("asc", "desc"):
            raise PolicyError(f"policy.{kind}.order {order!r} must be asc or desc",
                              "InvalidPolicy")
    update = None
    upd = spec.get("update")
    if upd is not None:
        ref = (upd or {}).get("applicationRef") or {}
        if not ref.get("name"):
            raise PolicyError("update.applicationRef.name is required for write-back",
                              "InvalidUpdate")
        author = ((upd.get("commit") or {}).get("author") or {})
        update = UpdateSpec(
            app_namespace=str(ref.get("namespace") or meta.get("namespace") or "gitops-lab"),
            app_name=str(ref["name"]),
            author=(str(author.get("name") or DEFAULT_AUTHOR[0]),
                    str(author.get("email") or DEFAULT_AUTHOR[1])),
            message_template=str((upd.get("commit") or {}).get("messageTemplate") or ""),
        )
    return PolicySpec(image, interval, kind, rng, order, pattern, extract, update)


@dataclass(frozen=True)
class Selection:
    tag: str
    observed: int  # tags in the repository
    candidates: int  # tags the policy could order (after the filter)


def _examples(tags: Sequence[str], n: int = 3) -> str:
    shown = ", ".join(repr(t) for t in list(tags)[:n])
    return shown + (", …" if len(tags) > n else "")


def select(spec: PolicySpec, tags: Sequence[str]) -> Selection:
    """The tag the policy picks among `tags`; PolicyError (or type FloatingTag) says why none."""
    where = str(spec.image)
    if not tags:
        raise PolicyError(f"repository {where} has no tags yet", "NoTags")
    pairs: list[tuple[str, str]] = []  # (tag, value the policy orders)
    for tag in tags:
        if spec.pattern is None:
            pairs.append((tag, tag))
            continue
        m = spec.pattern.search(tag)
        if m is not None:
            pairs.append((tag, _expand(m, spec.extract) if spec.extract else tag))
    if not pairs:
        raise PolicyError(f"none of the {len(tags)} tags of {where} matches filterTags.pattern "
                          f"{spec.pattern.pattern if spec.pattern else ''!r} "
                          f"(e.g. {_examples(tags)})", "NoTagMatchesFilter")
    floating = [t for t, v in pairs if v.lower() in FLOATING_TAGS]
    pinned = [(t, v) for t, v in pairs if v.lower() not in FLOATING_TAGS]

    def floating_only(what: str) -> PolicyError:
        return PolicyError(
            f"{where} has only floating tags ({_examples(floating)}) and no {what}: a floating "
            "tag names no release, so nothing can be pinned in Git; push versioned tags "
            "(e.g. 1.2.3)", "OnlyFloatingTags", "FloatingTag")

    if spec.kind == "semver":
        assert spec.range is not None
        versions = [(v, t) for t, s in pinned if (v := parse_version(s)) is not None]
        if not versions:
            if floating and len(floating) == len(pairs):
                raise floating_only("semantic version")
            raise PolicyError(f"none of the {len(pairs)} tags of {where} is a semantic version "
                              f"(e.g. {_examples([t for t, _ in pinned] or floating)})",
                              "NoVersionTags")
        in_range = [(v, t) for v, t in versions if spec.range.matches(v)]
        if not in_range:
            top: Version = max(v for v, _ in versions)
            raise PolicyError(f"no tag of {where} satisfies range {spec.range} ({len(versions)} "
                              f"versions, highest {top.original or top})", "NoTagInRange")
        best = max(in_range, key=lambda vt: (vt[0], vt[1]))
        return Selection(best[1], len(tags), len(pairs))
    if spec.kind == "numerical":
        numbers: list[tuple[float, str]] = []
        for t, s in pinned:
            try:
                numbers.append((float(s), t))
            except ValueError:
                continue
        if not numbers:
            if floating and len(floating) == len(pairs):
                raise floating_only("numeric tag")
            raise PolicyError(f"none of the {len(pairs)} tags of {where} is a number "
                              f"(e.g. {_examples([t for t, _ in pinned])})", "NoNumericTags")
        pick = max(numbers) if spec.order == "asc" else min(numbers)
        return Selection(pick[1], len(tags), len(pairs))
    if not pinned:
        raise floating_only("other tag")
    ordered = sorted(pinned, key=lambda tv: (tv[1], tv[0]))
    pick_tag = ordered[-1][0] if spec.order == "asc" else ordered[0][0]
    return Selection(pick_tag, len(tags), len(pairs))
