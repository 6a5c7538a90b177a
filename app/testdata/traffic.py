"""Counting authenticated API requests per UTC day, test vs production.

Hot path: one Redis INCR when REDIS_URL is set, in the same round trip as the key's rate
limit (app/api/auth.py; a periodic job copies the counters into api_request_days for history); otherwise one UPSERT on the (day, is_test) row, committed
at once so the row lock is held for microseconds, never for the request's transaction.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.core import clock
from app.core.redis import connection
from app.testdata.models import ApiRequestDay

REDIS_TTL = 3 * 86400


def _redis_key(day: date, is_test: bool) -> str:
    return f"rephlo:api_requests:{day.isoformat()}:{'test' if is_test else 'live'}"


def _upsert(session, day: date, is_test: bool, *, add: int = 0, set_to: int | None = None) -> None:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    value = set_to if set_to is not None else add
    stmt = insert(ApiRequestDay).values(day=day, is_test=is_test, count=value)
    new_count = stmt.excluded.count if set_to is not None else ApiRequestDay.count + stmt.excluded.count
    session.execute(stmt.on_conflict_do_update(index_elements=["day", "is_test"], set_={"count": new_count}))


def counts_in_database() -> bool:
    """Whether record_request() writes a row (no Redis configured)."""
    return connection() is None


def redis_counter(is_test: bool) -> tuple[str, int]:
    """Today's Redis counter for the mode and how long it is kept (for a caller that counts in
    its own Redis command, app/api/auth.py)."""
    return _redis_key(clock.now().date(), is_test), REDIS_TTL


def record_request(session, is_test: bool) -> bool:
    """Count one request; True when that wrote to the database (the caller commits right away)."""
    redis = connection()
    if redis is not None:
        key, ttl = redis_counter(is_test)
        pipe = redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, ttl)
        pipe.execute()
        return False
    _upsert(session, clock.now().date(), is_test, add=1)
    return True


def requests_on(session, day: date | None = None) -> dict[str, int]:
    """{'test': n, 'production': n} for a UTC day (today by default)."""
    day = day or clock.now().date()
    redis = connection()
    if redis is not None:
        test, live = redis.mget(_redis_key(day, True), _redis_key(day, False))
        if test is not None or live is not None:
            return {"test": int(test or 0), "production": int(live or 0)}
    rows = dict(session.execute(select(ApiRequestDay.is_test, ApiRequestDay.count)
                                .where(ApiRequestDay.day == day)).all())
    return {"test": int(rows.get(True, 0)), "production": int(rows.get(False, 0))}


def flush_redis_counters(session, days: list[date]) -> int:
    """Copy the Redis counters of the given days into api_request_days (absolute values)."""
    redis = connection()
    if redis is None:
        return 0
    copied = 0
    for day in days:
        for is_test in (True, False):
            raw = redis.get(_redis_key(day, is_test))
            if raw is not None:
                _upsert(session, day, is_test, set_to=int(raw))
                copied += 1
    return copied

