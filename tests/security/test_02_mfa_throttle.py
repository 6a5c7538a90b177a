"""Issue 15 item 2: the TOTP step is throttled, locks after repeated failures, and waits briefly.

After the password, /auth/verify and /auth/sudo accepted unlimited codes (80 guesses/s): a
known password beat MFA in about an hour. Now wrong codes are limited per account and per IP
(429), MFA_LOCKOUT_FAILURES in a row lock the factor until an admin unlocks it (audited, one
row per burst, not per guess), and a password-only session ends after MFA_PENDING_TIMEOUT.
"""
from __future__ import annotations

from datetime import timedelta

import pyotp
from sqlalchemy import select

from app.core import clock
from app.core.audit import AuditEntry


def _right(user) -> str:
    return pyotp.TOTP(user.totp_secret).at(clock.now())


def _wrong(user) -> str:
    return "000000" if _right(user) != "000000" else "111111"


def _password_done(app, user, environ=None):
    """A client past the password step (MFA pending), without paying argon2 for each."""
    from app.auth.guards import SESSION_SEEN, SESSION_STARTED

    client = app.test_client()
    if environ:
        client.environ_base.update(environ)
    with client.session_transaction() as sess:
        sess["_user_id"], sess["_fresh"] = user.get_id(), True
        sess[SESSION_STARTED] = sess[SESSION_SEEN] = clock.now().timestamp()
    return client


def _actions(session, user) -> list[str]:
    return list(session.scalars(select(AuditEntry.action).where(AuditEntry.target_id == str(user.id),
                                                                AuditEntry.action.like("auth.%"))
                                .order_by(AuditEntry.id)))


def test_wrong_codes_are_throttled_per_account(app, make_user, frozen_clock):
    user = make_user(roles=("ops",))
    client = _password_done(app, user)
    statuses = [client.post("/auth/verify", data={"code": _wrong(user)}).status_code for _ in range(5)]
    assert statuses == [401] * 5
    # The limit is the account's, not the session's: a new session does not get fresh guesses.
    again = _password_done(app, user, {"REMOTE_ADDR": "198.51.100.7"})
    assert again.post("/auth/verify", data={"code": _right(user)}).status_code == 429
    assert again.get("/admin").status_code == 302


def test_wrong_codes_are_throttled_per_ip_across_accounts(app, make_user, frozen_clock, monkeypatch):
    monkeypatch.setitem(app.config, "MFA_LIMIT_PER_IP", "3 per 15 minutes")
    people = [make_user(roles=("ops",)) for _ in range(4)]
    for person in people[:3]:
        assert _password_done(app, person).post("/auth/verify", data={"code": _wrong(person)}).status_code == 401
    last = people[3]
    assert _password_done(app, last).post("/auth/verify", data={"code": _right(last)}).status_code == 429


def test_sudo_is_throttled_too(login_as, frozen_clock):
    client = login_as("ops")
    user = client.user
    assert [client.post("/auth/sudo", data={"code": _wrong(user)}).status_code for _ in range(5)] == [401] * 5
    assert client.post("/auth/sudo", data={"code": _right(user)}).status_code == 429


def test_lockout_audited_once_per_burst_and_admin_unlocks(app, make_user, login_as, sudo, session, frozen_clock,
                                                          monkeypatch):
    monkeypatch.setitem(app.config, "MFA_LIMIT_PER_ACCOUNT", "100 per minute")
    monkeypatch.setitem(app.config, "MFA_LOCKOUT_FAILURES", 4)
    user = make_user(roles=("ops",))
    client = _password_done(app, user)
    statuses = [client.post("/auth/verify", data={"code": _wrong(user)}).status_code for _ in range(6)]
    assert statuses == [401, 401, 401, 403, 403, 403]
    locked = client.post("/auth/verify", data={"code": _right(user)})  # even the right code
    assert locked.status_code == 403 and b"locked" in locked.data
    session.refresh(user)
    assert user.mfa_locked_at is not None and user.mfa_failures == 4
    assert _actions(session, user) == ["auth.login_failed", "auth.mfa_locked"]

    admin = sudo(login_as("admin"))
    page = admin.get(f"/admin/users/{user.id}").get_data(as_text=True)
    assert "Unlock two-factor sign-in" in page
    assert admin.post(f"/admin/users/{user.id}/mfa/unlock", data={"reason": ""}).status_code == 422
    response = admin.post(f"/admin/users/{user.id}/mfa/unlock", data={"reason": "Verified by phone"})
    assert response.status_code == 302
    unlocked = session.scalar(select(AuditEntry).where(AuditEntry.action == "auth.mfa_unlocked",
                                                       AuditEntry.target_id == str(user.id)))
    assert unlocked.actor_id == admin.user.id and unlocked.reason == "Verified by phone"
    assert client.post("/auth/verify", data={"code": _right(user)}).status_code == 302
    assert client.get("/admin").status_code == 200


def test_unlock_needs_users_unsuspend(app, make_user, login_as, sudo, frozen_clock):
    user = make_user(roles=("ops",), mfa_locked_at=clock.now(), mfa_failures=10)
    analyst = sudo(login_as("analyst"))
    assert analyst.post(f"/admin/users/{user.id}/mfa/unlock", data={"reason": "Please"}).status_code == 403


def test_a_password_only_session_expires_after_a_few_minutes(app, make_user, frozen_clock):
    user = make_user(roles=("ops",))
    client = _password_done(app, user)
    frozen_clock.advance(app.config["MFA_PENDING_TIMEOUT"] + timedelta(seconds=1))
    response = client.post("/auth/verify", data={"code": _right(user)})
    assert response.status_code == 302 and "expired=mfa" in response.location
    assert client.get("/admin").status_code == 302
    assert client.get("/auth/verify").status_code == 302  # the password step is needed again


def test_within_the_window_the_code_still_works(app, make_user, frozen_clock):
    user = make_user(roles=("ops",))
    client = _password_done(app, user)
    frozen_clock.advance(app.config["MFA_PENDING_TIMEOUT"] - timedelta(seconds=30))
    assert client.post("/auth/verify", data={"code": _right(user)}).status_code == 302
