"""SemVer 2.0.0 parsing and precedence (semver.org §2, §9-§11), plus a sortable string key.

Precedence ignores build metadata; a prerelease sorts before its release
(2.0.0-beta.1 < 2.0.0); prerelease identifiers compare numerically when both are
numeric, numeric before alphanumeric, ASCII otherwise, and a longer list wins when
all earlier identifiers are equal. `sort_key()` encodes exactly that order as a
string, so the database can filter "eligible for v" with plain comparisons (the
columns use the binary "C" collation on PostgreSQL).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache, total_ordering

from app.core.errors import DomainError

# The official regular expression from semver.org (numbered groups), anchored.
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
# Numbers are zero-padded to this width in sort keys; larger ones are refused.
_WIDTH = 10
MAX_LENGTH = 64


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: tuple[str, ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text

    def _precedence(self):
        # A release (no prerelease) outranks every prerelease of the same triple.
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._precedence() == other._precedence()

    def __hash__(self) -> int:
        return hash(self._precedence())

    def __lt__(self, other: "Version") -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._precedence() < other._precedence()

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    def next_major(self) -> "Version":
        return Version(self.major + 1, 0, 0)

    def sort_key(self) -> str:
        return sort_key(self)


def parse(text, field_name: str = "version") -> Version:
    """Parse a SemVer string or raise DomainError('invalid_version') naming the field."""
    if isinstance(text, str) and len(text) <= MAX_LENGTH:
        return _parse_remembered(text, field_name)  # a handful of versions, parsed ~3 times a validation
    return _parse(text, field_name)


def _parse(text, field_name: str) -> Version:
    raw = text.strip() if isinstance(text, str) else ""
    match = _SEMVER.match(raw) if 0 < len(raw) <= MAX_LENGTH else None
    if match is None:
        shown = (text if isinstance(text, str) else repr(text))[:40]
        raise DomainError("invalid_version",
                          f"'{shown}' is not a semantic version such as 2.0.0 or 2.0.0-beta.1.", field_name)
    major, minor, patch, pre, build = match.groups()
    numbers = [major, minor, patch] + [p for p in (pre or "").split(".") if p.isdigit()]
    if any(len(n) > _WIDTH for n in numbers):
        raise DomainError("invalid_version", f"Version numbers above {10 ** _WIDTH - 1} are not supported.",
                          field_name)
    return Version(int(major), int(minor), int(patch),
                   tuple(pre.split(".")) if pre else (), tuple(build.split(".")) if build else ())


_parse_remembered = lru_cache(maxsize=1024)(_parse)  # Version is frozen; a refusal raises, never kept


def is_valid(text) -> bool:
    try:
        parse(text)
    except DomainError:
        return False
    return True


def sort_key(version: Version | str) -> str:
    """A string whose binary order is SemVer precedence.

    Layout: MAJOR.MINOR.PATCH zero-padded, then '~' for a release or '-' plus the
    prerelease identifiers joined by '!' (below every identifier character), each
    prefixed '#' when numeric (padded) or '$' when alphanumeric ('#' < '$': numeric
    identifiers have lower precedence). '~' sorts after '-', so a release outranks
    its prereleases, and a shorter identifier list is a prefix, so it sorts first.
    """
    v = parse(version) if isinstance(version, str) else version
    head = f"{v.major:0{_WIDTH}d}.{v.minor:0{_WIDTH}d}.{v.patch:0{_WIDTH}d}"
    if not v.prerelease:
        return head + "~"
    parts = ["#" + p.zfill(_WIDTH) if p.isdigit() else "$" + p for p in v.prerelease]
    return head + "-" + "!".join(parts)


def in_range(version: Version, lower: Version, upper: Version) -> bool:
    """Eligibility is the half-open interval lower <= version < upper."""
    return lower <= version < upper
