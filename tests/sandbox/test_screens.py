"""Admin screens: test accounts, API keys, OAuth clients (permissions, once-panels, form errors)."""
from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from app.auth.service import check_password
from app.core import clock
from app.core.audit import AuditEntry
from app.sandbox import service
from app.api.models import ApiKey, OAuthClient, secret_hash
from app.users.models import User

USERS = "/admin/test-data/users"


def _audited(session, action) -> AuditEntry | None:
    return session.scalar(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id.desc()))


def test_screens_are_in_the_navigation_and_permission_checked(login_as):
    analyst = login_as("analyst")  # users.view only
    page = analyst.get(USERS)
    assert page.status_code == 200
    for label in (b"Test accounts", b"API keys", b"OAuth clients"):
        assert label in page.data
    assert b"New test account" not in page.data
    assert analyst.get(f"{USERS}/new").status_code == 403
    refused = analyst.post("/admin/api-keys/new", data={"name": "x"})
    assert refused.status_code == 403 and b"users.edit_profile" in refused.data
    auditor = login_as("auditor")  # no users.view
    assert auditor.get(USERS).status_code == 403
    assert auditor.get("/admin/api-keys").status_code == 403
    assert b"Test accounts" not in auditor.get("/admin").data


def test_create_one_shows_the_password_once(login_as, session):
    ops = login_as("ops")
    response = ops.post(f"{USERS}/new", data={"email": "", "password": "", "tier": "pro", "expires_in_days": "5"})
    assert response.status_code == 201
    password = re.search(rb'id="one-time-password">([^<]+)<', response.data).group(1).decode()
    email = re.search(rb'class="email">([^<]+)<', response.data).group(1).decode()
    user = session.scalar(select(User).where(User.email == email))
    assert user.is_test and user.test_tier == "pro" and check_password(user, password)
    assert user.test_expires_at == user.created_at + timedelta(days=5) or \
        abs((user.test_expires_at - clock.now()) - timedelta(days=5)) < timedelta(minutes=1)
    listing = ops.get(USERS)
    assert email.encode() in listing.data and password.encode() not in listing.data
    assert _audited(session, "testdata.test_user_created").actor_id == ops.user.id


def test_create_form_errors_change_nothing(login_as, session):
    ops = login_as("ops")
    before = session.scalar(select(func.count()).select_from(User))
    for data, message in (({"expires_in_days": "31"}, b"30 days at most"),
                          ({"expires_in_days": "0"}, b"in the future"),
                          ({"expires_in_days": "7", "password": "weak"}, b"at least 12"),
                          ({"expires_in_days": "7", "email": "nope"}, b"not valid")):
        response = ops.post(f"{USERS}/new", data=data)
        assert response.status_code == 422 and message in response.data, data
    assert session.scalar(select(func.count()).select_from(User)) == before


def test_batch_creates_n_accounts_with_one_password(login_as, session):
    ops = login_as("ops")
    response = ops.post(f"{USERS}/batch", data={"count": "3", "prefix": "load", "tier": "", "expires_in_days": "2"})
    assert response.status_code == 201 and response.data.count(b'class="email"') == 3
    assert ops.post(f"{USERS}/batch", data={"count": "500", "prefix": "x", "expires_in_days": "2"}).status_code == 422


def test_extend_inline_and_refusals(login_as, session, frozen_clock):
    ops = login_as("ops")
    user = service.create_test_user(session, ops.user).user
    session.commit()
    row = ops.post(f"{USERS}/{user.id}/extend", data={"expires_in_days": "20"},
                   headers={"HX-Request": "true", "HX-Target": f"test-user-{user.id}"})
    assert row.status_code == 200 and b"Expiry updated." in row.data and row.data.startswith(b"<tr")
    session.expire_all()
    assert session.get(User, user.id).test_expires_at == clock.now() + timedelta(days=20)
    too_far = ops.post(f"{USERS}/{user.id}/extend", data={"expires_in_days": "45"}, headers={"HX-Request": "true"})
    assert b"30 days at most" in too_far.data
    for past in ("0", "-2"):
        refused = ops.post(f"{USERS}/{user.id}/extend", data={"expires_in_days": past}, headers={"HX-Request": "true"})
        assert b"in the future" in refused.data and b"Expiry updated." not in refused.data, past
    session.expire_all()
    assert session.get(User, user.id).test_expires_at == clock.now() + timedelta(days=20)
    plain = ops.post(f"{USERS}/{user.id}/extend", data={"expires_in_days": "3"})
    assert plain.status_code == 302
    customer = session.scalar(select(User).where(User.id == ops.user.id))
    assert ops.post(f"{USERS}/{customer.id}/extend", data={"expires_in_days": "3"}).status_code == 409


def test_delete_and_bulk_delete_refuse_production_accounts(login_as, make_user, session):
    admin = login_as("admin")
    testers = [service.create_test_user(session, admin.user).user for _ in range(3)]
    customer = make_user(email="paying.customer@example.com")
    session.commit()
    assert admin.post(f"{USERS}/{customer.id}/delete").status_code == 409
    mixed = admin.post(f"{USERS}/bulk-delete", data={"ids": [testers[0].id, customer.id]}, follow_redirects=True)
    assert b"Nothing was deleted" in mixed.data
    assert session.scalar(select(func.count()).select_from(User).where(
        User.id.in_([t.id for t in testers] + [customer.id]))) == 4
    admin.post(f"{USERS}/bulk-delete", data={"ids": [t.id for t in testers[:2]], "reason": "QA done"})
    admin.post(f"{USERS}/{testers[2].id}/delete")
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(User).where(
        User.id.in_([t.id for t in testers]))) == 0
    assert session.get(User, customer.id) is not None
    assert login_as("ops").post(f"{USERS}/{customer.id}/delete").status_code == 403  # ops lacks users.delete


def test_api_key_screen_shows_the_key_once(login_as, make_user, session):
    ops = login_as("ops")
    owner = make_user(test=True)
    session.commit()
    response = ops.post("/admin/api-keys/new", data={"name": "QA laptop", "owner": owner.email,
                                                     "key_type": "sandbox", "scopes": ["*"]})
    assert response.status_code == 201
    plain = re.search(rb'id="new-api-key">([^<]+)<', response.data).group(1).decode()
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == secret_hash(plain)))
    assert key.user_id == owner.id and key.is_test and key.created_by_id == ops.user.id
    listing = ops.get(f"/admin/api-keys?owner={owner.email}")
    assert key.masked.encode() in listing.data and plain.encode() not in listing.data
    assert key.masked.encode() in ops.get(f"/admin/users/{owner.id}/api-keys").data


def test_production_key_for_a_test_account_is_a_form_error(login_as, make_user, session, sudo):
    ops = sudo(login_as("ops"))
    owner = make_user(test=True)
    session.commit()
    response = ops.post("/admin/api-keys/new", data={"name": "x", "owner": owner.email, "key_type": "production",
                                                     "scopes": ["*"]})
    assert response.status_code == 422 and b"only have sandbox or development keys" in response.data
    assert session.scalar(select(func.count()).select_from(ApiKey)) == 0


def test_production_key_needs_sudo_and_keeps_the_form(login_as, make_user, session, sudo):
    admin = login_as("admin")
    customer = make_user()
    session.commit()
    data = {"name": "Billing backend", "owner": customer.email, "key_type": "production", "scopes": ["*"]}
    response = admin.post("/admin/api-keys/new", data=data)
    assert response.status_code == 302 and "/auth/sudo" in response.location
    assert "key_type%3Dproduction" in response.location or "key_type=production" in response.location
    assert session.scalar(select(func.count()).select_from(ApiKey)) == 0
    created = sudo(admin).post("/admin/api-keys/new", data=data)
    assert created.status_code == 201 and b"rph_live_" in created.data


def test_revoke_needs_a_reason(login_as, make_api_key, session):
    ops = login_as("ops")
    creds = make_api_key(key_type="sandbox")
    session.commit()
    ops.post(f"/admin/api-keys/{creds.key.id}/revoke", data={"reason": ""})
    session.expire_all()
    assert session.get(ApiKey, creds.key.id).revoked_at is None
    ops.post(f"/admin/api-keys/{creds.key.id}/revoke", data={"reason": "Laptop lost"})
    session.expire_all()
    assert session.get(ApiKey, creds.key.id).revoked_reason == "Laptop lost"
    assert _audited(session, "api_keys.revoked").actor_id == ops.user.id


def test_oauth_client_registry(login_as, session):
    ops = login_as("ops")
    created = ops.post("/admin/oauth-clients/new", data={"client_id": "qa-tool", "name": "QA tool",
                                                         "redirect_uris": "http://localhost:9000/cb",
                                                         "is_test": "y"})
    assert created.status_code == 201
    secret = re.search(rb'id="client-secret">([^<]+)<', created.data).group(1).decode()
    client = session.scalar(select(OAuthClient).where(OAuthClient.client_id == "qa-tool"))
    assert client.secret_hash == secret_hash(secret) and client.is_test
    rotated = ops.post(f"/admin/oauth-clients/{client.id}/rotate")
    new_secret = re.search(rb'id="client-secret">([^<]+)<', rotated.data).group(1).decode()
    session.expire_all()
    assert new_secret != secret and session.get(OAuthClient, client.id).secret_hash == secret_hash(new_secret)
    bad = ops.post("/admin/oauth-clients/new", data={"client_id": "Bad Id!", "name": "x", "is_test": "y"})
    assert bad.status_code == 422 and b"lower-case" in bad.data
    live = ops.post("/admin/oauth-clients/new", data={"client_id": "live-app", "name": "Live"})
    assert live.status_code == 302 and "/auth/sudo" in live.location
    ops.post(f"/admin/oauth-clients/{client.id}/revoke", data={"reason": "Tool retired"})
    session.expire_all()
    assert session.get(OAuthClient, client.id).revoked_at is not None
    assert b"qa-tool" in ops.get("/admin/oauth-clients").data


def test_bulk_revoke_ticked_keys_with_a_reason_each_audited(login_as, make_api_key, session):
    ops = login_as("ops")
    first, second, spared = (make_api_key(key_type="sandbox") for _ in range(3))
    session.commit()
    page = ops.get("/admin/api-keys").get_data(as_text=True)
    assert 'id="bulk-keys"' in page and f'form="bulk-keys" name="ids" value="{first.key.id}"' in page
    ids = [str(first.key.id), str(second.key.id)]
    for data in ({"ids": ids, "reason": "  "}, {"reason": "Leaked in a public repo"}, {"ids": ["x"], "reason": "r"}):
        refused = ops.post("/admin/api-keys/bulk-revoke", data=data)
        assert refused.status_code == 422 and (b"Tick the keys" in refused.data or b"Give a reason" in refused.data)
    session.expire_all()
    assert all(session.get(ApiKey, c.key.id).revoked_at is None for c in (first, second, spared))
    assert login_as("auditor").post("/admin/api-keys/bulk-revoke",
                                    data={"ids": ids, "reason": "Leaked"}).status_code == 403
    done = ops.post("/admin/api-keys/bulk-revoke", data={"ids": ids, "reason": "Leaked in a public repo"})
    assert done.status_code == 302
    session.expire_all()
    assert [session.get(ApiKey, c.key.id).revoked_reason for c in (first, second, spared)] == [
        "Leaked in a public repo", "Leaked in a public repo", None]
    entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "api_keys.revoked")).all()
    assert sorted(e.target_id for e in entries) == sorted(ids) and {e.actor_id for e in entries} == {ops.user.id}
    again = ops.post("/admin/api-keys/bulk-revoke", data={"ids": ids, "reason": "twice"})
    assert again.status_code == 302  # revoked keys are skipped, not revoked twice
    assert len(session.scalars(select(AuditEntry).where(AuditEntry.action == "api_keys.revoked")).all()) == 2


def test_bulk_extend_sets_every_selected_expiry_or_none(login_as, make_user, session):
    ops = login_as("ops")  # users.edit_profile, not users.delete
    testers = [service.create_test_user(session, ops.user).user for _ in range(3)]
    customer = make_user(email="paying.customer@example.com")
    session.commit()
    before = {t.id: t.test_expires_at for t in testers}
    page = ops.get(USERS).get_data(as_text=True)
    assert "Extend selected" in page and "Delete selected" not in page

    mixed = ops.post(f"{USERS}/bulk-extend", data={"ids": [testers[0].id, customer.id], "expires_in_days": "20"},
                     follow_redirects=True)
    assert mixed.status_code == 200 and b"Nothing was extended" in mixed.data
    bad = ops.post(f"{USERS}/bulk-extend", data={"ids": [testers[0].id], "expires_in_days": "90"},
                   follow_redirects=True)
    assert b"Nothing was extended" in bad.data
    nothing = ops.post(f"{USERS}/bulk-extend", data={"expires_in_days": "5"}, follow_redirects=True)
    assert b"Select at least one test account" in nothing.data
    session.expire_all()
    assert {t.id: session.get(User, t.id).test_expires_at for t in testers} == before
    assert session.get(User, customer.id).test_expires_at is None

    done = ops.post(f"{USERS}/bulk-extend", data={"ids": [t.id for t in testers[:2]], "expires_in_days": "20"},
                    follow_redirects=True)
    assert b"Extended 2 test accounts to 20 days from now." in done.data
    session.expire_all()
    for tester in testers[:2]:
        left = session.get(User, tester.id).test_expires_at - clock.now()
        assert timedelta(days=19, hours=23) < left <= timedelta(days=20)
    assert session.get(User, testers[2].id).test_expires_at == before[testers[2].id]
    rows = session.scalars(select(AuditEntry).where(AuditEntry.action == "testdata.test_user_expiry_changed",
                                                    AuditEntry.actor_id == ops.user.id)).all()
    assert sorted(r.target_id for r in rows) == sorted(str(t.id) for t in testers[:2])  # one row each
    assert login_as("analyst").post(f"{USERS}/bulk-extend", data={"ids": [testers[2].id],
                                                                   "expires_in_days": "5"}).status_code == 403
