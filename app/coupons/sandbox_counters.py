"""Test-mode usage counters of coupons and campaigns, recounted after a test-data cleanup.

Test redemptions take their use and budget from `test_uses_count` / `test_spent`, so QA never
eats a real coupon's limits. When a cleanup deletes those redemptions the counters must follow,
or every QA round (and every `flask reset-test-data`) would leave uses behind until the test
limits of a production coupon were exhausted for good.
"""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select, update

from app.coupons.models import Campaign, Coupon, Redemption

HOLDING = ("success", "pending")  # the statuses that hold a use and budget (a reversal gives them back)


def recount(session) -> dict[str, int]:
    """Set every test counter to what the remaining test redemptions hold; return the rows changed.

    updated_at is kept: this is bookkeeping of test traffic, not an edit of the coupon."""
    held = (Redemption.is_test.is_(True), Redemption.status.in_(HOLDING))
    uses = (select(func.count()).where(Redemption.coupon_id == Coupon.id, *held)
            .correlate(Coupon).scalar_subquery())
    spent = (select(func.coalesce(func.sum(Redemption.budget_cost), Decimal("0.00")))
             .where(Redemption.campaign_id == Campaign.id, *held).correlate(Campaign).scalar_subquery())
    coupons = session.execute(update(Coupon).where(Coupon.test_uses_count != uses).values(test_uses_count=uses, updated_at=Coupon.updated_at)
                              .execution_options(synchronize_session=False)).rowcount
    campaigns = session.execute(update(Campaign).where(Campaign.test_spent != spent).values(test_spent=spent, updated_at=Campaign.updated_at)
                                .execution_options(synchronize_session=False)).rowcount
    return {"coupons": coupons, "campaigns": campaigns}
