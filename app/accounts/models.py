"""Authorization codes and remembered consents of the OAuth authorization-code grant.

Codes are stored hashed, live minutes and are used once. A consent remembers which scopes a
customer granted a client, so the consent page is shown once per client (and again when a
client asks for more).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core import clock
from app.core.models import Base, BigId, IsTestMixin


class AuthorizationCode(IsTestMixin, Base):
    __tablename__ = "oauth_authorization_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_pk: Mapped[int] = mapped_column(ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text, default="")
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    # The token family the code was exchanged for: a replayed code revokes it (RFC 6749 4.1.2).
    family: Mapped[str | None] = mapped_column(String(32))

    client = relationship("OAuthClient", lazy="joined")


class Consent(IsTestMixin, Base):
    __tablename__ = "oauth_consents"
    __table_args__ = (UniqueConstraint("user_id", "client_pk", name="uq_oauth_consents_user_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_pk: Mapped[int] = mapped_column(ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True)
    scopes: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)


def _code_accessors(cls):
    """What Authlib's AuthorizationCodeMixin asks of a code row."""
    cls.get_redirect_uri = lambda self: self.redirect_uri
    cls.get_scope = lambda self: self.scope
    cls.get_nonce = lambda self: None
    cls.get_auth_time = lambda self: int(self.created_at.timestamp())
    return cls


_code_accessors(AuthorizationCode)
