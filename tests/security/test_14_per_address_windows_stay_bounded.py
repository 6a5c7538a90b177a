"""A process's rate-limit windows (app/api/quota.py) stay bounded under an address spray.

Keyless licence calls are limited per client address. An attacker with many addresses (one
IPv6 /64 has 2^64) opened a window per address; past MAX_WINDOWS live windows, every new
address re-scanned the whole table under the process-wide lock (~6 ms a request at 50,000
windows, measured), and the table kept growing: a CPU and memory exhaustion reaching every
key's limit in the process. Now a table still full after dropping ended windows is emptied,
which is safe: a forgotten block only costs a round trip, and Redis still refuses a full window.
"""
from __future__ import annotations

import time

import pytest
from limits import parse

from app.api import quota
from tests.support.services import redis_or_unavailable
from tests.support.workers import TEST_REDIS_URL

pytestmark = pytest.mark.redis


@pytest.fixture
def redis():
    conn = redis_or_unavailable(TEST_REDIS_URL)
    scope = f"ip-spray-{time.time_ns()}"
    quota._windows = quota._Windows()
    yield conn, scope
    for key in conn.scan_iter(f"*{scope}*", count=1000):
        conn.delete(key)
    quota._windows = quota._Windows()
    conn.close()


def test_many_addresses_do_not_grow_the_window_table_past_its_bound(redis, monkeypatch):
    conn, scope = redis
    monkeypatch.setattr(quota, "MAX_WINDOWS", 50)
    item = parse("300 per minute")
    for i in range(400):
        allowed, _, _ = quota.hit(conn, item, "validate_license", f"2001:db8::{i:x}", scope=scope)
        assert allowed
        assert len(quota._here().blocks) <= quota.MAX_WINDOWS


def test_an_address_refused_before_the_table_emptied_is_still_refused(redis, monkeypatch):
    conn, scope = redis
    monkeypatch.setattr(quota, "MAX_WINDOWS", 20)
    small = parse("3 per minute")
    answers = [quota.hit(conn, small, "validate_license", "198.51.100.7", scope=scope)[0] for _ in range(4)]
    assert answers == [True, True, True, False]
    for i in range(100):  # the spray empties the table at least once
        quota.hit(conn, small, "validate_license", f"2001:db8::{i:x}", scope=scope)
    assert quota.hit(conn, small, "validate_license", "198.51.100.7", scope=scope)[0] is False
