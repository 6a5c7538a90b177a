"""Customers' access and refresh tokens: issue, rotate, revoke (one token, a family, a customer).

An access token lives minutes (CUSTOMER_ACCESS_TOKEN_TTL_SECONDS); its refresh token lives
days and is used once: refreshing issues a new pair in the same family and marks the old
refresh token used. A used refresh token presented again means it leaked, so the whole
family is revoked (RFC 9700 4.14.2); so is a replayed authorization code's (RFC 6749 4.1.2).
"""
from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import or_, select, update

from app.core import clock
from app.api.models import OAuthToken, secret_hash

REFRESH_PREFIX = "rph_ort_"


def new_family() -> str:
    return secrets.token_hex(16)


def save(session, *, client, user, scope: str, access_token: str, refresh_token: str | None,
         expires_in: int, family: str) -> OAuthToken:
    now = clock.now()
    token = OAuthToken(token_hash=secret_hash(access_token), client_pk=client.id, user_id=user.id,
                       scopes=scope.split(), created_at=now, expires_at=now + timedelta(seconds=expires_in),
                       family=family)
    if refresh_token:
        token.refresh_hash = secret_hash(refresh_token)
        token.refresh_expires_at = now + timedelta(days=current_app.config["CUSTOMER_REFRESH_TOKEN_TTL_DAYS"])
    # Test clients and test accounts are test traffic, as sandbox keys are (docs/test-mode.md).
    token.is_test = bool(client.is_test or user.is_test)
    session.add(token)
    session.flush()
    return token


def by_refresh(session, refresh_token: str) -> OAuthToken | None:
    return session.scalar(select(OAuthToken).where(OAuthToken.refresh_hash == secret_hash(refresh_token)))


def by_access(session, access_token: str) -> OAuthToken | None:
    return session.scalar(select(OAuthToken).where(OAuthToken.token_hash == secret_hash(access_token)))


def revoke_family(session, family: str | None) -> int:
    if not family:
        return 0
    now = clock.now()
    return session.execute(update(OAuthToken).where(OAuthToken.family == family, OAuthToken.revoked_at.is_(None))
                           .values(revoked_at=now)).rowcount or 0


def revoke(session, token: OAuthToken) -> None:
    """RFC 7009: revoking either token of a pair ends both (and the refresh token's descendants)."""
    token.revoked_at = token.revoked_at or clock.now()


def revoke_user_tokens(session, user_id: int) -> int:
    return session.execute(update(OAuthToken).where(OAuthToken.user_id == user_id, OAuthToken.revoked_at.is_(None))
                           .values(revoked_at=clock.now())).rowcount or 0


def usable_refresh(token: OAuthToken | None) -> bool:
    now = clock.now()
    return (token is not None and token.revoked_at is None and token.refresh_used_at is None
            and token.refresh_expires_at is not None and token.refresh_expires_at > now)


def active_for_user(session, user_id: int) -> list[OAuthToken]:
    now = clock.now()
    return list(session.scalars(select(OAuthToken).where(
        OAuthToken.user_id == user_id, OAuthToken.revoked_at.is_(None),
        or_(OAuthToken.expires_at > now, OAuthToken.refresh_expires_at > now))))
