"""A production customer with something in every section of the customer page: a Pro
subscription, an invoice paid twice (the "charged twice" case) with one charge refunded, a
license with a device, a coupon redeemed, an API key and an audit trail."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest


@pytest.fixture
def customer_world(session, make_user, make_api_key):
    from app.billing import tiers as tier_service
    from app.billing.models import Invoice, InvoiceLine, PaymentTransaction
    from app.billing.subscriptions import new_subscription
    from app.core import audit, clock
    from app.coupons.models import Coupon, Redemption
    from app.credits import balances
    from app.licensing import service as licensing
    from app.licensing.models import Activation

    tiers = tier_service.ensure_default_tiers(session)
    user = make_user("cara.customer@example.com", staff=False, first_name="Cara", last_name="Lopez")
    sub = new_subscription(session, user, tiers["pro"])
    sub.stripe_customer_id = "cus_CARA123"
    inv = Invoice(user_id=user.id, subscription_id=sub.id, kind="period", status="paid", subtotal=Decimal("1234.56"),
                  total=Decimal("1234.56"), amount_paid=Decimal("1234.56"))
    inv.lines.append(InvoiceLine(kind="plan", description="Pro, monthly", unit_amount=Decimal("1234.56"),
                                 amount=Decimal("1234.56")))
    session.add(inv)
    session.flush()
    charges = [PaymentTransaction(user_id=user.id, invoice_id=inv.id, subscription_id=sub.id, amount=Decimal("1234.56"),
                                  status="succeeded", idempotency_key=f"cw-{i}-{user.id}",
                                  stripe_payment_intent_id=f"pi_CARA{i}") for i in (1, 2)]
    session.add_all(charges)
    session.flush()
    charges[1].refunded_amount = Decimal("1234.56")
    session.add(PaymentTransaction(user_id=user.id, invoice_id=inv.id, subscription_id=sub.id, kind="refund",
                                   amount=Decimal("1234.56"), status="succeeded", idempotency_key=f"cw-r-{user.id}",
                                   stripe_refund_id="re_CARA1", refund_of_id=charges[1].id))
    lic = licensing.create_license(session, owner=user, actor=None, purchase_price="199.00", purchased_version="1.0.0")
    session.add(Activation(license_id=lic.id, fingerprint="a" * 64, device_name="Cara's laptop", os_type="macOS"))
    now = clock.now()
    coupon = Coupon(code="CARA-WELCOME", coupon_type="discount", discount_type="percentage", discount_value=Decimal(10),
                    valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=30))
    session.add(coupon)
    session.flush()
    session.add(Redemption(coupon_id=coupon.id, user_id=user.id, status="success", original_amount=Decimal("49.99"),
                           discount_amount=Decimal("5.00"), final_amount=Decimal("44.99")))
    balances.allocate(session, user.id, 5000, "admin_grant", reason="welcome credits")
    audit.record(session, "users.profile_edited", actor=None, target=user, reason="customer asked")
    session.commit()
    key = make_api_key(user, "production", name="Cara's server")
    return SimpleNamespace(user=user, sub=sub, invoice=inv, charges=charges, license=lic, coupon=coupon, key=key.key)
