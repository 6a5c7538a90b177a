"""Parsing of staff and API input into domain values; every failure names its field.

The screens, the seed and the API all pass raw values through these, so a rule about
what a valid code, amount or date is lives in one place.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal

from app.core.errors import DomainError
from app.core.money import money, to_decimal

CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9_-]{2,39}$")


def normalise_code(raw, field: str = "code") -> str:
    """Codes are case-insensitive: stored and compared upper-case."""
    code = str(raw or "").strip().upper()
    if not code:
        raise DomainError("parameter_missing", "Enter a coupon code.", field)
    if not CODE_PATTERN.match(code):
        raise DomainError("invalid_code", "A coupon code is 3 to 40 letters, digits, '-' or '_'.", field)
    return code


def text(raw, field: str, *, required: bool = True, max_len: int = 120) -> str:
    value = str(raw or "").strip()
    if required and not value:
        raise DomainError("parameter_missing", "This field is required.", field)
    if len(value) > max_len:
        raise DomainError("too_long", f"At most {max_len} characters.", field)
    return value


def choice(raw, options, field: str, *, required: bool = True) -> str | None:
    value = str(raw or "").strip()
    if not value and not required:
        return None
    if value not in options:
        raise DomainError("invalid_choice", f"Choose one of: {', '.join(options)}.", field)
    return value


def choices(raw, options, field: str) -> list[str]:
    values = [raw] if isinstance(raw, str) else list(raw or [])
    values = [str(v).strip() for v in values if str(v).strip()]
    bad = [v for v in values if v not in options]
    if bad:
        raise DomainError("invalid_choice", f"Unknown value(s) {', '.join(bad)}; choose from {', '.join(options)}.",
                          field)
    return sorted(set(values), key=list(options).index)


_GROUPED = re.compile(r"^\$?\d{1,3}(,\d{3})+(\.\d+)?$")


def ungroup(raw):
    """"50,000", "$1,234.56" as people type them: thousands separators only where they belong."""
    if isinstance(raw, str):
        text = raw.strip()
        if _GROUPED.match(text):
            return text.lstrip("$").replace(",", "")
        if re.match(r"^\$\d+(\.\d+)?$", text):
            return text[1:]
    return raw


def amount(raw, field: str = "amount", *, allow_zero: bool = True) -> Decimal:
    """A non-negative dollar amount with at most two decimals ("50,000" and "$49.99" read too)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise DomainError("parameter_missing", "Enter an amount such as 99.99.", field)
    value = money(ungroup(raw), field)
    if value < 0 or (value == 0 and not allow_zero):
        raise DomainError("invalid_amount", "The amount must be positive." if not allow_zero
                          else "The amount cannot be negative.", field)
    if value >= Decimal("100000000"):
        raise DomainError("invalid_amount", "The amount is too large.", field)
    return value


def optional_int(raw, field: str, *, minimum: int = 0, maximum: int = 10**9) -> int | None:
    """Blank means none (unlimited)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    return whole(raw, field, minimum=minimum, maximum=maximum)


def whole(raw, field: str, *, minimum: int = 0, maximum: int = 10**9) -> int:
    if isinstance(raw, bool):
        raise DomainError("invalid_integer", "Enter a whole number.", field)
    try:
        value = to_decimal(ungroup(raw), field)
    except DomainError:
        raise DomainError("invalid_integer", "Enter a whole number.", field) from None
    if value != value.to_integral_value():
        raise DomainError("invalid_integer", "Enter a whole number.", field)
    value = int(value)
    if not minimum <= value <= maximum:
        raise DomainError("out_of_range", f"Enter a whole number from {minimum} to {maximum}.", field)
    return value


def moment(raw, field: str) -> datetime:
    """An ISO date-time (a form's datetime-local, or with Z/offset); naive means UTC."""
    if isinstance(raw, datetime):
        value = raw
    else:
        text_value = str(raw or "").strip()
        if not text_value:
            raise DomainError("parameter_missing", "Enter a date and time.", field)
        try:
            value = datetime.fromisoformat(text_value.replace("Z", "+00:00"))
        except ValueError:
            raise DomainError("invalid_datetime", "Enter a date and time such as 2025-11-24T00:00.", field) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def flag(raw) -> bool:
    if isinstance(raw, bool):
        return raw
    return str(raw or "").strip().lower() in ("1", "true", "on", "yes", "y")
