"""What every API answer carries: a strict static security policy and a request id."""
from __future__ import annotations

import re


def test_api_answers_carry_a_strict_policy_and_unique_request_ids(client):
    ids = set()
    for _ in range(50):
        response = client.get("/api/v1/credits/balance")
        assert response.status_code == 401
        assert response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert response.headers["X-Content-Type-Options"] == "nosniff" and response.headers["X-Frame-Options"] == "DENY"
        assert re.fullmatch(r"req_[0-9a-f]{20}", response.headers["X-Request-Id"])
        assert response.json["request_id"] == response.headers["X-Request-Id"]
        ids.add(response.headers["X-Request-Id"])
    assert len(ids) == 50
    sent = client.get("/api/v1/credits/balance", headers={"X-Request-Id": "client-chosen-1"})
    assert sent.headers["X-Request-Id"] == "client-chosen-1"


def test_screens_keep_their_nonce_policy(client):
    page = client.get("/auth/login")
    assert "'nonce-" in page.headers["Content-Security-Policy"]
