"""Why the production dashboard is all zeros: no production data yet, only test data.

On a fresh install (`make run`) every seeded row is test data, as it must be, so the
production dashboard shows zeros without a word. `production_notice()` tells the screen
that production is empty and how many test rows the production view hides, so it can say
so next to the "include test data" switch.
"""
from __future__ import annotations

from sqlalchemy import exists, false, func, select, true

from app.billing.models import PaymentTransaction, Subscription
from app.coupons.models import Redemption
from app.credits.models import TokenUsage
from app.licensing.models import License
from app.users.models import User

# What a customer's business leaves behind: one production row in any of these is data.
TRAFFIC = (Subscription, PaymentTransaction, TokenUsage, Redemption, License)


def production_notice(session) -> dict | None:
    """None when production has data; else {"test_rows": n} (test customers and their traffic)."""
    customers = exists().where(User.is_test == false(), User.is_staff == false(), User.deleted_at.is_(None))
    if session.scalar(select(customers)):
        return None
    for model in TRAFFIC:
        if session.scalar(select(exists().where(model.is_test == false()))):
            return None
    hidden = session.scalar(select(func.count()).select_from(User).where(User.is_test == true()))
    for model in TRAFFIC:
        hidden += session.scalar(select(func.count()).select_from(model).where(model.is_test == true()))
    return {"test_rows": hidden}
