"""Sortable lists: `?sort=column` (or `-column` for descending) over a whitelist of non-null
columns, paged by keyset on (column, id) so a deep page stays as fast as the first."""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import and_, or_

from app.core import bounds
from app.core.errors import DomainError
from app.core.pagination import Page


@dataclass(frozen=True)
class Sort:
    key: str
    descending: bool

    @property
    def param(self) -> str:
        return ("-" if self.descending else "") + self.key

    def toggled(self, key: str) -> str:
        """The ?sort= value a column header links to: its own key flips the direction."""
        if key == self.key:
            return key if self.descending else "-" + key
        return key


def parse(raw: str | None, allowed: dict, default: str) -> Sort:
    raw = (raw or default).strip()
    descending, key = raw.startswith("-"), raw.lstrip("-")
    if key not in allowed:
        raise DomainError("invalid_sort", f"Sort by one of: {', '.join(sorted(allowed))}.", "sort")
    return Sort(key, descending)


def _encode(value, row_id: int) -> str:
    kind = "d" if isinstance(value, datetime) else "m" if isinstance(value, Decimal) else "v"
    plain = value.isoformat() if kind == "d" else str(value) if kind == "m" else value
    return base64.urlsafe_b64encode(json.dumps([kind, plain, row_id]).encode()).decode().rstrip("=")


def _decode(cursor: str):
    try:
        kind, plain, row_id = bounds.loads_json(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        value = datetime.fromisoformat(plain) if kind == "d" else Decimal(plain) if kind == "m" else plain
        return value, int(row_id)
    except (ValueError, TypeError, ArithmeticError, json.JSONDecodeError):
        raise DomainError("invalid_cursor", "The page cursor is not valid.", "cursor") from None


def page(session, stmt, column, id_column, sort: Sort, limit: int, cursor: str | None) -> Page:
    if cursor:
        value, row_id = _decode(cursor)
        if sort.descending:
            stmt = stmt.where(or_(column < value, and_(column == value, id_column < row_id)))
        else:
            stmt = stmt.where(or_(column > value, and_(column == value, id_column > row_id)))
    order = (column.desc(), id_column.desc()) if sort.descending else (column.asc(), id_column.asc())
    rows = session.execute(stmt.add_columns(column).order_by(*order).limit(limit + 1)).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    nxt = _encode(rows[-1][1], rows[-1][0].id) if has_more and rows else None
    return Page([r[0] for r in rows], nxt, has_more)


def stream(session, stmt, column, id_column, sort: Sort, batch: int = 1000):
    """Every row in the list's order, a keyset batch at a time (for CSV exports)."""
    cursor = None
    while True:
        chunk = page(session, stmt, column, id_column, sort, batch, cursor)
        yield from chunk.items
        if not chunk.has_more:
            return
        cursor = chunk.next_cursor


def parse_or_default(raw: str | None, allowed: dict, default: str) -> Sort:
    """Like parse(), but an unknown column falls back to the list's default order: a stale
    bookmark or a hand-edited link still shows the list instead of an error page."""
    try:
        return parse(raw, allowed, default)
    except DomainError:
        return parse(default, allowed, default)
