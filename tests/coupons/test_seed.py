"""Seed 001 Plan 111 loads once: 4 campaigns, 7 coupons, 3 redemptions, 3 detections, 5 rules."""
from decimal import Decimal

from sqlalchemy import func, select

from app.coupons.models import Campaign, Coupon, FraudDetection, Redemption, ValidationRule
from app.seed import SEEDERS


def count(session, model):
    return session.scalar(select(func.count()).select_from(model))


def test_seed_loads_plan_111_once(session):
    from app.core import testmode

    with testmode.test_mode(catalogue=True):  # test personas and data; the shared catalogue
        for _ in range(2):
            for seeder in SEEDERS:
                seeder(session, log=lambda *_: None)
    assert [count(session, m) for m in (Campaign, Coupon, Redemption, FraudDetection, ValidationRule)] == [4, 7, 3, 3, 5]
    bf = session.scalar(select(Coupon).where(Coupon.code == "BF2025-30OFF"))
    assert bf.campaign.name == "Black Friday 2025" and bf.campaign.spent == Decimal("12450.50")
    ok = session.scalar(select(Redemption).where(Redemption.status == "success"))
    assert (ok.discount_amount, ok.final_amount, ok.ip_address, ok.is_test) == (
        Decimal("30.00"), Decimal("69.99"), "203.0.113.45", True)
    assert session.scalar(select(Redemption.failure_reason).where(Redemption.status == "failed")) == \
        "Velocity abuse detected - 5 attempts in 1 hour"
    assert session.scalar(select(Redemption.reversal_reason).where(Redemption.status == "reversed")) == \
        "User requested refund"
    kinds = dict(session.execute(select(FraudDetection.detection_type, FraudDetection.severity)).all())
    assert kinds == {"velocity_abuse": "high", "ip_switching": "medium", "bot_pattern": "critical"}
    rules = {(r.coupon.code, r.rule_type) for r in session.scalars(select(ValidationRule))}
    assert ("CORPORATE15", "specific_email_domain") in rules and ("PREMIUMTRIAL", "require_payment_method") in rules
    early = session.scalar(select(Campaign).where(Campaign.campaign_type == "early_bird"))
    assert early.is_active is False
