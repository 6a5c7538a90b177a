"""/api/v1/admin/credits: allocations with caps and approvals, all-or-nothing bulk, analytics."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from app.credits import balances, metering
from app.credits.models import CreditAllocation, CreditGrantRequest
from app.extensions import db


@pytest.fixture
def staff_key(make_user, make_api_key):
    def make(*roles):
        return make_api_key(make_user(roles=roles), key_type="production")

    return make


def allocations() -> int:
    return db.session.scalar(select(func.count()).select_from(CreditAllocation))


def post(client, path, key, body, content_type="application/json"):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(f"/api/v1{path}", data=data, content_type=content_type, headers=key.headers)


def test_ops_allocates_within_the_cap_and_files_a_request_above_it(client, priced, funded, staff_key):
    ops, user = staff_key("ops"), funded(subscription=10)
    ok = post(client, "/admin/credits/allocate", ops, {"user_id": user.id, "amount": 250_000, "reason": "Outage"})
    assert ok.status_code == 201 and ok.json["status"] == "granted"
    assert ok.json["balance"]["bonus_credits"] == 250_000
    above = post(client, "/admin/credits/allocate", ops, {"user_id": user.id, "amount": 250_001, "reason": "Big"})
    assert above.status_code == 202 and above.json["status"] == "pending_approval"
    assert db.session.get(CreditGrantRequest, above.json["approval_request_id"]).status == "pending"
    assert balances.get_balance(db.session, user.id).bonus_credits == 250_000


def test_admin_routes_need_the_permission(client, priced, funded, staff_key):
    analyst, user = staff_key("analyst"), funded()
    response = post(client, "/admin/credits/allocate", analyst, {"user_id": user.id, "amount": 5, "reason": "hi!"})
    assert (response.status_code, response.json["error"]["code"]) == (403, "missing_permission")
    assert allocations() == 0


@pytest.mark.parametrize("body, param", [
    ({"user_id": 999_999, "amount": 5, "reason": "why not"}, "user_id"),
    ({"amount": 5, "reason": "why not"}, "user_id"),
    ({"user_id": 1, "amount": 5.5, "reason": "why not"}, "amount"),
    ({"user_id": 1, "amount": 5, "reason": "x"}, "reason"),
    ({"user_id": 1, "amount": 5, "reason": "why not", "source": "monthly_allocation"}, "source"),
])
def test_allocate_bad_input(client, priced, funded, staff_key, body, param):
    admin = staff_key("admin")
    funded()
    response = post(client, "/admin/credits/allocate", admin, body)
    assert response.status_code in (404, 422) and response.json["error"]["param"] == param
    assert allocations() == 0


def test_bulk_allocate_json_all_or_nothing(client, priced, funded, staff_key):
    support = staff_key("support")
    a, b = funded(), funded()
    before = allocations()
    bad = post(client, "/admin/credits/bulk-allocate", support, {"allocations": [
        {"user_id": a.id, "amount": 100, "reason": "promo"},
        {"user_id": 999_999, "amount": 100, "reason": "promo"},
        {"user_id": b.id, "amount": 125_001, "reason": "promo"},
        {"user_id": b.id, "amount": "7", "reason": "promo"},
    ]})
    assert bad.status_code == 422 and bad.json["error"]["code"] == "bulk_rows_invalid"
    assert [(e["row"], e["param"], e["code"]) for e in bad.json["errors"]] == [
        (2, "user_id", "resource_missing"), (3, "amount", "above_cap"), (4, "amount", "parameter_invalid_integer")]
    assert allocations() == before
    lapsing = post(client, "/admin/credits/bulk-allocate", support, {"allocations": [
        {"user_id": b.id, "amount": 200, "reason": "promo", "expires_at": "2099-01-01T00:00:00Z"}]})
    assert lapsing.status_code == 403 and "credits.adjust_expiration" in lapsing.json["error"]["message"]
    assert allocations() == before
    good = post(client, "/admin/credits/bulk-allocate", support, {"allocations": [
        {"user_id": a.id, "amount": 100, "reason": "promo"},
        {"user_id": b.id, "amount": 200, "reason": "promo", "source": "promotional_bonus"}]})
    assert good.status_code == 201
    assert (good.json["allocated"], good.json["total_credits"]) == (2, 300)
    assert balances.get_balance(db.session, b.id).bonus_credits == 200


def test_bulk_allocate_csv(client, priced, funded, staff_key, make_user):
    admin = staff_key("admin")
    a = funded()
    named = make_user(email="csv.person@example.com")
    csv_body = ("user_id,email,amount,source,reason,expires_at\n"
                f"{a.id},,50,coupon,Welcome back,\n"
                ",csv.person@example.com,75,,Conference raffle,2099-01-01T00:00:00Z\n")
    response = post(client, "/admin/credits/bulk-allocate", admin, csv_body, content_type="text/csv")
    assert response.status_code == 201, response.json
    assert balances.get_balance(db.session, named.id).bonus_credits == 75
    bad = post(client, "/admin/credits/bulk-allocate", admin, "amount\n5\n", content_type="text/csv")
    assert (bad.status_code, bad.json["error"]["code"]) == (400, "invalid_csv")
    bad = post(client, "/admin/credits/bulk-allocate", admin,
               "email,amount,reason\nnobody@x.io,5,hmm\ncsv.person@example.com,lots,hmm\n", content_type="text/csv")
    assert [(e["row"], e["param"], e["code"]) for e in bad.json["errors"]] == [
        (1, "email", "resource_missing"), (2, "amount", "parameter_invalid_integer")]
    assert balances.get_balance(db.session, named.id).bonus_credits == 75


def test_analytics_are_production_only_unless_asked(client, priced, funded, staff_key):
    analyst = staff_key("analyst")
    real, tester = funded(subscription=1_000), funded(subscription=1_000, test=True)
    metering.calculate_and_deduct(db.session, real.id, "gpt-4-turbo", 500, 300, "r1")
    metering.calculate_and_deduct(db.session, tester.id, "llama-2-70b", 500, 300, "t1")
    response = client.get("/api/v1/admin/credits/analytics/system", headers=analyst.headers)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["totals"]["credits_spent"] == 49 and body["totals"]["credits_issued"] == 1_000
    assert [m["model"] for m in body["by_model"]] == ["gpt-4-turbo"]
    assert body["by_vendor"][0] == {"vendor": "openai", "requests": 1, "tokens": 800, "credits": 49,
                                    "vendor_cost_usd": "0.014000", "customer_cost_usd": "0.019600"}
    both = client.get("/api/v1/admin/credits/analytics/system?include_test=true", headers=analyst.headers).json
    assert both["totals"]["credits_spent"] == 49 + 2 and both["totals"]["credits_issued"] == 2_000
    top = client.get("/api/v1/admin/credits/analytics/top-spenders", headers=analyst.headers).json
    assert [s["user_id"] for s in top["data"]] == [real.id]
    top = client.get("/api/v1/admin/credits/analytics/top-spenders?include_test=1&limit=5",
                     headers=analyst.headers).json
    assert [s["user_id"] for s in top["data"]] == [real.id, tester.id]
    bad = client.get("/api/v1/admin/credits/analytics/top-spenders?limit=500", headers=analyst.headers)
    assert (bad.status_code, bad.json["error"]["param"]) == (422, "limit")
