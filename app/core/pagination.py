"""Keyset pagination: newest first by (created_at, id), stable at any depth."""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_

from app.core import bounds
from app.core.errors import DomainError


@dataclass
class Page:
    items: list[Any]
    next_cursor: str | None
    has_more: bool


def encode_cursor(created_at: datetime, row_id: int) -> str:
    raw = json.dumps([created_at.isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, row_id = bounds.loads_json(base64.urlsafe_b64decode(padded))
        stamp, row_id = datetime.fromisoformat(stamp), int(row_id)
        if not bounds.int_ok(row_id):  # past BIGINT: the driver would fail, not find nothing
            raise ValueError
        return stamp, row_id
    except (ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError):
        raise DomainError("invalid_cursor", "The page cursor is not valid.", "cursor") from None


def parse_limit(raw, default: int = 20, maximum: int = 100) -> int:
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise DomainError("invalid_limit", f"limit must be a whole number from 1 to {maximum}.", "limit") from None
    if not 1 <= value <= maximum:
        raise DomainError("invalid_limit", f"limit must be a whole number from 1 to {maximum}.", "limit")
    return value


def keyset_page(session, stmt: Select, model, limit: int, cursor: str | None) -> Page:
    """Run stmt newest-first after cursor; model needs created_at and id columns."""
    if cursor:
        stamp, row_id = decode_cursor(cursor)
        stmt = stmt.where(
            or_(model.created_at < stamp, and_(model.created_at == stamp, model.id < row_id))
        )
    rows = list(session.scalars(stmt.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)))
    has_more = len(rows) > limit
    rows = rows[:limit]
    nxt = encode_cursor(rows[-1].created_at, rows[-1].id) if has_more and rows else None
    return Page(rows, nxt, has_more)
