"""POST/GET/PATCH/DELETE /api/v1/admin/test/users and the test-key routes."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.auth.service import check_password
from app.core import clock
from app.core.audit import AuditEntry
from app.api.models import ApiKey, IdempotencyRecord
from app.users.models import User

URL = "/api/v1/admin/test/users"


def _iso(moment) -> str:
    """Times travel as ISO 8601 UTC with a Z."""
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def admin(make_user):
    return make_user(roles=("admin",))


@pytest.fixture
def admin_key(make_api_key, admin):
    return make_api_key(admin, "production")


def test_create_answers_the_design_shape_with_the_password_once(client, admin_key, admin, session, frozen_clock):
    response = client.post(URL, json={"tier": "pro"}, headers=admin_key.headers)
    assert response.status_code == 201 and response.headers["X-Test-Mode"] == "true"
    body = response.get_json()
    assert {"id", "email", "password", "expires_at", "account_type"} <= set(body)
    assert body["account_type"] == "test" and body["tier"] == "pro"
    assert body["email"].endswith("@example.test")
    assert body["expires_at"] == _iso(clock.now() + timedelta(days=7))
    user = session.get(User, body["id"])
    assert user.is_test and user.test_tier == "pro" and user.created_by_id == admin.id
    assert check_password(user, body["password"]) and body["password"] not in (user.password_hash or "")
    listed = client.get(URL, headers=admin_key.headers).get_json()["data"]
    assert [u["id"] for u in listed] == [user.id] and "password" not in listed[0]
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "testdata.test_user_created"))
    assert entry.actor_id == admin.id and entry.is_test and body["password"] not in str(entry.after)


def test_given_email_and_password_are_kept(client, admin_key, session):
    response = client.post(URL, json={"email": "Frontend-Test-1@Example.test", "password": "Tester12345Ab",
                                      "expires_in_days": 30}, headers=admin_key.headers)
    body = response.get_json()
    assert response.status_code == 201 and body["email"] == "frontend-test-1@example.test"
    assert body["password"] == "Tester12345Ab"
    again = client.post(URL, json={"email": "frontend-test-1@example.test"}, headers=admin_key.headers)
    assert again.status_code == 409 and again.get_json()["error"]["param"] == "email"


def test_a_sandbox_key_writes_only_test_rows(client, make_api_key, admin, session):
    sandbox = make_api_key(admin, "sandbox")
    response = client.post(URL, json={}, headers={**sandbox.headers, "Idempotency-Key": "k1"})
    assert response.status_code == 201 and response.headers["X-Test-Mode"] == "true"
    assert session.scalar(select(IdempotencyRecord.is_test)) is True
    actions = session.scalars(select(AuditEntry).where(AuditEntry.actor_id == admin.id)).all()
    assert actions and all(a.is_test for a in actions)


def test_extend_within_30_days_only(client, admin_key, session, frozen_clock):
    user_id = client.post(URL, json={}, headers=admin_key.headers).get_json()["id"]
    ok = client.patch(f"{URL}/{user_id}", json={"expires_in_days": 30}, headers=admin_key.headers)
    assert ok.status_code == 200 and ok.get_json()["expires_at"] == _iso(clock.now() + timedelta(days=30))
    for body, code, param in (({"expires_in_days": 31}, "expiry_too_far", "expires_in_days"),
                              ({"expires_at": (clock.now() - timedelta(hours=1)).isoformat()}, "expiry_in_past",
                               "expires_at"),
                              ({"expires_at": (clock.now() + timedelta(days=31)).isoformat()}, "expiry_too_far",
                               "expires_at"),
                              ({"expires_at": "2025-11-20T10:00:00"}, "parameter_invalid", "expires_at"),
                              ({}, "parameter_missing", "expires_in_days")):
        response = client.patch(f"{URL}/{user_id}", json=body, headers=admin_key.headers)
        assert response.status_code == 422, body
        assert (response.get_json()["error"]["code"], response.get_json()["error"]["param"]) == (code, param)
    session.expire_all()
    assert session.get(User, user_id).test_expires_at == clock.now() + timedelta(days=30)


def test_delete_removes_the_account_and_what_it_owns(client, admin_key, make_api_key, session):
    user_id = client.post(URL, json={}, headers=admin_key.headers).get_json()["id"]
    make_api_key(session.get(User, user_id), "sandbox")
    response = client.delete(f"{URL}/{user_id}", headers=admin_key.headers)
    assert response.status_code == 200 and response.get_json() == {"id": user_id, "object": "test_user",
                                                                    "deleted": True}
    session.expire_all()
    assert session.get(User, user_id) is None
    assert session.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.user_id == user_id)) == 0
    assert session.scalar(select(AuditEntry).where(AuditEntry.action == "testdata.test_user_deleted",
                                                   AuditEntry.target_id == str(user_id))) is not None


def _written(session) -> tuple[int, int, int]:
    session.expire_all()
    return tuple(session.scalar(select(func.count()).select_from(model)) for model in (User, AuditEntry,
                                                                                       IdempotencyRecord))


def _tampered(authorization: str) -> str:
    """The last character changed (to one it is not: a random key may already end in "x")."""
    return authorization[:-1] + ("y" if authorization.endswith("x") else "x")


def test_revoked_expired_and_malformed_keys_create_nothing(client, make_api_key, admin, session, frozen_clock):
    revoked = make_api_key(admin, "production", name="revoked")
    revoked.key.revoked_at = clock.now()
    expiring = make_api_key(admin, "sandbox", name="expiring", expires_at=clock.now() + timedelta(minutes=5))
    session.commit()
    frozen_clock.advance(timedelta(minutes=5))
    before = _written(session)
    for authorization, code in ((revoked.headers["Authorization"], "api_key_revoked"),
                                (expiring.headers["Authorization"], "api_key_expired"),
                                ("Bearer rph_test_short", "invalid_api_key"),
                                (_tampered(revoked.headers["Authorization"]), "invalid_api_key"),
                                ("Bearer " + revoked.secret.replace("rph_live_", "rph_nope_"), "invalid_api_key")):
        response = client.post(URL, json={"tier": "pro"}, headers={"Authorization": authorization,
                                                                  "Idempotency-Key": f"bad-{code}"})
        assert response.status_code == 401 and response.get_json()["error"]["code"] == code, authorization
    assert _written(session) == before
    session.expire_all()
    assert session.get(ApiKey, revoked.key.id).last_used_at is None
    assert session.get(ApiKey, expiring.key.id).last_used_at is None


def test_production_and_staff_accounts_are_out_of_reach(client, admin_key, make_user, session):
    customer = make_user(email="real.customer@example.com")
    persona = make_user(roles=("ops",), test=True)
    for target, code in ((customer, "not_a_test_account"), (persona, "staff_account")):
        for response in (client.delete(f"{URL}/{target.id}", headers=admin_key.headers),
                         client.patch(f"{URL}/{target.id}", json={"expires_in_days": 3}, headers=admin_key.headers)):
            assert response.status_code == 409 and response.get_json()["error"]["code"] == code
            assert response.get_json()["error"]["type"] == "invalid_request_error"
    session.expire_all()
    assert session.get(User, customer.id).test_expires_at is None
    assert session.get(User, persona.id) is not None
    assert client.delete(f"{URL}/999999", headers=admin_key.headers).status_code == 404


def test_list_filters_by_creator_tier_and_expiry(client, admin_key, make_api_key, make_user, frozen_clock):
    other_key = make_api_key(make_user(roles=("admin",)), "production")
    mine = client.post(URL, json={"tier": "pro", "expires_in_days": 1}, headers=admin_key.headers).get_json()
    theirs = client.post(URL, json={"tier": "free", "expires_in_days": 10}, headers=other_key.headers).get_json()

    def ids(query):
        response = client.get(f"{URL}?{query}", headers=admin_key.headers)
        assert response.status_code == 200
        return [u["id"] for u in response.get_json()["data"]]

    assert ids(f"creator={admin_key.user.id}") == [mine["id"]]
    assert ids("tier=free") == [theirs["id"]]
    assert ids("expiry=expiring") == [mine["id"]]
    frozen_clock.advance(timedelta(days=2))
    assert ids("expiry=expired") == [mine["id"]]
    assert ids("expiry=active") == [theirs["id"]]
    assert client.get(f"{URL}?expiry=someday", headers=admin_key.headers).status_code == 422


def test_each_route_needs_its_permission(client, make_api_key, make_user):
    support = make_api_key(make_user(roles=("support",)), "production")  # users.view only
    assert client.get(URL, headers=support.headers).status_code == 200
    for response in (client.post(URL, json={}, headers=support.headers),
                     client.delete(f"{URL}/1", headers=support.headers)):
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "missing_permission"


def test_test_keys_route_creates_sandbox_keys_only(client, admin_key, session):
    user_id = client.post(URL, json={}, headers=admin_key.headers).get_json()["id"]
    refused = client.post("/api/v1/admin/test/api-keys", json={"user_id": user_id, "name": "x",
                                                                "key_type": "production"}, headers=admin_key.headers)
    assert refused.status_code == 422 and refused.get_json()["error"]["param"] == "key_type"
    created = client.post("/api/v1/admin/test/api-keys", json={"user_id": user_id, "name": "QA key"},
                          headers=admin_key.headers)
    assert created.status_code == 201
    key = created.get_json()
    assert key["key"].startswith("rph_test_") and key["masked"].endswith(key["key"][-4:])
    own = client.get("/api/v1/admin/test/api-keys", headers={"Authorization": f"Bearer {key['key']}"})
    assert own.status_code == 403 and own.headers["X-Test-Mode"] == "true"  # authenticated, lacks users.view
    listed = client.get(f"/api/v1/admin/test/api-keys?user_id={user_id}", headers=admin_key.headers)
    assert [k["id"] for k in listed.get_json()["data"]] == [key["id"]] and "key" not in listed.get_json()["data"][0]
    revoked = client.delete(f"/api/v1/admin/test/api-keys/{key['id']}", headers=admin_key.headers)
    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"]
    gone = client.get("/api/v1/admin/test/api-keys", headers={"Authorization": f"Bearer {key['key']}"})
    assert gone.get_json()["error"]["code"] == "api_key_revoked"
    live = client.delete(f"/api/v1/admin/test/api-keys/{admin_key.key.id}", headers=admin_key.headers)
    assert live.status_code == 404
