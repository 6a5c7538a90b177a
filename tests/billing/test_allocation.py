"""Monthly credit allocation (seed 001 scenarios 1 and 2), idempotent per (subscription, period)."""
from decimal import Decimal

from app.billing import allocation, changes, renewal, subscriptions
from app.billing.models import Invoice, PaymentTransaction, PeriodAllocation
from app.core import clock
from app.credits import balances
from app.credits.models import CreditAllocation
from tests.billing.conftest import utc


def test_scenario_1_free_user_resets_to_100(session, make_user, tiers):
    """Free tier: 100 credits, spends 16, the next period resets to 100 (no rollover on free)."""
    clock.freeze(utc("2025-11-01T00:00:00"))
    try:
        user = make_user()
        sub = subscriptions.provision_free(session, user)
        session.commit()
        assert sub.tier.name == "free" and sub.status == "active"
        assert balances.get_balance(session, user.id).subscription_credits == 100
        balances.deduct(session, user.id, 16, "inference")
        assert balances.get_balance(session, user.id).subscription_credits == 84

        clock.freeze(utc("2025-12-01T00:30:00"))
        assert renewal.run(session)["renewed"] == 1
        assert sub.current_period_start == utc("2025-12-01T00:00:00")
        assert balances.get_balance(session, user.id).subscription_credits == 100
        row = allocation.allocated(session, sub)
        assert (row.allocated, row.rolled_over, row.expired) == (100, 0, 84)
        assert session.query(Invoice).filter_by(subscription_id=sub.id).count() == 0  # free periods are not invoiced
    finally:
        clock.reset()


def test_scenario_2_pro_subscription_payment(session, make_user, tiers):
    """Pro created 2025-11-01: invoice generated, Stripe charge approved, invoice paid, 10,000 credits."""
    clock.freeze(utc("2025-11-01T09:00:00"))
    try:
        user = make_user()
        sub = changes.create(session, None, user, tier_name="pro", payment_method="4242424242424242",
                             reason="scenario 2")
        assert (sub.current_period_start, sub.current_period_end) == (utc("2025-11-01T00:00:00"),
                                                                      utc("2025-11-30T23:59:59"))
        invoice = session.query(Invoice).filter_by(subscription_id=sub.id, kind="period").one()
        assert invoice.total == Decimal("99.99") and invoice.status == "paid"
        payment = session.query(PaymentTransaction).filter_by(invoice_id=invoice.id).one()
        assert payment.status == "succeeded" and payment.stripe_payment_intent_id.startswith("pi_")
        assert balances.get_balance(session, user.id).subscription_credits == 10_000
        assert balances.get_balance(session, user.id).tier == "pro"
    finally:
        clock.reset()


def test_rollover_is_capped_and_the_rest_expires(session, make_sub):
    sub = make_sub("pro", card="4242424242424242", allocate=True)
    balances.deduct(session, sub.user_id, 1_000, "inference")  # 9,000 left; Pro rolls over at most 2,000
    clock.freeze(utc("2025-12-01T01:00:00"))
    try:
        renewal.run(session)
    finally:
        clock.reset()
    row = allocation.allocated(session, sub)
    assert (row.allocated, row.rolled_over, row.expired) == (10_000, 2_000, 7_000)
    assert balances.get_balance(session, sub.user_id).subscription_credits == 12_000
    sources = [a.source for a in session.query(CreditAllocation).filter_by(user_id=sub.user_id)
               .order_by(CreditAllocation.id)]
    assert sources == ["monthly_allocation", "rollover", "monthly_allocation"]


def test_allocation_runs_once_per_period(session, make_sub):
    sub = make_sub("free")
    assert allocation.allocate_period(session, sub) is not None
    assert allocation.allocate_period(session, sub) is None  # second run: nothing
    session.commit()
    from app.billing.jobs import run_allocations

    assert run_allocations(None) == {"allocated": 0}
    assert session.query(PeriodAllocation).filter_by(subscription_id=sub.id).count() == 1
    assert balances.get_balance(session, sub.user_id).subscription_credits == 100


def test_allocation_job_skips_unpaid_and_cancelled(session, make_sub):
    unpaid = make_sub("pro")
    from app.billing import invoices

    invoices.period_invoice(session, unpaid)
    cancelled = make_sub("free", status="cancelled")
    free = make_sub("free")
    session.commit()
    due = allocation.due_subscriptions(session)
    assert free in due and unpaid not in due and cancelled not in due
