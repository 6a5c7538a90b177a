"""Dunning (seed 001 "Dunning management", scenario 7).

A failed period payment puts the subscription `past_due` and schedules retries at the
configured offsets after the first failure (default +1, +4, +7 days). A hard decline (lost,
stolen or fraudulent card) schedules no retry. After the last failure the subscription gets
a grace period (credits still usable), then it is cancelled. A successful payment at any
point, scheduled, manual or after a card change, ends dunning. Every attempt is a
DunningAttempt row, and each failure queues a notice in the outbox.
"""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select

from app.billing.gateway import HARD_DECLINES
from app.billing.models import DunningAttempt, Invoice, PaymentTransaction, Subscription
from app.core import clock, testmode
from app.core.money import usd
from app.notifications.service import queue_email

DUNNING_STATUSES = ("past_due", "grace_period")


def retry_offsets() -> list[int]:
    raw = str(current_app.config.get("DUNNING_RETRY_DAYS", "1,4,7"))
    return sorted(int(part) for part in raw.split(",") if part.strip())


def grace_days() -> int:
    return int(current_app.config.get("DUNNING_GRACE_DAYS", 7))


def attempts(session, invoice_id: int) -> list[DunningAttempt]:
    return list(session.scalars(select(DunningAttempt).where(DunningAttempt.invoice_id == invoice_id)
                                .order_by(DunningAttempt.id)))


def _scheduled_done(session, invoice_id: int) -> int:
    return session.scalar(select(func.count()).select_from(DunningAttempt).where(
        DunningAttempt.invoice_id == invoice_id, DunningAttempt.trigger == "scheduled")) or 0


def _attempt(session, sub: Subscription, invoice: Invoice, payment: PaymentTransaction | None, trigger: str,
             result: str) -> DunningAttempt:
    number = session.scalar(select(func.count()).select_from(DunningAttempt).where(
        DunningAttempt.invoice_id == invoice.id)) or 0
    row = DunningAttempt(subscription_id=sub.id, invoice_id=invoice.id, payment_id=payment.id if payment else None,
                         attempt_number=number, trigger=trigger, result=result,
                         failure_code=(payment.decline_code or payment.failure_code) if payment else None,
                         next_retry_at=invoice.next_retry_at, is_test=testmode.is_test_row(sub))
    session.add(row)
    return row


def on_failure(session, sub: Subscription, invoice: Invoice, payment: PaymentTransaction, trigger: str) -> DunningAttempt:
    """Record a failed attempt on a period invoice and decide what happens next."""
    now = clock.now()
    hard = payment.decline_code in HARD_DECLINES or payment.failure_code in HARD_DECLINES
    if invoice.first_failed_at is None:
        invoice.first_failed_at = now
    invoice.attempt_count += 1
    invoice.hard_declined = invoice.hard_declined or hard
    offsets = retry_offsets()
    done = _scheduled_done(session, invoice.id) + (1 if trigger == "scheduled" else 0)
    if invoice.hard_declined or done >= len(offsets):
        invoice.next_retry_at = None
    elif trigger in ("scheduled", "renewal") or invoice.next_retry_at is None:
        invoice.next_retry_at = invoice.first_failed_at + timedelta(days=offsets[done])
    if invoice.next_retry_at is None:
        if sub.status != "grace_period":
            sub.status, sub.grace_until = "grace_period", now + timedelta(days=grace_days())
    elif sub.status in ("active", "trial"):
        sub.status = "past_due"
    row = _attempt(session, sub, invoice, payment, trigger, "hard_decline" if hard else "failed")
    _notify_failure(session, sub, invoice, payment, hard)
    return row


def on_success(session, sub: Subscription, invoice: Invoice, payment: PaymentTransaction, trigger: str) -> None:
    """A payment went through: dunning, if any, is over."""
    if invoice.attempt_count > 0 or sub.status in DUNNING_STATUSES:
        _attempt(session, sub, invoice, payment, trigger, "succeeded")
    invoice.next_retry_at = None
    if sub.status in DUNNING_STATUSES:
        sub.status, sub.grace_until = "active", None


def on_gateway_error(session, sub: Subscription, invoice: Invoice, payment: PaymentTransaction | None,
                     trigger: str) -> None:
    """Stripe unreachable: not the customer's failure, so no notice and the schedule is kept."""
    _attempt(session, sub, invoice, payment, trigger, "error")


def due_invoices(session, limit: int = 200) -> list[Invoice]:
    now = clock.now()
    return list(session.scalars(
        select(Invoice).join(Subscription, Subscription.id == Invoice.subscription_id)
        .where(Invoice.kind == "period", Invoice.status == "open", Invoice.next_retry_at.is_not(None),
               Invoice.next_retry_at <= now, Subscription.status.in_(DUNNING_STATUSES))
        .order_by(Invoice.next_retry_at).limit(limit)))


def expired_grace(session, limit: int = 200) -> list[Subscription]:
    return list(session.scalars(select(Subscription).where(
        Subscription.status == "grace_period", Subscription.grace_until.is_not(None),
        Subscription.grace_until <= clock.now()).limit(limit)))


def end_grace(session, sub: Subscription) -> None:
    """The grace period ran out unpaid: cancel (no new allocation) and write the invoice off."""
    sub.status, sub.cancelled_at, sub.grace_until = "cancelled", clock.now(), None
    for invoice in session.scalars(select(Invoice).where(Invoice.subscription_id == sub.id,
                                                         Invoice.kind == "period", Invoice.status == "open")):
        invoice.status, invoice.next_retry_at = "uncollectible", None
    queue_email(session, kind="subscription_cancelled_unpaid", user=sub.user,
                subject="Your Rephlo subscription was cancelled",
                body=(f"We could not collect the payment for your {sub.tier.display_name} subscription, "
                      "so it has been cancelled. Your account continues on the free plan; you can subscribe "
                      "again at any time."))


def _notify_failure(session, sub: Subscription, invoice: Invoice, payment: PaymentTransaction, hard: bool) -> None:
    reason = payment.failure_message or "the payment was declined"
    if invoice.next_retry_at is not None:
        what_next = f"We will try again on {invoice.next_retry_at:%Y-%m-%d}."
    else:
        what_next = (f"We will not retry this card. Please update your payment method: your subscription stays "
                     f"usable until {sub.grace_until:%Y-%m-%d}, then it will be cancelled.")
    queue_email(session, kind="payment_failed", user=sub.user,
                subject=f"Payment of {usd(invoice.total - invoice.amount_paid)} failed",
                body=(f"Your payment of {usd(invoice.total - invoice.amount_paid)} for {sub.tier.display_name} "
                      f"(invoice {invoice.number}) failed: {reason}. {what_next}"))


def _in_dunning(stmt, include_test: bool):
    stmt = (stmt.join(Subscription, Subscription.id == Invoice.subscription_id)
            .where(Invoice.status == "open", Invoice.attempt_count > 0, Subscription.status.in_(DUNNING_STATUSES)))
    return stmt if include_test else stmt.where(Invoice.is_test.is_(False))


def failed_count(session, include_test: bool) -> int:
    """How many open invoices are in dunning (the failed-payments queue's length)."""
    return session.scalar(_in_dunning(select(func.count(Invoice.id)).select_from(Invoice), include_test)) or 0


def failed_queue(session, include_test: bool, limit: int = 200) -> list[tuple[Invoice, Subscription]]:
    """The ops queue: open period invoices in dunning, the most urgent first."""
    stmt = _in_dunning(select(Invoice, Subscription), include_test)
    return list(session.execute(stmt.order_by(Invoice.next_retry_at.is_(None).desc(), Invoice.next_retry_at)
                                .limit(limit)).tuples())
