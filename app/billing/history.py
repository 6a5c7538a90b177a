"""What staff read about a subscription: the list query behind the subscriptions screen and
the timeline of one subscription (invoices, payments, dunning, prorations, allocations)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Select, select

from app.billing import dunning, invoices, payments, subscriptions
from app.billing.models import STATUSES, DunningAttempt, PeriodAllocation, Subscription, SubscriptionTier
from app.core.labels import label
from app.core.money import usd
from app.users.models import User

SCOPES = ("production", "test", "all")
# Sortable columns of the subscriptions list (?sort=period_end, ?sort=-created...).
SORTS = {"created": Subscription.created_at, "period_end": Subscription.current_period_end,
         "status": Subscription.status}
DEFAULT_SORT = "-created"


def list_stmt(*, tier: str | None, status: str | None, scope: str, q: str | None) -> Select:
    stmt = select(Subscription).join(User, User.id == Subscription.user_id)
    if tier:
        stmt = stmt.join(SubscriptionTier, SubscriptionTier.id == Subscription.tier_id).where(SubscriptionTier.name == tier)
    if status in STATUSES:
        stmt = stmt.where(Subscription.status == status)
    if scope == "production":
        stmt = stmt.where(Subscription.is_test.is_(False))
    elif scope == "test":
        stmt = stmt.where(Subscription.is_test.is_(True))
    if q:
        term = f"%{q.strip().lower()}%"
        stmt = stmt.where(User.email.like(term) | (Subscription.stripe_customer_id == q.strip()))
    return stmt


@dataclass
class Entry:
    at: datetime
    kind: str
    title: str
    amount: Decimal | None
    status: str
    detail: str = ""
    ref: str = ""  # a Stripe id, shown as code


def timeline(session, sub: Subscription) -> list[Entry]:
    entries: list[Entry] = []
    for inv in invoices.for_subscription(session, sub.id):
        entries.append(Entry(inv.created_at, "invoice", f"Invoice {inv.number} ({label(inv.kind).lower()})",
                             inv.total, inv.status, "; ".join(f"{l.description}: {l.amount}" for l in inv.lines)))
    for pay in payments.for_subscription(session, sub):
        title = "Refund" if pay.kind == "refund" else "Payment"
        ref = pay.stripe_refund_id or pay.stripe_payment_intent_id or ""
        detail = ("" if ref else "No Stripe call") + (f"; {label(pay.failure_code)}" if pay.failure_code else "") + \
            (f" ({label(pay.decline_code)})" if pay.decline_code else "")
        entries.append(Entry(pay.created_at, pay.kind, f"{title} {pay.id}", pay.amount, pay.status, detail.lstrip("; "),
                             ref))
    for att in session.scalars(select(DunningAttempt).where(DunningAttempt.subscription_id == sub.id)):
        nxt = f"; next retry {att.next_retry_at:%Y-%m-%d}" if att.next_retry_at else ""
        entries.append(Entry(att.created_at, "dunning", f"Dunning attempt {att.attempt_number} ({label(att.trigger).lower()})",
                             None, att.result, label(att.failure_code) + nxt))
    for ev in subscriptions.prorations(session, sub.id):
        entries.append(Entry(ev.created_at, "proration", f"{label(ev.change_type)}: {label(ev.from_tier)} to {label(ev.to_tier) or '-'}",
                             ev.net_charge, ev.status,
                             f"{ev.days_remaining} of {ev.days_in_cycle} days; unused {usd(ev.unused_credit_value)}, "
                             f"new {usd(ev.new_tier_prorated_cost)}" + (f"; +{ev.credits_granted:,} credits"
                                                                   if ev.credits_granted else "")))
    for alloc in session.scalars(select(PeriodAllocation).where(PeriodAllocation.subscription_id == sub.id)):
        entries.append(Entry(alloc.created_at, "allocation", f"Allocation for {alloc.period_start:%Y-%m-%d}", None,
                             "allocated", f"{alloc.allocated:,} credits ({label(alloc.tier)}); rolled over "
                                          f"{alloc.rolled_over:,}, expired {alloc.expired:,}"))
    if sub.cancel_at_period_end:  # a pending cancellation is on the timeline, dated
        entries.append(Entry(sub.current_period_end, "cancellation", "Cancellation at the end of the period", None,
                             "scheduled", f"the subscription ends on {sub.current_period_end:%Y-%m-%d}"))
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries


def open_invoice(session, sub: Subscription):
    return next((i for i in invoices.for_subscription(session, sub.id) if i.status == "open" and i.total > 0), None)


def failed_payments(session, include_test: bool):
    return dunning.failed_queue(session, include_test)
