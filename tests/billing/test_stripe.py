"""The Stripe path against localstripe: charges, declines, recovery after a card change,
signed webhooks (forged ones refused, duplicates no-ops, out-of-order ones harmless), and
the emulator stopped."""
import hashlib
import hmac
import json
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests

from app.billing import changes, collection, gateway, invoices, payments
from app.billing.models import Invoice, PaymentTransaction, StripeEvent
from app.core.errors import DomainError
from tests.billing.conftest import WEBHOOK_SECRET, free_port


def signed(payload: dict, secret: str = WEBHOOK_SECRET, at: int | None = None) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    stamp = at or int(time.time())
    sig = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={stamp},v1={sig}"


def event(event_id: str, kind: str, pi: dict, created: int | None = None) -> dict:
    return {"id": event_id, "object": "event", "type": kind, "created": created or int(time.time()),
            "livemode": False, "data": {"object": pi}}


def post(client, body: bytes, signature: str | None):
    headers = {"Content-Type": "application/json"}
    if signature:
        headers["Stripe-Signature"] = signature
    return client.post("/webhooks/stripe", data=body, headers=headers)


def test_subscribe_decline_then_recover_after_card_change(session, make_user, tiers):
    good = changes.create(session, None, make_user(), tier_name="pro", payment_method="4242424242424242",
                          reason="subscribe")
    paid = session.query(Invoice).filter_by(subscription_id=good.id).one()
    assert paid.status == "paid" and good.stripe_customer_id.startswith("cus_")

    sub = changes.create(session, None, make_user(), tier_name="pro", payment_method="4000000000000341",
                         reason="subscribe with a card that declines")
    invoice = session.query(Invoice).filter_by(subscription_id=sub.id).one()
    failed = session.query(PaymentTransaction).filter_by(invoice_id=invoice.id).one()
    assert failed.status == "failed" and failed.failure_code == "card_declined"
    assert failed.stripe_payment_intent_id.startswith("pi_")
    assert gateway.retrieve_payment_intent(payment_intent_id=failed.stripe_payment_intent_id,
                                           is_test=False).status == "failed"
    assert sub.status == "past_due" and invoice.status == "open"

    changes.attach_card(session, sub.user, sub, "4242424242424242", reason="card change")
    assert invoice.status == "paid" and sub.status == "active"
    ok = session.query(PaymentTransaction).filter_by(invoice_id=invoice.id, status="succeeded").one()
    assert gateway.retrieve_payment_intent(payment_intent_id=ok.stripe_payment_intent_id,
                                           is_test=False).status == "succeeded"


def test_webhook_with_a_wrong_signature_is_refused(client, session):
    body, _ = signed(event("evt_forged", "payment_intent.succeeded", {"id": "pi_x", "status": "succeeded"}))
    _, bad = signed({"other": "payload"})
    for signature in (None, "t=1,v1=deadbeef", bad, signed({}, secret="whsec_wrong")[1]):
        response = post(client, body, signature)
        assert response.status_code == 400, signature
    assert session.query(StripeEvent).count() == 0


def test_duplicate_webhook_is_a_no_op_and_out_of_order_events_cannot_undo(client, session, make_sub):
    sub = make_sub("pro", card="4242424242424242")
    invoice = invoices.period_invoice(session, sub)
    session.commit()
    payment = payments.start_charge(session, invoice)
    pi_id = gateway.create_payment_intent(amount=invoice.total, currency="usd", customer_id=sub.stripe_customer_id,
                                          payment_method=sub.default_payment_method_id, idempotency_key="k1",
                                          is_test=False, metadata={"payment_id": payment.id, "rephlo": "1"})
    now = int(time.time())
    succeeded = {"id": pi_id, "object": "payment_intent", "status": "succeeded", "latest_charge": "ch_1",
                 "metadata": {"payment_id": str(payment.id), "rephlo": "1"}}
    body, sig = signed(event("evt_ok", "payment_intent.succeeded", succeeded, now))
    first = post(client, body, sig)
    assert first.status_code == 200 and first.get_json()["duplicate"] is False
    session.expire_all()
    assert payment.status == "succeeded" and payment.stripe_payment_intent_id == pi_id
    assert invoice.status == "paid" and invoice.amount_paid == Decimal("99.99")

    again = post(client, body, sig)
    assert again.get_json()["duplicate"] is True
    assert session.query(StripeEvent).filter_by(id="evt_ok").count() == 1
    session.expire_all()
    assert invoice.amount_paid == Decimal("99.99")  # not paid twice

    failed = {**succeeded, "status": "requires_payment_method",
              "last_payment_error": {"code": "card_declined", "message": "declined"}}
    body, sig = signed(event("evt_late_failure", "payment_intent.payment_failed", failed, now - 60))
    assert post(client, body, sig).status_code == 200
    session.expire_all()
    assert payment.status == "succeeded" and invoice.status == "paid" and sub.status == "active"


def test_webhook_before_the_payment_row_is_deferred_then_applied(client, session, make_sub):
    from app.billing import webhooks

    sub = make_sub("pro", card="4242424242424242")
    invoice = invoices.period_invoice(session, sub)
    session.commit()
    pi = {"id": "pi_not_recorded_yet", "status": "succeeded", "metadata": {"rephlo": "1", "payment_id": "999999"}}
    body, sig = signed(event("evt_early", "payment_intent.succeeded", pi))
    post(client, body, sig)
    assert session.get(StripeEvent, "evt_early").status == "deferred"
    payment = payments.start_charge(session, invoice)
    payment.stripe_payment_intent_id = "pi_not_recorded_yet"
    session.commit()
    assert webhooks.process(session, "evt_early") == "processed"
    assert invoice.status == "paid"


def test_localstripe_signs_webhooks_that_we_verify(app, client, session, make_sub, stripe_emulator):
    """localstripe posts signed events to a receiver; the same bytes verify at /webhooks/stripe."""
    received: list[tuple[bytes, str]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, self.headers["Stripe-Signature"]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    port = free_port()
    server = HTTPServer(("127.0.0.1", port), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        requests.post(f"{stripe_emulator}/_config/webhooks/rephlo-test",
                      data={"url": f"http://127.0.0.1:{port}/", "secret": WEBHOOK_SECRET,
                            "events[]": ["payment_intent.succeeded"]}, timeout=5).raise_for_status()
        sub = make_sub("pro", card="4242424242424242")
        invoice = invoices.period_invoice(session, sub)
        session.commit()
        payment = collection.collect(session, invoice, trigger="signup")
        deadline = time.time() + 10
        while time.time() < deadline and not any(payment.stripe_payment_intent_id.encode() in b for b, _ in received):
            time.sleep(0.2)
    finally:
        requests.post(f"{stripe_emulator}/_config/webhooks/rephlo-test",  # stop sending to the receiver
                      data={"url": f"http://127.0.0.1:{port}/", "secret": WEBHOOK_SECRET, "events[]": ["none"]},
                      timeout=5)
        server.shutdown()
        server.server_close()
    body, signature = next((b, s) for b, s in received if payment.stripe_payment_intent_id.encode() in b)
    response = post(client, body, signature)
    assert response.status_code == 200 and response.get_json()["duplicate"] is False
    stored = session.get(StripeEvent, response.get_json()["id"])
    assert stored.type == "payment_intent.succeeded" and stored.status == "processed"
    assert payment.status == "succeeded"  # already recorded by the confirm: the event changed nothing


def test_stripe_down_gives_a_clear_error_and_nothing_half_written(session, make_sub, stripe_down):
    sub = make_sub("pro")
    sub.stripe_customer_id, sub.default_payment_method_id = "cus_unreachable", "pm_unreachable"
    invoice = invoices.period_invoice(session, sub)
    session.commit()
    with pytest.raises(DomainError) as err:
        collection.collect(session, invoice, trigger="manual")
    assert err.value.code == "payment_gateway_unavailable" and err.value.status == 503
    assert "cannot be reached" in err.value.message
    payment = session.query(PaymentTransaction).filter_by(invoice_id=invoice.id).one()
    assert payment.status == "error" and payment.stripe_payment_intent_id is None
    assert invoice.status == "open" and invoice.attempt_count == 0 and sub.status == "active"


def test_test_accounts_never_use_a_live_key(app, session, make_user, make_sub):
    app.config["STRIPE_API_KEY"] = "sk_live_realmoney"
    sub = make_sub("pro", user=make_user(test=True))
    with pytest.raises(DomainError) as err:
        changes.attach_card(session, None, sub, "4242424242424242", reason="test")
    assert err.value.code == "live_key_refused"
    assert sub.stripe_customer_id is None
    app.config["STRIPE_TEST_API_KEY"] = "sk_test_sandbox"
    changes.attach_card(session, None, sub, "4242424242424242", reason="test")
    assert sub.stripe_customer_id.startswith("cus_")
