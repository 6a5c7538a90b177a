"""Collecting invoices and settling what Stripe answers, whichever way the answer comes
(the synchronous confirm, a webhook, or a reconciliation after a crash).

Settling is idempotent: a payment row only moves forward, so a late or repeated answer
changes nothing. What a paid or failed invoice means depends on its kind: a period invoice
ends or feeds dunning and allocates the period's credits, a proration invoice applies or
drops the tier change, a credit-pack invoice grants the pack's credits or not, a license
invoice issues the license or completes the upgrade, or not (license_settlement.py).
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.billing import allocation, dunning, gateway, invoices, license_settlement, payments, subscriptions
from app.billing.gateway import GatewayError, Outcome
from app.billing.models import CreditPackPurchase, Invoice, PaymentTransaction, Subscription
from app.core import clock, testmode
from app.core.errors import DomainError


def can_charge(sub: Subscription | None) -> bool:
    return bool(sub and sub.stripe_customer_id and sub.default_payment_method_id)


def collect(session, invoice: Invoice, *, trigger: str, actor=None) -> PaymentTransaction:
    """Charge what is left on an open invoice and settle the outcome (commits as it goes).

    Raises GatewayError when Stripe cannot be reached: what was written stays consistent
    and a later collect() resumes it."""
    if invoice.status != "open" or invoice.total - invoice.amount_paid <= 0:
        raise DomainError("not_collectable", f"Invoice {invoice.number} is {invoice.status}: nothing to collect.",
                          "invoice", status=409)
    sub = session.get(Subscription, invoice.subscription_id) if invoice.subscription_id else None
    payment = payments.start_charge(session, invoice, actor=actor)
    if not can_charge(sub):
        outcome = Outcome("", "failed", failure_code="no_payment_method",
                          failure_message="There is no payment method on file.")
        settle(session, payment, outcome, trigger)
        session.commit()
        return payment
    try:
        outcome = payments.run_charge(session, payment, customer_id=sub.stripe_customer_id,
                                      payment_method=sub.default_payment_method_id)
    except GatewayError:
        if sub is not None and invoice.kind == "period" and (invoice.attempt_count or sub.status in dunning.DUNNING_STATUSES):
            dunning.on_gateway_error(session, sub, invoice, payment, trigger)
        if payment.status == "error":
            _on_abandoned(session, invoice, payment)
        session.commit()
        raise
    settle(session, payment, outcome, trigger)
    session.commit()
    return payment


def settle(session, payment: PaymentTransaction, outcome: Outcome, trigger: str,
           event_created: int | None = None) -> bool:
    """Record Stripe's answer on the payment and its invoice; False if it changed nothing."""
    payment = payments.lock(session, payment)
    if not payments.record_outcome(payment, outcome, event_created):
        return False
    invoice = session.get(Invoice, payment.invoice_id) if payment.invoice_id else None
    if invoice is None:
        return True
    if payment.status == "succeeded":
        invoices.mark_paid(invoice, payment.amount)
        _on_paid(session, invoice, payment, trigger)
    elif payment.status in ("failed", "canceled"):
        _on_failed(session, invoice, payment, trigger)
    return True


def _on_paid(session, invoice: Invoice, payment: PaymentTransaction, trigger: str) -> None:
    sub = session.get(Subscription, invoice.subscription_id) if invoice.subscription_id else None
    if invoice.kind == "period" and sub is not None:
        dunning.on_success(session, sub, invoice, payment, trigger)
        if sub.status != "cancelled" and invoice.period_start == sub.current_period_start:
            allocation.allocate_period(session, sub)
    elif invoice.kind == "proration":
        event = subscriptions.proration_for_invoice(session, invoice)
        if event is not None:
            subscriptions.apply_proration(session, event)
    elif invoice.kind == "credit_pack":
        purchase = session.scalar(select(CreditPackPurchase).where(CreditPackPurchase.invoice_id == invoice.id))
        if purchase is not None:
            allocation.grant_pack(session, purchase)
    elif invoice.kind in license_settlement.KINDS:
        license_settlement.on_paid(session, invoice, payment)


def _on_failed(session, invoice: Invoice, payment: PaymentTransaction, trigger: str) -> None:
    sub = session.get(Subscription, invoice.subscription_id) if invoice.subscription_id else None
    if invoice.kind == "period" and sub is not None:
        dunning.on_failure(session, sub, invoice, payment, trigger)
    else:
        _on_abandoned(session, invoice, payment)


def _on_abandoned(session, invoice: Invoice, payment: PaymentTransaction) -> None:
    """A one-off charge (tier change, credit pack) that did not go through: drop it whole."""
    if invoice.kind == "proration":
        event = subscriptions.proration_for_invoice(session, invoice)
        if event is not None:
            subscriptions.fail_proration(event, payment.failure_message or payment.failure_code or "payment failed")
        invoices.void(invoice)
    elif invoice.kind == "credit_pack":
        purchase = session.scalar(select(CreditPackPurchase).where(CreditPackPurchase.invoice_id == invoice.id))
        if purchase is not None and purchase.status == "pending":
            purchase.status = "failed"
        invoices.void(invoice)
    elif invoice.kind in license_settlement.KINDS:
        license_settlement.on_abandoned(session, invoice, payment)


def settle_from_stripe(session, payment: PaymentTransaction, trigger: str = "reconcile") -> bool:
    """Look the payment up at Stripe and settle it (after a crash, or for a webhook whose
    payload is older than what we know)."""
    outcome = gateway.retrieve_payment_intent(payment_intent_id=payment.stripe_payment_intent_id,
                                              is_test=testmode.is_test_row(payment))
    changed = settle(session, payment, outcome, trigger)
    session.commit()
    return changed


def reconcile_unfinished(session, older_than: timedelta = timedelta(minutes=10), limit: int = 100) -> dict:
    """Finish charges a crash or an outage left `pending`/`processing`: resume them, so the
    rows end as Stripe says (see payments.py)."""
    cutoff = clock.now() - older_than
    rows = list(session.scalars(select(PaymentTransaction).where(
        PaymentTransaction.kind == "charge", PaymentTransaction.status.in_(payments.UNFINISHED),
        PaymentTransaction.updated_at <= cutoff).order_by(PaymentTransaction.id).limit(limit)))
    counts = {"resumed": 0, "unreachable": 0}
    for payment in rows:
        invoice = session.get(Invoice, payment.invoice_id)
        try:
            if invoice is not None and invoice.status == "open":
                collect(session, invoice, trigger="reconcile")
            elif payment.stripe_payment_intent_id:
                settle_from_stripe(session, payment)
            counts["resumed"] += 1
        except GatewayError:
            counts["unreachable"] += 1
    return counts


def run_due_retries(session) -> dict:
    """The dunning job: retry what is due, cancel what ran out of grace."""
    counts = {"retried": 0, "recovered": 0, "failed": 0, "unreachable": 0, "cancelled": 0}
    for invoice in dunning.due_invoices(session):
        try:
            payment = collect(session, invoice, trigger="scheduled")
        except GatewayError:
            counts["unreachable"] += 1
            continue
        counts["retried"] += 1
        counts["recovered" if payment.status == "succeeded" else "failed"] += 1
    for sub in dunning.expired_grace(session):
        dunning.end_grace(session, sub)
        session.commit()
        counts["cancelled"] += 1
    return counts
