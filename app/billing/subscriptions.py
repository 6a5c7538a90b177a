"""Subscription rows and the state changes that payments trigger (the low layer: no
Stripe calls here, so collection and the staff actions can both build on it)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from app.billing import allocation, periods, tiers
from app.billing.models import Invoice, ProrationEvent, Subscription, SubscriptionTier
from app.core import clock, testmode
from app.core.errors import DomainError


def live_subscription(session, user_id: int) -> Subscription | None:
    return session.scalar(select(Subscription).where(Subscription.user_id == user_id,
                                                     Subscription.status != "cancelled")
                          .order_by(Subscription.id.desc()))


def get(session, subscription_id) -> Subscription:
    try:
        sub = session.get(Subscription, int(subscription_id))
    except (TypeError, ValueError):
        sub = None
    if sub is None:
        raise DomainError("resource_missing", "No such subscription.", "subscription", status=404)
    return sub


def new_subscription(session, user, tier: SubscriptionTier, cycle: str = "monthly", *,
                     start: datetime | None = None, status: str = "active") -> Subscription:
    """A subscription whose first period starts at the beginning of today (UTC) unless told."""
    start = start or periods.start_of_day(clock.now().date())
    start, end = periods.period_bounds(start, cycle)
    sub = Subscription(user_id=user.id, tier_id=tier.id, tier=tier, status=status, billing_cycle=cycle,
                       current_period_start=start, current_period_end=end, billing_anchor_day=start.day,
                       is_test=testmode.is_test_row(user))
    session.add(sub)
    session.flush()
    return sub


def provision_free(session, user) -> Subscription:
    """Every new user starts on the free tier (seed 004); other code calls this when it
    creates a user. Returns the existing live subscription when there is one."""
    return provision(session, user, tiers.FREE)


def provision(session, user, tier_name: str, field: str = "tier") -> Subscription:
    """A live subscription of the tier with its period's credits at once (a new account, a
    test account asked for with a tier, a customer's test twin); the existing one if any."""
    existing = live_subscription(session, user.id)
    if existing is not None:
        return existing
    sub = new_subscription(session, user, tiers.get_tier(session, tier_name, field))
    allocation.allocate_period(session, sub)
    return sub


def next_period(sub: Subscription) -> tuple[datetime, datetime]:
    start = periods.next_period_start(sub.current_period_end)
    return periods.period_bounds(start, sub.billing_cycle, sub.billing_anchor_day)


def restart_period(sub: Subscription) -> None:
    """Reactivation after a lapse: a fresh period from the start of today."""
    start, end = periods.period_bounds(periods.start_of_day(clock.now().date()), sub.billing_cycle)
    sub.current_period_start, sub.current_period_end, sub.billing_anchor_day = start, end, start.day


def proration_for_invoice(session, invoice: Invoice) -> ProrationEvent | None:
    return session.scalar(select(ProrationEvent).where(ProrationEvent.invoice_id == invoice.id))


def apply_proration(session, event: ProrationEvent) -> None:
    """Make a quoted change real: the new tier (or the cancellation) and the credit top-up."""
    if event.status != "pending":
        return
    sub = session.get(Subscription, event.subscription_id)
    if event.change_type == "cancellation":
        sub.status, sub.cancelled_at, sub.cancel_at_period_end = "cancelled", event.effective_date, False
    else:
        sub.tier = tiers.get_tier(session, event.to_tier)
        sub.tier_id = sub.tier.id
        allocation.tier_changed(session, sub, event)
    event.status = "applied"


def fail_proration(event: ProrationEvent, message: str) -> None:
    if event.status == "pending":
        event.status, event.failure_message = "failed", (message or "")[:255]


def prorations(session, subscription_id: int) -> list[ProrationEvent]:
    return list(session.scalars(select(ProrationEvent).where(ProrationEvent.subscription_id == subscription_id)
                                .order_by(ProrationEvent.created_at.desc(), ProrationEvent.id.desc())))

