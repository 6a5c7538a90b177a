"""Service rules: key creation limits, batch creation, bulk delete all-or-nothing, production guard."""
from __future__ import annotations

from datetime import timedelta

import pytest
from flask import g
from sqlalchemy import func, select

from app.auth.service import check_password
from app.core import clock, testmode
from app.core.audit import AuditEntry
from app.core.errors import DomainError
from app.api import keys
from app.sandbox import service
from app.users.models import User


def _refusal(func, *args, **kwargs) -> DomainError:
    with pytest.raises(DomainError) as caught:
        func(*args, **kwargs)
    return caught.value


def test_test_accounts_get_no_production_key(session, make_user):
    admin, tester = make_user(roles=("admin",)), make_user(test=True)
    error = _refusal(keys.create_api_key, session, admin, owner=tester, name="x", key_type="production", sudo=True)
    assert (error.code, error.field) == ("production_key_for_test_account", "key_type")
    for key_type in ("sandbox", "development"):
        key, secret = keys.create_api_key(session, admin, owner=tester, name=key_type, key_type=key_type)
        assert key.is_test and secret.startswith(key.prefix)


def test_production_keys_need_sudo(session, make_user):
    admin, customer = make_user(roles=("admin",)), make_user()
    error = _refusal(keys.create_api_key, session, admin, owner=customer, name="live", key_type="production")
    assert (error.code, error.status) == ("sudo_required", 403)
    key, _ = keys.create_api_key(session, admin, owner=customer, name="live", key_type="production", sudo=True)
    assert key.is_test is False
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "api_keys.created"))
    assert entry.actor_id == admin.id and entry.after["masked"] == key.masked


def test_no_key_for_a_colleague_above_or_below(session, make_user):
    """A key acts as its owner: staff make keys for customers and themselves only (issue 15 item 5)."""
    support, admin = make_user(roles=("support",)), make_user(roles=("admin",))
    for actor, owner in ((support, admin), (admin, support)):
        error = _refusal(keys.create_api_key, session, actor, owner=owner, name="x", key_type="sandbox")
        assert error.code == "staff_key_for_colleague"
    assert keys.create_api_key(session, admin, owner=admin, name="x", key_type="sandbox")[0].user_id == admin.id


@pytest.mark.parametrize("kwargs, code", [
    ({"name": " "}, "invalid_name"),
    ({"key_type": "root"}, "invalid_key_type"),
    ({"scopes": ["everything"]}, "invalid_scope"),
    ({"expires_at": "past"}, "expiry_in_past"),
])
def test_key_form_errors(session, make_user, kwargs, code):
    if kwargs.get("expires_at") == "past":
        kwargs["expires_at"] = clock.now() - timedelta(minutes=1)
    args = {"owner": make_user(), "name": "ok", "key_type": "sandbox", **kwargs}
    assert _refusal(keys.create_api_key, session, make_user(roles=("admin",)), **args).code == code


def test_revoke_needs_a_reason_and_is_audited(session, make_user):
    admin = make_user(roles=("admin",))
    key, _ = keys.create_api_key(session, admin, owner=make_user(), name="k", key_type="sandbox")
    assert _refusal(keys.revoke_api_key, session, admin, key, "").field == "reason"
    keys.revoke_api_key(session, admin, key, "Leaked in a screenshot")
    assert key.revoked_at is not None and key.status_at(clock.now()) == "revoked"
    assert _refusal(keys.revoke_api_key, session, admin, key, "again").code == "already_revoked"
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "api_keys.revoked"))
    assert entry.reason == "Leaked in a screenshot"


def test_batch_shares_one_password_shown_once(session, make_user):
    admin = make_user(roles=("admin",))
    users, password = service.create_test_users_batch(session, admin, count=5, tier="free", prefix="load")
    assert len(users) == 5 and all(u.email.startswith("load-") and u.is_test for u in users)
    assert all(check_password(u, password) for u in users)
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "testdata.test_users_batch_created"))
    assert entry.after["count"] == 5 and password not in str(entry.after)
    for count in (0, 101):
        assert _refusal(service.create_test_users_batch, session, admin, count=count).field == "count"


def test_expiry_rules(frozen_clock):
    now = clock.now()
    assert service.resolve_expiry() == now + timedelta(days=7)
    assert service.resolve_expiry(days=30) == now + timedelta(days=30)
    assert _refusal(service.resolve_expiry, days=31).code == "expiry_too_far"
    assert _refusal(service.resolve_expiry, days=-1).code == "expiry_in_past"
    assert _refusal(service.resolve_expiry, at=now).code == "expiry_in_past"
    assert _refusal(service.resolve_expiry, at=now + timedelta(days=30, seconds=1)).code == "expiry_too_far"


def test_bulk_delete_is_all_or_nothing(session, make_user):
    admin = make_user(roles=("admin",))
    testers = [service.create_test_user(session, admin).user for _ in range(3)]
    customer = make_user()
    ids = [u.id for u in testers] + [customer.id]
    assert _refusal(service.delete_test_users, session, admin, ids).code == "not_a_test_account"
    assert session.scalar(select(func.count()).select_from(User).where(User.id.in_(ids))) == 4
    assert service.delete_test_users(session, admin, ids[:3], reason="QA done") == 3
    assert session.scalar(select(func.count()).select_from(User).where(User.id.in_(ids))) == 1
    deleted = session.scalars(select(AuditEntry).where(AuditEntry.action == "testdata.test_user_deleted")).all()
    assert sorted(int(e.target_id) for e in deleted) == sorted(ids[:3]) and deleted[0].reason == "QA done"


def test_production_guard_refuses_test_accounts_and_test_mode(app, make_user):
    @service.require_production_user(action="A live refund")
    def live_refund(*, user):
        return "refunded"

    assert live_refund(user=make_user()) == "refunded"
    error = _refusal(live_refund, user=make_user(test=True))
    assert (error.code, error.status) == ("test_account_not_allowed", 403) and "A live refund" in error.message
    customer = make_user()
    with testmode.test_mode():  # a production account acting through a sandbox key
        assert _refusal(live_refund, user=customer).code == "test_mode_not_allowed"

    @service.require_production_user
    def charge():
        return "charged"

    with app.test_request_context("/api/v1/charge"):
        g.api_user = make_user(test=True)
        assert _refusal(charge).code == "test_account_not_allowed"
        g.api_user = make_user()
        assert charge() == "charged"


def test_email_is_suppressed_for_test_accounts(make_user):
    assert service.email_suppressed(make_user(test=True)) is True
    assert service.email_suppressed(make_user()) is False
