"""/api/v1/credits: shapes of DESIGN.md §6, Stripe-style errors, nothing written on bad input."""
from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import func, select

from app.credits import balances
from app.credits.models import CreditDeduction, TokenUsage
from app.extensions import db


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def pro(priced, funded, make_api_key):
    """A production pro customer with 10,000 subscription and 500 bonus credits, and a live key."""
    user = funded(subscription=10_000, bonus=500, tier="pro")
    return make_api_key(user, key_type="production")


@pytest.fixture(params=["no key", "idempotency key"], autouse=True)
def lane(request, monkeypatch):
    """Every test twice: requests without an Idempotency-Key, then with a fresh one each (on
    PostgreSQL the pipeline then authenticates and claims in one statement, app/api/pipeline.py)."""
    monkeypatch.setattr(f"{__name__}.AUTO_IDEMPOTENCY_KEYS", request.param == "idempotency key")
    return request.param


AUTO_IDEMPOTENCY_KEYS = False


def post(client, path, key, body, idem=None, **headers):
    if idem is None and AUTO_IDEMPOTENCY_KEYS:
        idem = uuid.uuid4().hex
    if idem:
        headers["Idempotency-Key"] = idem
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(f"/api/v1{path}", data=data, content_type="application/json",
                       headers={**key.headers, **headers})


CHARGE = {"model": "gpt-4-turbo", "input_tokens": 500, "output_tokens": 300, "request_id": "req_1"}


def test_balance_shape(client, pro):
    response = client.get("/api/v1/credits/balance", headers=pro.headers)
    assert response.status_code == 200
    assert response.json == {"subscription_credits": 10_000, "bonus_credits": 500, "total": 10_500,
                             "monthly_cap": None, "month_to_date": {"credits": 0, "tokens": 0}}
    assert "X-Test-Mode" not in response.headers


def test_calculate_cost_is_scenario_6_and_writes_nothing(client, pro):
    response = post(client, "/credits/calculate-cost", pro, {k: CHARGE[k] for k in ("model", "input_tokens",
                                                                                     "output_tokens")})
    assert response.status_code == 200
    assert response.json == {"model": "gpt-4-turbo", "vendor_cost_usd": "0.014000", "margin_percentage": "40.00",
                             "customer_cost_usd": "0.019600", "credits": 49}
    assert count(TokenUsage) == 0


def test_calculate_and_deduct(client, pro):
    response = post(client, "/credits/calculate-and-deduct", pro, CHARGE)
    assert response.status_code == 201, response.json
    body = response.json
    assert body["credits_deducted"] == 49 and isinstance(body["usage_id"], int)
    assert body["balance"] == {"subscription_credits": 9_951, "bonus_credits": 500, "total": 10_451,
                               "monthly_cap": None, "month_to_date": {"credits": 49, "tokens": 800}}
    usage = db.session.get(TokenUsage, body["usage_id"])
    assert (usage.request_id, usage.is_test) == ("req_1", False)
    again = post(client, "/credits/calculate-and-deduct", pro, CHARGE)
    assert (again.status_code, again.json["error"]["code"], again.json["error"]["param"]) == (
        409, "duplicate_request_id", "request_id")
    assert count(CreditDeduction) == 1


def test_sandbox_traffic_is_test_traffic(client, priced, funded, make_api_key):
    """A production customer's sandbox key charges the customer's test twin, never the customer."""
    from app.sandbox import twins

    customer = funded(subscription=100, tier="free")
    key = make_api_key(customer, key_type="sandbox")
    refused = post(client, "/credits/calculate-and-deduct", key, CHARGE)  # the twin starts with no credits here
    assert (refused.status_code, refused.json["error"]["code"]) == (402, "insufficient_credits")
    twin = twins.twin_of(db.session, customer)
    assert twin.is_test and twin.twin_of_id == customer.id
    balances.allocate(db.session, twin.id, 100, "promotional_bonus")
    db.session.commit()
    response = post(client, "/credits/calculate-and-deduct", key, {**CHARGE, "request_id": "req_twin"})
    assert response.status_code == 201 and response.headers["X-Test-Mode"] == "true"
    usage = db.session.get(TokenUsage, response.json["usage_id"])
    assert usage.is_test is True and usage.user_id == twin.id
    assert balances.get_balance(db.session, customer.id).total == 100
    assert balances.get_balance(db.session, twin.id).total == 100 - response.json["credits_deducted"]


def test_insufficient_credits_is_402(client, priced, funded, make_api_key):
    key = make_api_key(funded(subscription=48), key_type="production")
    response = post(client, "/credits/calculate-and-deduct", key, CHARGE)
    assert response.status_code == 402
    assert response.json["error"]["code"] == "insufficient_credits"
    assert count(TokenUsage) == 0 and balances.get_balance(db.session, key.user.id).total == 48


@pytest.mark.parametrize("body, status, code, param", [
    ({**CHARGE, "input_tokens": -1}, 422, "parameter_invalid", "input_tokens"),
    ({**CHARGE, "output_tokens": 10_000_001}, 422, "parameter_invalid", "output_tokens"),
    ({**CHARGE, "input_tokens": 1.5}, 422, "parameter_invalid_integer", "input_tokens"),
    ({**CHARGE, "input_tokens": "500"}, 422, "parameter_invalid_integer", "input_tokens"),
    ({**CHARGE, "model": "gpt-9"}, 422, "price_not_found", "model"),
    ({**CHARGE, "deduction_type": "free_lunch"}, 422, "parameter_invalid", "deduction_type"),
    ({**CHARGE, "user_id": 1}, 422, "parameter_unknown", "user_id"),
    ({k: v for k, v in CHARGE.items() if k != "request_id"}, 422, "parameter_missing", "request_id"),
    ("{not json", 400, "invalid_json", None),
])
def test_bad_input_is_refused_and_writes_nothing(client, pro, body, status, code, param):
    response = post(client, "/credits/calculate-and-deduct", pro, body)
    assert response.status_code == status
    assert (response.json["error"]["code"], response.json["error"]["param"]) == (code, param)
    assert count(TokenUsage) == 0 and count(CreditDeduction) == 0


@pytest.mark.parametrize("body, code, param", [
    ({"amount": 1.5, "deduction_type": "inference"}, "parameter_invalid_integer", "amount"),
    ({"amount": "16.00", "deduction_type": "inference"}, "parameter_invalid_integer", "amount"),
    ({"amount": 0, "deduction_type": "inference"}, "parameter_invalid", "amount"),
    ({"amount": 16, "deduction_type": "expiration"}, "parameter_invalid", "deduction_type"),
])
def test_deduct_bad_amounts(client, pro, body, code, param):
    response = post(client, "/credits/deduct", pro, body)
    assert response.status_code == 422
    assert (response.json["error"]["code"], response.json["error"]["param"]) == (code, param)
    assert count(CreditDeduction) == 0


def test_deduct(client, pro):
    response = post(client, "/credits/deduct", pro, {"amount": 16, "deduction_type": "embedding",
                                                     "related_usage_id": "embed_1"})
    assert response.status_code == 201
    assert response.json["credits_deducted"] == 16 and response.json["balance"]["total"] == 10_484


def test_missing_and_revoked_keys(client, pro):
    response = client.post("/api/v1/credits/deduct", json={"amount": 1, "deduction_type": "custom"})
    assert (response.status_code, response.json["error"]["code"]) == (401, "missing_api_key")
    from app.api.keys import revoke_api_key

    revoke_api_key(db.session, None, pro.key, "leaked")
    response = post(client, "/credits/deduct", pro, {"amount": 1, "deduction_type": "custom"})
    assert (response.status_code, response.json["error"]["code"]) == (401, "api_key_revoked")
    assert count(CreditDeduction) == 0


def test_idempotent_replay_and_reuse(client, pro):
    first = post(client, "/credits/calculate-and-deduct", pro, CHARGE, idem="k-1")
    replay = post(client, "/credits/calculate-and-deduct", pro, CHARGE, idem="k-1")
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json == first.json and replay.headers["Idempotent-Replayed"] == "true"
    assert count(CreditDeduction) == 1 and count(TokenUsage) == 1
    other = post(client, "/credits/calculate-and-deduct", pro, {**CHARGE, "input_tokens": 1}, idem="k-1")
    assert (other.status_code, other.json["error"]["code"]) == (409, "idempotency_key_reused")
    assert count(CreditDeduction) == 1


def test_monthly_cap(client, pro):
    response = post(client, "/credits/monthly-cap", pro, {"monthly_cap": 60})
    assert response.status_code == 200
    assert response.json == {"monthly_cap": 60, "remaining": 60, "month_to_date": {"credits": 0, "tokens": 0}}
    assert post(client, "/credits/calculate-and-deduct", pro, CHARGE).status_code == 201
    refused = post(client, "/credits/calculate-and-deduct", pro, {**CHARGE, "request_id": "req_2"})
    assert (refused.status_code, refused.json["error"]["code"]) == (402, "monthly_cap_exceeded")
    assert client.get("/api/v1/credits/monthly-cap", headers=pro.headers).json["remaining"] == 11
    bad = post(client, "/credits/monthly-cap", pro, {"monthly_cap": -5})
    assert (bad.status_code, bad.json["error"]["param"]) == (422, "monthly_cap")
    assert post(client, "/credits/monthly-cap", pro, {"monthly_cap": None}).json["monthly_cap"] is None


def test_transactions_pages_and_filters(client, pro):
    for i in range(5):
        assert post(client, "/credits/calculate-and-deduct", pro, {**CHARGE, "request_id": f"r{i}"}).status_code == 201
    page = client.get("/api/v1/credits/transactions?limit=3", headers=pro.headers).json
    assert page["object"] == "list" and page["has_more"] is True and len(page["data"]) == 3
    assert page["data"][0]["amount"] == -49 and page["data"][0]["object"] == "deduction"
    rest = client.get(f"/api/v1/credits/transactions?limit=10&starting_after={page['data'][-1]['id']}",
                      headers=pro.headers).json
    assert rest["has_more"] is False and len(rest["data"]) == 4  # 2 deductions + 2 allocations
    ids = [t["id"] for t in page["data"] + rest["data"]]
    assert len(set(ids)) == 7
    allocations = client.get("/api/v1/credits/transactions?type=allocation", headers=pro.headers).json["data"]
    assert {t["kind"] for t in allocations} == {"monthly_allocation", "promotional_bonus"}
    for query, param in (("limit=0", "limit"), ("type=refund", "type"), ("start=yesterday", "start"),
                         ("starting_after=ded_999999", "starting_after")):
        bad = client.get(f"/api/v1/credits/transactions?{query}", headers=pro.headers)
        assert (bad.status_code, bad.json["error"]["param"]) == (422, param), query


def test_transactions_of_someone_else_cannot_be_a_cursor(client, pro, funded, make_api_key):
    other = make_api_key(funded(subscription=5), key_type="production")
    theirs = client.get("/api/v1/credits/transactions", headers=other.headers).json["data"][0]["id"]
    bad = client.get(f"/api/v1/credits/transactions?starting_after={theirs}", headers=pro.headers)
    assert bad.status_code == 422


def test_export_streams_csv(client, pro):
    post(client, "/credits/calculate-and-deduct", pro, CHARGE)
    response = client.get("/api/v1/credits/transactions/export?type=deduction", headers=pro.headers)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    lines = response.get_data(as_text=True).strip().splitlines()
    assert lines[0].startswith("id,object,kind,amount") and len(lines) == 2
    assert ",deduction,inference,'-49," in lines[1]  # a leading minus is quoted against formula injection


def test_usage_stats(client, pro):
    post(client, "/credits/calculate-and-deduct", pro, CHARGE)
    body = client.get("/api/v1/credits/usage/stats", headers=pro.headers).json
    assert body["totals"] == {"requests": 1, "input_tokens": 500, "output_tokens": 300,
                              "vendor_cost_usd": "0.014000", "credits": 49}
    assert body["by_model"][0]["model"] == "gpt-4-turbo" and len(body["by_day"]) == 1
    bad = client.get("/api/v1/credits/usage/stats?start=2025-12-01&end=2025-11-01", headers=pro.headers)
    assert bad.status_code == 422
