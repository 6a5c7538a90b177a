"""Renewal is idempotent per (subscription, period): run twice, or killed at each step of the
charge, it ends with one invoice and one payment row that agree with Stripe."""
from decimal import Decimal

import pytest

from app.billing import collection, gateway, invoices, payments, renewal
from app.billing.models import Invoice, PaymentTransaction, PeriodAllocation
from app.core import clock
from app.credits import balances
from tests.billing.conftest import utc


@pytest.fixture
def due_sub(session, make_sub):
    clock.freeze(utc("2025-10-01T00:00:00"))
    sub = make_sub("pro", start="2025-10-01", card="4242424242424242", allocate=True)
    clock.freeze(utc("2025-11-01T03:00:00"))
    yield sub
    clock.reset()


def _state(session, sub):
    rows = session.query(Invoice).filter_by(subscription_id=sub.id, kind="period", period_key="2025-11-01").all()
    pays = session.query(PaymentTransaction).filter(PaymentTransaction.invoice_id.in_([i.id for i in rows])).all()
    return rows, pays


def _agrees_with_stripe(payment):
    assert payment.stripe_payment_intent_id
    outcome = gateway.retrieve_payment_intent(payment_intent_id=payment.stripe_payment_intent_id, is_test=False)
    assert outcome.status == payment.status == "succeeded"


def test_renewal_run_twice_invoices_and_charges_once(session, due_sub):
    first = renewal.run(session)
    second = renewal.run(session)
    assert (first["renewed"], first["charged"]) == (1, 1)
    assert (second["renewed"], second["charged"]) == (0, 0)
    rows, pays = _state(session, due_sub)
    assert len(rows) == 1 and len(pays) == 1 and rows[0].status == "paid"
    assert rows[0].total == Decimal("99.99") and rows[0].period_end == utc("2025-11-30T23:59:59")
    _agrees_with_stripe(pays[0])
    assert session.query(PeriodAllocation).filter_by(subscription_id=due_sub.id).count() == 2  # Oct and Nov
    assert balances.get_balance(session, due_sub.user_id).subscription_credits == 12_000  # 2,000 rolled + 10,000


def test_killed_after_opening_the_period(session, due_sub):
    renewal.open_next_period(session, due_sub)  # ... and the process dies before charging
    rows, pays = _state(session, due_sub)
    assert len(rows) == 1 and rows[0].status == "open" and pays == []
    assert renewal.run(session)["charged"] == 1
    rows, pays = _state(session, due_sub)
    assert len(pays) == 1 and rows[0].status == "paid"
    _agrees_with_stripe(pays[0])


def test_killed_before_the_payment_intent_was_created(session, due_sub):
    invoice = renewal.open_next_period(session, due_sub)
    payments.start_charge(session, invoice)  # the pending row is written, then the process dies
    renewal.run(session)
    rows, pays = _state(session, due_sub)
    assert len(pays) == 1 and pays[0].status == "succeeded" and rows[0].status == "paid"
    _agrees_with_stripe(pays[0])


def test_killed_after_stripe_confirmed_but_before_we_recorded_it(session, due_sub):
    invoice = renewal.open_next_period(session, due_sub)
    payment = payments.start_charge(session, invoice)
    # Steps 2 and 3 reach Stripe (money moves), then the process dies before recording.
    payments.run_charge(session, payment, customer_id=due_sub.stripe_customer_id,
                        payment_method=due_sub.default_payment_method_id)
    assert payment.status == "processing" and invoice.status == "open"
    renewal.run(session)  # the retry looks the intent up instead of charging again
    rows, pays = _state(session, due_sub)
    assert len(pays) == 1 and pays[0].id == payment.id and rows[0].status == "paid"
    assert rows[0].amount_paid == Decimal("99.99")
    _agrees_with_stripe(pays[0])


def test_reconcile_job_finishes_unfinished_charges(session, due_sub):
    invoice = renewal.open_next_period(session, due_sub)
    payment = payments.start_charge(session, invoice)
    payments.run_charge(session, payment, customer_id=due_sub.stripe_customer_id,
                        payment_method=due_sub.default_payment_method_id)
    clock.freeze(utc("2025-11-01T04:00:00"))
    assert collection.reconcile_unfinished(session)["resumed"] == 1
    assert payment.status == "succeeded" and invoice.status == "paid"


def test_cancel_at_period_end_stops_renewal(session, due_sub):
    due_sub.cancel_at_period_end = True
    session.commit()
    assert renewal.run(session)["ended"] == 1
    assert due_sub.status == "cancelled" and due_sub.cancelled_at == utc("2025-10-31T23:59:59")
    assert session.query(Invoice).filter_by(subscription_id=due_sub.id).count() == 0


def test_stripe_down_during_renewal_then_recovered(app, session, due_sub, stripe_emulator):
    app.config["STRIPE_API_BASE"] = "http://127.0.0.1:9"
    counts = renewal.run(session)
    assert counts["renewed"] == 1 and counts["unreachable"] == 1
    rows, pays = _state(session, due_sub)
    assert rows[0].status == "open" and [p.status for p in pays] == ["error"]
    assert due_sub.status == "active"  # an outage is not the customer's failure
    app.config["STRIPE_API_BASE"] = stripe_emulator
    assert renewal.run(session)["charged"] == 1
    rows, pays = _state(session, due_sub)
    assert rows[0].status == "paid" and sorted(p.status for p in pays) == ["error", "succeeded"]
    _agrees_with_stripe(next(p for p in pays if p.status == "succeeded"))
    assert invoices.find_period_invoice(session, due_sub.id, utc("2025-11-01T00:00:00")) is rows[0]
