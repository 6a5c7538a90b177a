"""Append-only audit log: one row per staff change (and per sign-in attempt)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import g, has_request_context
from sqlalchemy import JSON, BigInteger, ForeignKey, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from app.core import clock
from app.core.errors import DomainError
from app.core.models import Base, BigId, IsTestMixin
from app.core.requestinfo import client_ip, user_agent

SYSTEM = "system"
REASON_MAX = 1000


def require_reason(reason: str | None, *, minimum: int = 1, field: str = "reason") -> str:
    """The one rule for the reason a staff change is audited with: stripped, at least `minimum`
    characters, at most REASON_MAX. Services call it (so the API and scripts cannot skip it) and
    the forms' reason_field() runs it before the service is called, with the same message."""
    text = (reason or "").strip()
    if len(text) < max(minimum, 1):
        raise DomainError("reason_required", "Give a reason (it goes in the audit log)." if minimum <= 1 else
                          f"Give a reason of {minimum} to {REASON_MAX:,} characters (it goes in the audit log).", field)
    if len(text) > REASON_MAX:
        raise DomainError("reason_too_long", f"Keep the reason under {REASON_MAX:,} characters.", field)
    return text


class AuditEntry(IsTestMixin, Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    actor_label: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(80), index=True)
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(64), index=True)
    target_label: Mapped[str | None] = mapped_column(String(255))
    before: Mapped[Any | None] = mapped_column(JSON)
    after: Mapped[Any | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    # An API request's key and the key's creator (who may not be its owner, the actor above).
    api_key_id: Mapped[int | None] = mapped_column(BigInteger)
    key_creator_id: Mapped[int | None] = mapped_column(BigInteger)
    key_creator_label: Mapped[str | None] = mapped_column(String(255))


def _key_origin(session) -> tuple[int, int | None, str] | None:
    """(key id, creator id, creator label) of the API key the request acts through, once per request."""
    if not has_request_context():
        return None
    key = g.get("api_key")
    if key is None:
        return None
    origin = g.get("audit_key_origin")
    if origin is None or origin[0] != key.id:
        keys, users = Base.metadata.tables["api_keys"], Base.metadata.tables["users"]
        with session.no_autoflush:
            row = session.execute(select(keys.c.created_by_id, users.c.email)
                                  .select_from(keys.outerjoin(users, users.c.id == keys.c.created_by_id))
                                  .where(keys.c.id == key.id)).first()
        creator_id = row.created_by_id if row else None
        label = (row.email if row and row.email else None) or (SYSTEM if creator_id is None else f"user #{creator_id}")
        origin = g.audit_key_origin = (key.id, creator_id, label)
    return origin


def record(
    session,
    action: str,
    *,
    actor=None,
    target=None,
    target_type: str | None = None,
    target_id: Any = None,
    target_label: str | None = None,
    before: Any = None,
    after: Any = None,
    reason: str | None = None,
    is_test: bool | None = None,
) -> AuditEntry:
    """Write one audit row in the caller's transaction; actor None means the system."""
    if target is not None:
        target_type = target_type or getattr(target, "__tablename__", None)
        target_id = target_id if target_id is not None else getattr(target, "id", None)
        target_label = target_label or getattr(target, "audit_label", None)
    entry = AuditEntry(
        actor_id=getattr(actor, "id", None),
        actor_label=getattr(actor, "email", None) or (actor if isinstance(actor, str) else SYSTEM),
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        target_label=target_label,
        before=before,
        after=after,
        reason=reason,
        ip_address=client_ip() if actor is not None else SYSTEM,
        user_agent=user_agent() if actor is not None else "background-job",
    )
    origin = _key_origin(session)
    if origin is not None:
        entry.api_key_id, entry.key_creator_id, entry.key_creator_label = origin
    if is_test is None:
        is_test = bool(getattr(target, "is_test", False))
    if is_test:
        entry.is_test = True
    session.add(entry)
    return entry
