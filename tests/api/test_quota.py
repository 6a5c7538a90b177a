"""The rate limit and request counters with Redis off most requests (app/api/quota.py,
app/sandbox/traffic.count_later): never more than the limit, at most (P - 1)% early with
P processes, and every request counted in Redis within a second."""
from __future__ import annotations

import time

import pytest
from tests.support.services import redis_or_unavailable
from limits import parse

from app.api import quota
from app.api import traffic
from tests.support.workers import TEST_REDIS_URL

pytestmark = pytest.mark.redis


@pytest.fixture
def redis():
    conn = redis_or_unavailable(TEST_REDIS_URL)
    yield conn
    conn.close()


@pytest.fixture
def window(redis):
    """A fresh key's window (and a fresh process's blocks)."""
    quota._windows = quota._Windows()
    name = f"quota-test:{time.time_ns()}"
    item = parse("300 per minute")
    key = f"LIMITS:{item.key_for('api', name)}"
    yield item, name, key
    redis.delete(key)


def test_small_limits_ask_redis_every_time(redis, window):
    item, name, key = window
    small = parse("5 per minute")
    answers = [quota.hit(redis, small, name) for _ in range(7)]
    assert [a[0] for a in answers] == [True] * 5 + [False] * 2
    assert [a[1] for a in answers] == [4, 3, 2, 1, 0, 0, 0]
    assert int(redis.get(f"LIMITS:{small.key_for('api', name)}")) == 5  # then the full window refuses locally
    assert all(time.time() < a[2] <= time.time() + 60 for a in answers)
    redis.delete(f"LIMITS:{small.key_for('api', name)}")


def test_a_block_serves_many_requests_and_never_more_than_the_limit(redis, window):
    item, name, key = window  # 300 a minute: blocks of 3
    answers = [quota.hit(redis, item, name) for _ in range(305)]
    assert sum(a[0] for a in answers) == 300 and not any(a[0] for a in answers[300:])
    assert [a[1] for a in answers[:4]] == [299, 298, 297, 296]
    assert int(redis.get(key)) == 300  # 100 reservations; the full window then refuses locally


def test_two_processes_share_the_window_and_refuse_at_most_one_block_early(redis, window):
    item, name, key = window
    first = quota._windows
    assert quota.hit(redis, item, name)[0]  # the first process holds a block of 3, 1 used
    second = quota._windows = quota._Windows()
    allowed = sum(quota.hit(redis, item, name)[0] for _ in range(400))
    assert 300 - quota.block_size(300) <= allowed <= 299
    quota._windows = first
    assert quota.hit(redis, item, name)[0] and quota.hit(redis, item, name)[0]  # its block stays usable
    assert not quota.hit(redis, item, name)[0]
    assert second is not first


def test_counts_reach_redis_within_a_second_without_a_request(redis):
    traffic.flush_pending(redis)
    key, _ = traffic.redis_counter(True)
    before = int(redis.get(key) or 0)
    for _ in range(5):
        traffic.count_later(redis, True)
    deadline = time.monotonic() + 5
    while int(redis.get(key) or 0) - before < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert int(redis.get(key) or 0) - before == 5
    assert 0 < redis.ttl(key) <= traffic.REDIS_TTL


def test_a_forked_worker_starts_with_no_blocks_no_counts_and_its_own_request_ids(redis, window):
    """gunicorn forks its workers from the loaded app: the child forgets the parent's blocks and
    pending counts and draws its own request-id prefix (told by the fork, not by os.getpid())."""
    import json
    import os

    from app.core.logging import new_request_id

    item, name, _ = window
    quota.hit(redis, item, name)
    traffic._here().counts["parent"] += 1
    parent_prefix = new_request_id()[:16]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once
        try:
            state = {"blocks": len(quota._here().blocks), "counts": dict(traffic._here().counts),
                     "prefix": new_request_id()[:16]}
            os.write(write, json.dumps(state).encode())
        finally:
            os._exit(0)
    os.close(write)
    child = json.loads(os.read(read, 4096))
    os.close(read)
    os.waitpid(pid, 0)
    assert child["blocks"] == 0 and child["counts"] == {}
    assert child["prefix"] != parent_prefix
    assert len(quota._here().blocks) == 1 and traffic._here().counts["parent"] == 1  # the parent's kept
    traffic._here().counts.pop("parent")
