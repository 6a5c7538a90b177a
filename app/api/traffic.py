"""Counting authenticated API requests per UTC day, test vs production.

With Redis (REDIS_URL) a request only adds one to this process's pending counts
(count_later); a daemon thread sends them as INCRBYs at least once a second, so the counters in
Redis are at most a second behind and the hot path makes no round trip for them. A periodic job
(every minute) moves the Redis counters into api_request_days: it reads and resets each one
atomically (one Lua call) and adds what it took to the row, so each request is counted in the
database exactly once and the row never goes backwards. Redis runs without persistence: a
restart loses at most what it held, the requests of the last minute, never the history (a
flush that copied absolute values would write the restarted counter's small number over it).
If the database refuses the addition, the counts go back to Redis for the next run. Reading
(requests_on) adds the row and what Redis holds. Without Redis: one UPSERT on the
(day, is_test) row, committed at once so the row lock is held for microseconds, never for the
request's transaction.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from datetime import date

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.core import clock
from app.core.redis import connection
from app.api.models import ApiRequestDay

REDIS_TTL = 3 * 86400
FLUSH_SECONDS = 1.0
log = logging.getLogger(__name__)


def _redis_key(day: date, is_test: bool) -> str:
    return f"rephlo:api_requests:{day.isoformat()}:{'test' if is_test else 'live'}"


# Read a counter and delete it in one step (GETDEL, on any Redis version): an INCRBY sent
# meanwhile lands either before (taken now) or after (a new counter, taken next time).
_TAKE_LUA = """
local n = redis.call('GET', KEYS[1])
if n then redis.call('DEL', KEYS[1]) end
return n
"""


def _upsert(session, day: date, is_test: bool, add: int) -> None:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(ApiRequestDay).values(day=day, is_test=is_test, count=add)
    session.execute(stmt.on_conflict_do_update(index_elements=["day", "is_test"],
                                               set_={"count": ApiRequestDay.count + stmt.excluded.count}))


def counts_in_database() -> bool:
    """Whether record_request() writes a row (no Redis configured)."""
    return connection() is None


def redis_counter(is_test: bool) -> tuple[str, int]:
    """Today's Redis counter for the mode and how long it is kept (for a caller that counts in
    its own Redis command, app/api/auth.py)."""
    return _redis_key(clock.now().date(), is_test), REDIS_TTL


class _Pending:
    """This process's counts not yet in Redis, and the thread that sends them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.redis = None
        self.thread: threading.Thread | None = None

    def take(self) -> dict[str, int]:
        with self.lock:
            counts, self.counts = dict(self.counts), Counter()
        return counts

    def give_back(self, counts: dict[str, int]) -> None:
        with self.lock:
            self.counts.update(counts)

    def run(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            try:
                flush_pending(self.redis)
            except Exception as error:  # Redis away: the counts wait for the next round
                log.warning("API request counters not sent to Redis: %s", type(error).__name__)


_pending = _Pending()


def _forget_after_fork() -> None:
    """A forked worker starts with no counts and no thread (told by the fork itself, not by an
    os.getpid() system call per request)."""
    global _pending
    _pending = _Pending()


os.register_at_fork(after_in_child=_forget_after_fork)


def _here() -> _Pending:
    return _pending


def count_later(redis, is_test: bool) -> None:
    """Count one request in Redis within FLUSH_SECONDS (the API's hot path: no round trip)."""
    pending = _here()
    key, _ = redis_counter(is_test)
    with pending.lock:
        pending.counts[key] += 1
        pending.redis = redis
        if pending.thread is None:
            pending.thread = threading.Thread(target=pending.run, name="api-request-counters", daemon=True)
            pending.thread.start()


def flush_pending(redis) -> int:
    """Send this process's pending counts to `redis`; how many requests they counted."""
    pending = _here()
    counts = pending.take()
    if not counts or redis is None:
        pending.give_back(counts)
        return 0
    pipe = redis.pipeline(transaction=False)
    for key, n in counts.items():
        pipe.incrby(key, n)
        pipe.expire(key, REDIS_TTL)
    try:
        pipe.execute()
    except Exception:
        pending.give_back(counts)
        raise
    return sum(counts.values())


def record_request(session, is_test: bool) -> bool:
    """Count one request; True when that wrote to the database (the caller commits right away)."""
    redis = connection()
    if redis is not None:
        count_later(redis, is_test)
        return False
    _upsert(session, clock.now().date(), is_test, add=1)
    return True


def requests_on(session, day: date | None = None) -> dict[str, int]:
    """{'test': n, 'production': n} for a UTC day (today by default): the row plus what Redis
    holds that the flush has not moved yet."""
    day = day or clock.now().date()
    rows = dict(session.execute(select(ApiRequestDay.is_test, ApiRequestDay.count)
                                .where(ApiRequestDay.day == day)).all())
    counts = {"test": int(rows.get(True, 0)), "production": int(rows.get(False, 0))}
    redis = connection()
    if redis is not None:
        try:
            flush_pending(redis)
            test, live = redis.mget(_redis_key(day, True), _redis_key(day, False))
        except (RedisConnectionError, RedisTimeoutError):  # Redis away: the database's count
            return counts
        counts["test"] += int(test or 0)
        counts["production"] += int(live or 0)
    return counts


def flush_redis_counters(session, days: list[date]) -> int:
    """Move the Redis counters of the given days into api_request_days (increments, committed
    here); how many requests were moved."""
    redis = connection()
    if redis is None:
        return 0
    take = redis.register_script(_TAKE_LUA)
    taken: dict[tuple[date, bool], int] = {}
    try:
        for day in days:
            for is_test in (True, False):
                raw = take(keys=[_redis_key(day, is_test)])
                if raw is not None and int(raw):
                    taken[(day, is_test)] = int(raw)
                    _upsert(session, day, is_test, add=int(raw))
        session.commit()
    except BaseException:
        session.rollback()
        _give_back(redis, taken)
        raise
    return sum(taken.values())


def _give_back(redis, taken: dict[tuple[date, bool], int]) -> None:
    """Return counts the database did not take to Redis, for the next flush."""
    try:
        for (day, is_test), n in taken.items():
            key = _redis_key(day, is_test)
            redis.incrby(key, n)
            redis.expire(key, REDIS_TTL)
    except Exception as error:
        log.error("API request counts lost (%s): %s", type(error).__name__, taken)
