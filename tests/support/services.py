"""A service a test needs (PostgreSQL, Redis, Chromium) is missing: skipped on a developer's
machine, a loud failure under CI=true, where nothing may be skipped."""
from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def unavailable(message: str):
    if IN_CI:
        raise RuntimeError(message)
    pytest.skip(message)


def redis_or_unavailable(url: str):
    """A client of the Redis at `url`, once it answers a PING."""
    from redis import Redis

    conn = Redis.from_url(url, socket_connect_timeout=2)
    try:
        conn.ping()
    except Exception as exc:
        unavailable(f"Redis is not reachable at {url}: {exc}")
    return conn
