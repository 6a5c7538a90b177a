"""The one validation service: is this coupon good for this user and purchase, and for how much?

check() answers valid with the benefit, or exactly one stable failure code (DESIGN.md §4),
in a fixed order so the same situation always gives the same code. It only reads: the
limits it reports are re-checked atomically when a redemption takes them (redemption.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import bindparam, select

from app.billing import subscriptions
from app.core import clock, pg, testmode
from app.core.errors import DomainError
from app.coupons import discount, inputs, rules
from app.coupons.models import BILLING_CYCLES, TIERS, Coupon, CouponUserUse
from app.users.models import User

FAILURE_CODES = ("expired", "not_yet_valid", "inactive", "tier_not_eligible", "billing_cycle_not_eligible",
                 "below_minimum", "max_uses_reached", "per_user_limit_reached", "rule_failed",
                 "campaign_budget_exhausted", "fraud_blocked")

MESSAGES = {
    "inactive": "This coupon is not active.",
    "max_uses_reached": "This coupon has been used the maximum number of times.",
    "per_user_limit_reached": "You have already used this coupon the maximum number of times.",
    "campaign_budget_exhausted": "The campaign behind this coupon has used up its budget.",
    "fraud_blocked": "This redemption was blocked by our fraud checks.",
}


@dataclass
class Attempt:
    """One validation or redemption request, whoever makes it (API client or staff)."""

    user: object
    amount: Decimal
    tier: str | None = None
    billing_cycle: str | None = None
    subscription_id: int | None = None
    invoice_id: int | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    device_fingerprint: str | None = None
    is_test: bool = False
    at: datetime = field(default_factory=clock.now)


def resolve_subscription(session, user, raw_id, discount_type: str | None = None):
    """The subscription a redemption is for: the one named (it must be the user's), else for
    a free-months coupon the user's live subscription; None when there is none to name."""
    if raw_id in (None, ""):
        if discount_type != "months_free":
            return None
        sub = subscriptions.live_subscription(session, user.id)
        if sub is None:
            raise DomainError("subscription_required", "A free-months coupon needs a subscription to extend.",
                              "subscription_id")
        return sub
    try:
        sub = subscriptions.get(session, raw_id)
    except DomainError:
        sub = None
    if sub is None or sub.user_id != user.id:
        raise DomainError("resource_missing", "No such subscription.", "subscription_id", status=404)
    return sub


def build_attempt(session, coupon: Coupon, user, raw: dict, *, is_test: bool, ip_address: str | None = None,
                  user_agent: str | None = None) -> Attempt:
    """An API request (or staff action) as an Attempt; tier and cycle default to the subscription's."""
    from app.coupons import invoicing

    purchase = parse_purchase(raw)
    sub = resolve_subscription(session, user, raw.get("subscription_id"), coupon.discount_type)
    invoice = invoicing.open_invoice(session, sub.id) if sub is not None else None
    if sub is not None:
        purchase["tier"] = purchase["tier"] or sub.tier.name
        purchase["billing_cycle"] = purchase["billing_cycle"] or sub.billing_cycle
    fingerprint = raw.get("device_fingerprint")
    # One world per attempt, from the actor (DESIGN.md §3): a test actor's use counts in the test lane.
    is_test = testmode.is_test_row(is_test or getattr(user, "is_test", False))
    return Attempt(user=user, is_test=is_test, ip_address=ip_address, user_agent=user_agent,
                   subscription_id=sub.id if sub is not None else None,
                   invoice_id=invoice.id if invoice is not None else None,
                   device_fingerprint=fingerprint.lower() if fingerprint else None, **purchase)


def parse_purchase(raw: dict) -> dict:
    """amount, tier and billing_cycle of a request, as the API and the preview form send them."""
    return {
        "amount": inputs.amount(raw.get("amount"), "amount"),
        "tier": inputs.choice(raw.get("tier"), TIERS, "tier", required=False),
        "billing_cycle": inputs.choice(raw.get("billing_cycle"), BILLING_CYCLES, "billing_cycle", required=False),
    }


@dataclass
class Result:
    coupon: Coupon
    valid: bool
    code: str | None = None
    message: str | None = None
    benefit: discount.Benefit | None = None
    failed_rule: str | None = None

    def as_dict(self) -> dict:
        if not self.valid:
            return {"valid": False, "code": self.code, "message": self.message}
        b = self.benefit
        body = {"valid": True, "discount": str(b.discount), "final_amount": str(b.final_amount)}
        if b.credits:
            body["credits"] = b.credits
        if b.months:
            body["months_free"] = b.months
        return body


def _fail(coupon: Coupon, code: str, message: str | None = None, rule: str | None = None) -> Result:
    return Result(coupon, False, code, message or MESSAGES[code], failed_rule=rule)


_USER_USES = select(CouponUserUse.uses).where(CouponUserUse.coupon_id == bindparam("coupon_id"),
                                              CouponUserUse.user_id == bindparam("user_id"))


def user_uses(session, coupon: Coupon, user_id: int) -> int:
    row = pg.run(session, _USER_USES, {"coupon_id": coupon.id, "user_id": user_id}).fetchone()
    return row[0] if row is not None else 0


def check(session, coupon: Coupon, attempt: Attempt) -> Result:
    at, campaign = attempt.at, coupon.campaign
    if not coupon.is_active:
        return _fail(coupon, "inactive")
    if campaign is not None and not campaign.is_active:
        return _fail(coupon, "inactive", "The campaign behind this coupon is not active.")
    starts = max(coupon.valid_from, campaign.starts_at) if campaign else coupon.valid_from
    ends = min(coupon.valid_until, campaign.ends_at) if campaign else coupon.valid_until
    if at < starts:
        return _fail(coupon, "not_yet_valid", f"This coupon is valid from {starts:%Y-%m-%d %H:%M} UTC.")
    if at > ends:
        return _fail(coupon, "expired", f"This coupon expired on {ends:%Y-%m-%d %H:%M} UTC.")
    if coupon.tier_eligibility and attempt.tier not in coupon.tier_eligibility:
        return _fail(coupon, "tier_not_eligible", "This coupon is for the " + ", ".join(coupon.tier_eligibility)
                     + " tier(s)" + (f", not {attempt.tier}." if attempt.tier else "; name the tier."))
    if coupon.billing_cycles and attempt.billing_cycle not in coupon.billing_cycles:
        return _fail(coupon, "billing_cycle_not_eligible", "This coupon is for " + " or ".join(coupon.billing_cycles)
                     + " billing" + (f", not {attempt.billing_cycle}." if attempt.billing_cycle else "."))
    if attempt.amount < coupon.min_purchase_amount:
        return _fail(coupon, "below_minimum", f"This coupon needs a purchase of at least {coupon.min_purchase_amount}.")
    used = coupon.test_uses_count if attempt.is_test else coupon.uses_count
    if coupon.max_uses is not None and used >= coupon.max_uses:
        return _fail(coupon, "max_uses_reached")
    if coupon.max_uses_per_user is not None and user_uses(session, coupon, attempt.user.id) >= coupon.max_uses_per_user:
        return _fail(coupon, "per_user_limit_reached")
    for rule in coupon.rules:
        if not rule.is_active:
            continue
        problem = rules.evaluate(session, rule, attempt.user, at, attempt.is_test)
        if problem:
            return _fail(coupon, "rule_failed", problem, rule.rule_type)
    benefit = discount.compute(coupon.discount_type, coupon.discount_value, attempt.amount, attempt.billing_cycle)
    if campaign is not None:
        spent = campaign.test_spent if attempt.is_test else campaign.spent
        if spent >= campaign.budget_limit or spent + benefit.budget_cost > campaign.budget_limit:
            return _fail(coupon, "campaign_budget_exhausted")
    return Result(coupon, True, benefit=benefit)


def preview(session, coupon: Coupon, email: str, raw: dict) -> Result:
    """The staff screen's dry run: the same check() the API runs, for a customer by email."""
    user = session.scalar(select(User).where(User.email == (email or "").strip().lower()))
    if user is None:
        raise DomainError("user_not_found", "No account has this email address.", "email")
    purchase = parse_purchase(raw)
    return check(session, coupon, Attempt(user=user, is_test=testmode.is_test_row(user), **purchase))
