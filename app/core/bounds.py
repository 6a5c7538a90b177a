"""Bounds on what a request may carry, so hostile input is a 4xx naming the parameter, never a 500.

Integers must fit a signed 64-bit BIGINT (SQLite's driver raises OverflowError past it and
PostgreSQL refuses it); dates stay within 1970-01-01..9998-12-31 (a day's end, `day + 1`, and a
UTC timestamp of it must exist); JSON is at most MAX_JSON_DEPTH deep (the parser recursed into a
RecursionError). `init_app` bounds the `int` URL converter and Flask's JSON loading; the API's
body and query validation (app/api/schemas.py) and the cursor and id parsers call the rest.
"""
from __future__ import annotations

import json
from datetime import date, datetime

from flask.json.provider import DefaultJSONProvider
from pydantic import BaseModel
from werkzeug.routing import IntegerConverter

from app.core.errors import DomainError

INT_MAX = 2**63 - 1
INT_MIN = -(2**63)
DATE_MIN = date(1970, 1, 1)
DATE_MAX = date(9998, 12, 31)
MAX_JSON_DEPTH = 32


def int_ok(value: int) -> bool:
    return INT_MIN <= value <= INT_MAX


def check_int(value: int, param: str | None) -> int:
    if not int_ok(value):
        raise DomainError("parameter_invalid_integer", f"{param or 'A number'} is out of range (at most {INT_MAX}).",
                          param, status=422)
    return value


def check_date(value: date, param: str | None) -> date:
    day = value.date() if isinstance(value, datetime) else value
    if not DATE_MIN <= day <= DATE_MAX:
        raise DomainError("invalid_date", f"{param or 'A date'} must be between {DATE_MIN} and {DATE_MAX}.",
                          param, status=422)
    return value


def sane_date(form, field) -> None:
    """WTForms validator: a DateField's day within DATE_MIN..DATE_MAX."""
    from wtforms.validators import ValidationError

    if field.data is not None and not DATE_MIN <= field.data <= DATE_MAX:
        raise ValidationError(f"Pick a day between {DATE_MIN} and {DATE_MAX}.")


def parse_id(raw, param: str | None) -> int | None:
    """A positive database id from text, or None when it cannot be one (the caller says 'not found')."""
    text = str(raw or "").strip()
    if not text.isdigit() or not text.isascii():
        return None
    value = int(text)
    return value if 0 < value <= INT_MAX else None


def check_values(value, param: str | None = None) -> None:
    """Every int and date inside a validated model (or dict/list) is within bounds; names the field.
    Text and None, most of a body's values, are passed over first (every API body comes here)."""
    stack = [(value, param)]
    while stack:
        item, where = stack.pop()
        kind = type(item)
        if kind is str or item is None or kind is bool:
            continue
        if isinstance(item, int):
            check_int(item, where)
        elif isinstance(item, (date, datetime)):
            check_date(item, where)
        elif isinstance(item, BaseModel):  # reversed: the first bad field is the one named
            stack.extend(reversed([(getattr(item, name), _join(where, name)) for name in type(item).model_fields]))
        elif isinstance(item, dict):
            stack.extend(reversed([(v, _join(where, str(k))) for k, v in item.items()]))
        elif isinstance(item, (list, tuple, set)):
            stack.extend(reversed([(v, _join(where, str(i))) for i, v in enumerate(item)]))


def _join(where: str | None, name: str) -> str:
    return f"{where}.{name}" if where else name


def json_depth(data) -> int:
    """The nesting depth of parsed JSON, iteratively (a deep value must not recurse here either)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                return depth
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def cannot_nest_too_deep(raw: str | bytes) -> bool:
    """JSON text with at most MAX_JSON_DEPTH opening brackets cannot nest deeper (an API body's
    usual case): no need to walk its parsed value."""
    if isinstance(raw, str):
        return raw.count("{") + raw.count("[") <= MAX_JSON_DEPTH
    return raw.count(b"{") + raw.count(b"[") <= MAX_JSON_DEPTH


def loads_json(raw):
    """json.loads with the depth bound: ValueError for malformed, too deep or recursing input."""
    try:
        data = json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if not cannot_nest_too_deep(raw) and json_depth(data) > MAX_JSON_DEPTH:
        raise ValueError("JSON nested too deeply")
    return data


class BoundedJSONProvider(DefaultJSONProvider):
    """request.get_json() through loads_json: a too-deep body is a bad request like malformed JSON."""

    def loads(self, s, **kwargs):
        if kwargs:
            return super().loads(s, **kwargs)
        return loads_json(s)


class BoundedIntegerConverter(IntegerConverter):
    """`<int:...>` matches only ids a BIGINT can hold; a longer number is a 404, not a driver error."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", INT_MAX)
        super().__init__(map, *args, **kwargs)


def init_app(app) -> None:
    app.json_provider_class = BoundedJSONProvider
    app.json = BoundedJSONProvider(app)
    app.url_map.converters["int"] = BoundedIntegerConverter
