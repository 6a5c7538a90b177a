"""Item 14 of issue 15: a database or Redis outage answers 503 `service_unavailable` with
Retry-After (the API's error object; a plain page for the screens), not a 500 `internal_error`;
and while Redis is down the metering API keeps serving each key within the process's last known
rate-limit allowance (app/api/quota.py)."""
from __future__ import annotations

import pytest

from app.api import quota
from app.core.redis import connection
from bench.common import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def database_down(app):
    """The test app's settings, on a PostgreSQL port where nothing listens."""
    from app import create_app

    cfg = {key: app.config[key] for key in ("TESTING", "JOBS_INLINE", "REDIS_URL", "RATELIMIT_STORAGE_URI",
                                            "WTF_CSRF_ENABLED", "SERVER_NAME", "SECRET_KEY")}
    return create_app({**cfg, "SQLALCHEMY_DATABASE_URI": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x"})


def _unavailable_json(response) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "2"
    assert response.json["error"]["code"] == "service_unavailable"


def test_a_database_outage_answers_503_with_retry_after(database_down, monkeypatch):
    from app.extensions import db
    from tests.support.sessions import app_scoped_session

    # A session of the app's own engine, not the test's connection (tests/conftest.py _transaction).
    monkeypatch.setattr(db, "session", app_scoped_session(db))
    client = database_down.test_client()
    secret = "rph_live_" + "a" * 40
    _unavailable_json(client.get("/api/v1/credits/balance", headers={"Authorization": f"Bearer {secret}"}))
    _unavailable_json(client.post("/api/v1/credits/calculate-and-deduct",  # the metering hot path
                                  json={"model": "gpt-4-turbo", "input_tokens": 1, "output_tokens": 1,
                                        "request_id": "r1"},
                                  headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "k1"}))
    page = client.post("/auth/login", data={"email": "admin@example.com", "password": "correct horse"})
    # (Flask-Limiter raises Retry-After to the sign-in limit's window on this route.)
    assert page.status_code == 503 and int(page.headers["Retry-After"]) >= 2
    assert "Briefly unavailable" in page.get_data(as_text=True)


def test_while_redis_is_down_metering_serves_within_the_last_known_allowance(app, on_own_redis, make_api_key,
                                                                              monkeypatch):
    monkeypatch.setitem(app.config, "API_RATE_LIMIT_LIVE", "5 per minute")
    monkeypatch.setattr(quota, "OFFLINE_RETRY_SECONDS", 0.0)  # ask Redis again at every request
    client = app.test_client()
    some, busy, new = (make_api_key(key_type="production") for _ in range(3))

    def balance(key):
        return client.get("/api/v1/credits/balance", headers=key.headers)

    assert [balance(some).status_code for _ in range(2)] == [200, 200]
    assert [balance(busy).status_code for _ in range(6)] == [200] * 5 + [429]

    on_own_redis.kill()
    served = [balance(some) for _ in range(4)]
    assert [r.status_code for r in served] == [200, 200, 200, 429]  # 2 before + 3: the limit, not more
    assert served[2].headers["X-RateLimit-Remaining"] == "0"
    assert balance(busy).status_code == 429  # refused before the outage: still refused
    assert balance(new).status_code == 200  # a key this process knew nothing of: a window of its own

    on_own_redis.start()
    fresh = make_api_key(key_type="production")
    assert balance(fresh).status_code == 200
    assert any(b"api" in key for key in connection().keys("LIMITS*"))  # counted in Redis again


def test_a_redis_outage_on_a_queued_job_answers_the_plain_503_page(app, on_own_redis, login_as, monkeypatch):
    monkeypatch.setitem(app.config, "JOBS_INLINE", False)
    client = login_as("super_admin")
    on_own_redis.kill()
    page = client.post("/admin/credits/summaries/rebuild", data={"day": "2025-11-08"})
    assert page.status_code == 503 and page.headers["Retry-After"] == "2"
    assert "Briefly unavailable" in page.get_data(as_text=True)
