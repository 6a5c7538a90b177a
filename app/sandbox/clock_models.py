"""Test clocks: one simulated "now" per test account (see app.sandbox.clocks)."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core import clock
from app.core.models import Base, BigId, IsTestMixin, TimestampMixin
from app.users.models import User


class TestClock(IsTestMixin, TimestampMixin, Base):
    __tablename__ = "test_clocks"
    __test__ = False  # not a pytest test class, whatever its name

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    frozen_time: Mapped[datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)

    user: Mapped[User] = relationship(foreign_keys=[user_id])

    @property
    def ahead_by(self) -> timedelta:
        """How far the account's time is ahead of real time (negative: it stood still behind)."""
        return self.frozen_time - clock.now()

    @property
    def offset_text(self) -> str:
        delta = self.ahead_by
        hours = round(abs(delta).total_seconds() / 3600)
        text = f"{hours // 24} days {hours % 24} h"
        return f"{text} ahead" if delta >= timedelta(0) else f"{text} behind"

    @property
    def audit_label(self) -> str:
        return f"test clock of {self.user.email}"
