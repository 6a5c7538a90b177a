"""Issue 15 item 10: behind nginx every client had the proxy's address (one shared rate limit,
audit rows naming the proxy); the session cookie went over plain HTTP unless configured; and 20
failed sign-ins of others from one address locked a correct password out of it."""
from __future__ import annotations

from sqlalchemy import select

from app.core.audit import AuditEntry

PASSWORD = "CorrectHorse9Battery"


def _login(client, email, password=PASSWORD, ip="203.0.113.7"):
    return client.post("/auth/login", data={"email": email, "password": password},
                       environ_base={"REMOTE_ADDR": ip})


def test_trusted_proxies_give_audit_rows_and_the_sign_in_limit_the_client_ip(app, client, make_user, session, monkeypatch):
    from app.core.security import trust_proxies

    monkeypatch.setitem(app.config, "LOGIN_LIMIT_PER_IP_ACCOUNT", "1 per 15 minutes")  # each sign-in costs a hash
    user = make_user(roles=("ops",))
    headers = {"X-Forwarded-For": "198.51.100.23", "X-Forwarded-Proto": "https"}
    # Untrusted (the default): the peer is the client, X-Forwarded-For is anyone's to forge.
    client.post("/auth/login", data={"email": user.email, "password": "Wrong-1"}, headers=headers,
                environ_base={"REMOTE_ADDR": "10.0.0.5"})
    monkeypatch.setitem(app.config, "TRUSTED_PROXIES", 1)
    monkeypatch.setattr(app, "wsgi_app", app.wsgi_app)  # restored after the test
    trust_proxies(app)
    response = client.post("/auth/login", data={"email": user.email, "password": "Wrong-2"}, headers=headers,
                           environ_base={"REMOTE_ADDR": "10.0.0.5"})
    assert response.status_code == 401
    ips = session.scalars(select(AuditEntry.ip_address).where(AuditEntry.action == "auth.login_failed")
                          .order_by(AuditEntry.id)).all()
    assert ips == ["10.0.0.5", "198.51.100.23"]
    assert "Strict-Transport-Security" in response.headers  # the proxy's https is the request's
    # The sign-in limit keys on the client too: one client's failures do not stop another behind the proxy.
    assert client.post("/auth/login", data={"email": user.email, "password": PASSWORD}, headers=headers,
                       environ_base={"REMOTE_ADDR": "10.0.0.5"}).status_code == 429
    assert client.post("/auth/login", data={"email": user.email, "password": PASSWORD},
                       headers={**headers, "X-Forwarded-For": "198.51.100.99"},
                       environ_base={"REMOTE_ADDR": "10.0.0.5"}).status_code == 302


def test_config_reads_trusted_proxies_and_defaults_to_secure_cookies(monkeypatch):
    from app.config import load_config

    for name in ("TRUSTED_PROXIES", "SESSION_COOKIE_SECURE"):
        monkeypatch.delenv(name, raising=False)
    config = load_config()
    assert config["SESSION_COOKIE_SECURE"] is True and config["REMEMBER_COOKIE_SECURE"] is True
    assert config["TRUSTED_PROXIES"] == 0
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "0")  # plain HTTP on this machine, said explicitly
    monkeypatch.setenv("TRUSTED_PROXIES", "2")
    config = load_config()
    assert config["SESSION_COOKIE_SECURE"] is False and config["TRUSTED_PROXIES"] == 2


def test_the_staff_cookie_is_secure_by_default(app, client, make_user, monkeypatch):
    monkeypatch.setitem(app.config, "SESSION_COOKIE_SECURE", True)
    response = _login(client, make_user(roles=("ops",)).email)
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie


def test_failures_of_others_from_one_address_do_not_lock_out_a_correct_password(app, client, make_user, monkeypatch):
    # The per-address limit was 20 failures; 1 here (a sign-in costs an argon2 hash), for the old key too.
    monkeypatch.setitem(app.config, "LOGIN_LIMIT_PER_IP", "1 per 15 minutes")
    user = make_user(roles=("ops",))
    for i in range(2):  # an office NAT: many people mistyping, or one attacker spraying
        assert _login(client, f"someone{i}@example.com", "Wrong-password-1").status_code == 401
    assert _login(client, user.email).status_code == 302


def test_one_address_guessing_one_account_is_stopped_and_the_owner_elsewhere_is_not(app, client, make_user,
                                                                                    monkeypatch):
    assert app.config["LOGIN_LIMIT_PER_IP_ACCOUNT"] == "5 per 15 minutes"
    monkeypatch.setitem(app.config, "LOGIN_LIMIT_PER_IP_ACCOUNT", "2 per 15 minutes")
    user = make_user(roles=("ops",))
    for _ in range(2):
        assert _login(client, user.email, "Wrong-password-1", ip="198.51.100.66").status_code == 401
    assert _login(client, user.email, ip="198.51.100.66").status_code == 429  # even the right one, from there
    assert _login(client, user.email, ip="203.0.113.7").status_code == 302  # the owner, from elsewhere


def test_the_account_limit_still_caps_a_distributed_guess(app, client, make_user, monkeypatch):
    assert app.config["LOGIN_LIMIT_PER_ACCOUNT"] == "20 per 15 minutes"
    monkeypatch.setitem(app.config, "LOGIN_LIMIT_PER_ACCOUNT", "3 per 15 minutes")  # 3 argon2 hashes, not 20
    user = make_user(roles=("ops",))
    answers = [_login(client, user.email, "Wrong-password-1", ip=f"192.0.2.{i}").status_code for i in range(5)]
    assert answers == [401] * 3 + [429] * 2
