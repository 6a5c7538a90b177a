"""The one clock of the app: timezone-aware UTC, settable by tests and test clocks."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

_offset = timedelta(0)
_frozen: datetime | None = None


def now() -> datetime:
    if _frozen is not None:
        return _frozen
    return datetime.now(timezone.utc) + _offset


def freeze(at: datetime | None) -> None:
    """Pin the clock (tests); None unpins it."""
    global _frozen
    if at is not None and at.tzinfo is None:
        raise ValueError("clock needs an aware datetime")
    _frozen = at


def advance(delta: timedelta) -> None:
    global _frozen, _offset
    if _frozen is not None:
        _frozen = _frozen + delta
    else:
        _offset += delta


def reset() -> None:
    global _frozen, _offset
    _frozen, _offset = None, timedelta(0)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def days(start: date, end: date):
    """Every calendar day from start to end, both included."""
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)
