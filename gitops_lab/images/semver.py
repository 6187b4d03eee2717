"""Semantic versions (semver.org 2.0) and the range syntax Flux and Argo CD Image Updater accept
(Masterminds/semver: `>=1.0.0 <2.0.0`, `^1.2`, `~1.2.3`, `1.x`, `1.2 - 1.4`, `a || b`). Pure.
Used by images/policy.py to order tags; pre-releases match only ranges that name one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

__all__ = ["Range", "RangeError", "Version", "parse_version"]

_VERSION = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)(?:\.(?P<minor>0|[1-9]\d*))?(?:\.(?P<patch>0|[1-9]\d*))?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
_STRICT = re.compile(r"^v?\d+\.\d+\.\d+(?:[-+].*)?$")
_PARTIAL = re.compile(
    r"^v?(?P<major>\d+|[xX*])(?:\.(?P<minor>\d+|[xX*]))?(?:\.(?P<patch>\d+|[xX*]))?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$"
)


class RangeError(ValueError):
    """A semver range that cannot be parsed; the message names the offending part."""


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()
    original: str = ""

    def _pre_key(self) -> tuple[tuple[int, int | str], ...]:
        return tuple((0, int(p)) if p.isdigit() else (1, p) for p in self.pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        a, b = (self.major, self.minor, self.patch), (other.major, other.minor, other.patch)
        if a != b:
            return a < b
        if not self.pre or not other.pre:
            return bool(self.pre) and not other.pre  # a pre-release sorts before its release
        return self._pre_key() < other._pre_key()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return (self.major, self.minor, self.patch, self.pre) == \
            (other.major, other.minor, other.patch, other.pre)

    def __hash__(self) -> int:
        return hash((self.major, self.minor, self.patch, self.pre))

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return core + ("-" + ".".join(self.pre) if self.pre else "")

    @property
    def core(self) -> tuple[int, int, int]:
        return self.major, self.minor, self.patch


def parse_version(text: str, *, strict: bool = False) -> Version | None:
    """A Version from `1.2.3`, `v1.2.3-rc.1+build`; `1.2` and `1` too unless `strict`. None when
    `text` is not a version (e.g. `latest`, `main-abc123`)."""
    m = _VERSION.match(text.strip())
    if m is None or (strict and not _STRICT.match(text.strip())):
        return None
    pre = tuple(m["pre"].split(".")) if m["pre"] else ()
    return Version(int(m["major"]), int(m["minor"] or 0), int(m["patch"] or 0), pre, text)


@dataclass(frozen=True)
class _Cmp:
    op: str  # one of < <= > >= = !=
    version: Version
    names_pre: bool = False  # the user wrote a pre-release here (not a synthetic `-0` bound)

    def test(self, v: Version) -> bool:
        # compare without build metadata; pre-release gating is the Range's job
        if self.op == "=":
            return v == self.version
        if self.op == "!=":
            return v != self.version
        if self.op == "<":
            return v < self.version
        if self.op == "<=":
            return v <= self.version
        if self.op == ">":
            return v > self.version
        return v >= self.version


def _partial(text: str, whole: str) -> tuple[list[int | None], tuple[str, ...]]:
    m = _PARTIAL.match(text)
    if m is None:
        raise RangeError(f"semver range {whole!r}: {text!r} is not a version")
    parts: list[int | None] = []
    for name in ("major", "minor", "patch"):
        value = m[name]
        if value is None or value in "xX*":
            parts.append(None)
        else:
            parts.append(int(value))
    # after a wildcard, everything is a wildcard (1.x.3 = 1.x)
    for i in range(1, 3):
        if parts[i - 1] is None:
            parts[i] = None
    pre = tuple(m["pre"].split(".")) if m["pre"] else ()
    return parts, pre


def _v(major: int, minor: int = 0, patch: int = 0, pre: tuple[str, ...] = ()) -> Version:
    return Version(major, minor, patch, pre)


def _expand(op: str, text: str, whole: str) -> list[_Cmp]:
    """One `op version` term as plain comparators (x-ranges, ^ and ~ spelled out)."""
    (ma, mi, pa), pre = _partial(text, whole)
    if ma is None:
        return [] if op in ("", "=", ">=", "<=", "^", "~", "~>") else \
            [_Cmp("<", _v(0, 0, 0, ("0",)))]  # >* or <*: nothing
    if op in ("", "="):
        if mi is None:
            return [_Cmp(">=", _v(ma)), _Cmp("<", _v(ma + 1, 0, 0, ("0",)))]
        if pa is None:
            return [_Cmp(">=", _v(ma, mi)), _Cmp("<", _v(ma, mi + 1, 0, ("0",)))]
        return [_Cmp("=", _v(ma, mi, pa, pre))]
    if op == "!=":
        return [_Cmp("!=", _v(ma, mi or 0, pa or 0, pre))]
    if op == "^":
        lo = _v(ma, mi or 0, pa or 0, pre)
        if ma > 0 or mi is None:
            hi = _v(ma + 1, 0, 0, ("0",))
        elif mi > 0 or pa is None:
            hi = _v(0, mi + 1, 0, ("0",))
        else:
            hi = _v(0, 0, (pa or 0) + 1, ("0",))
        return [_Cmp(">=", lo), _Cmp("<", hi)]
    if op in ("~", "~>"):
        lo = _v(ma, mi or 0, pa or 0, pre)
        hi = _v(ma + 1, 0, 0, ("0",)) if mi is None else _v(ma, mi + 1, 0, ("0",))
        return [_Cmp(">=", lo), _Cmp("<", hi)]
    if op == ">":
        if mi is None:
            return [_Cmp(">=", _v(ma + 1, 0, 0, ("0",)))]
        if pa is None:
            return [_Cmp(">=", _v(ma, mi + 1, 0, ("0",)))]
        return [_Cmp(">", _v(ma, mi, pa, pre))]
    if op == ">=":
        return [_Cmp(">=", _v(ma, mi or 0, pa or 0, pre))]
    if op == "<":
        return [_Cmp("<", _v(ma, mi or 0, pa or 0, pre or (("0",) if pa is None else ())))]
    # <=
    if mi is None:
        return [_Cmp("<", _v(ma + 1, 0, 0, ("0",)))]
    if pa is None:
        return [_Cmp("<", _v(ma, mi + 1, 0, ("0",)))]
    return [_Cmp("<=", _v(ma, mi, pa, pre))]


def _named(cmps: list[_Cmp], text: str) -> list[_Cmp]:
    """Mark the comparators that carry the pre-release the user wrote in `text`."""
    m = _PARTIAL.match(text)
    if m is None or not m["pre"]:
        return cmps
    pre = tuple(m["pre"].split("."))
    return [_Cmp(c.op, c.version, c.version.pre == pre) for c in cmps]


_TOKEN = re.compile(r"(<=|>=|!=|=<|=>|~>|<|>|=|\^|~)?\s*([^\s<>=!^~,]+)")


@dataclass(frozen=True)
class Range:
    """`Range.parse(">=1.0.0 <2.0.0")`; `.matches(version)`. Alternatives are joined by `||`;
    terms within one alternative by spaces or commas (all must hold)."""

    text: str
    alternatives: tuple[tuple[_Cmp, ...], ...]
    names_prerelease: bool

    @classmethod
    def parse(cls, text: str) -> Range:
        whole = text
        if not text or not text.strip():
            raise RangeError("semver range is empty")
        alts: list[tuple[_Cmp, ...]] = []
        pre_named = False
        for alt in text.split("||"):
            alt = alt.strip()
            if not alt:
                raise RangeError(f"semver range {whole!r}: an empty alternative around '||'")
            cmps: list[_Cmp] = []
            hyphen = re.fullmatch(r"(\S+)\s+-\s+(\S+)", alt)
            if hyphen:
                lo, hi = hyphen[1], hyphen[2]
                cmps += _named(_expand(">=", lo, whole), lo) + \
                    _named(_expand("<=", hi, whole), hi)
            else:
                pos = 0
                body = alt.replace(",", " ")
                while pos < len(body):
                    if body[pos].isspace():
                        pos += 1
                        continue
                    m = _TOKEN.match(body, pos)
                    if m is None:
                        raise RangeError(f"semver range {whole!r}: cannot read {body[pos:]!r}")
                    op = {"=<": "<=", "=>": ">="}.get(m[1] or "", m[1] or "")
                    version = m[2]
                    cmps += _named(_expand(op, version, whole), version)
                    pos = m.end()
            alts.append(tuple(cmps))
            pre_named = pre_named or any(c.names_pre for c in cmps)
        return cls(whole, tuple(alts), pre_named)

    def matches(self, v: Version) -> bool:
        """node-semver's rule: a pre-release matches only an alternative that names a
        pre-release of the same major.minor.patch (`>=1.2.0-rc.0` admits 1.2.0-rc.3, not
        1.3.0-rc.1)."""
        for alt in self.alternatives:
            if v.pre and not any(c.names_pre and c.version.core == v.core for c in alt):
                continue
            if all(c.test(v) for c in alt):
                return True
        return False

    def __str__(self) -> str:
        return self.text
