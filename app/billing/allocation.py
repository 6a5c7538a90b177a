"""Credits that billing hands out, always through the credits domain's service:
the period allocation (with rollover up to the tier's cap, the rest expiring), the
prorated top-up of an upgrade, and the bonus credits of a paid credit pack.

The allocation is idempotent per (subscription, period): a PeriodAllocation row is the
key, written in the same transaction as the credits, so a second run or a run after a
crash neither allocates twice nor skips a period.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.billing.models import CreditPackPurchase, Invoice, PeriodAllocation, ProrationEvent, Subscription
from app.core import clock, testmode
from app.credits import balances as credits

# Statuses whose period gets credits; past_due waits for its payment, cancelled gets none.
ALLOCATING = ("active", "trial", "grace_period")


def allocated(session, sub: Subscription) -> PeriodAllocation | None:
    return session.scalar(select(PeriodAllocation).where(PeriodAllocation.subscription_id == sub.id,
                                                         PeriodAllocation.period_start == sub.current_period_start))


def allocate_period(session, sub: Subscription) -> PeriodAllocation | None:
    """The tier's credits for the subscription's current period, once."""
    if sub.status not in ALLOCATING or allocated(session, sub) is not None:
        return None
    tier = sub.tier
    left = credits.get_balance(session, sub.user_id).subscription_credits
    carried = min(left, max(0, tier.max_rollover))
    row = PeriodAllocation(subscription_id=sub.id, user_id=sub.user_id, tier=tier.name,
                           period_start=sub.current_period_start, period_end=sub.current_period_end,
                           allocated=tier.monthly_credits, rolled_over=carried, expired=left - carried,
                           is_test=testmode.is_test_row(sub))
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return None  # another run got there first
    credits.set_tier(session, sub.user_id, tier.name)
    credits.allocate_period(session, sub.user_id, tier.monthly_credits, tier.max_rollover,
                            sub.current_period_start, sub.current_period_end, at=clock.now())
    return row


def tier_changed(session, sub: Subscription, event: ProrationEvent) -> None:
    """The credits side of a tier change: the margin tier, and for an upgrade the prorated
    difference in monthly credits for the rest of the period."""
    if event.change_type == "upgrade" and event.credits_granted > 0:
        credits.allocate(session, sub.user_id, event.credits_granted, "monthly_allocation",
                         reason=f"Upgrade {event.from_tier} to {event.to_tier}: {event.days_remaining} of "
                                f"{event.days_in_cycle} days",
                         period_start=sub.current_period_start, period_end=sub.current_period_end)
    credits.set_tier(session, sub.user_id, sub.tier.name)


def grant_pack(session, purchase: CreditPackPurchase) -> None:
    """A paid credit pack becomes bonus credits, once."""
    if purchase.status == "succeeded":
        return
    credits.allocate(session, purchase.user_id, purchase.credits, "purchase",
                     reason=f"Credit pack {purchase.pack.name} (purchase {purchase.id})")
    purchase.status, purchase.credits_granted_at = "succeeded", clock.now()


def ensure_balance(session, user) -> None:
    credits.ensure_balance(session, user.id)


def due_subscriptions(session, limit: int = 500) -> list[Subscription]:
    """Live subscriptions whose current period has no allocation yet and needs none paid
    first: free tiers, and paid ones whose period invoice is settled."""
    subs = session.scalars(
        select(Subscription).outerjoin(PeriodAllocation, (PeriodAllocation.subscription_id == Subscription.id)
                                       & (PeriodAllocation.period_start == Subscription.current_period_start))
        .where(Subscription.status.in_(ALLOCATING), PeriodAllocation.id.is_(None),
               Subscription.current_period_start <= clock.now())
        .order_by(Subscription.id).limit(limit))
    due = []
    for sub in subs:
        invoice = session.scalar(select(Invoice).where(Invoice.subscription_id == sub.id,
                                                       Invoice.period_start == sub.current_period_start,
                                                       Invoice.kind == "period"))
        if invoice is None and sub.tier.price_for(sub.billing_cycle) > 0:
            continue  # renewal has not invoiced this period yet
        if invoice is not None and invoice.status != "paid":
            continue
        due.append(sub)
    return due
