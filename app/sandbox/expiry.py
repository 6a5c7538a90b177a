"""When a test account expires: 7 days by default, at most 30 days from now, never in the past.
Its own module: the customers API (accounts/service.py) makes test customers with the same rule."""
from __future__ import annotations

from datetime import datetime, timedelta

from app.core import clock
from app.core.errors import DomainError

DEFAULT_EXPIRY_DAYS = 7
MAX_EXPIRY_DAYS = 30


def resolve_expiry(*, days: int | None = None, at: datetime | None = None,
                   field: str = "expires_in_days") -> datetime:
    """The new expiry: from now, at least one minute ahead, at most MAX_EXPIRY_DAYS ahead."""
    now = clock.now()
    if at is not None:
        if at.tzinfo is None:
            raise DomainError("invalid_expiry", "Give the expiry with a time zone (UTC).", field)
        expires = clock.as_utc(at)
    else:
        days = DEFAULT_EXPIRY_DAYS if days is None else days
        if isinstance(days, bool) or not isinstance(days, int):
            raise DomainError("invalid_expiry", "The expiry must be a whole number of days.", field)
        days = max(min(days, MAX_EXPIRY_DAYS + 1), -1)  # a huge count must not overflow timedelta
        expires = now + timedelta(days=days)
    if expires <= now:
        raise DomainError("expiry_in_past", "The expiry must be in the future.", field)
    if expires > now + timedelta(days=MAX_EXPIRY_DAYS):
        raise DomainError("expiry_too_far", f"Test accounts expire within {MAX_EXPIRY_DAYS} days at most.", field)
    return expires
