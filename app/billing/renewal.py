"""Renewal: at the end of a period, the next period's invoice is created and the default
payment method charged off-session.

Idempotent per (subscription, period), also when killed midway. Opening the next period
(advancing the subscription, creating its invoice with the unique period_key, allocating
free credits) is one transaction, so it happens wholly or not at all; the charge is a
separate, resumable step (see payments.py), and a later run collects any period invoice
that a crash left open and never charged.
"""
from __future__ import annotations

from sqlalchemy import select

from app.billing import allocation, collection, invoices, subscriptions
from app.billing.gateway import GatewayError
from app.billing.models import Invoice, PaymentTransaction, Subscription
from app.core import audit, clock

RENEWING = ("active", "trial")


def due(session, limit: int = 200) -> list[Subscription]:
    return list(session.scalars(select(Subscription).where(
        Subscription.status.in_(RENEWING), Subscription.current_period_end < clock.now())
        .order_by(Subscription.current_period_end, Subscription.id).limit(limit)))


def open_next_period(session, sub: Subscription) -> Invoice | Subscription | None:
    """Advance one due subscription to its next period (one transaction); returns the
    period's invoice (the subscription itself for a free period), None if nothing was due."""
    query = select(Subscription).where(Subscription.id == sub.id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Subscription)
    sub = session.scalar(query.execution_options(populate_existing=True))
    if sub.status not in RENEWING or sub.current_period_end >= clock.now():
        session.rollback()
        return None  # another run did it
    if sub.cancel_at_period_end:
        before = sub.snapshot()
        sub.status, sub.cancelled_at, sub.cancel_at_period_end = "cancelled", sub.current_period_end, False
        audit.record(session, "billing.subscription_ended", target=sub, target_type="subscription", before=before,
                     after=sub.snapshot(), reason="cancelled at period end")
        session.commit()
        return None
    sub.current_period_start, sub.current_period_end = subscriptions.next_period(sub)
    if sub.status == "trial" and (sub.trial_end is None or sub.trial_end <= clock.now()):
        sub.status, sub.trial_end = "active", None
    invoice = None
    if sub.tier.price_for(sub.billing_cycle) > 0:  # free periods are not invoiced
        invoice = invoices.period_invoice(session, sub)
    if invoice is None or invoice.status == "paid":
        allocation.allocate_period(session, sub)
    session.commit()
    return invoice or sub


def uncharged(session, limit: int = 200) -> list[Invoice]:
    """Open period invoices never attempted (a crash between opening and charging), or
    with a charge left unfinished."""
    unfinished = select(PaymentTransaction.invoice_id).where(PaymentTransaction.status.in_(("pending", "processing")))
    return list(session.scalars(
        select(Invoice).join(Subscription, Subscription.id == Invoice.subscription_id)
        .where(Invoice.kind == "period", Invoice.status == "open", Invoice.total > 0,
               Subscription.status.in_(RENEWING),
               (Invoice.attempt_count == 0) | Invoice.id.in_(unfinished))
        .order_by(Invoice.id).limit(limit)))


def run(session) -> dict:
    counts = {"renewed": 0, "ended": 0, "charged": 0, "failed": 0, "unreachable": 0}
    for sub in due(session):
        invoice = open_next_period(session, sub)
        if invoice is not None:
            counts["renewed"] += 1
        elif sub.status == "cancelled":
            counts["ended"] += 1
    for invoice in uncharged(session):
        try:
            payment = collection.collect(session, invoice, trigger="renewal")
        except GatewayError:
            counts["unreachable"] += 1
            continue
        counts["charged" if payment.status == "succeeded" else "failed"] += 1
    return counts
