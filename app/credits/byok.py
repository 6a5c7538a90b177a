"""BYOK: a perpetual-license user's own vendor API keys, Fernet-encrypted at rest.

Keys come from BYOK_ENCRYPTION_KEYS (comma-separated Fernet keys, the first encrypts, all
decrypt: MultiFernet, so keys rotate without downtime), else from a key file kept under
instance/ like the secret key. Plaintext is never logged, audited, rendered or returned: only
the last four characters are kept in the clear.
"""
from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy import select

from app.core import audit, clock, testmode
from app.core.errors import DomainError, NotFound
from app.credits.models import CreditBalance, Provider, VendorKey
from app.users.models import User


def _key_file() -> Path:
    return Path(current_app.instance_path) / "byok_keys"


def _keys() -> list[bytes]:
    raw = current_app.config.get("BYOK_ENCRYPTION_KEYS") or os.environ.get("BYOK_ENCRYPTION_KEYS", "")
    keys = [k.strip().encode() for k in raw.split(",") if k.strip()]
    if keys:
        return keys
    path = _key_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(Fernet.generate_key())
        path.chmod(0o600)
    return [k.strip().encode() for k in path.read_text().split(",") if k.strip()]


def cipher() -> MultiFernet:
    try:
        return MultiFernet([Fernet(k) for k in _keys()])
    except ValueError:
        raise RuntimeError("BYOK_ENCRYPTION_KEYS holds a key that is not a Fernet key") from None


def _check_plaintext(value: str) -> str:
    value = (value or "").strip()
    if not 8 <= len(value) <= 500 or any(c.isspace() for c in value) or not value.isprintable():
        raise DomainError("invalid_api_key", "Paste the whole vendor API key (8 to 500 characters, no spaces).",
                          "api_key")
    return value


def store(session, actor, user_id: int, provider_id: int, api_key: str) -> VendorKey:
    """Save (or replace) the user's key for one provider; only perpetual (BYOK) users have keys."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user", "user_id")
    tier = session.scalar(select(CreditBalance.tier).where(CreditBalance.user_id == user_id))
    if tier != "perpetual":
        raise DomainError("not_byok", "Only perpetual-license (BYOK) users keep their own vendor keys.", "api_key")
    provider = session.get(Provider, provider_id)
    if provider is None:
        raise NotFound("provider", "provider_id")
    plaintext = _check_plaintext(api_key)
    token = cipher().encrypt(plaintext.encode()).decode()
    key = session.scalar(select(VendorKey).where(VendorKey.user_id == user_id, VendorKey.provider_id == provider_id))
    before = None
    if key is None:
        key = VendorKey(user_id=user_id, provider_id=provider_id, created_by_id=getattr(actor, "id", None))
        key.is_test = testmode.is_test_row(user)
        session.add(key)
    else:
        before = {"provider": provider.vendor_name, "last_four": key.last_four}
    key.ciphertext, key.last_four = token, plaintext[-4:]
    key.provider = provider
    session.flush()
    audit.record(session, "credits.vendor_key_saved", actor=actor, target=user, before=before,
                 after={"provider": provider.vendor_name, "last_four": key.last_four})
    return key


def remove(session, actor, user_id: int, key_id: int) -> None:
    key = session.get(VendorKey, key_id)
    if key is None or key.user_id != user_id:
        raise NotFound("vendor key", "key_id")
    user = session.get(User, user_id)
    audit.record(session, "credits.vendor_key_removed", actor=actor, target=user,
                 before={"provider": key.provider.vendor_name, "last_four": key.last_four})
    session.delete(key)
    session.flush()


def reveal(key: VendorKey) -> str:
    """The plaintext, for the server-side call to the vendor only; never for a screen or a log."""
    try:
        return cipher().decrypt(key.ciphertext.encode()).decode()
    except InvalidToken:
        raise RuntimeError(f"vendor key {key.id} cannot be decrypted with the configured keys") from None


def keys_for(session, user_id: int) -> list[VendorKey]:
    return list(session.scalars(select(VendorKey).where(VendorKey.user_id == user_id).order_by(VendorKey.provider_id)))


def rotate_all(session, batch: int = 500) -> int:
    """Re-encrypt every key with the first configured key (run after adding a new key in front)."""
    f = cipher()
    done, last_id = 0, 0
    while True:
        keys = session.scalars(select(VendorKey).where(VendorKey.id > last_id).order_by(VendorKey.id)
                               .limit(batch)).all()
        if not keys:
            return done
        for key in keys:
            try:
                key.ciphertext = f.rotate(key.ciphertext.encode()).decode()
            except InvalidToken:
                raise RuntimeError(f"vendor key {key.id} cannot be decrypted with the configured keys") from None
            key.rotated_at = clock.now()
            done += 1
            last_id = key.id
        session.flush()
