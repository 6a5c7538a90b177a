"""Analytics fixtures: a month of production and test activity in every domain the dashboard
reads, with the figures each card must show counted here by hand (production, and with test data)."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from tests.credits.conftest import priced  # noqa: F401  (fixture: seed 001's prices)
from tests.licensing.conftest import customer, versions  # noqa: F401  (fixtures)

TODAY = date(2025, 11, 9)  # the frozen clock's day; the window is 2025-10-11 .. 2025-11-09
OLD = datetime(2025, 9, 1, tzinfo=timezone.utc)  # owners of the rows below joined before the window

# What the cards must show: production only, then with test data.
EXPECTED = {
    False: {"new_users_today": 2, "new_users_30d": 6, "active_subscriptions": 4,
            "active": {"pro": 2, "enterprise_pro": 1, "free": 1}, "mrr": Decimal("599.96"),
            "revenue_30d": Decimal("389.98"), "failed_payments": 1, "credits_issued_30d": 1500,
            "credits_spent_30d": 152, "top_models": ["claude-3.5-sonnet", "gpt-4-turbo", "llama-2-70b"],
            "license_activations_30d": 3, "coupon_redemptions_30d": 2, "fraud_flags_open": 2},
    True: {"new_users_today": 4, "new_users_30d": 9, "active_subscriptions": 5,
           "active": {"pro": 3, "enterprise_pro": 1, "free": 1}, "mrr": Decimal("899.94"),
           "revenue_30d": Decimal("439.98"), "failed_payments": 2, "credits_issued_30d": 1800,
           "credits_spent_30d": 185, "top_models": ["llama-2-70b", "claude-3.5-sonnet", "gpt-4-turbo"],
           "license_activations_30d": 4, "coupon_redemptions_30d": 3, "fraud_flags_open": 3},
}


def at(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=timezone.utc)


@pytest.fixture
def month_of_activity(session, frozen_clock, customer, versions, priced):  # noqa: F811
    """Seeds the rows behind EXPECTED; rows just outside the window or of the wrong kind are the traps."""
    from app.billing import metrics, tiers as tier_service
    from app.billing.models import Invoice, PaymentTransaction
    from app.billing.subscriptions import new_subscription
    from app.coupons.models import Coupon, FraudDetection, Redemption
    from app.credits import summaries
    from app.credits.models import CreditAllocation, CreditDeduction, ModelPrice, TokenUsage
    from app.licensing import service as licensing
    from app.licensing.models import ActivationEvent

    def owner(test=False):
        return customer(test=test, created_at=OLD)

    # New users: 2 today, 3 on 10-20, 1 at the first second of the window; traps: one a second
    # before the window, one soft-deleted today. Test users: 2 today, 1 on 10-25.
    for when in [at(11, 9, 8), at(11, 9, 9), at(10, 20), at(10, 20), at(10, 20), at(10, 11, 0)]:
        customer(created_at=when)
    customer(created_at=datetime(2025, 10, 10, 23, 59, 59, tzinfo=timezone.utc))
    customer(created_at=at(11, 9, 7), deleted_at=at(11, 9, 11))
    for when in [at(11, 9, 8), at(11, 9, 9), at(10, 25)]:
        customer(test=True, created_at=when)

    # Subscriptions: active pro x2, enterprise_pro, free; pro past_due (pays: MRR, dunning); a
    # cancelled pro. Test: an active pro and a pro_max past_due.
    tiers = tier_service.ensure_default_tiers(session)
    subs = {}
    for key, tier, status, test in [("p1", "pro", "active", False), ("p2", "pro", "active", False),
                                    ("e1", "enterprise_pro", "active", False), ("f1", "free", "active", False),
                                    ("due", "pro", "past_due", False), ("gone", "pro", "cancelled", False),
                                    ("t1", "pro", "active", True), ("tdue", "pro_max", "past_due", True)]:
        subs[key] = new_subscription(session, owner(test), tiers[tier], "monthly", start=at(11, 1, 0), status=status)

    def invoice(sub, status, attempts, key):
        session.add(Invoice(user_id=sub.user_id, subscription_id=sub.id, period_key=key, status=status,
                            total=Decimal("99.99"), attempt_count=attempts, is_test=sub.is_test))

    invoice(subs["due"], "open", 1, "2025-11-01")
    invoice(subs["tdue"], "open", 2, "2025-11-01")
    invoice(subs["p1"], "open", 0, "2025-11-01")  # not charged yet: not in dunning
    invoice(subs["p2"], "paid", 1, "2025-11-01")

    def payment(sub, kind, amount, status, when):
        session.add(PaymentTransaction(user_id=sub.user_id, subscription_id=sub.id, kind=kind, amount=Decimal(amount),
                                       status=status, idempotency_key=uuid.uuid4().hex, created_at=when,
                                       is_test=sub.is_test))

    payment(subs["e1"], "charge", "299.99", "succeeded", at(10, 15))
    payment(subs["p2"], "refund", "10.00", "succeeded", at(11, 1))
    payment(subs["due"], "charge", "99.99", "failed", at(11, 8))
    payment(subs["p2"], "charge", "99.99", "succeeded", at(10, 1))  # before the window
    payment(subs["t1"], "charge", "50.00", "succeeded", at(11, 5))
    session.flush()
    # Money collected: 10-15 and 11-01 from the daily totals, the rest read live (today always,
    # although a total was built for it before its last payment).
    for day in (date(2025, 10, 15), date(2025, 11, 1), TODAY):
        metrics.build_revenue_day(session, day)
    payment(subs["p1"], "charge", "99.99", "succeeded", at(11, 9, 9))

    # Credits. Summaries get built for 10-20 and 11-08 (and for today, before today's last row:
    # today is always read live); 10-25 is left unbuilt and read from the ledgers.
    spender, tester = owner(), owner(test=True)
    prices = {p.model_name: p.id for p in session.query(ModelPrice)}

    def allocate(user, amount, when):
        session.add(CreditAllocation(user_id=user.id, amount=amount, source="monthly_allocation", bucket="subscription",
                                     balance_after=amount, created_at=when, is_test=user.is_test))

    def deduct(user, amount, when):
        session.add(CreditDeduction(user_id=user.id, amount=amount, deduction_type="inference", balance_after=0,
                                    created_at=when, is_test=user.is_test))

    def usage(user, model, vendor, cost, when):
        session.add(TokenUsage(user_id=user.id, request_id=uuid.uuid4().hex, model_price_id=prices[model],
                               model_name=model, vendor_name=vendor, tier="pro", input_tokens=500, output_tokens=300,
                               vendor_cost_usd=Decimal(cost), margin_percentage=Decimal("40"),
                               customer_cost_usd=Decimal(cost) * Decimal("1.4"), credits=10, created_at=when,
                               is_test=user.is_test))

    allocate(spender, 1000, at(10, 20))
    allocate(spender, 9999, at(10, 5))  # before the window
    deduct(spender, 100, at(10, 20))
    deduct(spender, 40, at(11, 8))
    deduct(spender, 5, at(10, 25))
    allocate(tester, 300, at(10, 20))
    deduct(tester, 30, at(11, 8))
    usage(spender, "gpt-4-turbo", "openai", "0.014", at(10, 20))
    usage(spender, "gpt-4-turbo", "openai", "0.014", at(10, 20, 11))
    usage(spender, "llama-2-70b", "meta", "0.000675", at(10, 25))
    usage(tester, "llama-2-70b", "meta", "1.0", at(11, 8))
    allocate(spender, 500, at(11, 9, 9))
    session.flush()
    for day in (date(2025, 10, 20), date(2025, 11, 8), TODAY):
        summaries.build_day(session, day)
    deduct(spender, 7, at(11, 9, 11))
    deduct(tester, 3, at(11, 9, 11))
    usage(spender, "claude-3.5-sonnet", "anthropic", "0.05", at(11, 9, 11))

    # License activations (the event history): activated 11-01, activated and reactivated today
    # (a deactivation between does not count), one before the window; test: activated 11-05.
    lic = licensing.create_license(session, owner=owner(), actor=None, purchase_price="299.99",
                                   purchased_version="1.0.0")
    test_lic = licensing.create_license(session, owner=owner(test=True), actor=None, purchase_price="299.99",
                                        purchased_version="1.0.0")
    for license_, kind, when in [(lic, "activated", at(11, 1)), (lic, "activated", at(11, 9, 8)),
                                 (lic, "deactivated", at(11, 9, 9)), (lic, "reactivated", at(11, 9, 10)),
                                 (lic, "activated", at(10, 1)), (test_lic, "activated", at(11, 5))]:
        session.add(ActivationEvent(license_id=license_.id, kind=kind, source="client", created_at=when,
                                    is_test=license_.is_test))

    # Coupon redemptions: 2 successes in the window; traps: failed, reversed, before the window.
    coupon = Coupon(code="DASH20", coupon_type="percentage_discount", discount_type="percentage",
                    discount_value=Decimal("20.00"), max_uses=100, max_uses_per_user=10,
                    min_purchase_amount=Decimal("0"), tier_eligibility=[], billing_cycles=[],
                    valid_from=at(9, 1), valid_until=at(12, 31))
    session.add(coupon)
    session.flush()
    redeemer, test_redeemer = owner(), owner(test=True)
    for user, status, when in [(redeemer, "success", at(11, 1)), (redeemer, "success", at(11, 9, 8)),
                               (redeemer, "failed", at(11, 9, 9)), (redeemer, "reversed", at(11, 2)),
                               (redeemer, "success", at(10, 1)), (test_redeemer, "success", at(11, 5))]:
        session.add(Redemption(coupon_id=coupon.id, user_id=user.id, status=status, original_amount=Decimal("99.99"),
                               discount_amount=Decimal("20.00"), final_amount=Decimal("79.99"), created_at=when,
                               is_test=user.is_test))

    # Fraud flags: 2 open; traps: one reviewed, one not flagged. Test: 1 open.
    for user, flagged, reviewed in [(redeemer, True, None), (redeemer, True, None), (redeemer, True, at(11, 8)),
                                    (redeemer, False, None), (test_redeemer, True, None)]:
        session.add(FraudDetection(coupon_id=coupon.id, user_id=user.id, detection_type="velocity_abuse",
                                   severity="high", is_flagged=flagged, reviewed_at=reviewed, created_at=at(11, 7),
                                   is_test=user.is_test))
    session.commit()
    return EXPECTED
