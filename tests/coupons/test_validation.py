"""Every failure code of the validation service, in its fixed order, and the valid answer."""
from datetime import timedelta
from decimal import Decimal

import pytest

from app.coupons import validation
from app.coupons.models import CouponUserUse
from tests.coupons.conftest import NOW


@pytest.fixture
def customer(make_user):
    return make_user("buyer@example.com")


def check(session, coupon, attempt):
    return validation.check(session, coupon, attempt)


def test_valid_answer_carries_discount_and_final_amount(session, make_coupon, attempt, customer):
    coupon = make_coupon(discount_value="30.00", min_purchase_amount="50.00", tier_eligibility=["pro"],
                         billing_cycles=["monthly", "annual"])
    result = check(session, coupon, attempt(customer))
    assert result.as_dict() == {"valid": True, "discount": "30.00", "final_amount": "69.99"}


@pytest.mark.parametrize("case, code", [
    ("expired", "expired"),
    ("not_yet_valid", "not_yet_valid"),
    ("inactive", "inactive"),
    ("campaign_inactive", "inactive"),
    ("campaign_over", "expired"),
    ("tier", "tier_not_eligible"),
    ("cycle", "billing_cycle_not_eligible"),
    ("minimum", "below_minimum"),
    ("max_uses", "max_uses_reached"),
    ("per_user", "per_user_limit_reached"),
    ("rule", "rule_failed"),
    ("budget", "campaign_budget_exhausted"),
    ("budget_partial", "campaign_budget_exhausted"),
])
def test_each_failure_code(session, make_coupon, make_campaign, attempt, customer, case, code):
    campaign = make_campaign(budget_limit="100.00")
    values = {"campaign": campaign}
    if case == "expired":
        values["valid_until"] = NOW - timedelta(seconds=1)
        values["valid_from"] = NOW - timedelta(days=2)
    elif case == "not_yet_valid":
        values["valid_from"] = NOW + timedelta(seconds=1)
    elif case == "inactive":
        values["is_active"] = False
    elif case == "campaign_inactive":
        campaign.is_active = False
    elif case == "campaign_over":
        campaign.ends_at = NOW - timedelta(minutes=1)
    elif case == "tier":
        values["tier_eligibility"] = ["enterprise_pro"]
    elif case == "cycle":
        values["billing_cycles"] = ["annual"]
    elif case == "minimum":
        values["min_purchase_amount"] = "100.00"
    elif case == "max_uses":
        values.update(max_uses=3, uses_count=3)
    elif case == "budget":
        campaign.spent = Decimal("100.00")
    elif case == "budget_partial":
        campaign.spent = Decimal("80.01")  # 20% of 99.99 = 20.00 would overrun by a cent
    coupon = make_coupon(**values)
    if case == "per_user":
        session.add(CouponUserUse(coupon_id=coupon.id, user_id=customer.id, uses=1))
    if case == "rule":
        from app.coupons.models import ValidationRule

        session.add(ValidationRule(coupon_id=coupon.id, rule_type="specific_email_domain",
                                   rule_value={"domains": ["company.com"]}))
    session.flush()
    session.expire_all()
    result = check(session, coupon, attempt(customer))
    assert (result.valid, result.code) == (False, code)
    assert result.message and result.as_dict() == {"valid": False, "code": code, "message": result.message}


def test_boundaries_are_inclusive(session, make_coupon, make_campaign, attempt, customer):
    campaign = make_campaign(budget_limit="120.00", spent="100.00")
    coupon = make_coupon(valid_from=NOW, valid_until=NOW + timedelta(days=1), min_purchase_amount="99.99",
                         max_uses=3, uses_count=2, campaign=campaign)
    assert check(session, coupon, attempt(customer)).valid  # from == now, amount == minimum, 20.00 fits exactly
    coupon2 = make_coupon(valid_from=NOW - timedelta(days=1), valid_until=NOW)
    assert check(session, coupon2, attempt(customer)).valid


def test_test_traffic_has_its_own_lane(session, make_coupon, make_campaign, attempt, customer):
    campaign = make_campaign(budget_limit="10.00", spent="10.00")
    coupon = make_coupon(max_uses=1, uses_count=1, campaign=campaign, discount_type="fixed_amount",
                         coupon_type="fixed_amount_discount", discount_value="5.00")
    assert check(session, coupon, attempt(customer)).code == "max_uses_reached"
    assert check(session, coupon, attempt(customer, is_test=True)).valid
