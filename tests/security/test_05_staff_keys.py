"""Issue 15 item 5: a staff member cannot mint a key for a colleague and act as them.

admin.test created a sandbox key owned by ops.user and granted credits through it, audited as
ops.user. Now staff create keys for customers and for themselves only; admin API audit rows
name the key and its creator besides the owner; and a staff member's keys are revoked when
they sign out everywhere or change their password.
"""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.core.audit import AuditEntry
from app.core.errors import DomainError
from app.api.keys import create_api_key
from app.api.models import ApiKey

PASSWORD = "CorrectHorse9Battery"


def _keys_of(session, user) -> int:
    return session.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.user_id == user.id))


def test_the_api_refuses_a_key_for_a_colleague(client, session, make_user, make_api_key):
    admin = make_user(roles=("admin",), test=True)   # staff test personas, as admin.test and ops.user
    ops = make_user(roles=("ops",), test=True)
    customer = make_user(test=True)
    key = make_api_key(admin, key_type="sandbox")
    body = {"user_id": ops.id, "name": "borrowed", "key_type": "sandbox"}
    refused = client.post("/api/v1/admin/test/api-keys", json=body, headers=key.headers)
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "staff_key_for_colleague" and refused.json["error"]["param"] == "owner"
    assert _keys_of(session, ops) == 0
    for owner in (customer, admin):  # customers and oneself are fine
        made = client.post("/api/v1/admin/test/api-keys", json={**body, "user_id": owner.id}, headers=key.headers)
        assert made.status_code == 201, made.json


def test_the_screen_refuses_a_key_for_a_colleague(session, make_user, login_as):
    ops = make_user(roles=("ops",))
    client = login_as("admin")
    response = client.post("/admin/api-keys/new", data={"name": "borrowed", "owner": ops.email,
                                                        "key_type": "sandbox", "scopes": ["*"]})
    assert response.status_code == 422
    assert "must create their own" in response.get_data(as_text=True)
    assert _keys_of(session, ops) == 0


def test_admin_api_audit_rows_name_the_key_and_its_creator(client, session, make_user, make_api_key, login_as):
    admin = make_user(roles=("admin",), test=True)
    ops = make_user(roles=("ops",), test=True)
    # A key minted for ops by admin before this rule existed (the service now refuses it).
    with pytest.raises(DomainError):
        create_api_key(session, admin, owner=ops, name="borrowed", key_type="sandbox")
    session.rollback()
    legacy = make_api_key(ops, key_type="sandbox")
    legacy.key.created_by_id = admin.id
    session.commit()
    response = client.post("/api/v1/admin/test/users", json={}, headers=legacy.headers)
    assert response.status_code == 201, response.json
    row = session.scalar(select(AuditEntry).where(AuditEntry.action == "testdata.test_user_created")
                         .order_by(AuditEntry.id.desc()))
    assert row is not None and row.actor_id == ops.id
    assert (row.api_key_id, row.key_creator_id, row.key_creator_label) == (legacy.key.id, admin.id, admin.email)
    auditor = login_as("auditor")
    page = auditor.get("/admin/audit?action=testdata.test_user_created&include_test=1").get_data(as_text=True)
    assert f"through API key #{legacy.key.id},\n          made by {admin.email}" in page


def _active_keys(session, user) -> int:
    return session.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.user_id == user.id,
                                                                         ApiKey.revoked_at.is_(None)))


def test_sign_out_everywhere_revokes_the_staff_members_keys(client, session, make_user, make_api_key, login_as):
    ops = make_user(roles=("ops",))
    key = make_api_key(ops, key_type="production")
    assert client.get("/api/v1/admin/test/users", headers=key.headers).status_code == 200
    login_as(user=ops).post("/admin/account/sign-out-everywhere")
    assert _active_keys(session, ops) == 0
    refused = client.get("/api/v1/admin/test/users", headers=key.headers)
    assert refused.status_code == 401 and refused.json["error"]["code"] == "api_key_revoked"


def test_password_change_revokes_the_staff_members_keys(session, make_user, make_api_key, login_as, sudo):
    ops = make_user(roles=("ops",))
    make_api_key(ops, key_type="sandbox")
    customer = make_user()
    make_api_key(customer, key_type="sandbox")
    response = sudo(login_as(user=ops)).post("/admin/account/password", data={
        "current_password": PASSWORD, "new_password": "NewHorse7Battery!"})
    assert response.status_code == 302
    assert _active_keys(session, ops) == 0 and _active_keys(session, customer) == 1
    revoked = session.scalar(select(AuditEntry).where(AuditEntry.action == "api_keys.revoked",
                                                      AuditEntry.actor_id == ops.id))
    assert revoked.reason == "Owner changed their password"
