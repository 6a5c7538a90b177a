"""A route's limit per client address (keyless license calls, the OAuth token endpoint) with the
app's Redis as the limiter's storage: reserved in blocks like a key's limit (app/api/quota.py),
so most requests make no Redis round trip; never more than the limit, 429 with Retry-After past it."""
from __future__ import annotations

import pytest
from limits import parse
from redis import Redis

pytestmark = pytest.mark.redis


def _token(client):
    return client.post("/api/v1/oauth/token", json={"grant_type": "client_credentials", "client_id": "nobody",
                                                    "client_secret": "wrong"})


def test_the_per_address_limit_refuses_past_the_limit_with_retry_after(app, client, on_own_redis, monkeypatch):
    monkeypatch.setitem(app.config, "OAUTH_TOKEN_RATE_LIMIT", "4 per minute")
    answers = [_token(client) for _ in range(6)]
    assert [a.status_code != 429 for a in answers] == [True] * 4 + [False] * 2
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60
    assert answers[-1].json["error"]["code"] == "rate_limited"
    window = f"LIMITS:{parse('4 per minute').key_for('ip', 'oauth_token', '127.0.0.1')}"
    assert int(Redis.from_url(on_own_redis.url).get(window)) == 4  # the full window then refuses locally


def test_a_large_per_address_limit_is_reserved_in_blocks(app, client, on_own_redis, monkeypatch):
    monkeypatch.setitem(app.config, "OAUTH_TOKEN_RATE_LIMIT", "1000 per minute")
    redis = Redis.from_url(on_own_redis.url)
    window = f"LIMITS:{parse('1000 per minute').key_for('ip', 'oauth_token', '127.0.0.1')}"
    assert all(_token(client).status_code != 429 for _ in range(12))
    assert int(redis.get(window)) == 20  # two blocks of 10 served 12 requests: two round trips
    assert 0 < redis.ttl(window) <= 60
