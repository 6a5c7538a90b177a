"""Issue 15 item 4: sign-out ends the session on the server, not only in the browser.

A cookie saved before sign-out still opened /admin/users for up to 12 hours. The cookie
carries the user's session version; sign-out, "sign out everywhere" and a password change
bump it, and the user loader refuses a stale one at every request.
"""
from __future__ import annotations

import pyotp
from sqlalchemy import select

from app.core.audit import AuditEntry

PASSWORD = "CorrectHorse9Battery"


def _signed_in(app, user):
    """A client through the real sign-in (password, then a TOTP code)."""
    client = app.test_client()
    assert client.post("/auth/login", data={"email": user.email, "password": PASSWORD}).status_code == 302
    code = pyotp.TOTP(user.totp_secret).now()
    assert client.post("/auth/verify", data={"code": code}).status_code == 302
    assert client.get("/admin/users").status_code == 200
    return client


def _replay(app, cookie: str):
    """A fresh client presenting a saved session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", cookie, domain="admin.test")
    return thief.get("/admin/users")


def test_a_saved_cookie_is_dead_after_sign_out(app, make_user, session):
    user = make_user(roles=("ops",))
    client = _signed_in(app, user)
    saved = client.get_cookie("session", domain="admin.test").value
    assert _replay(app, saved).status_code == 200  # the replay works while signed in
    client.post("/auth/logout")
    response = _replay(app, saved)
    assert response.status_code == 302 and "/auth/login" in response.location
    assert session.scalar(select(AuditEntry).where(AuditEntry.action == "auth.logout",
                                                   AuditEntry.actor_id == user.id)) is not None


def test_sign_out_everywhere_ends_every_device(app, make_user, session):
    user = make_user(roles=("ops",))
    laptop, phone = _signed_in(app, user), app.test_client()
    phone.set_cookie("session", laptop.get_cookie("session", domain="admin.test").value, domain="admin.test")
    account = laptop.get("/admin/account").get_data(as_text=True)
    assert "Sign out everywhere" in account
    response = laptop.post("/admin/account/sign-out-everywhere")
    assert response.status_code == 302 and "/auth/login" in response.location
    assert phone.get("/admin/users").status_code == 302
    assert laptop.get("/admin/users").status_code == 302
    assert session.scalar(select(AuditEntry).where(AuditEntry.action == "auth.logout_everywhere",
                                                   AuditEntry.actor_id == user.id)) is not None


def test_password_change_ends_other_sessions_but_keeps_this_one(app, make_user, sudo):
    user = make_user(roles=("ops",))
    this, other = _signed_in(app, user), app.test_client()
    other.set_cookie("session", this.get_cookie("session", domain="admin.test").value, domain="admin.test")
    sudo(this)
    response = this.post("/admin/account/password", data={"current_password": PASSWORD,
                                                          "new_password": "NewHorse7Battery!"})
    assert response.status_code == 302
    assert this.get("/admin/users").status_code == 200
    assert other.get("/admin/users").status_code == 302
