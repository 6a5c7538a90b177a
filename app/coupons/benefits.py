"""What a successful redemption gives, through the owning domains' services, and takes back.

- discount with a subscription: onto its invoice (invoicing.py); without one the discount is
  the answer the client charges (a one-off purchase priced by the caller);
- credits: bonus credits through the credits service (source `coupon`); a reversal takes back
  those still unspent (credits.revoke_bonus);
- months_free: the subscription's paid-through date (current period end) moves later by the
  months; a reversal moves it back while that date is still ahead.
"""
from __future__ import annotations

from app.billing.models import Subscription
from app.billing.periods import ONE_SECOND, add_months
from app.core import clock
from app.core.errors import DomainError
from app.coupons import invoicing
from app.coupons.models import Redemption
from app.credits import balances


def _subscription(session, row: Redemption):
    return session.get(Subscription, row.subscription_id) if row.subscription_id else None


def _shift(sub, months: int):
    """The paid-through date `months` later (or earlier), kept on the billing anchor day."""
    return add_months(sub.current_period_end + ONE_SECOND, months, sub.billing_anchor_day) - ONE_SECOND


def apply(session, row: Redemption, attempt, actor=None) -> None:
    """Give the benefit; the caller's savepoint undoes the redemption if this raises."""
    coupon = row.coupon
    if row.credits_granted:
        balances.allocate(session, row.user_id, row.credits_granted, "coupon", actor=actor,
                          reason=f"Coupon {coupon.code} (redemption {row.id})", at=row.created_at)
    if row.months_granted:
        sub = _subscription(session, row)
        if sub is None:
            raise DomainError("subscription_required", "A free-months coupon needs a subscription to extend.",
                              "subscription_id")
        sub.current_period_end = _shift(sub, row.months_granted)
    if row.discount_amount > 0 and row.subscription_id:
        invoicing.apply_now(session, row)


def revert(session, row: Redemption, actor=None) -> None:
    if row.credits_granted:
        taken, _ = balances.revoke_bonus(session, row.user_id, row.credits_granted, actor=actor,
                                         reason=f"Coupon {row.coupon.code} reversed (redemption {row.id})")
        row.credits_clawed_back = taken
    if row.months_granted:
        sub = _subscription(session, row)
        if sub is not None:
            earlier = _shift(sub, -row.months_granted)
            if earlier > clock.now():
                sub.current_period_end = earlier
    invoicing.revert(session, row)
