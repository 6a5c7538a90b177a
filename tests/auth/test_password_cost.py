"""Cheap password hashes are for the suite only: PASSWORD_HASH_COST="test" is ignored unless TESTING."""
from __future__ import annotations

from types import SimpleNamespace

from app.auth.service import check_password, hash_password

STANDARD = "$argon2id$v=19$m=65536,t=3,p=4$"  # argon2-cffi's defaults (RFC 9106 low-memory)


def test_the_suite_hashes_cheaply_and_still_checks_the_password(app, session):
    digest = hash_password("CorrectHorse9Battery")
    assert digest.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert check_password(SimpleNamespace(password_hash=digest), "CorrectHorse9Battery")
    assert not check_password(SimpleNamespace(password_hash=digest), "CorrectHorse9Batterx")
    assert not check_password(None, "CorrectHorse9Battery")  # unknown email: the dummy hash


def test_a_production_app_keeps_the_standard_cost_whatever_the_setting(app, session, monkeypatch):
    monkeypatch.setitem(app.config, "TESTING", False)
    assert app.config["PASSWORD_HASH_COST"] == "test"
    assert hash_password("CorrectHorse9Battery").startswith(STANDARD)

