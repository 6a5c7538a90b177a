"""Refunds: staff refunds of a payment (sudo mode; above REFUND_APPROVAL_THRESHOLD they
wait for a second admin), and the money a downgrade or a cancellation gives back."""
from __future__ import annotations

from decimal import Decimal

from flask import current_app
from sqlalchemy import func, select

from app.billing import payments
from app.billing.gateway import GatewayError
from app.billing.models import Invoice, PaymentTransaction, RefundRequest, Subscription
from app.core import audit, bounds, clock, testmode
from app.core.audit import require_reason
from app.core.errors import Conflict, DomainError, PermissionDenied
from app.core.money import money
from app.rbac import service as rbac

APPROVER_MAX_HIERARCHY = 2  # admin or super_admin


def threshold() -> Decimal:
    return money(current_app.config.get("REFUND_APPROVAL_THRESHOLD", "100.00"), "REFUND_APPROVAL_THRESHOLD")


def get_payment(session, payment_id) -> PaymentTransaction:
    row_id = bounds.parse_id(payment_id, "payment")
    payment = session.get(PaymentTransaction, row_id) if row_id else None
    if payment is None:
        raise DomainError("resource_missing", "No such payment.", "payment", status=404)
    return payment


def committed_refunds(session, payment: PaymentTransaction) -> Decimal:
    """Money going back on this payment: its refunds (in flight too, so two refunds at once each
    see the other) and the requests still waiting for approval."""
    refunded = session.scalar(select(func.coalesce(func.sum(PaymentTransaction.amount), 0)).where(
        PaymentTransaction.refund_of_id == payment.id, PaymentTransaction.kind == "refund",
        PaymentTransaction.status.in_(("pending", "processing", "succeeded"))))
    waiting = session.scalar(select(func.coalesce(func.sum(RefundRequest.amount), 0)).where(
        RefundRequest.payment_id == payment.id, RefundRequest.status == "pending"))
    return (Decimal(str(refunded)) + Decimal(str(waiting))).quantize(Decimal("0.01"))


def request_refund(session, actor, payment: PaymentTransaction, amount, *, reason: str):
    """Refund now, or file an approval request when the refunds of this payment, this one
    included, pass the threshold (so splitting a large refund into small ones still needs the
    second admin); returns the refund row or the request. Nothing is written when refused."""
    reason = require_reason(reason)
    if not rbac.has_permission(session, actor, "subscriptions.refund"):
        raise PermissionDenied("You need the subscriptions.refund permission.", permission="subscriptions.refund")
    amount = payments.validate_refund(payment, amount)
    payment = payments.lock(session, payment)  # one refund decision at a time per payment
    before = committed_refunds(session, payment)
    if before + amount > threshold():
        request = RefundRequest(payment_id=payment.id, subscription_id=payment.subscription_id, amount=amount,
                                reason=reason, requested_by_id=actor.id, is_test=testmode.is_test_row(payment))
        session.add(request)
        session.flush()
        audit.record(session, "billing.refund_requested", actor=actor, target=request, target_type="refund_request",
                     after={"payment": payment.id, "amount": str(amount), "threshold": str(threshold()),
                            "refunded_before": str(before)},
                     reason=reason, is_test=testmode.is_test_row(payment))
        session.commit()
        return request
    row = payments.refund(session, payment, amount, reason=reason, actor=actor)
    audit.record(session, "billing.refund", actor=actor, target=payment, target_type="payment_transaction",
                 after={"refund": row.id, "amount": str(amount), "stripe_refund": row.stripe_refund_id},
                 reason=reason, is_test=testmode.is_test_row(payment))
    session.commit()
    return row


def ask_for_refund(session, actor, payment: PaymentTransaction, amount, *, reason: str) -> RefundRequest:
    """A refund asked for by someone who may not refund (support): always a request that an
    admin approves or declines from the queue; no money moves now."""
    reason = require_reason(reason, minimum=3)
    amount = payments.validate_refund(payment, amount)
    request = RefundRequest(payment_id=payment.id, subscription_id=payment.subscription_id, amount=amount,
                            reason=reason, requested_by_id=actor.id, is_test=testmode.is_test_row(payment))
    session.add(request)
    session.flush()
    audit.record(session, "billing.refund_requested", actor=actor, target=request, target_type="refund_request",
                 after={"payment": payment.id, "amount": str(amount), "asked_without_permission": True},
                 reason=reason, is_test=testmode.is_test_row(payment))
    session.commit()
    return request


def can_approve(session, actor, request: RefundRequest) -> bool:
    best = rbac.best_hierarchy(session, actor.id)
    return (request.status == "pending" and actor.id != request.requested_by_id and best is not None
            and best <= APPROVER_MAX_HIERARCHY and rbac.has_permission(session, actor, "subscriptions.refund"))


def _decidable(session, actor, request: RefundRequest) -> None:
    if request.status != "pending":
        raise Conflict("already_decided", f"This request is already {request.status}.", "request")
    if actor.id == request.requested_by_id:
        raise PermissionDenied("Another admin has to approve a refund you asked for.", code="own_request")
    if not can_approve(session, actor, request):
        raise PermissionDenied("Only an admin holding subscriptions.refund can decide refund requests.",
                               permission="subscriptions.refund")


def approve(session, actor, request: RefundRequest, note: str | None = None) -> PaymentTransaction:
    _decidable(session, actor, request)
    payment = session.get(PaymentTransaction, request.payment_id)
    payments.validate_refund(payment, request.amount)  # the payment may have been refunded since
    row = payments.refund(session, payment, request.amount, reason=request.reason, actor=actor)
    request.status, request.decided_by_id, request.decided_at = "approved", actor.id, clock.now()
    request.decision_note, request.refund_payment_id = (note or "").strip() or None, row.id
    audit.record(session, "billing.refund_approved", actor=actor, target=request, target_type="refund_request",
                 before={"status": "pending"}, after={"status": "approved", "refund": row.id,
                                                      "amount": str(request.amount)},
                 reason=request.decision_note or request.reason, is_test=testmode.is_test_row(request))
    session.commit()
    return row


def reject(session, actor, request: RefundRequest, note: str | None = None) -> RefundRequest:
    _decidable(session, actor, request)
    note = require_reason(note, field="note")
    request.status, request.decided_by_id, request.decided_at, request.decision_note = \
        "rejected", actor.id, clock.now(), note
    audit.record(session, "billing.refund_rejected", actor=actor, target=request, target_type="refund_request",
                 before={"status": "pending"}, after={"status": "rejected"}, reason=note,
                 is_test=testmode.is_test_row(request))
    session.commit()
    return request


def pending(session, include_test: bool) -> list[RefundRequest]:
    stmt = select(RefundRequest).where(RefundRequest.status == "pending")
    if not include_test:
        stmt = stmt.where(RefundRequest.is_test.is_(False))
    return list(session.scalars(stmt.order_by(RefundRequest.created_at)))


def credit_back(session, sub: Subscription, invoice: Invoice, amount: Decimal, *, actor, reason: str) -> None:
    """Give back a downgrade's or cancellation's net through a refund of the latest payment
    that covers it; otherwise the negative invoice stays open and credits the next one."""
    for payment in payments.succeeded_charges(session, sub.id):
        if payment.refundable >= amount and payment.stripe_payment_intent_id:
            try:
                payments.refund(session, payment, amount, reason=reason, actor=actor, invoice=invoice)
            except GatewayError:
                return  # the open credit invoice still owes it; staff can refund by hand
            invoice.status, invoice.amount_paid, invoice.paid_at = "paid", invoice.total, clock.now()
            session.commit()
            return


def for_subscription(session, subscription_id: int) -> list[RefundRequest]:
    return list(session.scalars(select(RefundRequest).where(RefundRequest.subscription_id == subscription_id)
                                .order_by(RefundRequest.id.desc())))
