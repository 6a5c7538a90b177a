"""Redemption: scenario 5, limits taken once, failed attempts recorded, reversal gives budget back."""
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.core.audit import AuditEntry
from app.core.errors import DomainError
from app.coupons import redemption, validation
from app.coupons.models import CouponUserUse, FraudDetection, Redemption
from tests.coupons.conftest import NOW


def test_scenario_5_black_friday_for_a_pro_user(session, make_user, make_campaign, make_coupon, make_subscription):
    """Seed 001 scenario 5: BF2025-30OFF on a 99.99 Pro invoice, no fraud, 30.00 off, 69.99 charged, 1/1 uses."""
    from app.billing.invoices import find_period_invoice
    from app.coupons.models import ValidationRule
    from app.coupons.validation import build_attempt

    pro = make_user("pro.user.s5@example.com")
    sub = make_subscription("pro", user=pro, invoice=True)
    campaign = make_campaign(name="Black Friday (s5)", campaign_type="seasonal", budget_limit="50000.00",
                             spent="12450.50", starts_at=NOW - timedelta(days=1), ends_at=NOW + timedelta(days=5))
    coupon = make_coupon(code="BF2025-30OFF-S5", discount_value="30.00", max_uses=1000, max_uses_per_user=1,
                         min_purchase_amount="50.00",
                         tier_eligibility=["pro", "pro_max", "enterprise_pro", "enterprise_max"],
                         billing_cycles=["monthly", "annual"], valid_from=NOW - timedelta(days=1),
                         valid_until=NOW + timedelta(days=5), campaign=campaign)
    session.add(ValidationRule(coupon_id=coupon.id, rule_type="exclude_refunded_users", rule_value={"days": 90}))
    session.flush()
    raw = {"amount": "99.99", "subscription_id": sub.id}
    attempt = build_attempt(session, coupon, pro, raw, is_test=False, ip_address="203.0.113.45",
                            user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64)")
    attempt.at = NOW
    assert (attempt.tier, attempt.billing_cycle) == ("pro", "monthly")  # from the subscription
    assert validation.check(session, coupon, attempt).as_dict() == {
        "valid": True, "discount": "30.00", "final_amount": "69.99"}
    row = redemption.redeem(session, coupon, attempt)
    assert row.status == "success"
    assert (row.original_amount, row.discount_amount, row.final_amount) == (
        Decimal("99.99"), Decimal("30.00"), Decimal("69.99"))
    assert (row.ip_address, row.user_agent) == ("203.0.113.45", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)")
    assert session.scalar(select(FraudDetection).where(FraudDetection.user_id == pro.id)) is None
    invoice = find_period_invoice(session, sub.id, sub.current_period_start)
    assert (invoice.subtotal, invoice.discount, invoice.total, row.invoice_id) == (
        Decimal("99.99"), Decimal("30.00"), Decimal("69.99"), invoice.id)
    assert coupon.uses_count == 1 and campaign.spent == Decimal("12480.50")
    assert validation.user_uses(session, coupon, pro.id) == 1  # 1/1 uses per user
    again = build_attempt(session, coupon, pro, raw, is_test=False, ip_address="203.0.113.45")
    again.at = NOW + timedelta(minutes=3)
    assert redemption.redeem(session, coupon, again).failure_code == "per_user_limit_reached"
    assert coupon.uses_count == 1 and campaign.spent == Decimal("12480.50") and invoice.total == Decimal("69.99")


def test_failed_attempts_are_recorded_with_their_code(session, make_user, make_coupon, attempt):
    user = make_user()
    coupon = make_coupon(min_purchase_amount="50.00")
    row = redemption.redeem(session, coupon, attempt(user, "10.00"))
    assert (row.status, row.failure_code, row.final_amount) == ("failed", "below_minimum", Decimal("10.00"))
    assert coupon.uses_count == 0
    assert session.scalar(select(CouponUserUse).where(CouponUserUse.user_id == user.id)) is None


def test_max_uses_taken_one_by_one(session, make_user, make_coupon, attempt):
    coupon = make_coupon(max_uses=2)
    results = [redemption.redeem(session, coupon, attempt(make_user(), ip_address=f"198.51.100.{i}")).status
               for i in range(3)]
    assert results == ["success", "success", "failed"]
    assert coupon.uses_count == 2
    last = session.scalars(select(Redemption).order_by(Redemption.id.desc())).first()
    assert last.failure_code == "max_uses_reached"


def test_budget_runs_out_exactly(session, make_user, make_campaign, make_coupon, attempt):
    campaign = make_campaign(budget_limit="50.00")
    coupon = make_coupon(campaign=campaign, discount_type="fixed_amount", coupon_type="fixed_amount_discount",
                         discount_value="25.00")
    statuses = [redemption.redeem(session, coupon, attempt(make_user(), ip_address=f"198.51.100.{i}")).failure_code
                for i in range(3)]
    assert statuses == [None, None, "campaign_budget_exhausted"]
    assert campaign.spent == Decimal("50.00")


def test_test_mode_redemptions_use_the_test_lane(session, make_user, make_campaign, make_coupon, attempt):
    campaign = make_campaign(budget_limit="100.00")
    coupon = make_coupon(campaign=campaign, max_uses=5)
    row = redemption.redeem(session, coupon, attempt(make_user(test=True), is_test=True))
    assert row.is_test and row.status == "success"
    assert (coupon.uses_count, coupon.test_uses_count) == (0, 1)
    assert (campaign.spent, campaign.test_spent) == (Decimal("0.00"), Decimal("20.00"))


def test_reversal_gives_the_budget_and_the_use_back(session, make_user, make_campaign, make_coupon, attempt,
                                                    login_as):
    staff = make_user(roles=("admin",))
    campaign = make_campaign(budget_limit="100.00")
    coupon = make_coupon(campaign=campaign, discount_value="30.00", max_uses=1)
    buyer = make_user()
    row = redemption.redeem(session, coupon, attempt(buyer))
    assert campaign.spent == Decimal("30.00") and coupon.uses_count == 1
    with pytest.raises(DomainError) as missing:
        redemption.reverse(session, staff, row, "  ")
    assert missing.value.field == "reason"
    redemption.reverse(session, staff, row, "Customer refunded")
    assert (row.status, row.reversal_reason, row.reversed_by_id) == ("reversed", "Customer refunded", staff.id)
    assert campaign.spent == Decimal("0.00") and coupon.uses_count == 0
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "coupons.redemption_reversed"))
    assert entry.reason == "Customer refunded" and entry.before["status"] == "success"
    with pytest.raises(DomainError) as twice:
        redemption.reverse(session, staff, row, "again")
    assert twice.value.code == "not_reversible"
    # The use is free again for someone else; the same customer keeps their per-user count.
    assert redemption.redeem(session, coupon, attempt(make_user(), ip_address="192.0.2.9")).status == "success"
    assert redemption.redeem(session, coupon, attempt(buyer, at=NOW + timedelta(minutes=9))).failure_code in (
        "per_user_limit_reached", "max_uses_reached")
