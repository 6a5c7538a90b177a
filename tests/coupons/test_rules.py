"""Each validation rule, evaluated by the one service, against the real billing and credits data."""
from datetime import timedelta
from decimal import Decimal

import pytest

from app.core.errors import DomainError
from app.coupons import rules, validation
from app.coupons.models import ValidationRule
from tests.coupons.conftest import NOW


@pytest.fixture
def ruled(session, make_coupon):
    def make(rule_type, value=None, **coupon_values):
        coupon = make_coupon(**coupon_values)
        session.add(ValidationRule(coupon_id=coupon.id, rule_type=rule_type,
                                   rule_value=rules.parse_params(rule_type, value or {})))
        session.flush()
        session.expire(coupon, ["rules"])
        return coupon

    return make


def outcome(session, coupon, attempt, user):
    result = validation.check(session, coupon, attempt(user))
    return result.code, result.failed_rule


def test_first_time_user_only(session, ruled, attempt, make_user, make_coupon, make_subscription):
    from app.billing.invoices import mark_paid, period_invoice
    from app.coupons import redemption

    coupon = ruled("first_time_user_only")
    newcomer, returning, paying = make_user(), make_user(), make_user()
    assert outcome(session, coupon, attempt, newcomer) == (None, None)
    assert redemption.redeem(session, make_coupon(), attempt(returning, at=NOW - timedelta(hours=3))).status == "success"
    assert outcome(session, coupon, attempt, returning) == ("rule_failed", "first_time_user_only")
    invoice = period_invoice(session, make_subscription(user=paying))
    mark_paid(invoice, invoice.total)
    assert outcome(session, coupon, attempt, paying) == ("rule_failed", "first_time_user_only")


def test_specific_email_domain(session, ruled, attempt, make_user):
    coupon = ruled("specific_email_domain", {"domains": ["company.com", "Partner.org"]})
    assert outcome(session, coupon, attempt, make_user("ann@company.com")) == (None, None)
    assert outcome(session, coupon, attempt, make_user("bob@PARTNER.org")) == (None, None)
    assert outcome(session, coupon, attempt, make_user("eve@sub.company.com"))[0] == "rule_failed"
    result = validation.check(session, coupon, attempt(make_user("eve@example.com")))
    assert "company.com, partner.org" in result.message


@pytest.mark.parametrize("balance, passes", [(1000, True), (999, False)])
def test_minimum_credit_balance_at_its_threshold(session, ruled, attempt, make_user, balance, passes):
    from app.credits import balances

    coupon = ruled("minimum_credit_balance", {"min_balance": 1000})
    user = make_user()
    balances.allocate(session, user.id, balance - 400, "monthly_allocation")
    balances.allocate(session, user.id, 400, "promotional_bonus")
    assert (outcome(session, coupon, attempt, user)[0] is None) is passes


def _refund(session, user, days_ago):
    from app.billing.models import PaymentTransaction

    session.add(PaymentTransaction(user_id=user.id, kind="refund", amount=Decimal("99.99"), status="succeeded",
                                   idempotency_key=f"test-refund-{user.id}-{days_ago}",
                                   created_at=NOW - timedelta(days=days_ago)))
    session.flush()


@pytest.mark.parametrize("days_ago, passes", [(89, False), (90, False), (91, True)])
def test_exclude_refunded_users_within_the_window(session, ruled, attempt, make_user, days_ago, passes):
    coupon = ruled("exclude_refunded_users", {"days": 90})
    user = make_user()
    _refund(session, user, days_ago)
    assert (outcome(session, coupon, attempt, user)[0] is None) is passes


def test_require_payment_method(session, ruled, attempt, make_user, make_subscription):
    coupon = ruled("require_payment_method")
    with_card, without, none = make_user(), make_user(), make_user()
    make_subscription(user=with_card, card=True)
    make_subscription(user=without)
    assert outcome(session, coupon, attempt, with_card) == (None, None)
    assert outcome(session, coupon, attempt, without) == ("rule_failed", "require_payment_method")
    assert outcome(session, coupon, attempt, none) == ("rule_failed", "require_payment_method")


def test_inactive_rules_are_skipped(session, ruled, attempt, make_user):
    coupon = ruled("specific_email_domain", {"domains": ["company.com"]})
    coupon.rules[0].is_active = False
    assert outcome(session, coupon, attempt, make_user())[0] is None


@pytest.mark.parametrize("rule_type, value", [
    ("specific_email_domain", {}), ("specific_email_domain", {"domains": "company.com"}),
    ("specific_email_domain", {"domains": ["company"]}), ("minimum_credit_balance", {"min_balance": -1}),
    ("minimum_credit_balance", {"min_balance": "1000"}), ("minimum_credit_balance", {"min_balance": 10.5}),
    ("exclude_refunded_users", {"days": 0}), ("exclude_refunded_users", {"days": 90, "extra": 1}),
    ("first_time_user_only", {"x": 1}), ("no_such_rule", {}), ("require_payment_method", "[]"),
])
def test_malformed_parameters_are_refused(rule_type, value):
    with pytest.raises(DomainError) as error:
        rules.parse_params(rule_type, value)
    assert error.value.field in ("rule_value", "rule_type") and error.value.message
