"""Bearer auth on /api/v1: every refusal code, test mode per key type, permissions, scopes."""
from __future__ import annotations

from datetime import timedelta

import pytest
from flask import g, jsonify
from sqlalchemy import select

from app.api import pipeline
from app.core import audit, clock, testmode
from app.core.audit import AuditEntry
from app.extensions import db
from app.api import traffic
from app.api.models import KEY_PREFIXES, ApiKey, secret_hash

LIST = "/api/v1/admin/test/users"


def _error(response):
    return response.get_json()["error"]


@pytest.mark.parametrize("header, code", [
    (None, "missing_api_key"),
    ("", "missing_api_key"),
    ("Basic dXNlcjpwYXNz", "invalid_api_key"),
    ("Bearer", "invalid_api_key"),
    ("Bearer sk_live_1234567890abcdef1234", "invalid_api_key"),
    ("Bearer rph_live_short", "invalid_api_key"),
    ("Bearer rph_live_" + "A" * 40, "invalid_api_key"),  # well-formed, unknown
])
def test_missing_and_malformed_keys_are_refused(client, header, code):
    headers = {} if header is None else {"Authorization": header}
    response = client.get(LIST, headers=headers)
    assert response.status_code == 401
    body = response.get_json()
    assert body["error"]["code"] == code and body["error"]["type"] == "authentication_error"
    assert body["request_id"].startswith("req_")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_key_is_refused(client, make_api_key, make_user, session):
    creds = make_api_key(make_user(roles=("admin",)), "production")
    creds.key.revoked_at = clock.now()
    db.session.flush()
    response = client.get(LIST, headers=creds.headers)
    assert response.status_code == 401 and _error(response)["code"] == "api_key_revoked"


def test_expired_key_is_refused(client, make_api_key, make_user, frozen_clock):
    creds = make_api_key(make_user(roles=("admin",)), "production", expires_at=clock.now() + timedelta(hours=1))
    assert client.get(LIST, headers=creds.headers).status_code == 200
    frozen_clock.advance(timedelta(hours=1))
    response = client.get(LIST, headers=creds.headers)
    assert response.status_code == 401 and _error(response)["code"] == "api_key_expired"


def test_inactive_owner_is_refused(client, make_api_key, make_user):
    creds = make_api_key(make_user(roles=("admin",)), "production")
    creds.user.status = "suspended"
    db.session.flush()
    response = client.get(LIST, headers=creds.headers)
    assert response.status_code == 401 and _error(response)["code"] == "account_inactive"


def test_expired_test_account_is_refused(client, make_api_key, make_user, frozen_clock):
    owner = make_user(test=True, test_expires_at=clock.now() + timedelta(days=1))
    creds = make_api_key(owner, "sandbox")
    frozen_clock.advance(timedelta(days=1, seconds=1))
    response = client.get("/api/v1/admin/test/api-keys", headers=creds.headers)
    assert response.status_code == 401 and _error(response)["code"] == "test_account_expired"


def test_only_the_hash_is_stored(make_api_key, session):
    creds = make_api_key(key_type="development")
    assert creds.secret.startswith(KEY_PREFIXES["development"])
    row = session.get(ApiKey, creds.key.id)
    assert row.key_hash == secret_hash(creds.secret) and creds.secret not in str(row.__dict__)
    assert row.last4 == creds.secret[-4:] and row.masked.endswith(creds.secret[-4:])


@pytest.mark.parametrize("key_type, test_owner, expected", [
    ("production", False, False),
    ("sandbox", False, True),
    ("development", False, True),
    ("sandbox", True, True),
])
def test_mode_follows_key_type_and_owner(client, make_api_key, make_user, key_type, test_owner, expected):
    owner = make_user(roles=("admin",), test=test_owner)
    creds = make_api_key(owner, key_type)
    response = client.get(LIST, headers=creds.headers)
    assert response.status_code == 200
    assert (response.headers.get("X-Test-Mode") == "true") is expected


def test_production_key_of_a_test_account_still_runs_in_test_mode(client, make_user):
    """A legacy row (the service refuses to create one) must not turn test traffic into production."""
    owner = make_user(roles=("admin",), test=True)
    secret = "rph_live_" + "L" * 40
    db.session.add(ApiKey(user_id=owner.id, name="legacy", key_type="production", prefix="rph_live_",
                          key_hash=secret_hash(secret), last4=secret[-4:], scopes=["*"]))
    db.session.flush()
    response = client.get(LIST, headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200 and response.headers["X-Test-Mode"] == "true"


def _probe():
    """Writes one row as a route's view: the mixin marks it from the key's mode."""
    entry = audit.record(db.session, "probe.write", actor=g.api_user, target_type="probe", target_id=1)
    db.session.flush()
    return jsonify(is_test=entry.is_test, test_mode=testmode.active(), user=g.api_user.id)


@pytest.mark.parametrize("key_type, expected", [("sandbox", True), ("production", False)])
def test_rows_written_by_a_request_carry_its_mode(app, make_api_key, make_user, key_type, expected):
    creds = make_api_key(make_user(), key_type)
    with app.test_request_context("/api/v1/probe", headers=creds.headers):
        body = pipeline.serve(pipeline.Route("GET", "/probe", _probe), {}).get_json()
    # A production customer's sandbox key acts as the customer's test twin (DESIGN.md §3).
    from app.sandbox import twins

    acting = twins.twin_of(db.session, creds.user).id if expected else creds.user.id
    assert body == {"is_test": expected, "test_mode": expected, "user": acting}
    row = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "probe.write"))
    assert row.is_test is expected


def test_admin_route_needs_the_owners_permission(client, make_api_key, make_user):
    creds = make_api_key(make_user(roles=("auditor",)), "production")  # auditor lacks users.view
    response = client.get(LIST, headers=creds.headers)
    assert response.status_code == 403
    error = _error(response)
    assert error["code"] == "missing_permission" and "users.view" in error["message"]
    assert error["type"] == "permission_error"


def test_scopes_limit_what_a_key_may_do(client, make_api_key, make_user):
    creds = make_api_key(make_user(roles=("admin",)), "production", scopes=["test_data:read"])
    assert client.get(LIST, headers=creds.headers).status_code == 200
    response = client.post(LIST, json={}, headers=creds.headers)
    assert response.status_code == 403 and _error(response)["code"] == "insufficient_scope"


def test_last_used_at_is_written_at_most_once_a_minute(client, make_api_key, make_user, frozen_clock, session):
    creds = make_api_key(make_user(roles=("admin",)), "production")
    client.get(LIST, headers=creds.headers)
    first = session.scalar(select(ApiKey.last_used_at).where(ApiKey.id == creds.key.id))
    assert first == clock.now()
    frozen_clock.advance(timedelta(seconds=30))
    client.get(LIST, headers=creds.headers)
    assert session.scalar(select(ApiKey.last_used_at).where(ApiKey.id == creds.key.id)) == first
    frozen_clock.advance(timedelta(seconds=31))
    client.get(LIST, headers=creds.headers)
    assert session.scalar(select(ApiKey.last_used_at).where(ApiKey.id == creds.key.id)) == clock.now()


def test_requests_are_counted_per_day_test_vs_production(client, make_api_key, make_user, frozen_clock, session):
    admin = make_user(roles=("admin",))
    live, sandbox = make_api_key(admin, "production"), make_api_key(admin, "sandbox")
    before = traffic.requests_on(session)
    for _ in range(3):
        client.get(LIST, headers=sandbox.headers)
    client.get(LIST, headers=live.headers)
    client.get(LIST)  # unauthenticated: not counted
    after = traffic.requests_on(session)
    assert after["test"] - before["test"] == 3
    assert after["production"] - before["production"] == 1
