"""Factories for coupon tests: campaigns, coupons and attempts with sensible defaults."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

NOW = datetime(2025, 11, 25, 10, 30, tzinfo=timezone.utc)


@pytest.fixture
def coupon_clock():
    """The clock pinned inside Black Friday week (seed 001 scenario 5)."""
    from app.core import clock

    clock.freeze(NOW)
    yield clock
    clock.reset()


@pytest.fixture
def make_campaign(app):
    from app.coupons.models import Campaign
    from app.extensions import db

    def make(**values) -> Campaign:
        campaign = Campaign(name=values.pop("name", f"Campaign {uuid.uuid4().hex[:8]}"),
                            campaign_type=values.pop("campaign_type", "promotional"),
                            starts_at=values.pop("starts_at", NOW - timedelta(days=30)),
                            ends_at=values.pop("ends_at", NOW + timedelta(days=30)),
                            budget_limit=Decimal(str(values.pop("budget_limit", "1000.00"))),
                            spent=Decimal(str(values.pop("spent", "0.00"))), **values)
        db.session.add(campaign)
        db.session.flush()
        return campaign

    return make


@pytest.fixture
def make_coupon(app):
    from app.coupons.models import Coupon
    from app.extensions import db

    def make(**values) -> Coupon:
        campaign = values.pop("campaign", None)
        coupon = Coupon(code=values.pop("code", f"C{uuid.uuid4().hex[:10].upper()}"),
                        coupon_type=values.pop("coupon_type", "percentage_discount"),
                        discount_type=values.pop("discount_type", "percentage"),
                        discount_value=Decimal(str(values.pop("discount_value", "20.00"))),
                        max_uses=values.pop("max_uses", 100), max_uses_per_user=values.pop("max_uses_per_user", 1),
                        min_purchase_amount=Decimal(str(values.pop("min_purchase_amount", "0"))),
                        tier_eligibility=values.pop("tier_eligibility", []),
                        billing_cycles=values.pop("billing_cycles", []),
                        valid_from=values.pop("valid_from", NOW - timedelta(days=1)),
                        valid_until=values.pop("valid_until", NOW + timedelta(days=7)),
                        campaign_id=campaign.id if campaign is not None else None, **values)
        db.session.add(coupon)
        db.session.flush()
        return coupon

    return make


@pytest.fixture
def attempt():
    from app.coupons.validation import Attempt

    def make(user, amount="99.99", **values) -> Attempt:
        values.setdefault("tier", "pro")
        values.setdefault("billing_cycle", "monthly")
        values.setdefault("ip_address", "203.0.113.45")
        values.setdefault("user_agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)")
        values.setdefault("at", NOW)
        return Attempt(user=user, amount=Decimal(amount), **values)

    return make



@pytest.fixture
def make_subscription(app, make_user):
    """A billing subscription (default tiers); `invoice=True` opens its uncharged period invoice,
    `card=True` puts a payment method on file (ids only: no Stripe call is made)."""
    from app.billing import invoices, tiers
    from app.billing.subscriptions import new_subscription
    from app.extensions import db

    def make(tier: str = "pro", *, user=None, cycle: str = "monthly", invoice: bool = False, card: bool = False,
             start: datetime | None = None):
        known = tiers.ensure_default_tiers(db.session)
        user = user or make_user()
        sub = new_subscription(db.session, user, known[tier], cycle,
                               start=start or datetime(2025, 11, 1, tzinfo=timezone.utc))
        if card:
            sub.stripe_customer_id, sub.default_payment_method_id = f"cus_{user.id}", f"pm_{user.id}"
        if invoice:
            invoices.period_invoice(db.session, sub)
        db.session.flush()
        return sub

    return make
