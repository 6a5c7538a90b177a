"""Staff sign-in: password, TOTP (replay refused), lockout, CSRF, timeouts, sudo."""
from __future__ import annotations

from datetime import timedelta

import pyotp
from sqlalchemy import select

from app.core import clock
from app.core.audit import AuditEntry

PASSWORD = "CorrectHorse9Battery"


def _code(user, offset_steps: int = 0) -> str:
    return pyotp.TOTP(user.totp_secret).at(clock.now().timestamp() + offset_steps * 30)


def _password_step(client, email, password=PASSWORD):
    return client.post("/auth/login", data={"email": email, "password": password})


def test_full_sign_in_with_totp(client, make_user, session):
    user = make_user(roles=("admin",))
    response = _password_step(client, user.email)
    assert response.status_code == 302 and response.location.endswith("/auth/verify")
    assert client.get("/admin").status_code == 302  # MFA not yet passed
    response = client.post("/auth/verify", data={"code": _code(user)})
    assert response.status_code == 302
    page = client.get("/admin")
    assert page.status_code == 200 and b"Your roles" in page.data
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.actor_id == user.id)).all()
    assert "auth.login_succeeded" in actions


def test_totp_code_is_refused_the_second_time(app, make_user, frozen_clock):
    user = make_user(roles=("ops",))
    code = _code(user)
    first, second = app.test_client(), app.test_client()
    _password_step(first, user.email)
    assert first.post("/auth/verify", data={"code": code}).status_code == 302
    _password_step(second, user.email)
    replay = second.post("/auth/verify", data={"code": code})
    assert replay.status_code == 401 and b"already used" in replay.data
    frozen_clock.advance(timedelta(seconds=30))
    assert second.post("/auth/verify", data={"code": _code(user)}).status_code == 302


def test_adjacent_step_accepted_but_not_two_away(client, make_user, frozen_clock):
    user = make_user(roles=("ops",))
    _password_step(client, user.email)
    assert client.post("/auth/verify", data={"code": _code(user, -2)}).status_code == 401
    assert client.post("/auth/verify", data={"code": _code(user, -1)}).status_code == 302


def test_wrong_email_and_wrong_password_look_the_same(client, make_user, session):
    user = make_user(roles=("ops",))
    unknown = _password_step(client, "nobody@example.com")
    wrong = _password_step(client, user.email, "WrongPassword1x")
    assert unknown.status_code == wrong.status_code == 401
    assert b"Wrong email or password." in unknown.data and b"Wrong email or password." in wrong.data
    failures = session.scalars(select(AuditEntry).where(AuditEntry.action == "auth.login_failed")).all()
    assert {f.actor_label for f in failures} >= {"nobody@example.com", user.email}


def test_account_is_throttled_after_repeated_failures(client, make_user):
    user = make_user(roles=("ops",))
    for _ in range(5):
        assert _password_step(client, user.email, "WrongPassword1x").status_code == 401
    blocked = _password_step(client, user.email)  # even the right password
    assert blocked.status_code == 429


def test_recovery_code_signs_in_once(client, make_user, session):
    from app.auth.service import new_recovery_codes

    user = make_user(roles=("ops",))
    codes = new_recovery_codes(session, user)
    session.flush()
    _password_step(client, user.email)
    assert client.post("/auth/verify", data={"code": codes[0]}).status_code == 302
    other = client.application.test_client()
    _password_step(other, user.email)
    assert other.post("/auth/verify", data={"code": codes[0]}).status_code == 401


def test_staff_without_totp_is_sent_to_enrolment(client, make_user, session):
    user = make_user(roles=("support",), totp=False)
    response = _password_step(client, user.email)
    assert response.location.endswith("/auth/enrol")
    assert client.get("/admin").location.endswith("/auth/enrol")
    page = client.get("/auth/enrol")
    assert b"data:image/svg+xml" in page.data
    with client.session_transaction() as sess:
        secret = sess["auth_pending_totp"]
    assert client.post("/auth/enrol", data={"code": "000000"}).status_code == 422
    done = client.post("/auth/enrol", data={"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200 and done.data.count(b"<li><code>") == 10
    session.refresh(user)
    assert user.totp_enabled and user.totp_secret == secret
    assert client.get("/admin").status_code == 200


def test_idle_timeout_ends_session_and_htmx_gets_hx_redirect(login_as, frozen_clock):
    client = login_as("ops")
    assert client.get("/admin").status_code == 200
    frozen_clock.advance(timedelta(minutes=31))
    response = client.get("/admin", headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert "/auth/login" in response.headers["HX-Redirect"]


def test_absolute_timeout(login_as, frozen_clock):
    client = login_as("ops")
    statuses = []
    for _ in range(25):  # active every 29 minutes, still out after 12 hours
        frozen_clock.advance(timedelta(minutes=29))
        statuses.append(client.get("/admin"))
    assert all(r.status_code == 200 for r in statuses[:24])
    assert "expired=absolute" in statuses[24].location


def test_security_headers(client):
    response = client.get("/auth/login")
    csp = response.headers["Content-Security-Policy"]
    assert "object-src 'none'" in csp and "base-uri 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "'nonce-" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_session_cookie_flags(client, make_user):
    user = make_user(roles=("ops",))
    response = _password_step(client, user.email)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_sign_out(login_as):
    client = login_as("ops")
    client.post("/auth/logout")
    assert client.get("/admin").status_code == 302


def test_customer_cannot_open_the_console(login_as, make_user):
    client = login_as(user=make_user(staff=False, totp=True))
    assert client.get("/admin").status_code == 403
