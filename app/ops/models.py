"""The lease that makes one embedded scheduler per database (app/ops/scheduler.py)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Base


class SchedulerLease(Base):
    """Whoever holds an unexpired lease runs the periodic jobs; the others wait for it to lapse."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    holder: Mapped[str] = mapped_column(String(160))
    expires_at: Mapped[datetime]
    renewed_at: Mapped[datetime]
