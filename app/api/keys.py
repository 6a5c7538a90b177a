"""API keys: create (shown once, stored hashed), list, revoke.

Rules: production keys need sudo mode; test accounts only get sandbox or development keys;
a staff member creates keys for customers and for themselves only (a key acts for its owner,
so it must not be a way to act as a colleague); a staff member's keys are revoked when they
sign out everywhere or change their password (app/auth/service.py).
"""
from __future__ import annotations

import secrets
import string
from datetime import datetime

from sqlalchemy import Select, or_, select

from app.core import audit, clock
from app.core.audit import require_reason
from app.core.errors import DomainError, NotFound
from app.api.models import KEY_PREFIXES, KEY_TYPES, ApiKey, secret_hash
from app.users.models import User

KEY_BODY_LENGTH = 40
KEY_STATUSES = ("active", "revoked", "expired")
_ALPHANUM = string.ascii_letters + string.digits


def generate_key(key_type: str) -> str:
    return KEY_PREFIXES[key_type] + "".join(secrets.choice(_ALPHANUM) for _ in range(KEY_BODY_LENGTH))


def _check_scopes(scopes: list[str] | None) -> list[str]:
    from app.api.auth import SCOPES

    scopes = [s.strip() for s in (scopes or ["*"]) if s and s.strip()]
    if not scopes:
        raise DomainError("invalid_scope", "Choose at least one scope.", "scopes")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise DomainError("invalid_scope", f"Unknown scope(s): {', '.join(unknown)}.", "scopes")
    return sorted(set(scopes))


def _check_actor_may_act_for(session, actor, owner: User) -> None:
    """A key acts, and is audited, as its owner: staff make keys for customers and for themselves,
    never for a colleague (a key minted for a colleague lets one act as them)."""
    if actor is None or actor.id == owner.id:
        return
    if owner.is_staff:
        raise DomainError("staff_key_for_colleague",
                          f"Keys of staff are made by their owner: {owner.email} must create their own.",
                          "owner", status=403)


def create_api_key(session, actor, *, owner: User | None, name: str, key_type: str,
                   scopes: list[str] | None = None, expires_at: datetime | None = None,
                   sudo: bool = False, plain: str | None = None) -> tuple[ApiKey, str]:
    """Create a key; returns (row, plain key). The plain key is never stored or logged."""
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise DomainError("invalid_name", "Give the key a name (120 characters at most).", "name")
    if key_type not in KEY_TYPES:
        raise DomainError("invalid_key_type", f"Key type must be one of {', '.join(KEY_TYPES)}.", "key_type")
    if owner is None:
        raise NotFound("user", "owner")
    if not owner.is_active:
        raise DomainError("owner_inactive", "This account is not active.", "owner")
    if key_type == "production" and owner.is_test:
        raise DomainError("production_key_for_test_account",
                          "Test accounts can only have sandbox or development keys.", "key_type")
    if key_type == "production" and actor is not None and not sudo:
        raise DomainError("sudo_required", "Creating a production key needs you to confirm it is you (sudo mode).",
                          "key_type", status=403)
    if expires_at is not None and expires_at <= clock.now():
        raise DomainError("expiry_in_past", "The expiry must be in the future.", "expires_at")
    scopes = _check_scopes(scopes)
    _check_actor_may_act_for(session, actor, owner)
    plain = plain or generate_key(key_type)
    key = ApiKey(user_id=owner.id, name=name, key_type=key_type, prefix=KEY_PREFIXES[key_type],
                 key_hash=secret_hash(plain), last4=plain[-4:], scopes=scopes, expires_at=expires_at,
                 created_by_id=getattr(actor, "id", None))
    key.is_test = key_type != "production" or owner.is_test
    key.owner = owner
    session.add(key)
    session.flush()
    audit.record(session, "api_keys.created", actor=actor, target=key, after=key.describe())
    return key, plain


def revoke_api_key(session, actor, key: ApiKey, reason: str | None) -> ApiKey:
    reason = require_reason(reason)
    if key.revoked_at is not None:
        raise DomainError("already_revoked", "This key is revoked already.", None, status=409)
    key.revoked_at, key.revoked_reason, key.revoked_by_id = clock.now(), reason, getattr(actor, "id", None)
    audit.record(session, "api_keys.revoked", actor=actor, target=key, before={"status": "active"},
                 after={"status": "revoked", **key.describe()}, reason=reason)
    return key


def revoke_keys_of(session, actor, owner: User, reason: str) -> int:
    """Revoke every active key of `owner`; returns how many (each audited)."""
    keys = session.scalars(keys_stmt(owner_id=owner.id, status="active")).all()
    for key in keys:
        revoke_api_key(session, actor, key, reason)
    return len(keys)


def revoke_many(session, actor, key_ids: list[int], reason: str | None) -> int:
    """Revoke the ticked keys at once (a leaked config file); each is audited like a single revocation.
    Nothing changes unless a key is ticked and a reason given; keys revoked already are skipped."""
    if not key_ids:
        raise DomainError("keys_required", "Tick the keys to revoke.", "ids")
    reason = require_reason(reason)
    keys = session.scalars(select(ApiKey).where(ApiKey.id.in_(key_ids), ApiKey.revoked_at.is_(None))
                           .order_by(ApiKey.id)).all()
    for key in keys:
        revoke_api_key(session, actor, key, reason)
    return len(keys)


def get_key(session, key_id: int) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound("API key")
    return key


def keys_stmt(*, owner_id: int | None = None, owner_email: str | None = None, key_type: str | None = None,
              status: str | None = None, test_only: bool = False) -> Select:
    stmt = select(ApiKey)
    if owner_id:
        stmt = stmt.where(ApiKey.user_id == owner_id)
    if owner_email:
        stmt = stmt.where(ApiKey.user_id.in_(select(User.id).where(
            User.email.contains(owner_email.strip().lower(), autoescape=True))))
    if key_type in KEY_TYPES:
        stmt = stmt.where(ApiKey.key_type == key_type)
    if test_only:
        stmt = stmt.where(ApiKey.is_test.is_(True))
    now = clock.now()
    if status == "revoked":
        stmt = stmt.where(ApiKey.revoked_at.is_not(None))
    elif status == "expired":
        stmt = stmt.where(ApiKey.revoked_at.is_(None), ApiKey.expires_at <= now)
    elif status == "active":
        stmt = stmt.where(ApiKey.revoked_at.is_(None), or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now))
    return stmt


def keys_of(session, user_id: int) -> list[ApiKey]:
    return list(session.scalars(keys_stmt(owner_id=user_id).order_by(ApiKey.created_at.desc(), ApiKey.id.desc())))


def find_owner(session, email: str | None) -> User | None:
    if not email:
        return None
    return session.scalar(select(User).where(User.email == email.strip().lower(), User.deleted_at.is_(None)))
