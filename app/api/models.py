"""API access tables: API keys, OAuth clients and tokens, idempotency records, request counters.

Secrets (keys, client secrets, access tokens) are stored as SHA-256 hex digests only:
they are long random strings, so a fast hash is enough and makes lookup one indexed read.
"""
from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core import clock
from app.core.models import Base, BigId, IsTestMixin, TimestampMixin

KEY_TYPES = ("production", "sandbox", "development")
KEY_PREFIXES = {"production": "rph_live_", "sandbox": "rph_test_", "development": "rph_dev_"}
OAUTH_TOKEN_PREFIX = "rph_oat_"


def secret_hash(secret: str) -> str:
    """SHA-256 hex of a key, client secret or access token: the only form the database keeps."""
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKey(IsTestMixin, TimestampMixin, Base):
    """A bearer key acting for its owner; sandbox/development keys and test owners' keys are test."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    key_type: Mapped[str] = mapped_column(String(20), index=True)
    prefix: Mapped[str] = mapped_column(String(12))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    last4: Mapped[str] = mapped_column(String(4))
    scopes: Mapped[list] = mapped_column(JSON, default=list)
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(Text)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)

    owner = relationship("User", foreign_keys=[user_id], lazy="joined")
    created_by = relationship("User", foreign_keys=[created_by_id])

    @property
    def masked(self) -> str:
        return f"{self.prefix}…{self.last4}"

    @property
    def audit_label(self) -> str:
        return f"{self.name} ({self.masked})"

    def status_at(self, at: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= at:
            return "expired"
        return "active"

    def describe(self) -> dict[str, Any]:
        """Audit/JSON view of the key; never the secret."""
        return {"name": self.name, "key_type": self.key_type, "owner_id": self.user_id, "masked": self.masked,
                "scopes": list(self.scopes or []),
                "expires_at": self.expires_at.isoformat() if self.expires_at else None}


class OAuthClient(IsTestMixin, TimestampMixin, Base):
    """A client application that trades its id and secret for short-lived bearer tokens."""

    __tablename__ = "oauth_clients"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(80), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    secret_last4: Mapped[str] = mapped_column(String(4), default="")
    name: Mapped[str] = mapped_column(String(120))
    redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    # A public client (a desktop or browser app, RFC 8252) keeps no secret: it authenticates at
    # the token endpoint with PKCE alone, which is then required.
    is_public: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The service account the client acts as (created with the client).
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_rotated_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)

    service_user = relationship("User", foreign_keys=[user_id], lazy="joined")

    @property
    def audit_label(self) -> str:
        return self.client_id

    def describe(self) -> dict[str, Any]:
        return {"client_id": self.client_id, "name": self.name, "redirect_uris": list(self.redirect_uris or []),
                "is_test": self.is_test, "secret_last4": self.secret_last4}


class OAuthToken(IsTestMixin, Base):
    """An access token (client-credentials or authorization-code grant); stored hashed, short-lived.

    A customer's token (user_id set) also carries a refresh token; refreshing rotates it and
    marks the old one used, and all tokens descended from one authorization share a family,
    revoked together when a used refresh token comes back (RFC 9700 4.14.2).
    """

    __tablename__ = "oauth_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_pk: Mapped[int] = mapped_column(ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True)
    scopes: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    # The customer who authorized the client (authorization-code grant); None: the client's service account.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    refresh_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    refresh_expires_at: Mapped[datetime | None]
    refresh_used_at: Mapped[datetime | None]
    family: Mapped[str | None] = mapped_column(String(32), index=True)
    revoked_at: Mapped[datetime | None]

    client = relationship(OAuthClient, lazy="joined")
    user = relationship("User", foreign_keys=[user_id])


class IdempotencyRecord(IsTestMixin, Base):
    """The first response to a creating POST with an Idempotency-Key, replayed for 24 h at least.

    Inserted before the domain work, in the same transaction, so the unique index on
    (user_id, key) serializes concurrent requests: one executes, the others replay.
    """

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_records_user_id_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[Any | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)


class ApiRequestDay(Base):
    """Authenticated API requests per UTC day, test vs production (the 'Test data' metrics).

    A counter, not test data: `is_test` is part of the key, and cleanup leaves these rows alone.
    """

    __tablename__ = "api_request_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_test: Mapped[bool] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
