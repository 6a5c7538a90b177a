"""Reading the ledgers: one transaction list over allocations and deductions (keyset paginated,
stable at any depth), its CSV export, and usage statistics by day and model.

The list merges two index range scans, each (user_id, created_at, id) ordered and limited,
so page 5,000 costs what page 1 costs. Usage stats read the daily summaries for days the
nightly job has built and the usage ledger only for the days it has not.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import func, literal_column, select, tuple_

from app.core import bounds
from app.core.errors import DomainError
from app.credits.formula import six
from app.credits.models import (ALLOCATION_SOURCES, DEDUCTION_TYPES, CreditAllocation, CreditDeduction,
                                SummaryRun, TokenUsage, TokenUsageDaily)

ALLOCATION, DEDUCTION = 1, 2
KINDS = {"allocation": ALLOCATION, "deduction": DEDUCTION}
MAX_RANGE_DAYS = 366


@dataclass
class TxPage:
    items: list[dict]
    next_cursor: str | None
    has_more: bool


def _encode(created_at: datetime, src: int, row_id: int) -> str:
    raw = json.dumps([created_at.isoformat(), src, row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, int, int]:
    try:
        stamp, src, row_id = bounds.loads_json(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        at = datetime.fromisoformat(stamp)
        if at.tzinfo is None or src not in (ALLOCATION, DEDUCTION):
            raise ValueError
        if not bounds.int_ok(int(row_id)):
            raise ValueError
        return at, int(src), int(row_id)
    except (ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError):
        raise DomainError("invalid_cursor", "The page cursor is not valid.", "starting_after") from None


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def day_window(model, start: date, end: date, include_test: bool) -> list:
    """Conditions: `model` rows created from start to end (UTC days), production only unless asked."""
    conds = [model.created_at >= day_start(start), model.created_at < day_start(end + timedelta(days=1))]
    if not include_test:
        conds.append(model.is_test.is_(False))
    return conds


def parse_day(raw, field_name: str) -> date | None:
    if raw in (None, ""):
        return None
    try:
        day = date.fromisoformat(str(raw))
    except ValueError:
        raise DomainError("invalid_date", f"{field_name} is a date such as 2025-11-08.", field_name) from None
    return bounds.check_date(day, field_name)


def _after(model, src: int, cursor):
    """Rows of this ledger strictly after the cursor in (created_at, src, id) descending order."""
    at, c_src, c_id = cursor
    if src < c_src:
        return model.created_at <= at
    if src > c_src:
        return model.created_at < at
    return tuple_(model.created_at, model.id) < tuple_(at, c_id)  # a row comparison: one index range


def _branch(session, model, src: int, user_id: int, limit: int, cursor, kind_filter, since, until):
    kind_col = model.source if model is CreditAllocation else model.deduction_type
    stmt = select(model).where(model.user_id == user_id)
    if cursor:
        stmt = stmt.where(_after(model, src, cursor))
    if kind_filter:
        stmt = stmt.where(kind_col == kind_filter)
    if since:
        stmt = stmt.where(model.created_at >= day_start(since))
    if until:
        stmt = stmt.where(model.created_at < day_start(until + timedelta(days=1)))
    return list(session.scalars(stmt.order_by(model.created_at.desc(), model.id.desc()).limit(limit)))


def as_item(row) -> dict:
    if isinstance(row, CreditAllocation):
        return {"id": f"alloc_{row.id}", "object": "allocation", "kind": row.source, "amount": row.amount,
                "balance_after": row.balance_after, "created_at": row.created_at, "reason": row.reason or None,
                "expires_at": row.expires_at, "usage_id": None, "related_usage_id": None, "is_test": row.is_test,
                "_src": ALLOCATION, "_id": row.id}
    return {"id": f"ded_{row.id}", "object": "deduction", "kind": row.deduction_type, "amount": -row.amount,
            "balance_after": row.balance_after, "created_at": row.created_at, "reason": row.reason,
            "expires_at": None, "usage_id": row.usage_id, "related_usage_id": row.related_usage_id,
            "is_test": row.is_test, "_src": DEDUCTION, "_id": row.id}


def cursor_for(session, user_id: int, object_id: str) -> str:
    """The cursor after a transaction given by its API id (alloc_12, ded_34), in this user's list."""
    prefix, _, raw = (object_id or "").partition("_")
    model = {"alloc": CreditAllocation, "ded": CreditDeduction}.get(prefix)
    row_id = bounds.parse_id(raw, "starting_after")
    row = session.get(model, row_id) if model is not None and row_id else None
    if row is None or row.user_id != user_id:
        raise DomainError("invalid_starting_after", "starting_after must be the id of a transaction in this list.",
                          "starting_after")
    return _encode(row.created_at, ALLOCATION if model is CreditAllocation else DEDUCTION, row.id)


def check_filters(type_: str | None, kind: str | None) -> None:
    if type_ and type_ not in KINDS:
        raise DomainError("invalid_type", "type is allocation or deduction.", "type")
    if kind and kind not in ALLOCATION_SOURCES + DEDUCTION_TYPES:
        raise DomainError("invalid_kind", "kind is an allocation source or a deduction type.", "kind")


def transactions(session, user_id: int, limit: int = 20, starting_after: str | None = None,
                 type_: str | None = None, kind: str | None = None, since: date | None = None,
                 until: date | None = None) -> TxPage:
    """Newest first; `starting_after` is the cursor of the previous page."""
    check_filters(type_, kind)
    cursor = _decode(starting_after) if starting_after else None
    rows = []
    if type_ in (None, "allocation") and (kind is None or kind in ALLOCATION_SOURCES):
        rows += _branch(session, CreditAllocation, ALLOCATION, user_id, limit + 1, cursor, kind, since, until)
    if type_ in (None, "deduction") and (kind is None or kind in DEDUCTION_TYPES):
        rows += _branch(session, CreditDeduction, DEDUCTION, user_id, limit + 1, cursor, kind, since, until)
    items = sorted((as_item(r) for r in rows), key=lambda i: (i["created_at"], i["_src"], i["_id"]), reverse=True)
    has_more = len(items) > limit
    items = items[:limit]
    last = items[-1] if items else None
    return TxPage(items, _encode(last["created_at"], last["_src"], last["_id"]) if has_more and last else None,
                  has_more)


def iterate_transactions(session, user_id: int, batch: int = 1000, **filters):
    """Every matching transaction, newest first, a keyset batch at a time (for the CSV export)."""
    cursor = None
    while True:
        page = transactions(session, user_id, limit=batch, starting_after=cursor, **filters)
        yield from page.items
        if not page.has_more:
            return
        cursor = page.next_cursor


def date_range(start: date | None, end: date | None, today: date, default_days: int = 30) -> tuple[date, date]:
    end = end or today
    start = start or end - timedelta(days=default_days - 1)
    if start > end:
        raise DomainError("invalid_range", "start must not be after end.", "start")
    if (end - start).days >= MAX_RANGE_DAYS:
        raise DomainError("invalid_range", f"Ask for at most {MAX_RANGE_DAYS} days at a time.", "start")
    return start, end


def day_of(session, column):
    """The UTC calendar day of a timestamp column, on PostgreSQL and SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone(literal_column("'UTC'"), column))
    return func.date(column)


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def built_days(session, start: date, end: date) -> set[date]:
    """The days between start and end whose daily summaries are built."""
    return {_as_date(d) for d in session.scalars(select(SummaryRun.day).where(SummaryRun.day.between(start, end)))}


def unbuilt_ranges(start: date, end: date, built: set[date]) -> list[tuple[date, date]]:
    ranges, current = [], None
    day = start
    while day <= end:
        if day not in built:
            current = [day, day] if current is None else [current[0], day]
        elif current is not None:
            ranges.append(tuple(current))
            current = None
        day += timedelta(days=1)
    if current is not None:
        ranges.append(tuple(current))
    return ranges


def usage_stats(session, user_id: int, start: date, end: date) -> dict:
    """Requests, tokens, cost and credits by day and by model, for one user's usage."""
    built = built_days(session, start, end)
    cells: dict[tuple[date, str], list] = {}

    def add(day, model, requests, inp, out, cost, credits):
        cell = cells.setdefault((_as_date(day), model), [0, 0, 0, 0, 0])
        for i, value in enumerate((requests, inp, out, cost, credits)):
            cell[i] += value or 0

    if built:
        s = TokenUsageDaily
        rows = session.execute(
            select(s.day, s.model_name, func.sum(s.request_count), func.sum(s.input_tokens), func.sum(s.output_tokens),
                   func.sum(s.vendor_cost_usd), func.sum(s.credits))
            .where(s.user_id == user_id, s.day.between(start, end), s.day.in_(sorted(built)))
            .group_by(s.day, s.model_name))
        for row in rows:
            add(*row)
    for lo, hi in unbuilt_ranges(start, end, built):
        u = TokenUsage
        day = day_of(session, u.created_at)
        rows = session.execute(
            select(day, u.model_name, func.count(), func.sum(u.input_tokens), func.sum(u.output_tokens),
                   func.sum(u.vendor_cost_usd), func.sum(u.credits))
            .where(u.user_id == user_id, u.created_at >= day_start(lo), u.created_at < day_start(hi + timedelta(days=1)))
            .group_by(day, u.model_name))
        for row in rows:
            add(*row)
    return _shape(cells, start, end)


def _shape(cells: dict, start: date, end: date) -> dict:
    from decimal import Decimal

    def entry(values):
        return {"requests": values[0], "input_tokens": values[1], "output_tokens": values[2],
                "vendor_cost_usd": six(Decimal(values[3])), "credits": values[4]}

    by_day: dict[date, list] = {}
    by_model: dict[str, list] = {}
    total = [0, 0, 0, Decimal(0), 0]
    for (day, model), values in cells.items():
        for bucket in (by_day.setdefault(day, [0, 0, 0, Decimal(0), 0]),
                       by_model.setdefault(model, [0, 0, 0, Decimal(0), 0]), total):
            for i, v in enumerate(values):
                bucket[i] += Decimal(v) if i == 3 else v
    return {"start": start.isoformat(), "end": end.isoformat(), "totals": entry(total),
            "by_day": [{"date": d.isoformat(), **entry(v)} for d, v in sorted(by_day.items())],
            "by_model": [{"model": m, **entry(v)} for m, v in sorted(by_model.items(), key=lambda kv: -kv[1][4])]}
