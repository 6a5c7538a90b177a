"""A production customer for the whole-product journey, made on the journey's own database.

The seed holds test data only, so without this every production figure would be zero and
"unchanged" would prove little. Run as `python -m tests.e2e.journey_customer` with the
server's environment (DATABASE_URL): it creates one standard (production) account on the Pro
plan (with its period's credits) plus a credit pack, a perpetual license and a production API
key, through the domain services, and the shop's current coupon (20% off the Pro plan, valid
around today: every seeded coupon ends on 2026-12-31, and the journey must not expire with them),
and prints what the API calls need as JSON. The journey then spends, activates and redeems
with it over HTTP exactly as the test account does.
"""
from __future__ import annotations

import json

EMAIL = "journey.customer@example.com"
PURCHASED_CREDITS = 20_000
COUPON = "JOURNEY20"


def create_customer() -> dict:
    from datetime import timedelta

    from app import create_app
    from app.core import clock
    from app.coupons import coupons
    from app.billing import allocation, subscriptions, tiers
    from app.credits import balances
    from app.extensions import db
    from app.licensing import service as licensing
    from app.api.keys import create_api_key
    from app.users.models import User

    app = create_app()
    with app.app_context():
        session = db.session
        user = User(email=EMAIL, first_name="Journey", last_name="Customer", account_type="standard",
                    email_verified=True)
        session.add(user)
        session.flush()
        allocation.allocate_period(session, subscriptions.new_subscription(session, user, tiers.get_tier(session, "pro")))
        balances.allocate(session, user.id, PURCHASED_CREDITS, "purchase", reason="Credit pack")
        lic = licensing.create_license(session, owner=user, actor=None, purchase_price="299.99",
                                       purchased_version="1.0.0", reason="Bought on the website")
        _, secret = create_api_key(session, None, owner=user, name="Journey desktop app", key_type="production")
        now = clock.now()
        coupons.create(session, None, {
            "code": COUPON, "coupon_type": "percentage_discount", "discount_type": "percentage", "discount_value": "20",
            "max_uses": "100", "max_uses_per_user": "1", "tier_eligibility": ["pro"], "billing_cycles": ["monthly"],
            "valid_from": (now - timedelta(days=1)).isoformat(), "valid_until": (now + timedelta(days=30)).isoformat(),
            "description": "Journey: 20% off the Pro plan"})
        session.commit()
        return {"email": EMAIL, "user_id": user.id, "api_key": secret, "license_key": lic.license_key}


if __name__ == "__main__":
    print(json.dumps(create_customer()))
