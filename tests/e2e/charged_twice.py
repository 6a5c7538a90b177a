"""A customer (a test account, like the seed's: the staff personas are test personas, and test
mode may only change test rows) charged twice through Stripe (localstripe) for one invoice, made on the
browser-test server's database before the "charged twice" case: the seed's payments never went
through Stripe, so only a payment made here can be refunded for real from the browser.
Run as `python -m tests.e2e.charged_twice` with the server's environment; prints JSON."""
from __future__ import annotations

import json

EMAIL = "charged.twice@example.com"


def create_customer() -> dict:
    from app import create_app
    from app.billing import changes, invoices, payments, subscriptions, tiers
    from app.billing.models import PaymentTransaction
    from app.extensions import db
    from app.users.models import User

    app = create_app()
    with app.app_context():
        session = db.session
        user = User(email=EMAIL, first_name="Charged", last_name="Twice", account_type="test", email_verified=True)
        session.add(user)
        session.flush()
        sub = subscriptions.new_subscription(session, user, tiers.get_tier(session, "pro"))
        invoice = invoices.period_invoice(session, sub)
        session.commit()
        changes.attach_card(session, None, sub, "4242424242424242", reason="e2e: card on file")  # collects the invoice
        first = session.query(PaymentTransaction).filter_by(invoice_id=invoice.id, status="succeeded").one()
        # The duplicate: the same amount again for the same invoice (a double submit on the checkout).
        second = PaymentTransaction(user_id=user.id, invoice_id=invoice.id, subscription_id=sub.id, kind="charge",
                                    amount=first.amount, currency=first.currency, status="pending", is_test=True,
                                    idempotency_key=f"e2e-inv{invoice.id}-duplicate")
        session.add(second)
        session.commit()
        outcome = payments.run_charge(session, second, customer_id=sub.stripe_customer_id,
                                      payment_method=sub.default_payment_method_id)
        payments.record_outcome(second, outcome)
        session.commit()
        assert first.status == second.status == "succeeded", (first.status, second.status)
        return {"email": EMAIL, "user_id": user.id, "subscription_id": sub.id, "duplicate_payment_id": second.id,
                "amount": str(second.amount), "payment_intent": second.stripe_payment_intent_id}


if __name__ == "__main__":
    print(json.dumps(create_customer()))
