"""The API list convention (as Stripe's): `limit` 1..100 (default 20), `starting_after=<id>`,
newest first, answered as {"object": "list", "url", "has_more", "data": [...]}.

Keyset pagination from app.core.pagination: the `starting_after` object is looked up inside
the same filtered query (so ids from other lists reveal nothing), and its (created_at, id)
becomes the cursor.
"""
from __future__ import annotations

from flask import jsonify, request
from pydantic import BaseModel
from sqlalchemy import Select

from app.api.schemas import dump
from app.core import bounds
from app.core.errors import DomainError
from app.core.pagination import encode_cursor, keyset_page, parse_limit


def _cursor_from(session, stmt: Select, model, raw: str | None) -> str | None:
    if raw in (None, ""):
        return None
    try:
        object_id = model.id.type.python_type(raw)
        if isinstance(object_id, int) and not bounds.int_ok(object_id):
            raise ValueError
    except (TypeError, ValueError):
        raise DomainError("invalid_starting_after", "starting_after must be the id of an object in this list.",
                          "starting_after") from None
    row = session.scalar(stmt.where(model.id == object_id))
    if row is None:
        raise DomainError("invalid_starting_after", f"No object {raw} in this list.", "starting_after")
    return encode_cursor(row.created_at, row.id)


def list_response(session, stmt: Select, model, schema: type[BaseModel]):
    """Run one page of stmt (a select of model, filtered by the caller) and answer the envelope."""
    limit = parse_limit(request.args.get("limit"))
    cursor = _cursor_from(session, stmt, model, request.args.get("starting_after"))
    page = keyset_page(session, stmt, model, limit, cursor)
    return jsonify({"object": "list", "url": request.path, "has_more": page.has_more,
                    "data": [dump(schema, item) for item in page.items]})
