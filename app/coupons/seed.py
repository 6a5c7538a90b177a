"""Seed 001 Plan 111: four campaigns, seven coupons, three redemptions, three fraud detections, five rules.

The seed's rules name three coupons it never defines; they are created with these values:
- CORPORATE15 (corporate-discount): 15% off paid tiers, monthly or annual, 500 uses, one per
  user, 2025-01-01 to 2026-12-31, for email domains company.com, subsidiary.com, partner.org;
- LOYAL1000 (loyal-user-bonus): 1,000 bonus credits, one per user, 2025-01-01 to 2026-12-31,
  for users holding at least 1,000 credits;
- PREMIUMTRIAL (premium-trial): one free month on Pro or Pro Max, monthly, 1,000 uses, one per
  user, 2025-11-01 to 2026-06-30, in the Win-Back campaign, needs a payment method on file.
The seeded redemptions are test traffic (their users are test accounts), so they move the
coupons' and campaigns' test counters; the campaigns' production `spent` is the seed's own
total_spent_usd. Redemption 3 (FRIEND50, 5,000 credits) is stored as 5,000 credits granted
and reversed, with 0.00 off a 0.00 charge: the seed's "discount 5000.00 USD, final -5000.00"
reads credits as dollars. Redemption and detection rows are loaded once (skipped when present).
Every date is moved to today's calendar (core/seedtime.py): BF2025-30OFF is valid on the day
of the seed and its redemption two days old.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from app.billing.subscriptions import live_subscription
from app.core import clock, seedtime
from app.coupons.models import Campaign, Coupon, CouponUserUse, FraudDetection, Redemption, ValidationRule
from app.users.models import User


def _utc(text: str) -> datetime:
    """Seed dates on today's calendar: the coupons are valid and the traffic recent today."""
    return seedtime.at(text)


CAMPAIGNS = [
    ("Black Friday 2025", "seasonal", "2025-11-24T00:00:00Z", "2025-11-30T23:59:59Z", "50000.00", "12450.50", "pro", True),
    ("Friend Referral Program", "referral", "2025-01-01T00:00:00Z", "2025-12-31T23:59:59Z", "100000.00", "45200.75", None, True),
    ("Win Back Churned Users", "win_back", "2025-11-01T00:00:00Z", "2025-12-31T23:59:59Z", "25000.00", "8900.00", "pro", True),
    ("Early Bird - New Feature Launch", "early_bird", "2025-11-10T00:00:00Z", "2025-11-17T23:59:59Z", "15000.00", "14500.00", "free", False),
]

PAID = ["pro", "pro_max", "enterprise_pro", "enterprise_max"]
COUPONS = [
    dict(code="BF2025-30OFF", coupon_type="percentage_discount", discount_type="percentage", discount_value="30.00",
         max_uses=1000, max_uses_per_user=1, min_purchase_amount="50.00", tier_eligibility=PAID,
         billing_cycles=["monthly", "annual"], valid_from="2025-11-24T00:00:00Z", valid_until="2025-11-30T23:59:59Z",
         campaign="Black Friday 2025", description="Black Friday: 30% off paid tiers"),
    dict(code="SAVE25", coupon_type="fixed_amount_discount", discount_type="fixed_amount", discount_value="25.00",
         max_uses=500, max_uses_per_user=1, min_purchase_amount="99.99", tier_eligibility=["pro", "pro_max"],
         billing_cycles=["monthly"], valid_from="2025-11-01T00:00:00Z", valid_until="2025-12-31T23:59:59Z",
         campaign="Friend Referral Program", description="$25 off a Pro or Pro Max month"),
    dict(code="FRIEND50", coupon_type="duration_bonus", discount_type="credits", discount_value="5000",
         max_uses=None, max_uses_per_user=1, min_purchase_amount="0", tier_eligibility=["free", "pro"],
         billing_cycles=[], valid_from="2025-01-01T00:00:00Z", valid_until="2025-12-31T23:59:59Z",
         campaign="Friend Referral Program", description="5,000 bonus credits for a referred friend"),
    dict(code="WELCOME20", coupon_type="percentage_discount", discount_type="percentage", discount_value="20.00",
         max_uses=10000, max_uses_per_user=1, min_purchase_amount="0", tier_eligibility=["free", "pro", "pro_max"],
         billing_cycles=["monthly"], valid_from="2025-10-01T00:00:00Z", valid_until="2026-12-31T23:59:59Z",
         campaign=None, description="20% off the first month for new customers"),
    dict(code="CORPORATE15", coupon_type="percentage_discount", discount_type="percentage", discount_value="15.00",
         max_uses=500, max_uses_per_user=1, min_purchase_amount="0", tier_eligibility=PAID,
         billing_cycles=["monthly", "annual"], valid_from="2025-01-01T00:00:00Z", valid_until="2026-12-31T23:59:59Z",
         campaign=None, description="Corporate discount for partner email domains"),
    dict(code="LOYAL1000", coupon_type="duration_bonus", discount_type="credits", discount_value="1000",
         max_uses=None, max_uses_per_user=1, min_purchase_amount="0", tier_eligibility=[], billing_cycles=[],
         valid_from="2025-01-01T00:00:00Z", valid_until="2026-12-31T23:59:59Z", campaign=None,
         description="1,000 bonus credits for loyal customers"),
    dict(code="PREMIUMTRIAL", coupon_type="duration_bonus", discount_type="months_free", discount_value="1",
         max_uses=1000, max_uses_per_user=1, min_purchase_amount="0", tier_eligibility=["pro", "pro_max"],
         billing_cycles=["monthly"], valid_from="2025-11-01T00:00:00Z", valid_until="2026-06-30T23:59:59Z",
         campaign="Win Back Churned Users", description="One free month to come back"),
]

RULES = [
    ("WELCOME20", "first_time_user_only", {}),
    ("CORPORATE15", "specific_email_domain", {"domains": ["company.com", "subsidiary.com", "partner.org"]}),
    ("LOYAL1000", "minimum_credit_balance", {"min_balance": 1000}),
    ("BF2025-30OFF", "exclude_refunded_users", {"days": 90}),
    ("PREMIUMTRIAL", "require_payment_method", {}),
]

CUSTOMERS = [
    ("suspicious.user@example.com", "Suspicious", "User"),
    ("refund.user@example.com", "Refund", "User"),
    ("bot.user@example.com", "Bot", "User"),
    ("vpn.user@example.com", "Vpn", "User"),
    ("botlike.user@example.com", "Botlike", "User"),
]


def _user(session, email: str, first: str = "Test", last: str = "Customer", log=print) -> User:
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, first_name=first, last_name=last, account_type="test", email_verified=True)
        session.add(user)
        session.flush()
        log(f"  created {email}")
    return user


def _realign(row, start_attr: str, end_attr: str, start: datetime, end: datetime) -> bool:
    """A seeded window that has ended, on a day the seed's own window is open (`make run` seeds
    at every start, weeks later): moved to today's calendar again, so the demo stays alive."""
    now = clock.now()
    if getattr(row, end_attr) >= now or not start <= now <= end:
        return False
    setattr(row, start_attr, start)
    setattr(row, end_attr, end)
    return True


def _subscription_id(session, user: User) -> int | None:
    """Billing's seeded subscription of the user (seed 001's sub-pro-001), when there is one."""
    sub = live_subscription(session, user.id)
    return sub.id if sub is not None else None


def seed_coupons(session, log=print) -> None:
    admin = _user(session, "admin.test@rephlo.ai", log=log)
    for email, first, last in CUSTOMERS:
        _user(session, email, first, last, log=log)
    campaigns = {}
    for name, kind, start, end, budget, spent, tier, active in CAMPAIGNS:
        campaign = session.scalar(select(Campaign).where(Campaign.name == name))
        if campaign is None:
            campaign = Campaign(name=name, campaign_type=kind, starts_at=_utc(start), ends_at=_utc(end),
                                budget_limit=Decimal(budget), spent=Decimal(spent), target_tier=tier,
                                is_active=active, created_by_id=admin.id)
            session.add(campaign)
            log(f"  campaign {name}")
        elif _realign(campaign, "starts_at", "ends_at", _utc(start), _utc(end)):
            log(f"  campaign {name}: moved to today's calendar")
        campaigns[name] = campaign
    session.flush()
    coupons = {}
    for spec in COUPONS:
        coupon = session.scalar(select(Coupon).where(Coupon.code == spec["code"]))
        if coupon is None:
            values = {k: v for k, v in spec.items() if k != "campaign"}
            values.update(discount_value=Decimal(values["discount_value"]),
                          min_purchase_amount=Decimal(values["min_purchase_amount"]),
                          valid_from=_utc(values["valid_from"]), valid_until=_utc(values["valid_until"]))
            coupon = Coupon(**values, campaign_id=campaigns[spec["campaign"]].id if spec["campaign"] else None,
                            is_active=True, created_by_id=admin.id)
            session.add(coupon)
            log(f"  coupon {spec['code']}")
        elif _realign(coupon, "valid_from", "valid_until", _utc(spec["valid_from"]), _utc(spec["valid_until"])):
            log(f"  coupon {spec['code']}: moved to today's calendar")
        coupons[spec["code"]] = coupon
    session.flush()
    for code, rule_type, value in RULES:
        exists = session.scalar(select(ValidationRule).where(ValidationRule.coupon_id == coupons[code].id,
                                                             ValidationRule.rule_type == rule_type))
        if exists is None:
            session.add(ValidationRule(coupon_id=coupons[code].id, rule_type=rule_type, rule_value=value))
    if session.scalar(select(Redemption.id).limit(1)) is None:
        _seed_traffic(session, admin, coupons, log)
    session.flush()


def _seed_traffic(session, admin: User, coupons: dict[str, Coupon], log) -> None:
    pro = session.scalar(select(User).where(User.email == "pro.user@example.com")) or _user(
        session, "pro.user@example.com", "Pro", "User", log)
    users = {email: _user(session, email, log=log) for email, *_ in CUSTOMERS}
    bf, save25, friend = coupons["BF2025-30OFF"], coupons["SAVE25"], coupons["FRIEND50"]
    ok = Redemption(coupon_id=bf.id, campaign_id=bf.campaign_id, user_id=pro.id,
                    subscription_id=_subscription_id(session, pro), status="success", tier="pro",
                    billing_cycle="monthly", original_amount=Decimal("99.99"), discount_amount=Decimal("30.00"),
                    final_amount=Decimal("69.99"), budget_cost=Decimal("30.00"),
                    created_at=_utc("2025-11-25T10:30:00Z"), ip_address="203.0.113.45",
                    user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64)", is_test=True)
    failed = Redemption(coupon_id=save25.id, campaign_id=save25.campaign_id, user_id=users["suspicious.user@example.com"].id,
                        status="failed", failure_code="fraud_blocked",
                        failure_reason="Velocity abuse detected - 5 attempts in 1 hour", tier="pro",
                        billing_cycle="monthly", original_amount=Decimal("99.99"), discount_amount=Decimal("0.00"),
                        final_amount=Decimal("99.99"), created_at=_utc("2025-11-20T15:45:00Z"),
                        ip_address="198.51.100.123", is_test=True)
    refunded = users["refund.user@example.com"]
    reversed_ = Redemption(coupon_id=friend.id, campaign_id=friend.campaign_id, user_id=refunded.id,
                           subscription_id=_subscription_id(session, refunded), status="reversed", tier="pro",
                           original_amount=Decimal("0.00"), discount_amount=Decimal("0.00"),
                           final_amount=Decimal("0.00"), credits_granted=5000, budget_cost=Decimal("2.00"),
                           created_at=_utc("2025-11-01T08:00:00Z"), reversed_at=_utc("2025-11-01T08:00:00Z"),
                           reversed_by_id=admin.id, reversal_reason="User requested refund", is_test=True)
    session.add_all([ok, failed, reversed_])
    # Uses taken by the seeded successes (the reversed one gave its use and budget back).
    bf.test_uses_count += 1
    bf.campaign.test_spent += Decimal("30.00")
    session.add(CouponUserUse(coupon_id=bf.id, user_id=pro.id, uses=1, is_test=True))
    session.add(CouponUserUse(coupon_id=friend.id, user_id=refunded.id, uses=1, is_test=True))
    session.flush()
    session.add_all([
        FraudDetection(coupon_id=save25.id, user_id=users["bot.user@example.com"].id, detection_type="velocity_abuse",
                       severity="high", blocked=True, is_flagged=True, created_at=_utc("2025-11-20T14:20:00Z"),
                       details={"velocity": 5, "time_window": "1h",
                                "attempts": ["14:00:00", "14:05:00", "14:10:00", "14:15:00", "14:20:00"]},
                       reviewed_by_id=admin.id, reviewed_at=_utc("2025-11-20T16:00:00Z"), review_action="suspended",
                       resolution="Account suspended pending review", is_test=True),
        FraudDetection(coupon_id=bf.id, user_id=users["vpn.user@example.com"].id, detection_type="ip_switching",
                       severity="medium", blocked=False, is_flagged=True, created_at=_utc("2025-11-25T09:15:00Z"),
                       details={"ip_addresses": ["203.0.113.1", "198.51.100.1", "192.0.2.1"], "time_span_minutes": 15,
                                "country_codes": ["US", "UK", "CN"]}, is_test=True),
        FraudDetection(coupon_id=coupons["WELCOME20"].id, user_id=users["botlike.user@example.com"].id,
                       detection_type="bot_pattern", severity="critical", blocked=True, is_flagged=True,
                       created_at=_utc("2025-11-19T09:30:00Z"),
                       details={"suspicious_behaviors": ["form_autofill", "no_mouse_movement", "instant_submission"],
                                "confidence_score": 0.95},
                       reviewed_by_id=admin.id, reviewed_at=_utc("2025-11-19T10:00:00Z"), review_action="confirmed",
                       resolution="Account flagged for manual review", is_test=True),
    ])
    users["bot.user@example.com"].status = "suspended"
    log("  coupon redemptions and fraud detections")
