"""Payment rows and the Stripe calls behind them, written so that a crash at any point
leaves rows that a retry reconciles with Stripe.

A charge is three committed steps: (1) a `pending` row with an idempotency key derived
from the invoice; (2) the PaymentIntent created with that key and its id stored; (3) the
row moved to `processing`, the intent confirmed, the outcome recorded. A retry resumes an
unfinished row instead of starting a new one: a `processing` row is first looked up at
Stripe (it may have been confirmed before the crash), so money never moves twice and the
row ends as Stripe says.
"""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from app.billing import gateway
from app.billing.gateway import GatewayError, Outcome
from app.billing.models import Invoice, PaymentTransaction, Subscription
from app.core import testmode
from app.core.errors import DomainError
from app.core.money import money, usd

UNFINISHED = ("pending", "processing")


def _commit(session) -> None:
    session.commit()


def unfinished_charge(session, invoice: Invoice) -> PaymentTransaction | None:
    return session.scalar(select(PaymentTransaction).where(
        PaymentTransaction.invoice_id == invoice.id, PaymentTransaction.kind == "charge",
        PaymentTransaction.status.in_(UNFINISHED)).order_by(PaymentTransaction.id))


def start_charge(session, invoice: Invoice, *, actor=None) -> PaymentTransaction:
    """Step 1: the pending row (or the unfinished one a crash left behind)."""
    existing = unfinished_charge(session, invoice)
    if existing is not None:
        return existing
    count = session.scalar(select(func.count()).select_from(PaymentTransaction).where(
        PaymentTransaction.invoice_id == invoice.id, PaymentTransaction.kind == "charge")) or 0
    payment = PaymentTransaction(user_id=invoice.user_id, invoice_id=invoice.id,
                                 subscription_id=invoice.subscription_id, kind="charge",
                                 amount=invoice.total - invoice.amount_paid, currency=invoice.currency,
                                 status="pending", idempotency_key=f"rephlo-inv{invoice.id}-charge{count + 1}",
                                 initiated_by_id=getattr(actor, "id", None), is_test=testmode.is_test_row(invoice))
    session.add(payment)
    _commit(session)
    return payment


def run_charge(session, payment: PaymentTransaction, *, customer_id: str, payment_method: str) -> Outcome:
    """Steps 2 and 3; a GatewayError (Stripe down) propagates with the row left resumable."""
    is_test = payment.is_test
    if payment.stripe_payment_intent_id is None:
        try:
            pi_id = gateway.create_payment_intent(
                amount=payment.amount, currency=payment.currency, customer_id=customer_id,
                payment_method=payment_method, idempotency_key=f"{payment.idempotency_key}-create", is_test=is_test,
                metadata={"payment_id": payment.id, "invoice_id": payment.invoice_id or "", "rephlo": "1"})
        except GatewayError as error:
            # No PaymentIntent was confirmed: this row ends here, the next attempt gets a new one.
            payment.status, payment.failure_code, payment.failure_message = "error", error.code, error.message[:255]
            _commit(session)
            raise
        payment.stripe_payment_intent_id = pi_id
        _commit(session)
    if payment.status == "processing":
        outcome = gateway.retrieve_payment_intent(payment_intent_id=payment.stripe_payment_intent_id, is_test=is_test)
        if outcome.status != "pending":
            return outcome
    payment.status = "processing"
    _commit(session)
    try:
        return gateway.confirm_payment_intent(payment_intent_id=payment.stripe_payment_intent_id,
                                              idempotency_key=f"{payment.idempotency_key}-confirm", is_test=is_test)
    except GatewayError as error:
        if error.status >= 500:
            raise  # unknown whether it was confirmed: the row stays `processing` for a retry to look up
        # Stripe refused the confirmation itself (say, a detached card): a failed payment.
        return Outcome(payment.stripe_payment_intent_id, "failed", None, error.code, None, error.message)


def lock(session, payment: PaymentTransaction) -> PaymentTransaction:
    """Re-read the row under a row lock (PostgreSQL), so that a webhook and the synchronous
    confirm settling the same payment at once apply it once."""
    if session.get_bind().dialect.name != "postgresql":
        return payment
    return session.scalar(select(PaymentTransaction).where(PaymentTransaction.id == payment.id)
                          .with_for_update().execution_options(populate_existing=True))


def record_outcome(payment: PaymentTransaction, outcome: Outcome, event_created: int | None = None) -> bool:
    """Apply what Stripe says; False when it changes nothing (a replay, or an older event)."""
    if payment.status in ("succeeded", "canceled"):
        return False
    if event_created is not None and payment.last_event_at is not None and event_created < payment.last_event_at:
        return False
    if outcome.status in ("pending", "processing") or outcome.status == payment.status:
        if event_created is not None:
            payment.last_event_at = max(payment.last_event_at or 0, event_created)
        return False
    payment.status = outcome.status
    payment.stripe_charge_id = outcome.charge_id or payment.stripe_charge_id
    payment.failure_code, payment.decline_code = outcome.failure_code, outcome.decline_code
    payment.failure_message = (outcome.failure_message or "")[:255] or None
    if event_created is not None:
        payment.last_event_at = max(payment.last_event_at or 0, event_created)
    return True


def succeeded_charges(session, subscription_id: int) -> list[PaymentTransaction]:
    return list(session.scalars(select(PaymentTransaction).where(
        PaymentTransaction.subscription_id == subscription_id, PaymentTransaction.kind == "charge",
        PaymentTransaction.status == "succeeded").order_by(PaymentTransaction.id.desc())))


def validate_refund(payment: PaymentTransaction, amount) -> Decimal:
    amount = money(amount, "amount")
    if payment.kind != "charge" or payment.status != "succeeded":
        raise DomainError("not_refundable", "Only a succeeded charge can be refunded.", "payment")
    if amount <= 0:
        raise DomainError("invalid_amount", "Refund a positive amount.", "amount")
    if amount > payment.refundable:
        raise DomainError("refund_exceeds_paid",
                          f"At most {payment.refundable} can be refunded on this payment "
                          f"({usd(payment.amount)} paid, {usd(payment.refunded_amount)} already refunded).", "amount")
    return amount


def refund(session, payment: PaymentTransaction, amount, *, reason: str, actor=None,
           invoice: Invoice | None = None) -> PaymentTransaction:
    """Refund part or all of a succeeded charge through Stripe; the row records the refund."""
    amount = validate_refund(payment, amount)
    if payment.stripe_payment_intent_id is None:
        raise DomainError("not_refundable", "This payment was not taken through Stripe.", "payment")
    count = session.scalar(select(func.count()).select_from(PaymentTransaction).where(
        PaymentTransaction.refund_of_id == payment.id)) or 0
    row = PaymentTransaction(user_id=payment.user_id, invoice_id=(invoice.id if invoice else payment.invoice_id),
                             subscription_id=payment.subscription_id, kind="refund", amount=amount,
                             currency=payment.currency, status="pending", refund_of_id=payment.id,
                             stripe_payment_intent_id=None, initiated_by_id=getattr(actor, "id", None),
                             idempotency_key=f"rephlo-pay{payment.id}-refund{count + 1}",
                             is_test=testmode.is_test_row(payment),
                             failure_message=None)
    session.add(row)
    _commit(session)
    try:
        refund_id, status = gateway.create_refund(
            payment_intent_id=payment.stripe_payment_intent_id, amount=amount, idempotency_key=row.idempotency_key,
            metadata={"payment_id": row.id, "refund_of": payment.id, "reason": (reason or "")[:200]},
            is_test=testmode.is_test_row(payment))
    except GatewayError as error:
        row.status, row.failure_code, row.failure_message = "error", error.code, error.message[:255]
        _commit(session)
        raise
    row.stripe_refund_id = refund_id
    row.status = "succeeded" if status == "succeeded" else "processing"
    payment.refunded_amount = payment.refunded_amount + amount
    _commit(session)
    return row


def for_subscription(session, subscription: Subscription) -> list[PaymentTransaction]:
    return list(session.scalars(select(PaymentTransaction).where(
        PaymentTransaction.subscription_id == subscription.id)
        .order_by(PaymentTransaction.created_at.desc(), PaymentTransaction.id.desc())))
