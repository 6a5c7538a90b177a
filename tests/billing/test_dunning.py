"""Dunning walked through with the clock: seed 001 scenario 7, the whole schedule into grace
and cancellation, a hard decline, and recovery. Charges go to the Stripe emulator: the card
4000000000000341 attaches but declines at charge time."""
from datetime import timedelta
from decimal import Decimal

import pytest

from app.billing import allocation, changes, collection, renewal
from app.billing.models import DunningAttempt, Invoice, PaymentTransaction
from app.core import clock
from app.credits import balances
from app.notifications.models import OutboxMessage
from tests.billing.conftest import utc

DECLINES = "4000000000000341"


@pytest.fixture
def at():
    def move(text: str):
        clock.freeze(utc(text))

    yield move
    clock.reset()


@pytest.fixture
def failing_renewal(session, make_sub, at):
    """A Pro subscription whose November renewal (2025-11-01 06:00) is declined."""
    at("2025-10-01T00:00:00")
    sub = make_sub("pro", start="2025-10-01", card=DECLINES, allocate=True)
    at("2025-11-01T06:00:00")
    counts = renewal.run(session)
    assert counts["renewed"] == 1 and counts["failed"] == 1
    invoice = session.query(Invoice).filter_by(subscription_id=sub.id, period_key="2025-11-01").one()
    return sub, invoice


def _attempts(session, invoice):
    return [(a.attempt_number, a.trigger, a.result) for a in
            session.query(DunningAttempt).filter_by(invoice_id=invoice.id).order_by(DunningAttempt.id)]


def test_scenario_7_declines_then_card_update_and_manual_payment(session, failing_renewal, at):
    sub, invoice = failing_renewal
    assert sub.status == "past_due" and invoice.status == "open" and invoice.total == Decimal("99.99")
    assert invoice.next_retry_at == utc("2025-11-02T06:00:00")
    # No new credits while the period is unpaid.
    assert allocation.allocated(session, sub) is None

    at("2025-11-02T07:00:00")  # dunning attempt 1: declined, next retry 2025-11-05
    assert collection.run_due_retries(session)["failed"] == 1
    assert invoice.next_retry_at == utc("2025-11-05T06:00:00")
    at("2025-11-05T07:00:00")  # dunning attempt 2: declined, next retry 2025-11-08
    collection.run_due_retries(session)
    assert invoice.next_retry_at == utc("2025-11-08T06:00:00")

    at("2025-11-06T10:00:00")  # the customer puts a new card on file (charged the next day)
    changes.attach_card(session, sub.user, sub, "pm_card_visa", reason="new card", retry=False)
    assert invoice.status == "open"
    at("2025-11-07T09:00:00")  # manual payment: approved
    payment = changes.retry_open_invoice(session, None, sub)
    assert payment.status == "succeeded"
    assert invoice.status == "paid" and invoice.next_retry_at is None and sub.status == "active"
    assert _attempts(session, invoice) == [(0, "renewal", "failed"), (1, "scheduled", "failed"),
                                           (2, "scheduled", "failed"), (3, "manual", "succeeded")]
    # The period's credits arrive with the payment; dunning is over: nothing more on 11-08.
    assert allocation.allocated(session, sub) is not None
    at("2025-11-08T07:00:00")
    assert collection.run_due_retries(session)["retried"] == 0
    notices = session.query(OutboxMessage).filter_by(user_id=sub.user_id, kind="payment_failed").count()
    assert notices == 3


def test_schedule_runs_out_into_grace_then_cancellation(session, failing_renewal, at):
    sub, invoice = failing_renewal
    for day in ("2025-11-02T07:00:00", "2025-11-05T07:00:00", "2025-11-08T07:00:00"):
        at(day)
        collection.run_due_retries(session)
    assert invoice.next_retry_at is None
    assert sub.status == "grace_period" and sub.grace_until == utc("2025-11-15T07:00:00")
    # Credits stay usable during grace.
    balances.deduct(session, sub.user_id, 10, "inference")
    at("2025-11-15T06:59:00")
    assert collection.run_due_retries(session)["cancelled"] == 0
    at("2025-11-15T08:00:00")
    assert collection.run_due_retries(session)["cancelled"] == 1
    assert sub.status == "cancelled" and invoice.status == "uncollectible"
    assert [a[2] for a in _attempts(session, invoice)] == ["failed"] * 4
    kinds = [m.kind for m in session.query(OutboxMessage).filter_by(user_id=sub.user_id).order_by(OutboxMessage.id)]
    assert kinds == ["payment_failed"] * 4 + ["subscription_cancelled_unpaid"]
    assert {m.status for m in session.query(OutboxMessage).filter_by(user_id=sub.user_id)} == {"queued"}
    # A cancelled subscription is neither renewed nor allocated.
    at("2025-12-01T06:00:00")
    assert renewal.run(session)["renewed"] == 0
    assert sub not in allocation.due_subscriptions(session)


def test_hard_decline_is_not_retried_and_a_new_card_recovers(session, make_sub, at):
    at("2025-10-01T00:00:00")
    sub = make_sub("pro", start="2025-10-01", card="4242424242424242", allocate=True)
    at("2025-11-01T06:00:00")
    renewal_invoice = renewal.open_next_period(session, sub)
    payment = collection.payments.start_charge(session, renewal_invoice)
    # Stripe answers (here as a webhook would) that the card is reported stolen.
    outcome = collection.gateway.Outcome("pi_hard_decline", "failed", None, "card_declined", "stolen_card",
                                         "Your card was declined.")
    collection.settle(session, payment, outcome, "renewal")
    session.commit()
    assert renewal_invoice.hard_declined and renewal_invoice.next_retry_at is None
    assert sub.status == "grace_period"
    assert _attempts(session, renewal_invoice) == [(0, "renewal", "hard_decline")]
    at("2025-11-02T07:00:00")
    assert collection.run_due_retries(session)["retried"] == 0  # no retry after a hard decline
    notice = session.query(OutboxMessage).filter_by(user_id=sub.user_id, kind="payment_failed").one()
    assert "will not retry" in notice.body

    at("2025-11-03T09:00:00")  # the customer adds a new card: retried at once, dunning ends
    changes.attach_card(session, sub.user, sub, "pm_card_visa", reason="new card")
    assert renewal_invoice.status == "paid" and sub.status == "active" and sub.grace_until is None
    assert _attempts(session, renewal_invoice)[-1] == (1, "card_update", "succeeded")


def test_notices_for_test_accounts_are_suppressed(session, make_user, make_sub, at):
    at("2025-10-01T00:00:00")
    sub = make_sub("pro", start="2025-10-01", user=make_user(test=True), card=DECLINES, allocate=True)
    at("2025-11-01T06:00:00")
    renewal.run(session)
    notice = session.query(OutboxMessage).filter_by(user_id=sub.user_id).one()
    assert notice.status == "suppressed" and notice.is_test
    assert session.query(PaymentTransaction).filter_by(subscription_id=sub.id, status="failed").one().is_test


def test_retry_schedule_is_configurable(app, session, failing_renewal, at):
    sub, invoice = failing_renewal
    assert invoice.next_retry_at - invoice.first_failed_at == timedelta(days=1)
    app.config["DUNNING_RETRY_DAYS"] = "2"
    try:
        at("2025-11-02T07:00:00")
        assert collection.run_due_retries(session)["failed"] == 1
        assert invoice.next_retry_at is None and sub.status == "grace_period"  # the only retry was used
    finally:
        app.config["DUNNING_RETRY_DAYS"] = "1,4,7"
