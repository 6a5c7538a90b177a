"""The provisioning API: create (idempotent, 409s), lookup by external id, update, list, and the
two worlds (a live server key makes production customers, a sandbox one test accounts)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.analytics.service import new_users, window
from app.billing.subscriptions import live_subscription
from app.credits.balances import get_balance
from app.users.models import User

URL = "/api/v1/customers"


@pytest.fixture
def server(make_api_key, make_user, tiers):
    """A live server key of a staff member with the customers:write scope."""
    return make_api_key(make_user(roles=("ops",)), "production", scopes=["customers:write"], name="billing server")


def _create(client, headers, key=None, **body):
    extra = {"Idempotency-Key": key} if key else {}
    return client.post(URL, json={"email": "ada@example.com", "name": "Ada Lovelace", "external_id": "crm-1", **body},
                       headers={**headers, **extra})


def test_create_makes_a_production_customer_on_the_free_tier_counted_on_the_dashboard(client, session, server):
    start, today = window()
    before = new_users(session, start, today, include_test=False)["today"]
    response = _create(client, server.headers, metadata={"plan_source": "crm"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["object"] == "customer" and body["livemode"] is True and body["tier"] == "free"
    assert body["external_id"] == "crm-1" and body["name"] == "Ada Lovelace" and body["metadata"] == {"plan_source": "crm"}
    user = session.get(User, body["id"])
    assert not user.is_test and live_subscription(session, user.id).tier.name == "free"
    assert get_balance(session, user.id).total == 100
    assert new_users(session, start, today, include_test=False)["today"] == before + 1


def test_create_is_idempotent_and_duplicates_are_409(client, session, server):
    first = _create(client, server.headers, key="k-1")
    replay = _create(client, server.headers, key="k-1")
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json()["id"] == first.get_json()["id"]
    email = _create(client, server.headers, external_id="crm-2")
    assert email.status_code == 409 and email.get_json()["error"]["param"] == "email"
    external = _create(client, server.headers, email="other@example.com")
    assert external.status_code == 409 and external.get_json()["error"]["code"] == "external_id_taken"
    assert session.scalar(select(User.id).where(User.email == "other@example.com")) is None


def test_lookup_by_id_and_external_id_update_and_list(client, server):
    created = _create(client, server.headers).get_json()
    found = client.get(f"{URL}?external_id=crm-1", headers=server.headers).get_json()
    assert [c["id"] for c in found["data"]] == [created["id"]] and found["object"] == "list"
    assert client.get(f"{URL}/{created['id']}", headers=server.headers).get_json()["email"] == "ada@example.com"
    patched = client.patch(f"{URL}/{created['id']}", json={"name": "Ada King", "metadata": {"a": "b"}},
                           headers=server.headers)
    assert patched.status_code == 200 and patched.get_json()["name"] == "Ada King"
    assert patched.get_json()["metadata"] == {"a": "b"}
    listed = client.get(f"{URL}?limit=1", headers=server.headers).get_json()
    assert listed["data"][0]["id"] == created["id"]


def test_bad_input_is_422_with_the_field_and_a_paid_tier_needs_payment(client, session, server):
    bad = client.post(URL, json={"email": "not-an-email"}, headers=server.headers)
    assert bad.status_code == 422 and bad.get_json()["error"]["param"] == "email"
    missing = client.post(URL, json={"name": "x"}, headers=server.headers)
    assert missing.status_code == 422 and missing.get_json()["error"]["param"] == "email"
    paid = _create(client, server.headers, tier="pro")
    assert paid.status_code == 422 and paid.get_json()["error"]["code"] == "tier_requires_payment"
    assert session.scalar(select(User.id).where(User.email == "ada@example.com")) is None


def test_a_sandbox_caller_makes_and_sees_test_accounts_only(client, session, server, make_api_key, make_user):
    live = _create(client, server.headers).get_json()
    sandbox = make_api_key(server.user, "sandbox", scopes=["customers:write"])
    test = _create(client, sandbox.headers, email="tess@example.com", external_id="crm-t", tier="pro")
    assert test.status_code == 201 and test.headers["X-Test-Mode"] == "true"
    body = test.get_json()
    assert body["livemode"] is False and body["tier"] == "pro"
    assert session.get(User, body["id"]).is_test
    assert client.get(f"{URL}/{live['id']}", headers=sandbox.headers).status_code == 404
    assert client.get(f"{URL}/{body['id']}", headers=server.headers).status_code == 404


def test_customer_credentials_cannot_provision(client, make_api_key, tiers):
    own = make_api_key(None, "production", scopes=["*"])
    response = _create(client, own.headers)
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "server_credential_required"
    scoped = make_api_key(None, "production", scopes=["credits:read"])
    assert _create(client, scoped.headers).get_json()["error"]["code"] == "insufficient_scope"


def test_a_live_oauth_clients_client_credentials_token_provisions_production_customers(client, session, tiers):
    from app.api import clients as oauth

    oauth.create_client(session, None, client_id="crm-server", name="CRM server", redirect_uris=[], is_test=False,
                        secret="rph_cs_crm_server_secret_0000000000000000")
    session.commit()
    token = client.post("/api/v1/oauth/token", data={"grant_type": "client_credentials", "client_id": "crm-server",
                                                      "client_secret": "rph_cs_crm_server_secret_0000000000000000"})
    headers = {"Authorization": f"Bearer {token.get_json()['access_token']}"}
    created = _create(client, headers)
    assert created.status_code == 201 and created.get_json()["livemode"] is True
