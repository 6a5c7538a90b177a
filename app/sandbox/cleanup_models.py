"""One row per test-data cleanup run: what it deleted, how long its longest batch held locks.

Counts are updated in the same transaction as each batch's deletes, so a run killed midway
still says exactly what it removed; the next run marks it 'interrupted' and carries on.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core import clock
from app.core.models import Base, BigId

KINDS = ("expired", "all")
TRIGGERS = ("schedule", "staff", "cli")
STATUSES = ("running", "finished", "failed", "interrupted")


class CleanupRun(Base):
    __tablename__ = "cleanup_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    trigger: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="running", index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    actor_label: Mapped[str] = mapped_column(String(255), default="system")
    job_id: Mapped[str | None] = mapped_column(String(36))
    started_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    finished_at: Mapped[datetime | None]
    batches: Mapped[int] = mapped_column(Integer, default=0)
    longest_batch_ms: Mapped[int] = mapped_column(Integer, default=0)
    # {table name: rows deleted}; reassigned (never mutated in place) so SQLAlchemy sees changes.
    deleted: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    soft_deleted: Mapped[int] = mapped_column(Integer, default=0)
    # Expired test accounts left alone because they own rows not marked as test.
    kept: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)

    @property
    def total_deleted(self) -> int:
        return sum((self.deleted or {}).values())

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def audit_label(self) -> str:
        return f"{self.kind} cleanup #{self.id}"
