"""`flask seed` on a day other than today (a frozen clock): the demo is alive on that day.

Every seeded coupon is valid, the seed's examples come out (BF2025-30OFF on 99.99: 30.00 off,
69.99 to pay; Pro -> Enterprise Pro on day 15 of 30: 49.99, 149.99, net 100.00), and the
seeded traffic lies in the 30 days before it.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import select

from app.billing import changes, subscriptions
from app.billing.models import PaymentTransaction
from app.core import clock, seedtime, testmode
from app.coupons import validation
from app.coupons.models import Coupon, FraudDetection, Redemption
from app.credits.models import CreditDeduction, TokenUsage
from app.licensing.models import Activation, AppVersion, LicenseUpgrade
from app.seed import SEEDERS
from app.users.models import User

ELSEWHEN = datetime(2027, 2, 15, 9, 30, tzinfo=timezone.utc)
PURCHASE = {"amount": "99.99", "tier": "pro", "billing_cycle": "monthly"}


def test_seeded_on_another_day_the_demo_is_alive_that_day(app, session):
    clock.freeze(ELSEWHEN)
    try:
        with testmode.test_mode(catalogue=True):
            for seeder in SEEDERS:
                seeder(session, log=lambda *_: None)
        session.commit()
        now = clock.now()
        assert seedtime.shift() == timedelta(days=(ELSEWHEN.date() - seedtime.SEED_TODAY).days)

        coupons = {c.code: c for c in session.scalars(select(Coupon))}
        assert len(coupons) == 7
        for coupon in coupons.values():
            assert coupon.valid_from <= now <= coupon.valid_until, coupon.code
            if coupon.campaign is not None:
                assert coupon.campaign.starts_at <= now <= coupon.campaign.ends_at, coupon.code

        def check(code, email, **purchase):
            return validation.preview(session, coupons[code], email, {**PURCHASE, **purchase})

        bf = check("BF2025-30OFF", "enterprise.user@example.com")  # pro.user has used it (the seeded redemption)
        assert bf.valid and (bf.benefit.discount, bf.benefit.final_amount) == (Decimal("30.00"), Decimal("69.99"))
        assert check("BF2025-30OFF", "pro.user@example.com").code == "per_user_limit_reached"
        assert check("SAVE25", "google.user@example.com").valid
        assert check("FRIEND50", "free.user@example.com", amount="0", tier="free").valid
        assert check("WELCOME20", "free.user@example.com", tier="free").valid

        pro = session.scalar(select(User).where(User.email == "pro.user@example.com"))
        quote = changes.preview_change(session, subscriptions.live_subscription(session, pro.id), "enterprise_pro")
        assert (quote.days_remaining, quote.days_in_cycle) == (15, 30)
        assert (quote.unused_credit_value, quote.new_tier_prorated_cost, quote.net_charge) == (
            Decimal("49.99"), Decimal("149.99"), Decimal("100.00"))

        month_ago = now - timedelta(days=30)
        traffic = {
            "redemptions": session.scalars(select(Redemption.created_at)).all(),
            "fraud detections": session.scalars(select(FraudDetection.created_at)).all(),
            "usage": session.scalars(select(TokenUsage.created_at)).all(),
            "deductions": session.scalars(select(CreditDeduction.created_at)).all(),
            "payments": session.scalars(select(PaymentTransaction.created_at)).all(),
            "device check-ins": session.scalars(select(Activation.last_seen_at)
                                                .where(Activation.status == "active")).all(),
            "upgrades": session.scalars(select(LicenseUpgrade.purchased_at)).all(),
        }
        for kind, times in traffic.items():
            assert times and all(month_ago <= t <= now for t in times), (kind, times)
        activated = session.scalars(select(Activation.activated_at)).all()
        assert sum(month_ago <= t <= now for t in activated) >= 2  # the dashboard's activations card has data
        # The upgrades keep their distance from their releases, so the seed's prices come out again.
        rules = [u.pricing_rule for u in session.scalars(select(LicenseUpgrade).order_by(LicenseUpgrade.purchased_at))]
        assert rules == ["early_bird", "loyalty", "standard"]
        release = session.scalar(select(AppVersion.release_date).where(AppVersion.version == "3.0.0"))
        assert release == seedtime.day("2025-11-03", date(2025, 11, 9)) and release < now.date()

        # `make run` again two months later (it seeds at every start): the coupons are alive again.
        clock.advance(timedelta(days=60))
        assert not coupons["BF2025-30OFF"].valid_until >= clock.now()
        with testmode.test_mode(catalogue=True):
            for seeder in SEEDERS:
                seeder(session, log=lambda *_: None)
        session.commit()
        assert check("BF2025-30OFF", "enterprise.user@example.com").benefit.final_amount == Decimal("69.99")
        for coupon in coupons.values():
            session.refresh(coupon)
            assert coupon.valid_from <= clock.now() <= coupon.valid_until, coupon.code
    finally:
        clock.reset()
