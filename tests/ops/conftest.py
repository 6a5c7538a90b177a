from __future__ import annotations


import pytest

from tests.support.services import redis_or_unavailable
from tests.support.workers import TEST_REDIS_URL


@pytest.fixture
def redis_app(app):
    """The app switched to a real Redis (a dedicated test database), jobs on RQ."""
    conn = redis_or_unavailable(TEST_REDIS_URL)
    conn.flushdb()
    saved = {k: app.config[k] for k in ("REDIS_URL", "JOBS_INLINE")}
    app.config.update(REDIS_URL=TEST_REDIS_URL, JOBS_INLINE=False)
    app.extensions.pop("rephlo_redis", None)
    yield conn
    app.config.update(saved)
    app.extensions.pop("rephlo_redis", None)
    conn.flushdb()
    conn.close()
