"""Stripe webhooks: verified, stored by event id (a redelivery is a no-op), processed by a job.

Processing tolerates out-of-order delivery: an event only moves a payment forward
(collection.settle refuses to undo a success or apply an older event), and an event about
a PaymentIntent we have not recorded yet (it raced our own commit) is deferred and
retried by the periodic job instead of being lost.
"""
from __future__ import annotations

import json

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from app.billing import collection, gateway
from app.billing.models import PaymentTransaction, StripeEvent
from app.core import clock
from app.core.errors import DomainError

PAYMENT_EVENTS = ("payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled")
MAX_DEFERRALS = 20


def receive(session, payload: bytes, signature: str | None) -> tuple[StripeEvent, bool]:
    """Verify and store; returns (row, is_new). A forged or malformed body raises (400)."""
    event = gateway.construct_event(payload, signature)
    existing = session.get(StripeEvent, event.id)
    if existing is not None:
        return existing, False
    try:
        body = json.loads(payload)
    except ValueError:
        raise DomainError("invalid_payload", "The webhook body is not JSON.", status=400) from None
    row = StripeEvent(id=event.id, type=event.type, created=int(event.created or 0),
                      livemode=bool(getattr(event, "livemode", False)), payload=body, status="received")
    session.add(row)
    try:
        session.commit()
    except IntegrityError:  # the same event delivered twice at once
        session.rollback()
        return session.get(StripeEvent, event.id), False
    return row, True


def _payment_for(session, obj: dict) -> PaymentTransaction | None:
    metadata = obj.get("metadata") or {}
    conditions = [PaymentTransaction.stripe_payment_intent_id == obj.get("id")]
    if str(metadata.get("payment_id", "")).isdigit():
        conditions.append(PaymentTransaction.id == int(metadata["payment_id"]))
    return session.scalar(select(PaymentTransaction).where(PaymentTransaction.kind == "charge", or_(*conditions)))


def process(session, event_id: str) -> str:
    """Apply one stored event; returns its status."""
    row = session.get(StripeEvent, event_id)
    if row is None or row.status in ("processed", "ignored"):
        return row.status if row else "missing"
    row.attempts += 1
    obj = (row.payload.get("data") or {}).get("object") or {}
    if row.type not in PAYMENT_EVENTS:
        row.status = "ignored"
    else:
        payment = _payment_for(session, obj)
        if payment is None:
            ours = (obj.get("metadata") or {}).get("rephlo") == "1"
            row.status = "deferred" if ours and row.attempts < MAX_DEFERRALS else "ignored"
            row.error = "no payment row for this PaymentIntent yet" if ours else "not a Rephlo payment"
        else:
            if payment.stripe_payment_intent_id is None:
                payment.stripe_payment_intent_id = obj.get("id")
            collection.settle(session, payment, gateway.outcome_of(obj), "webhook", event_created=row.created)
            row.status, row.error = "processed", None
    row.processed_at = clock.now() if row.status in ("processed", "ignored") else None
    session.commit()
    return row.status


def deferred(session, limit: int = 200) -> list[str]:
    return list(session.scalars(select(StripeEvent.id).where(StripeEvent.status.in_(("deferred", "received")))
                                .order_by(StripeEvent.created).limit(limit)))
