"""Append-only audit log: one row per staff change (and per sign-in attempt)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core import clock
from app.core.models import Base, BigId, IsTestMixin
from app.core.requestinfo import client_ip, user_agent

SYSTEM = "system"


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
    if is_test is None:
        is_test = bool(getattr(target, "is_test", False))
    if is_test:
        entry.is_test = True
    session.add(entry)
    return entry
