"""A production customer for the whole-product journey, made on the journey's own database.

The seed holds test data only, so without this every production figure would be zero and
"unchanged" would prove little. Run as `python -m tests.e2e.journey_customer` with the
server's environment (DATABASE_URL): it creates one standard (production) account on the Pro
plan (with its period's credits) plus a credit pack, a perpetual license and a production API
key, through the domain services,
and prints what the API calls need as JSON. The journey then spends, activates and redeems
with it over HTTP exactly as the test account does.
"""
from __future__ import annotations

import json

EMAIL = "journey.customer@example.com"
PURCHASED_CREDITS = 20_000


def create_customer() -> dict:
    from app import create_app
    from app.billing import allocation, subscriptions, tiers
    from app.credits import balances
    from app.extensions import db
    from app.licensing import service as licensing
    from app.testdata.keys import create_api_key
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
        session.commit()
        return {"email": EMAIL, "user_id": user.id, "api_key": secret, "license_key": lic.license_key}


if __name__ == "__main__":
    print(json.dumps(create_customer()))
