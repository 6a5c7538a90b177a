"""Request validation (422 with param, 400 invalid_json, nothing written), decimal strings,
the OpenAPI document, and per-key rate limits."""
from __future__ import annotations

from decimal import Decimal

import pytest
from openapi_spec_validator import validate
from pydantic import ValidationError
from sqlalchemy import func, select

from app.api.schemas import DecimalStr, RequestModel
from app.users.models import User

URL = "/api/v1/admin/test/users"


@pytest.fixture
def admin_key(make_api_key, make_user):
    return make_api_key(make_user(roles=("admin",)), "production")


def _count(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(User))


@pytest.mark.parametrize("body, code, param", [
    ({"expires_in_days": 7.0}, "parameter_invalid_integer", "expires_in_days"),
    ({"expires_in_days": "7"}, "parameter_invalid_integer", "expires_in_days"),
    ({"expires_in_days": True}, "parameter_invalid_integer", "expires_in_days"),
    ({"tier": "platinum"}, "parameter_invalid", "tier"),
    ({"email": 42}, "parameter_invalid", "email"),
    ({"nickname": "x"}, "parameter_unknown", "nickname"),
    ({"expires_in_days": 31}, "expiry_too_far", "expires_in_days"),
    ({"expires_in_days": 0}, "expiry_in_past", "expires_in_days"),
    ({"password": "short"}, "weak_password", "password"),
    ({"email": "not-an-email"}, "invalid_email", "email"),
])
def test_bad_fields_answer_422_with_the_param_and_write_nothing(client, admin_key, session, body, code, param):
    before = _count(session)
    response = client.post(URL, json=body, headers=admin_key.headers)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert (error["code"], error["param"], error["type"]) == (code, param, "invalid_request_error")
    assert error["message"]
    assert _count(session) == before


@pytest.mark.parametrize("raw", ['{"tier": ', "not json", '["pro"]', '"pro"', b"\xff\xfe"])
def test_malformed_json_is_a_400(client, admin_key, session, raw):
    before = _count(session)
    response = client.post(URL, data=raw, content_type="application/json", headers=admin_key.headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_json"
    assert _count(session) == before


def test_missing_required_field_names_it(client, admin_key):
    response = client.post("/api/v1/admin/test/api-keys", json={"name": "x"}, headers=admin_key.headers)
    assert response.status_code == 422
    assert response.get_json()["error"] | {"message": None} == {
        "type": "invalid_request_error", "code": "parameter_missing", "param": "user_id", "message": None}


class _Price(RequestModel):
    amount: DecimalStr
    count: int


def test_decimals_travel_as_strings_and_ints_stay_ints():
    parsed = _Price.model_validate_json('{"amount": "99.99", "count": 3}')
    assert parsed.amount == Decimal("99.99") and parsed.count == 3
    assert parsed.model_dump(mode="json") == {"amount": "99.99", "count": 3}
    for raw in ('{"amount": 99.99, "count": 3}', '{"amount": "9e9", "count": 3}', '{"amount": "1.5", "count": 3.0}'):
        with pytest.raises(ValidationError):
            _Price.model_validate_json(raw)


def test_openapi_document_is_valid_and_complete(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.get_json()
    validate(doc)
    create = doc["paths"]["/api/v1/admin/test/users"]["post"]
    body_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body_schema = doc["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    assert set(body_schema["properties"]) == {"email", "password", "tier", "expires_in_days"}
    assert body_schema["additionalProperties"] is False
    created_ref = create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    assert "password" in doc["components"]["schemas"][created_ref.rsplit("/", 1)[1]]["properties"]
    assert {"400", "401", "403", "409", "422", "429"} <= set(create["responses"])
    assert create["security"] == [{"bearerAuth": []}] and create["x-permission"] == "users.edit_profile"
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in create["parameters"])
    listing = doc["paths"]["/api/v1/admin/test/users"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"limit", "starting_after"}
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert set(doc["components"]["schemas"]["ErrorBody"]["properties"]) == {"error", "request_id"}
    assert doc["paths"]["/api/v1/admin/test/users/{user_id}"]["delete"]["parameters"][0]["schema"]["type"] == \
        "integer"
    assert doc["paths"]["/api/v1/oauth/token"]["post"]["security"] == []


def test_lists_page_newest_first_with_starting_after(client, admin_key, session):
    ids = [client.post(URL, json={}, headers=admin_key.headers).get_json()["id"] for _ in range(5)]
    first = client.get(URL + "?limit=2", headers=admin_key.headers).get_json()
    assert first["object"] == "list" and first["has_more"] is True
    assert [u["id"] for u in first["data"]] == ids[::-1][:2]
    assert all("password" not in u for u in first["data"])
    second = client.get(f"{URL}?limit=2&starting_after={first['data'][-1]['id']}", headers=admin_key.headers)
    assert [u["id"] for u in second.get_json()["data"]] == ids[::-1][2:4]
    last = client.get(f"{URL}?limit=2&starting_after={ids[1]}", headers=admin_key.headers).get_json()
    assert [u["id"] for u in last["data"]] == [ids[0]] and last["has_more"] is False
    for query, param in (("limit=0", "limit"), ("limit=101", "limit"), ("starting_after=abc", "starting_after"),
                         ("starting_after=999999", "starting_after")):
        response = client.get(f"{URL}?{query}", headers=admin_key.headers)
        assert response.status_code == 422 and response.get_json()["error"]["param"] == param


def test_sandbox_keys_hit_a_lower_rate_limit_than_live_keys(app, client, make_api_key, make_user, monkeypatch):
    monkeypatch.setitem(app.config, "API_RATE_LIMIT_TEST", "3 per minute")
    monkeypatch.setitem(app.config, "API_RATE_LIMIT_LIVE", "5 per minute")
    admin = make_user(roles=("admin",))
    for key_type, allowed in (("sandbox", 3), ("production", 5)):
        creds = make_api_key(admin, key_type)
        for n in range(allowed):
            response = client.get(URL, headers=creds.headers)
            assert response.status_code == 200, (key_type, n)
            assert response.headers["X-RateLimit-Remaining"] == str(allowed - n - 1)
        limited = client.get(URL, headers=creds.headers)
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        error = limited.get_json()["error"]
        assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limited")
