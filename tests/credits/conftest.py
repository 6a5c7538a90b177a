"""Credits fixtures: seed 001's providers, prices and margins, and funded users."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest


@pytest.fixture
def priced(app, session):
    """The six providers, four prices (from 2025-11-01) and the margins of seed 001."""
    from app.credits.seed import _pricing

    _pricing(session, {}, log=lambda *_: None)
    session.flush()
    return session


@pytest.fixture
def funded(make_user, session):
    """A user with a balance in `tier`: subscription credits, then bonus credits."""
    from app.credits import balances

    def make(subscription: int = 0, bonus: int = 0, tier: str = "pro", cap: int | None = None, test: bool = False,
             at: datetime | None = None):
        user = make_user(test=test)
        balances.ensure_balance(session, user.id, tier=tier, at=at)
        if subscription:
            balances.allocate(session, user.id, subscription, "monthly_allocation", at=at)
        if bonus:
            balances.allocate(session, user.id, bonus, "promotional_bonus", at=at)
        if cap is not None:
            balances.set_monthly_cap(session, user.id, cap)
        session.flush()
        return user

    return make


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def ledger_total(session, user_id: int) -> int:
    """Everything allocated minus everything deducted: what the balance must be."""
    from sqlalchemy import func, select

    from app.credits.models import CreditAllocation, CreditDeduction

    allocated = session.scalar(select(func.coalesce(func.sum(CreditAllocation.amount), 0))
                               .where(CreditAllocation.user_id == user_id))
    deducted = session.scalar(select(func.coalesce(func.sum(CreditDeduction.amount), 0))
                              .where(CreditDeduction.user_id == user_id))
    return int(allocated) - int(deducted)
