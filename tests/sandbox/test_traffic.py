"""The test-vs-production request counter: UPSERT without Redis, INCR with it, moved to the table by a job."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.core import clock
from app.api import traffic
from app.api.models import ApiRequestDay


def test_upsert_counts_per_day_and_mode(session, frozen_clock):
    for is_test in (True, True, False):
        traffic.record_request(session, is_test)
    assert traffic.requests_on(session) == {"test": 2, "production": 1}
    rows = session.execute(select(ApiRequestDay.is_test, ApiRequestDay.count)).all()
    assert sorted(rows) == [(False, 1), (True, 2)]


@pytest.mark.redis
def test_redis_counters_are_flushed_to_the_table(app, session, frozen_clock, monkeypatch):
    from app.core.redis import connection

    monkeypatch.setitem(app.config, "REDIS_URL", "redis://127.0.0.1:6379/15")
    app.extensions.pop("rephlo_redis", None)
    day = clock.now().date()
    keys = [traffic._redis_key(day, True), traffic._redis_key(day, False)]
    try:
        redis = connection()
        redis.delete(*keys)
        for is_test in (True, False, False):
            traffic.record_request(session, is_test)
        assert traffic.requests_on(session) == {"test": 1, "production": 2}
        assert session.scalar(select(ApiRequestDay)) is None  # nothing written on the hot path
        assert redis.ttl(keys[0]) > 0
        assert traffic.flush_redis_counters(session, [day]) == 3
        assert traffic.flush_redis_counters(session, [day]) == 0  # moved, not copied: nothing left
        assert redis.get(keys[0]) is None and redis.get(keys[1]) is None
        rows = session.execute(select(ApiRequestDay.is_test, ApiRequestDay.count)).all()
        assert sorted(rows) == [(False, 2), (True, 1)]
        traffic.record_request(session, False)
        assert traffic.requests_on(session) == {"test": 1, "production": 3}  # the row and Redis
    finally:
        connection().delete(*keys)
        app.extensions.pop("rephlo_redis", None)
