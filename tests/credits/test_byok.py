"""BYOK vendor keys: Fernet at rest, last four shown, never logged, rotatable."""
import logging

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from app.core.audit import AuditEntry
from app.core.errors import DomainError
from app.credits import byok
from app.credits.models import Provider, VendorKey

SECRET = "sk-proj-ThisIsMyVeryOwnOpenAIKey1234"


@pytest.fixture
def keys(app):
    first = Fernet.generate_key().decode()
    app.config["BYOK_ENCRYPTION_KEYS"] = first
    yield first
    app.config.pop("BYOK_ENCRYPTION_KEYS", None)


def _openai(session):
    return session.scalar(select(Provider).where(Provider.vendor_name == "openai"))


def test_a_byok_key_is_encrypted_shown_by_its_last_four_and_never_logged(priced, funded, make_user, keys, caplog):
    caplog.set_level(logging.DEBUG)
    user, ops = funded(tier="perpetual"), make_user(roles=("ops",))
    key = byok.store(priced, ops, user.id, _openai(priced).id, SECRET)
    assert key.last_four == "1234" and SECRET not in key.ciphertext
    assert byok.reveal(key) == SECRET
    stored = priced.scalar(select(VendorKey.ciphertext).where(VendorKey.id == key.id))
    assert Fernet(keys.encode()).decrypt(stored.encode()).decode() == SECRET
    entries = priced.scalars(select(AuditEntry).where(AuditEntry.action == "credits.vendor_key_saved")).all()
    assert entries and all(SECRET not in repr((e.before, e.after, e.reason)) for e in entries)
    assert SECRET not in caplog.text
    assert byok.keys_for(priced, user.id)[0].audit_label == "openai key …1234"


def test_saving_again_replaces_the_key(priced, funded, keys):
    user = funded(tier="perpetual")
    byok.store(priced, None, user.id, _openai(priced).id, SECRET)
    byok.store(priced, None, user.id, _openai(priced).id, "sk-another-key-9999")
    (key,) = byok.keys_for(priced, user.id)
    assert key.last_four == "9999" and byok.reveal(key) == "sk-another-key-9999"
    byok.remove(priced, None, user.id, key.id)
    assert byok.keys_for(priced, user.id) == []


def test_only_perpetual_users_keep_keys_and_bad_keys_are_refused(priced, funded, keys):
    pro, byok_user = funded(tier="pro"), funded(tier="perpetual")
    with pytest.raises(DomainError) as err:
        byok.store(priced, None, pro.id, _openai(priced).id, SECRET)
    assert err.value.code == "not_byok"
    for bad in ("short", "has a space in it", ""):
        with pytest.raises(DomainError) as err:
            byok.store(priced, None, byok_user.id, _openai(priced).id, bad)
        assert err.value.field == "api_key"


def test_rotation_re_encrypts_with_the_new_first_key(app, priced, funded, keys):
    user = funded(tier="perpetual")
    key = byok.store(priced, None, user.id, _openai(priced).id, SECRET)
    old_token = key.ciphertext
    new = Fernet.generate_key().decode()
    app.config["BYOK_ENCRYPTION_KEYS"] = f"{new},{keys}"
    assert byok.reveal(key) == SECRET  # the old key still decrypts
    assert byok.rotate_all(priced) == 1
    assert key.ciphertext != old_token and key.rotated_at is not None
    app.config["BYOK_ENCRYPTION_KEYS"] = new  # the old key can go now
    assert byok.reveal(key) == SECRET


def test_the_rotation_command(app, priced, funded, keys):
    user = funded(tier="perpetual")
    key = byok.store(priced, None, user.id, _openai(priced).id, SECRET)
    new = Fernet.generate_key().decode()
    app.config["BYOK_ENCRYPTION_KEYS"] = f"{new},{keys}"
    result = app.test_cli_runner().invoke(args=["credits", "rotate-byok-keys"])
    assert result.exit_code == 0 and "Re-encrypted 1 vendor key" in result.output
    app.config["BYOK_ENCRYPTION_KEYS"] = new
    priced.refresh(key)
    assert byok.reveal(key) == SECRET
