"""Item 13 of issue 15: the request counters survive a Redis restart (Redis runs without
persistence). The flush moves increments, read and reset in one step, so the database count
never goes backwards and a restart loses at most what Redis held since the last flush."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from app.core import clock
from app.core.redis import connection
from app.api import traffic
from app.api.models import ApiRequestDay

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def _row(session, is_test: bool = False) -> int:
    return session.scalar(select(ApiRequestDay.count).where(ApiRequestDay.day == clock.now().date(),
                                                            ApiRequestDay.is_test == is_test)) or 0


def _serve(session, redis, n: int) -> None:
    for _ in range(n):
        traffic.record_request(session, False)
    traffic.flush_pending(redis)  # what the process's sender thread does within a second


def test_a_redis_restart_loses_only_the_unflushed_counts_and_the_row_never_goes_back(on_own_redis, session,
                                                                                      frozen_clock):
    redis, day = connection(), clock.now().date()
    traffic.flush_pending(redis)  # counts other tests left pending in this process
    redis.flushall()
    _serve(session, redis, 7)
    assert traffic.flush_redis_counters(session, [day]) == 7 and _row(session) == 7
    _serve(session, redis, 5)  # in Redis, not yet moved
    assert traffic.requests_on(session)["production"] == 12

    on_own_redis.kill()  # a crash: the 5 are gone with it
    for _ in range(2):  # counted while Redis is down: kept in the process, sent when it is back
        traffic.record_request(session, False)
    with pytest.raises(Exception):
        traffic.flush_pending(redis)
    assert traffic.requests_on(session)["production"] == 7  # the database's count meanwhile
    on_own_redis.start()
    _serve(session, redis, 3)

    assert traffic.flush_redis_counters(session, [day]) == 5
    assert _row(session) == 12  # 7 + 2 + 3; copying Redis' absolute 5 over 7 would go backwards
    assert traffic.requests_on(session)["production"] == 12


def test_increments_sent_during_flushes_are_moved_exactly_once(on_own_redis, session, frozen_clock):
    redis, day = connection(), clock.now().date()
    redis.flushall()
    key = traffic._redis_key(day, True)
    senders, per_sender = 4, 400

    def send():
        mine = type(redis).from_url(on_own_redis.url)
        for _ in range(per_sender):
            mine.incrby(key, 1)
        mine.close()

    threads = [threading.Thread(target=send) for _ in range(senders)]
    for thread in threads:
        thread.start()
    moved = 0
    while any(thread.is_alive() for thread in threads):
        moved += traffic.flush_redis_counters(session, [day])
    for thread in threads:
        thread.join()
    moved += traffic.flush_redis_counters(session, [day])
    assert moved == senders * per_sender == _row(session, is_test=True)
    assert redis.get(key) is None
