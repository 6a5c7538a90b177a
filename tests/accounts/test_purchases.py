"""Purchases that are paid, on localstripe: subscribe (4242 paid, 0341 declined: still free), a
perpetual license and an upgrade (paid, declined, idempotent), settled by the webhook too
(twice, or late and out of order, changes nothing)."""
from __future__ import annotations

import time
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.billing import gateway, invoices, payments
from app.billing.models import Invoice, PaymentTransaction
from app.billing.subscriptions import live_subscription
from app.credits.balances import get_balance
from app.licensing import service as licensing
from app.licensing import upgrades
from app.licensing.models import License, LicenseUpgrade
from tests.billing.conftest import _stripe_config, stripe_emulator  # noqa: F401  (localstripe for these tests)
from tests.billing.test_stripe import event, post, signed

PAID, DECLINED = "4242424242424242", "4000000000000341"


@pytest.fixture
def api(make_api_key, customer):
    """The customer's live key (their own app's calls)."""
    return make_api_key(customer, "production", scopes=["*"]).headers


@pytest.fixture
def versions(session):
    for version, released in (("1.0.0", date(2024, 6, 3)), ("2.0.0", date(2025, 1, 15))):
        upgrades.create_version(session, version, released, actor=None)
    session.commit()


def test_a_customer_cannot_upgrade_without_paying(client, session, customer, api):
    response = client.post("/api/v1/subscription/change", json={"to_tier": "pro"}, headers=api)
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "no_payment_method"
    assert live_subscription(session, customer.id).tier.name == "free"
    assert session.scalar(select(func.count()).select_from(Invoice).where(Invoice.user_id == customer.id)) == 0


def test_subscribe_with_4242_charges_first_then_moves_to_the_paid_tier_with_its_credits(client, session, customer, api):
    response = client.post("/api/v1/subscription/subscribe", json={"tier": "pro", "payment_method": PAID},
                           headers={**api, "Idempotency-Key": "sub-1"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["subscription"]["tier"] == "pro" and body["invoice"]["status"] == "paid"
    session.expire_all()
    assert live_subscription(session, customer.id).tier.name == "pro"
    assert get_balance(session, customer.id).total > 100
    charge = session.scalar(select(PaymentTransaction).where(PaymentTransaction.user_id == customer.id))
    assert charge.status == "succeeded" and gateway.retrieve_payment_intent(
        payment_intent_id=charge.stripe_payment_intent_id, is_test=False).status == "succeeded"


def test_subscribe_with_0341_is_declined_and_the_customer_stays_free(client, session, customer, api):
    response = client.post("/api/v1/subscription/subscribe", json={"tier": "pro", "payment_method": DECLINED},
                           headers=api)
    assert response.status_code == 402 and response.get_json()["error"]["code"] == "card_declined"
    session.expire_all()
    assert live_subscription(session, customer.id).tier.name == "free" and get_balance(session, customer.id).total == 100


def test_license_purchase_is_paid_then_issued_and_idempotent(client, session, customer, api, versions):
    headers = {**api, "Idempotency-Key": "lic-1"}
    first = client.post("/api/v1/licenses/purchase", json={"payment_method": PAID}, headers=headers)
    assert first.status_code == 201, first.get_json()
    replay = client.post("/api/v1/licenses/purchase", json={"payment_method": PAID}, headers=headers)
    assert replay.status_code == 200 and replay.get_json()["id"] == first.get_json()["id"]
    body = first.get_json()
    assert body["status"] == "active" and body["price_usd"] == "299.99" and body["purchased_version"] == "2.0.0"
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(License).where(License.user_id == customer.id)) == 1
    assert session.get(Invoice, body["invoice_id"]).status == "paid"
    assert session.scalar(select(func.count()).select_from(PaymentTransaction)
                          .where(PaymentTransaction.user_id == customer.id)) == 1


def test_a_declined_license_purchase_issues_nothing_usable(client, session, customer, api, versions):
    response = client.post("/api/v1/licenses/purchase", json={"payment_method": DECLINED}, headers=api)
    assert response.status_code == 402
    session.expire_all()
    lic = session.scalar(select(License).where(License.user_id == customer.id))
    assert lic.status == "revoked" and session.get(Invoice, lic.invoice_id).status == "void"


@pytest.fixture
def owned_license(session, customer, versions):
    lic = licensing.create_license(session, owner=customer, actor=None, purchase_price=Decimal("299.99"),
                                   purchased_version="1.0.0")
    session.commit()
    return lic


def test_upgrade_paid_completes_and_declined_leaves_the_license_unchanged(client, session, api, owned_license):
    body = {"license_key": owned_license.license_key, "to_version": "2.0.0"}
    declined = client.post("/api/v1/licenses/upgrade", json={**body, "payment_method": DECLINED}, headers=api)
    assert declined.status_code == 402
    session.expire_all()
    assert owned_license.eligible_until_version == "2.0.0"
    assert session.scalar(select(LicenseUpgrade.status)) == "failed"
    paid = client.post("/api/v1/licenses/upgrade", json={**body, "payment_method": PAID}, headers=api)
    assert paid.status_code == 201, paid.get_json()
    assert paid.get_json()["upgrade"]["status"] == "completed"
    session.expire_all()
    assert owned_license.eligible_until_version == "3.0.0"


def test_the_webhook_issues_a_license_once_whatever_the_order(client, session, customer, owned_license, versions):
    """A charge confirmed outside the request (3-D Secure, a crash): the verified webhook issues
    the license; a second delivery and an older failure event change nothing."""
    from app.billing import license_sales

    sub = license_sales._card_on_file(session, customer, PAID)
    lic = licensing.create_license(session, owner=customer, actor=None, purchase_price=Decimal("299.99"),
                                   purchased_version="2.0.0", status="pending")
    invoice = invoices.build(session, user_id=customer.id, subscription=sub, kind="license",
                             lines=[invoices.Line("license", "Perpetual license", Decimal("299.99"))])
    lic.invoice_id = invoice.id
    session.commit()
    payment = payments.start_charge(session, invoice)
    pi = gateway.create_payment_intent(amount=invoice.total, currency="usd", customer_id=sub.stripe_customer_id,
                                       payment_method=sub.default_payment_method_id, idempotency_key="lic-wh",
                                       is_test=False, metadata={"payment_id": payment.id, "rephlo": "1"})
    now = int(time.time())
    ok = {"id": pi, "object": "payment_intent", "status": "succeeded", "latest_charge": "ch_lic",
          "metadata": {"payment_id": str(payment.id), "rephlo": "1"}}
    body, sig = signed(event("evt_lic_ok", "payment_intent.succeeded", ok, now))
    assert post(client, body, sig).status_code == 200
    assert post(client, body, sig).get_json()["duplicate"] is True
    failed = {**ok, "status": "requires_payment_method", "last_payment_error": {"code": "card_declined"}}
    late, late_sig = signed(event("evt_lic_late", "payment_intent.payment_failed", failed, now - 60))
    assert post(client, late, late_sig).status_code == 200
    session.expire_all()
    assert lic.status == "active" and lic.payment_reference == pi and invoice.status == "paid"
