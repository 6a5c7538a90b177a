"""What redemptions give through billing and credits, and what a reversal takes back."""
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.coupons import redemption
from app.coupons.validation import build_attempt
from tests.coupons.conftest import NOW


def redeem(session, coupon, user, at=NOW, **raw):
    attempt = build_attempt(session, coupon, user, {"amount": "99.99", **raw}, is_test=False,
                            ip_address="203.0.113.45", user_agent="Mozilla/5.0")
    attempt.at = at
    return redemption.redeem(session, coupon, attempt)


@pytest.fixture
def staff(make_user):
    return make_user(roles=("admin",))


def test_credit_coupon_grants_bonus_credits_and_reversal_takes_back_the_unspent(
        session, make_user, make_coupon, make_campaign, staff):
    from app.credits import balances
    from app.credits.models import CreditAllocation, CreditDeduction

    campaign = make_campaign(budget_limit="100.00")
    coupon = make_coupon(code="FRIEND50X", coupon_type="duration_bonus", discount_type="credits",
                         discount_value="5000", campaign=campaign)
    user = make_user()
    row = redeem(session, coupon, user, amount="0.00")
    assert (row.status, row.credits_granted, row.discount_amount, row.budget_cost) == (
        "success", 5000, Decimal("0.00"), Decimal("2.00"))
    assert balances.get_balance(session, user.id).bonus_credits == 5000
    grant = session.scalar(select(CreditAllocation).where(CreditAllocation.user_id == user.id))
    assert (grant.source, grant.amount) == ("coupon", 5000) and "FRIEND50X" in grant.reason
    assert campaign.spent == Decimal("2.00")
    balances.deduct(session, user.id, 1200, "inference")  # the customer spends some
    redemption.reverse(session, staff, row, "User requested refund")
    assert row.credits_clawed_back == 3800
    assert balances.get_balance(session, user.id).bonus_credits == 0
    taken = session.scalar(select(CreditDeduction).where(CreditDeduction.deduction_type == "coupon_reversal"))
    assert taken.amount == 3800 and taken.actor_id == staff.id
    assert campaign.spent == Decimal("0.00")


def test_reversal_never_touches_subscription_credits(session, make_user, make_coupon, staff):
    from app.credits import balances

    coupon = make_coupon(coupon_type="duration_bonus", discount_type="credits", discount_value="500")
    user = make_user()
    balances.allocate(session, user.id, 10000, "monthly_allocation")
    row = redeem(session, coupon, user, amount="0.00")
    balances.deduct(session, user.id, 10400, "inference")  # subscription first, then 400 bonus
    redemption.reverse(session, staff, row, "abuse")
    view = balances.get_balance(session, user.id)
    assert (row.credits_clawed_back, view.subscription_credits, view.bonus_credits) == (100, 0, 0)


def test_months_free_extends_the_paid_through_date(session, make_user, make_coupon, make_campaign,
                                                   make_subscription, staff, coupon_clock):
    campaign = make_campaign(budget_limit="500.00")
    coupon = make_coupon(code="PREMIUMTRIALX", coupon_type="duration_bonus", discount_type="months_free",
                         discount_value="2", campaign=campaign)
    user = make_user()
    sub = make_subscription(user=user, start=datetime(2025, 11, 1, tzinfo=timezone.utc))
    assert sub.current_period_end == datetime(2025, 11, 30, 23, 59, 59, tzinfo=timezone.utc)
    row = redeem(session, coupon, user)  # no subscription_id: the user's live subscription
    assert (row.status, row.months_granted, row.subscription_id, row.budget_cost) == (
        "success", 2, sub.id, Decimal("199.98"))
    assert sub.current_period_end == datetime(2026, 1, 31, 23, 59, 59, tzinfo=timezone.utc)
    redemption.reverse(session, staff, row, "mistake")
    assert sub.current_period_end == datetime(2025, 11, 30, 23, 59, 59, tzinfo=timezone.utc)
    assert campaign.spent == Decimal("0.00")


def test_months_free_needs_a_subscription(session, make_user, make_coupon):
    from app.core.errors import DomainError

    coupon = make_coupon(coupon_type="duration_bonus", discount_type="months_free", discount_value="1")
    with pytest.raises(DomainError) as error:
        redeem(session, coupon, make_user())
    assert error.value.code == "subscription_required"


def test_a_pending_discount_lands_on_the_next_period_invoice(session, make_user, make_coupon, make_campaign,
                                                             make_subscription):
    from app.billing import invoices, subscriptions

    campaign = make_campaign(budget_limit="100.00")
    coupon = make_coupon(discount_type="fixed_amount", coupon_type="fixed_amount_discount", discount_value="25.00",
                         campaign=campaign)
    user = make_user()
    sub = make_subscription(user=user)  # no open invoice: the period was paid already
    row = redeem(session, coupon, user, subscription_id=sub.id)
    assert (row.status, row.invoice_id, campaign.spent) == ("pending", None, Decimal("25.00"))
    sub.current_period_start, sub.current_period_end = subscriptions.next_period(sub)
    invoice = invoices.period_invoice(session, sub)
    assert (invoice.subtotal, invoice.discount, invoice.total) == (Decimal("99.99"), Decimal("25.00"),
                                                                   Decimal("74.99"))
    assert (row.status, row.invoice_id) == ("success", invoice.id)


def test_an_invoice_smaller_than_the_discount_caps_it_and_the_budget_gets_the_rest(
        session, make_user, make_coupon, make_campaign, make_subscription):
    from app.billing import invoices, subscriptions, tiers

    campaign = make_campaign(budget_limit="100.00")
    coupon = make_coupon(discount_type="fixed_amount", coupon_type="fixed_amount_discount", discount_value="80.00",
                         campaign=campaign)
    user = make_user()
    sub = make_subscription(user=user)
    row = redeem(session, coupon, user, subscription_id=sub.id)
    assert campaign.spent == Decimal("80.00")
    sub.tier = tiers.get_tier(session, "pro")
    sub.tier.monthly_price = Decimal("50.00")
    sub.current_period_start, sub.current_period_end = subscriptions.next_period(sub)
    invoice = invoices.period_invoice(session, sub)
    assert (invoice.discount, invoice.total, invoice.status) == (Decimal("50.00"), Decimal("0.00"), "paid")
    session.expire(campaign)
    assert (row.discount_amount, row.budget_cost, campaign.spent) == (
        Decimal("50.00"), Decimal("50.00"), Decimal("50.00"))


def test_reversing_a_discount_on_an_open_invoice_takes_it_off(session, make_user, make_coupon, make_subscription,
                                                              staff):
    from app.billing.invoices import find_period_invoice

    user = make_user()
    sub = make_subscription(user=user, invoice=True)
    row = redeem(session, make_coupon(discount_value="30"), user, subscription_id=sub.id)
    invoice = find_period_invoice(session, sub.id, sub.current_period_start)
    assert invoice.total == Decimal("69.99")
    redemption.reverse(session, staff, row, "wrong customer")
    assert (invoice.discount, invoice.total) == (Decimal("0.00"), Decimal("99.99"))


def test_a_discount_that_pays_the_whole_open_invoice_allocates_the_period(session, make_user, make_coupon,
                                                                          make_subscription):
    from app.credits import balances

    user = make_user()
    sub = make_subscription(user=user, invoice=True)
    row = redeem(session, make_coupon(discount_value="100"), user, subscription_id=sub.id)
    assert row.final_amount == Decimal("0.00")
    assert balances.get_balance(session, user.id).subscription_credits == 10000


def test_someone_elses_subscription_is_refused(session, make_user, make_coupon, make_subscription):
    from app.core.errors import DomainError

    other = make_subscription()
    with pytest.raises(DomainError) as error:
        redeem(session, make_coupon(), make_user(), subscription_id=other.id)
    assert (error.value.status, error.value.field) == (404, "subscription_id")


def test_an_open_invoice_smaller_than_the_discount_caps_what_the_budget_pays(
        session, make_user, make_coupon, make_campaign, make_subscription):
    from app.billing.invoices import find_period_invoice

    campaign = make_campaign(budget_limit="500.00")
    coupon = make_coupon(discount_type="fixed_amount", coupon_type="fixed_amount_discount", discount_value="150.00",
                         campaign=campaign)
    user = make_user()
    sub = make_subscription(user=user, invoice=True)
    row = redeem(session, coupon, user, amount="199.99", subscription_id=sub.id)  # the client overstated it
    invoice = find_period_invoice(session, sub.id, sub.current_period_start)
    assert (row.discount_amount, row.budget_cost, invoice.total, invoice.status) == (
        Decimal("99.99"), Decimal("99.99"), Decimal("0.00"), "paid")
    session.expire(campaign)
    assert campaign.spent == Decimal("99.99")
