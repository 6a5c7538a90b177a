"""The customer's page: plan, balance, usage, licenses and devices (deactivate), invoices, own API keys."""
from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.licensing import activations
from app.licensing import service as licensing
from app.api.models import ApiKey


@pytest.fixture
def device(session, customer):
    lic = licensing.create_license(session, owner=customer, actor=None, purchase_price=Decimal("199.00"),
                                   purchased_version="1.0.0", eligible_until_version="2.0.0")
    fingerprint = hashlib.sha256(b"cara-laptop").hexdigest()
    result = activations.activate(session, lic, fingerprint, {"device_name": "Cara's laptop", "os_type": "macOS"})
    session.commit()
    return lic, result.activation


def test_the_page_shows_plan_balance_usage_and_devices(customer_client, device):
    page = customer_client.get("/account/").get_data(as_text=True)
    assert "Free" in page and "100</strong> credits" in page and "Used this month: 0 credits" in page
    assert device[0].license_key in page and "Cara&#39;s laptop" in page and "1 of 3 devices" in page


def test_a_customer_deactivates_their_own_device_and_not_anothers(app, session, customer_client, device, tiers):
    from app.accounts import service
    from tests.accounts.conftest import PASSWORD, https_client

    lic, activation = device
    url = f"/account/licenses/{lic.id}/devices/{activation.id}/deactivate"
    other = service.create_customer(session, email="other@example.com", password=PASSWORD)
    session.commit()
    stranger = https_client(app)
    stranger.post("/account/signin", data={"email": other.email, "password": PASSWORD})
    assert stranger.post(url).status_code == 404
    session.refresh(activation)
    assert activation.status == "active"
    assert customer_client.post(url).status_code == 302
    session.refresh(activation)
    assert activation.status == "deactivated"


def test_sandbox_keys_freely_live_keys_after_verification(session, customer_client, customer):
    sandbox = customer_client.post("/account/keys", data={"name": "laptop", "key_type": "sandbox"})
    assert sandbox.status_code == 200 and 'id="new-api-key">rph_test_' in sandbox.get_data(as_text=True)
    live = customer_client.post("/account/keys", data={"name": "server", "key_type": "production"})
    assert live.status_code == 403 and "Confirm your email address" in live.get_data(as_text=True)
    assert session.scalar(select(ApiKey.id).where(ApiKey.user_id == customer.id,
                                                  ApiKey.key_type == "production")) is None
    customer.email_verified = True
    session.commit()
    live = customer_client.post("/account/keys", data={"name": "server", "key_type": "production"})
    assert 'id="new-api-key">rph_live_' in live.get_data(as_text=True)
    key = session.scalar(select(ApiKey).where(ApiKey.user_id == customer.id, ApiKey.key_type == "production"))
    assert customer_client.post(f"/account/keys/{key.id}/revoke").status_code == 302
    session.refresh(key)
    assert key.revoked_at is not None
    nameless = customer_client.post("/account/keys", data={"name": "", "key_type": "sandbox"})
    assert nameless.status_code == 422 and "Give the key a name" in nameless.get_data(as_text=True)
