"""Client API: /api/v1/subscription (get, features, preview-change, change, cancel,
payment-method) and credit packs, with bad input answered as Stripe-style errors."""
import pytest

from app.billing import changes, packs
from app.billing.models import Invoice, ProrationEvent
from app.core import clock
from app.credits import balances
from tests.billing.conftest import utc


@pytest.fixture
def nov15():
    clock.freeze(utc("2025-11-15T10:00:00"))
    yield
    clock.reset()


@pytest.fixture
def pro(make_sub, make_api_key, nov15):
    """A production customer on Pro since 2025-11-01 with a live key."""
    sub = make_sub("pro", card="4242424242424242", allocate=True)
    sub.key = make_api_key(sub.user, "production")
    return sub


def test_get_subscription_and_features(client, pro):
    body = client.get("/api/v1/subscription", headers=pro.key.headers).get_json()
    assert body["tier"] == "pro" and body["status"] == "active" and body["price_usd"] == "99.99"
    assert body["monthly_credits"] == 10_000 and body["features"]["device_activations"] == 3
    features = client.get("/api/v1/subscription/features?feature=advanced_analytics", headers=pro.key.headers)
    assert features.get_json()["allowed"] is True
    assert client.get("/api/v1/subscription/features?feature=sla_guarantee",
                      headers=pro.key.headers).get_json()["allowed"] is False
    assert client.get("/api/v1/subscription/features?feature=no_such_feature",
                      headers=pro.key.headers).get_json()["allowed"] is False


def test_preview_change_is_the_seed_quote(client, pro, session):
    response = client.post("/api/v1/subscription/preview-change", headers=pro.key.headers,
                           json={"to_tier": "enterprise_pro", "effective_date": "2025-11-15"})
    assert response.status_code == 200
    body = response.get_json()
    assert {k: body[k] for k in ("from_tier", "to_tier", "change_type", "days_remaining", "days_in_cycle",
                                 "unused_credit_value_usd", "new_tier_prorated_cost_usd", "net_charge_usd")} == {
        "from_tier": "pro", "to_tier": "enterprise_pro", "change_type": "upgrade", "days_remaining": 15,
        "days_in_cycle": 30, "unused_credit_value_usd": "49.99", "new_tier_prorated_cost_usd": "149.99",
        "net_charge_usd": "100.00"}
    assert session.query(ProrationEvent).count() == 0


def test_change_charges_the_card_and_replays_with_the_same_key(client, pro, session):
    headers = {**pro.key.headers, "Idempotency-Key": "upgrade-1"}
    body = {"to_tier": "enterprise_pro", "effective_date": "2025-11-15"}
    first = client.post("/api/v1/subscription/change", headers=headers, json=body)
    assert first.status_code == 201, first.get_json()
    data = first.get_json()
    assert data["proration_status"] == "applied" and data["invoice"]["status"] == "paid"
    assert data["invoice"]["total"] == "100.00" and data["subscription"]["tier"] == "enterprise_pro"
    replay = client.post("/api/v1/subscription/change", headers=headers, json=body)
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert session.query(ProrationEvent).count() == 1
    assert balances.get_balance(session, pro.user_id).subscription_credits == 30_000


def test_declined_upgrade_keeps_the_tier_and_frees_the_key(client, session, make_sub, make_api_key, nov15):
    sub = make_sub("pro", card="4000000000000341")
    key = make_api_key(sub.user, "production")
    headers = {**key.headers, "Idempotency-Key": "upgrade-declined"}
    response = client.post("/api/v1/subscription/change", headers=headers, json={"to_tier": "enterprise_pro"})
    assert response.status_code == 402
    assert response.get_json()["error"]["code"] == "card_declined"
    session.expire_all()
    assert sub.tier.name == "pro"
    event = session.query(ProrationEvent).one()
    assert event.status == "failed" and session.get(Invoice, event.invoice_id).status == "void"
    changes.attach_card(session, sub.user, sub, "4242424242424242", reason="new card", retry=False)
    again = client.post("/api/v1/subscription/change", headers=headers, json={"to_tier": "enterprise_pro"})
    assert again.status_code == 201  # the failed request did not keep the key


@pytest.mark.parametrize("body,status,code,param", [
    ({"to_tier": "pro"}, 422, "same_tier", "to_tier"),
    ({"to_tier": "platinum"}, 422, "unknown_tier", "to_tier"),
    ({}, 422, "parameter_missing", "to_tier"),
    ({"to_tier": "enterprise_pro", "effective_date": "2026-01-01"}, 422, "effective_date_outside_period",
     "effective_date"),
    ({"to_tier": "enterprise_pro", "extra": 1}, 422, "parameter_unknown", "extra"),
])
def test_bad_change_requests(client, pro, session, body, status, code, param):
    response = client.post("/api/v1/subscription/change", headers=pro.key.headers, json=body)
    assert response.status_code == status
    error = response.get_json()["error"]
    assert (error["code"], error["param"]) == (code, param)
    assert session.query(ProrationEvent).count() == 0 and session.query(Invoice).count() == 0


def test_cancel_then_change_is_refused(client, pro, session):
    response = client.post("/api/v1/subscription/cancel", headers=pro.key.headers, json={"at_period_end": False})
    assert response.status_code == 200 and response.get_json()["subscription"]["status"] == "cancelled"
    again = client.post("/api/v1/subscription/change", headers=pro.key.headers, json={"to_tier": "enterprise_pro"})
    assert again.status_code == 404 and again.get_json()["error"]["code"] == "no_subscription"
    with pytest.raises(Exception) as err:
        changes.change_tier(session, None, pro, "enterprise_pro", reason="staff try")
    assert err.value.code == "subscription_cancelled" and err.value.status == 409


def test_sandbox_key_changes_the_twins_subscription_not_the_customers(client, pro, make_api_key, session):
    """A production customer's sandbox key plans changes on its test twin (issue 14)."""
    from app.sandbox.twins import twin_of

    live_before = (pro.id, pro.tier_id, pro.status)
    sandbox = make_api_key(pro.user, "sandbox")
    preview = client.post("/api/v1/subscription/preview-change", headers=sandbox.headers,
                          json={"to_tier": "enterprise_pro"})
    assert preview.status_code == 200 and preview.headers["X-Test-Mode"] == "true"
    change = client.post("/api/v1/subscription/change", headers=sandbox.headers, json={"to_tier": "enterprise_pro"})
    # The key acts as the customer's test twin, which has no card: its upgrade is refused unpaid,
    # and the production subscription never moves.
    assert change.status_code == 409 and change.get_json()["error"]["code"] == "no_payment_method"
    assert change.headers["X-Test-Mode"] == "true" and pro.tier.name == "pro"
    session.expire_all()
    assert (pro.id, pro.tier_id, pro.status) == live_before
    twin = twin_of(session, pro.user)
    assert twin is not None and twin.is_test  # the refusal was the twin's, not the customer's


def test_buy_a_credit_pack(client, pro, session):
    packs.ensure_default_packs(session)
    pack = packs.all_packs(session)[0]
    listing = client.get("/api/v1/credits/packs", headers=pro.key.headers).get_json()
    assert listing["data"][0] == {"id": pack.id, "name": pack.name, "credits": pack.credits, "price_usd": "20.00"}
    response = client.post(f"/api/v1/credits/packs/{pack.id}/purchase", headers=pro.key.headers)
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "succeeded" and body["balance"]["bonus_credits"] == pack.credits
    assert client.post("/api/v1/credits/packs/999999/purchase", headers=pro.key.headers).status_code == 404


def test_declined_pack_purchase_adds_no_credits(client, session, make_sub, make_api_key, nov15):
    packs.ensure_default_packs(session)
    sub = make_sub("pro", card="4000000000000341")
    key = make_api_key(sub.user, "production")
    pack = packs.all_packs(session)[0]
    response = client.post(f"/api/v1/credits/packs/{pack.id}/purchase", headers=key.headers)
    assert response.status_code == 402
    assert balances.get_balance(session, sub.user_id).bonus_credits == 0
    assert packs.purchases_for(session, sub.user_id)[0].status == "failed"


def test_new_card_through_the_api_ends_dunning(client, session, make_sub, make_api_key, nov15):
    sub = make_sub("pro", card="4000000000000341")
    from app.billing import collection, invoices

    invoice = invoices.period_invoice(session, sub)
    session.commit()
    collection.collect(session, invoice, trigger="renewal")
    assert sub.status == "past_due"
    key = make_api_key(sub.user, "production")
    response = client.post("/api/v1/subscription/payment-method", headers=key.headers,
                           json={"payment_method": "pm_card_visa"})
    assert response.status_code == 200 and response.get_json()["status"] == "active"
    assert invoice.status == "paid"
