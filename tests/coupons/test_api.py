"""/api/v1/coupons: DESIGN.md §6 shapes, stable failure codes, idempotent redeem, test mode, bad input."""
from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.coupons.models import FraudDetection, Redemption
from app.extensions import db

BODY = {"code": "bf2025-30off", "amount": "99.99", "tier": "pro", "billing_cycle": "monthly"}


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def post(client, path, key, body, idem=None, **headers):
    if idem:
        headers["Idempotency-Key"] = idem
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(f"/api/v1/coupons/{path}", data=data, content_type="application/json",
                       headers={**key.headers, "User-Agent": "RephloDesktop/2.1", **headers})


@pytest.fixture
def black_friday(make_coupon, make_campaign, coupon_clock):
    campaign = make_campaign(name="BF api", budget_limit="50000.00")
    coupon = make_coupon(code="BF2025-30OFF", discount_value="30.00", min_purchase_amount="50.00",
                         tier_eligibility=["pro", "pro_max"], billing_cycles=["monthly", "annual"], campaign=campaign)
    db.session.commit()
    return coupon


@pytest.fixture
def live(make_api_key):
    return make_api_key(key_type="production")


def test_validate_answers_discount_and_final_amount(client, live, black_friday):
    response = post(client, "validate", live, BODY)
    assert response.status_code == 200
    assert response.json == {"valid": True, "discount": "30.00", "final_amount": "69.99"}
    assert count(Redemption) == 0  # validating records nothing


def test_validate_answers_one_failure_code(client, live, black_friday):
    response = post(client, "validate", live, {**BODY, "tier": "free"})
    assert response.status_code == 200
    assert response.json["valid"] is False and response.json["code"] == "tier_not_eligible"
    assert set(response.json) == {"valid", "code", "message"}
    assert post(client, "validate", live, {**BODY, "amount": "10.00"}).json["code"] == "below_minimum"


@pytest.mark.parametrize("body, status, code, param", [
    ({**BODY, "code": "NOPE-404"}, 404, "coupon_not_found", "code"),
    ({**BODY, "code": "bad code!"}, 422, "invalid_code", "code"),
    ({**BODY, "amount": "12.345"}, 422, "invalid_amount", "amount"),
    ({**BODY, "amount": "-1.00"}, 422, "invalid_amount", "amount"),
    ({**BODY, "amount": 99.99}, 422, "parameter_invalid", "amount"),
    ({**BODY, "tier": "platinum"}, 422, "parameter_invalid", "tier"),
    ({k: v for k, v in BODY.items() if k != "amount"}, 422, "parameter_missing", "amount"),
    ({**BODY, "coupon": "x"}, 422, "parameter_unknown", "coupon"),
    ({**BODY, "subscription_id": 987654}, 404, "resource_missing", "subscription_id"),
])
def test_bad_input_is_a_4xx_and_records_nothing(client, live, black_friday, body, status, code, param):
    for path in ("validate", "redeem"):
        response = post(client, path, live, body)
        assert response.status_code == status, (path, response.json)
        assert response.json["error"]["code"] == code and response.json["error"]["param"] == param
    assert count(Redemption) == 0


def test_redeem_shape_and_second_attempt_refused(client, live, black_friday):
    first = post(client, "redeem", live, BODY, idem="k-1")
    assert first.status_code == 201
    body = first.json["redemption"]
    assert {k: body[k] for k in ("code", "redemption_status", "original_amount", "discount", "final_amount",
                                  "failure_code")} == {
        "code": "BF2025-30OFF", "redemption_status": "success", "original_amount": "99.99", "discount": "30.00",
        "final_amount": "69.99", "failure_code": None}
    second = post(client, "redeem", live, BODY, idem="k-2")
    assert second.status_code == 201
    assert second.json["redemption"]["redemption_status"] == "failed"
    assert second.json["redemption"]["failure_code"] == "per_user_limit_reached"
    assert second.json["redemption"]["discount"] == "0.00" and second.json["redemption"]["final_amount"] == "99.99"
    row = db.session.get(Redemption, body["id"])
    assert (row.ip_address, row.user_agent, row.is_test) == ("127.0.0.1", "RephloDesktop/2.1", False)


def test_redeem_is_idempotent(client, live, black_friday):
    first = post(client, "redeem", live, BODY, idem="same-key")
    replay = post(client, "redeem", live, BODY, idem="same-key")
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json == first.json
    assert count(Redemption) == 1
    db.session.expire_all()
    assert black_friday.uses_count == 1
    other = post(client, "redeem", live, {**BODY, "amount": "199.99"}, idem="same-key")
    assert other.status_code == 409 and other.json["error"]["code"] == "idempotency_key_reused"
    assert count(Redemption) == 1


def test_a_refused_attempt_replays_without_counting_again(client, live, black_friday):
    post(client, "redeem", live, BODY, idem="a")
    refused = post(client, "redeem", live, BODY, idem="b")
    again = post(client, "redeem", live, BODY, idem="b")
    assert again.status_code == 200 and again.json == refused.json
    assert count(Redemption) == 2


def test_sandbox_keys_redeem_in_the_test_lane(client, make_api_key, black_friday):
    sandbox = make_api_key(key_type="sandbox")
    response = post(client, "redeem", sandbox, BODY)
    assert response.status_code == 201 and response.headers["X-Test-Mode"] == "true"
    row = db.session.get(Redemption, response.json["redemption"]["id"])
    db.session.expire_all()
    assert row.is_test and (black_friday.uses_count, black_friday.test_uses_count) == (0, 1)
    assert black_friday.campaign.spent == Decimal("0.00") and black_friday.campaign.test_spent == Decimal("30.00")


def test_fraud_blocks_say_little_to_the_client(client, live, black_friday, make_coupon, coupon_clock):
    unlimited = make_coupon(code="MANYTIMES", max_uses_per_user=None)
    db.session.commit()
    answers = []
    for gap in (0, 40, 300, 77, 610):  # uneven: velocity, not bot_pattern
        coupon_clock.advance(timedelta(seconds=gap))
        answers.append(post(client, "redeem", live, {**BODY, "code": "MANYTIMES"}).json["redemption"])
    assert [a["redemption_status"] for a in answers] == ["success"] * 4 + ["failed"]
    assert answers[-1]["failure_code"] == "fraud_blocked"
    assert answers[-1]["message"] == "This redemption was blocked by our fraud checks."
    flagged = db.session.scalar(select(FraudDetection).where(FraudDetection.coupon_id == unlimited.id))
    assert flagged.detection_type == "velocity_abuse" and flagged.blocked


def test_redeem_onto_a_subscription_invoice(client, make_api_key, black_friday, make_subscription, make_user):
    from app.billing.invoices import find_period_invoice

    user = make_user()
    key = make_api_key(user, key_type="production")
    sub = make_subscription(user=user, invoice=True)
    db.session.commit()
    response = post(client, "redeem", key, {"code": "BF2025-30OFF", "amount": "99.99", "subscription_id": sub.id})
    assert response.status_code == 201
    answer = response.json["redemption"]
    invoice = find_period_invoice(db.session, sub.id, sub.current_period_start)
    assert (answer["redemption_status"], answer["invoice_id"], answer["subscription_id"]) == (
        "success", invoice.id, sub.id)
    assert invoice.total == Decimal("69.99")


def test_keys_need_the_coupon_scopes(client, make_api_key, black_friday):
    narrow = make_api_key(key_type="production", scopes=["coupons:validate"])
    assert post(client, "validate", narrow, BODY).status_code == 200
    assert post(client, "redeem", narrow, BODY).status_code == 403
    assert post(client, "redeem", narrow, BODY, Authorization="").status_code == 401


def test_openapi_documents_the_coupon_routes(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert "/api/v1/coupons/validate" in paths and "/api/v1/coupons/redeem" in paths
