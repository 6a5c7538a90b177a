"""POST /webhooks/stripe: Stripe's (or localstripe's) signed events. CSRF-exempt: the
signature, checked against STRIPE_WEBHOOK_SECRET, is the authentication."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from app.billing import webhooks
from app.core.errors import DomainError
from app.core.jobs import enqueue
from app.extensions import db

bp = Blueprint("billing_webhooks", __name__)


@bp.post("/webhooks/stripe")
def stripe_webhook():
    try:
        event, is_new = webhooks.receive(db.session, request.get_data(), request.headers.get("Stripe-Signature"))
    except DomainError as error:
        db.session.rollback()
        return jsonify({"error": {"code": error.code, "message": error.message}}), error.status
    if is_new:
        enqueue("stripe_webhook", "app.billing.jobs:process_stripe_event", event.id)
    return jsonify({"received": True, "id": event.id, "duplicate": not is_new})
