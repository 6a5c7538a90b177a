"""The request pipeline on PostgreSQL with an API key and an Idempotency-Key (calculate-and-deduct):
one transaction whose first statement authenticates and claims, with the answers of the general
steps in the same order of precedence, and every side effect they have."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from tests.support.services import redis_or_unavailable
from sqlalchemy import func, select

from app.api import idempotency, pipeline
from app.core import clock, pg
from app.credits import charge as charge_statements
from app.credits.models import CreditDeduction, TokenUsage
from app.extensions import db
from app.api import traffic
from app.api.models import ApiKey, IdempotencyRecord
from tests.credits.conftest import funded, priced  # noqa: F401  (fixtures)
from tests.support.workers import TEST_REDIS_URL

pytestmark = pytest.mark.postgres
URL = "/api/v1/credits/calculate-and-deduct"
CHARGE = {"model": "gpt-4-turbo", "input_tokens": 500, "output_tokens": 300, "request_id": "req_1"}


@pytest.fixture
def statements(monkeypatch):
    """The statements pg.run() executed (it still runs them)."""
    seen = []
    real = pg.run

    def spy(session, stmt, params):
        seen.append(stmt)
        return real(session, stmt, params)

    monkeypatch.setattr(pg, "run", spy)
    return seen


@pytest.fixture
def live(priced, funded, make_api_key):  # noqa: F811
    return make_api_key(funded(subscription=10_000, tier="pro"), key_type="production")


def charge(client, key, body=CHARGE, idem="idem-1"):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json",
                       headers={**key.headers, "Idempotency-Key": idem})


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_runs_as_one_claim_then_the_charge_then_the_stored_answer(client, live, statements):
    response = charge(client, live)
    assert response.status_code == 201
    # (between them, a locked read of the balance when the process's guess of the user was wrong);
    # the credits domain charges (credits/charge.py) and returns data; app/api stores the answer
    assert statements[0] is pipeline.AUTHENTICATE_AND_CLAIM and statements[-1] is idempotency._STORE
    assert statements[-2] is charge_statements.CHARGE_AND_RECORD
    assert sum(stmt is idempotency._STORE for stmt in statements) == 1
    record = db.session.scalar(select(IdempotencyRecord))
    assert (record.response_status, record.is_test) == (201, False)
    assert record.response_body == response.json
    assert response.json["balance"] == {"subscription_credits": 9_951, "bonus_credits": 0, "total": 9_951,
                                        "monthly_cap": None, "month_to_date": {"credits": 49, "tokens": 800}}
    replay = charge(client, live)
    assert (replay.status_code, replay.json, replay.headers["Idempotent-Replayed"]) == (200, response.json, "true")
    other = charge(client, live, {**CHARGE, "input_tokens": 1})
    assert (other.status_code, other.json["error"]["code"]) == (409, "idempotency_key_reused")
    assert count(TokenUsage) == count(CreditDeduction) == 1


@pytest.mark.parametrize("change, code", [
    ({"revoked_at": "now"}, "api_key_revoked"),
    ({"expires_at": "now"}, "api_key_expired"),
])
def test_a_refused_key_writes_nothing(client, live, change, code):
    for field in change:
        setattr(live.key, field, clock.now())
    db.session.flush()
    response = charge(client, live)
    assert (response.status_code, response.json["error"]["code"]) == (401, code)
    assert count(IdempotencyRecord) == count(TokenUsage) == count(CreditDeduction) == 0


def test_sandbox_key_is_test_traffic_everywhere(client, priced, funded, make_api_key, frozen_clock):  # noqa: F811
    key = make_api_key(funded(subscription=1_000, tier="pro", test=True), key_type="sandbox")
    before = traffic.requests_on(db.session)
    response = charge(client, key)
    assert response.status_code == 201 and response.headers["X-Test-Mode"] == "true"
    assert db.session.get(TokenUsage, response.json["usage_id"]).is_test is True
    assert db.session.scalar(select(IdempotencyRecord.is_test)) is True
    after = traffic.requests_on(db.session)
    assert (after["test"] - before["test"], after["production"] - before["production"]) == (1, 0)


def test_rate_limit_refuses_counts_and_releases_the_key(app, client, live, monkeypatch, frozen_clock):
    monkeypatch.setitem(app.config, "API_RATE_LIMIT_LIVE", "1 per minute")
    before = traffic.requests_on(db.session)["production"]
    assert charge(client, live, idem="a").status_code == 201
    limited = charge(client, live, {**CHARGE, "request_id": "req_2"}, idem="b")
    assert limited.status_code == 429 and limited.json["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60 and limited.headers["X-RateLimit-Remaining"] == "0"
    assert traffic.requests_on(db.session)["production"] - before == 2
    assert count(IdempotencyRecord) == count(CreditDeduction) == 1


def test_scope_is_checked(client, priced, funded, make_api_key):  # noqa: F811
    key = make_api_key(funded(subscription=1_000, tier="pro"), key_type="production", scopes=["credits:read"])
    response = charge(client, key)
    assert (response.status_code, response.json["error"]["code"]) == (403, "insufficient_scope")
    assert count(IdempotencyRecord) == count(CreditDeduction) == 0


def test_bad_body_is_422_and_the_key_can_be_used_again(client, live):
    bad = charge(client, live, {**CHARGE, "input_tokens": -1})
    assert (bad.status_code, bad.json["error"]["code"], bad.json["error"]["param"]) == (
        422, "parameter_invalid", "input_tokens")
    unknown = charge(client, live, {**CHARGE, "model": "gpt-9"})
    assert (unknown.status_code, unknown.json["error"]["code"]) == (422, "price_not_found")
    assert count(IdempotencyRecord) == count(TokenUsage) == 0
    assert charge(client, live).status_code == 201


def test_last_used_at_once_a_minute_also_when_refused(app, client, live, frozen_clock, monkeypatch):
    def last_used():
        return db.session.scalar(select(ApiKey.last_used_at).where(ApiKey.id == live.key.id))

    assert charge(client, live, idem="a").status_code == 201
    first = last_used()
    assert first == clock.now()
    frozen_clock.advance(timedelta(seconds=30))
    assert charge(client, live, {**CHARGE, "request_id": "r2"}, idem="b").status_code == 201
    assert last_used() == first
    frozen_clock.advance(timedelta(seconds=31))
    monkeypatch.setitem(app.config, "API_RATE_LIMIT_LIVE", "0 per minute")
    assert charge(client, live, {**CHARGE, "request_id": "r3"}, idem="c").status_code == 429
    assert last_used() == clock.now()


@pytest.mark.redis
def test_with_redis_the_counter_and_the_limit_live_in_redis(app, client, live, monkeypatch, frozen_clock):
    redis = redis_or_unavailable(TEST_REDIS_URL)
    monkeypatch.setitem(app.config, "REDIS_URL", TEST_REDIS_URL)
    monkeypatch.setitem(app.config, "RATELIMIT_STORAGE_URI", TEST_REDIS_URL)
    monkeypatch.setitem(app.config, "API_RATE_LIMIT_LIVE", "2 per minute")
    app.extensions.pop("rephlo_redis", None)
    counter, _ = traffic.redis_counter(False)
    window = f"LIMITS:LIMITER/api/key:{live.key.id}/2/1/minute"
    traffic.flush_pending(redis)  # earlier tests' counts
    redis.delete(counter, window)
    try:
        assert [charge(client, live, {**CHARGE, "request_id": f"r{n}"}, idem=f"k{n}").status_code
                for n in range(3)] == [201, 201, 429]
        assert 0 < redis.ttl(window) <= 60
        with app.app_context():  # the counts are sent within a second; reading sends them at once
            assert traffic.requests_on(db.session)["production"] >= 3
        assert int(redis.get(counter)) == 3
        assert count(CreditDeduction) == 2
    finally:
        redis.delete(counter, window)
        app.extensions.pop("rephlo_redis", None)
