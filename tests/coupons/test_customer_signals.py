"""Fraud checks fit real clients (issue 18): validation comes first, a server client passes its
customer's IP and user agent, and HTTP libraries are not bots."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.coupons.models import FraudDetection, Redemption
from app.extensions import db

BODY = {"code": "SIGNALS10", "amount": "99.99", "tier": "pro", "billing_cycle": "monthly"}
CHROME = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


def redeem(client, key, body, agent="curl/8.4.0"):
    return client.post("/api/v1/coupons/redeem", data=json.dumps(body), content_type="application/json",
                       headers={**key.headers, "User-Agent": agent, "Idempotency-Key": json.dumps(body) + agent})


@pytest.fixture
def coupon(make_coupon, coupon_clock):
    made = make_coupon(code="SIGNALS10", max_uses=None, max_uses_per_user=None)
    db.session.commit()
    return made


@pytest.fixture
def server(make_api_key):
    return make_api_key(key_type="production", scopes=["coupons:redeem", "customers:write"])


def test_a_curl_server_passing_a_browser_agent_is_not_flagged(client, server, coupon):
    answer = redeem(client, server, {**BODY, "customer_ip": "203.0.113.50", "customer_user_agent": CHROME})
    assert answer.status_code == 201 and answer.json["redemption"]["redemption_status"] == "success"
    row = db.session.scalar(select(Redemption).where(Redemption.coupon_id == coupon.id))
    assert (row.ip_address, row.user_agent) == ("203.0.113.50", CHROME)  # the customer's, not the server's
    assert db.session.scalar(select(FraudDetection.id)) is None


def test_the_customers_signals_are_judged(client, server, coupon):
    headless = redeem(client, server, {**BODY, "customer_ip": "203.0.113.51",
                                       "customer_user_agent": "Mozilla/5.0 HeadlessChrome/120.0"})
    assert headless.json["redemption"]["failure_code"] == "fraud_blocked"
    silent = redeem(client, server, {**BODY, "amount": "98.00"})  # no signals: the server's own are not judged
    assert silent.json["redemption"]["redemption_status"] == "success"
    row = db.session.scalars(select(Redemption).order_by(Redemption.id.desc())).first()
    assert row.ip_address is None and row.user_agent is None


def test_only_server_clients_may_pass_customer_signals(client, make_api_key, coupon):
    app_key = make_api_key(key_type="production")
    refused = redeem(client, app_key, {**BODY, "customer_ip": "203.0.113.50"}, agent="okhttp/4.12.0")
    assert refused.status_code == 403 and refused.json["error"]["code"] == "customer_signals_not_allowed"
    plain = redeem(client, app_key, BODY, agent="okhttp/4.12.0")  # an Android app's own HTTP library
    assert plain.json["redemption"]["redemption_status"] == "success"
    bad = redeem(client, make_api_key(key_type="production", scopes=["coupons:redeem", "customers:write"]),
                 {**BODY, "customer_ip": "not-an-ip"})
    assert bad.status_code in (400, 422) and bad.json["error"]["param"] == "customer_ip"


def test_validation_comes_before_fraud_scoring(client, make_api_key, make_coupon, coupon_clock):
    from tests.coupons.conftest import NOW

    make_coupon(code="OLD10", valid_from=NOW - timedelta(days=30), valid_until=NOW - timedelta(days=1))
    db.session.commit()
    key = make_api_key(key_type="production")
    answers = [redeem(client, key, {**BODY, "code": "OLD10", "amount": f"{90 + n}.00"}).json["redemption"]
               for n in range(6)]  # six in a row would trip velocity if invalid attempts were scored
    assert {a["failure_code"] for a in answers} == {"expired"}
    assert db.session.scalar(select(FraudDetection.id)) is None
