"""/api/v1/licenses end to end: seed 001 scenario 3, idempotency, every validation code over
HTTP, bad input that changes nothing, the activation rate limit, API-key access, upgrades."""
import hashlib

import pytest
from sqlalchemy import func, select

from app.licensing import activations, service
from app.licensing.models import Activation, LicenseUpgrade
from tests.licensing.conftest import fp

WIN = hashlib.sha256(b"CPU:i7 | MAC:00:1A | DISK:SER123 | OS:Win10").hexdigest()
MAC = hashlib.sha256(b"CPU:M1 | MAC:AA:BB | DISK:SERABC | OS:macOS14").hexdigest()


def post(client, path, body, **headers):
    return client.post(f"/api/v1/licenses/{path}", json=body, headers=headers)


def activate(client, lic, fingerprint, **extra):
    return post(client, "activate", {"license_key": lic.license_key, "fingerprint": fingerprint, **extra})


def validate(client, lic, fingerprint, version="1.0.0", **headers):
    return post(client, "validate", {"license_key": lic.license_key, "fingerprint": fingerprint,
                                     "version": version}, **headers)


def seats(session, lic):
    return session.scalar(select(func.count()).select_from(Activation).where(Activation.license_id == lic.id))


def test_scenario_3_perpetual_license_on_two_devices(session, client, make_license, customer):
    owner = customer(email="scenario3@example.com")
    lic = make_license(owner, price="299.99", purchased_version="1.0.0", max_activations=3)
    assert str(lic.purchase_price) == "299.99"
    r = activate(client, lic, WIN, device_name="Windows desktop", os_type="Windows", os_version="10",
                 cpu_info="Intel Core i7")
    assert r.status_code == 201, r.json
    assert r.json["activation"]["status"] == "active" and r.json["activation"]["fingerprint"] == WIN
    r = activate(client, lic, MAC, device_name="MacBook", os_type="macOS", os_version="14.1.1", cpu_info="M1")
    assert r.status_code == 201
    assert (r.json["license"]["current_activations"], r.json["license"]["max_activations"]) == (2, 3)
    r = validate(client, lic, WIN, "1.0.0")
    assert r.status_code == 200
    assert r.json["valid"] is True and r.json["code"] == "VALID"
    assert (r.json["eligible_from"], r.json["eligible_until"]) == ("1.0.0", "2.0.0")
    assert (r.json["current_activations"], r.json["max_activations"]) == (2, 3)
    # BYOK: the credits engine asks this and records the usage with zero credits
    assert service.byok_license_for(session, owner, fingerprint=WIN) == lic
    # one device slot remaining
    r = post(client, "heartbeat", {"license_key": lic.license_key, "fingerprint": WIN})
    assert r.status_code == 200 and r.json["license_status"] == "active"
    r = activate(client, lic, WIN)
    assert r.status_code == 200 and r.json["license"]["remaining_activations"] == 1


def test_reactivation_is_idempotent_and_an_idempotency_key_replays(session, client, make_license):
    lic = make_license()
    first = activate(client, lic, WIN)
    again = activate(client, lic, WIN)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json["activation"]["id"] == again.json["activation"]["id"]
    body = {"license_key": lic.license_key, "fingerprint": MAC}
    r1 = post(client, "activate", body, **{"Idempotency-Key": "k-1"})
    r2 = post(client, "activate", body, **{"Idempotency-Key": "k-1"})
    assert (r1.status_code, r2.status_code) == (201, 200) and r2.headers["Idempotent-Replayed"] == "true"
    r3 = post(client, "activate", {**body, "fingerprint": fp("other")}, **{"Idempotency-Key": "k-1"})
    assert r3.status_code == 409 and r3.json["error"]["code"] == "idempotency_key_reused"
    assert seats(session, lic) == 2


def test_every_validation_code_over_http(session, client, make_license, staff):
    lic = make_license(max_activations=2, eligible_until_version="2.0.0")
    assert validate(client, lic, WIN).json["code"] == "NOT_ACTIVATED"
    activate(client, lic, MAC)
    assert validate(client, lic, WIN).json["code"] == "FINGERPRINT_MISMATCH"
    activate(client, lic, fp("third"))
    assert validate(client, lic, WIN).json["code"] == "TOO_MANY_ACTIVATIONS"
    assert validate(client, lic, MAC, "1.9.9").json["code"] == "VALID"
    assert validate(client, lic, MAC, "2.0.0-beta.1").json["code"] == "VALID"
    r = validate(client, lic, MAC, "2.0.0")
    assert (r.status_code, r.json["valid"], r.json["code"]) == (200, False, "VERSION_NOT_ELIGIBLE")
    service.suspend(session, lic, actor=staff, reason="payment dispute")
    assert validate(client, lic, MAC).json["code"] == "SUSPENDED"
    service.reinstate(session, lic, actor=staff, reason="dispute settled")
    service.revoke(session, lic, actor=staff, reason="refund issued")
    assert validate(client, lic, MAC).json["code"] == "REVOKED"
    expired = make_license()
    activations.activate(session, expired, MAC)
    expired.status = "expired"
    session.commit()
    assert validate(client, expired, MAC).json["code"] == "EXPIRED"


@pytest.mark.parametrize("body,status,code,param", [
    ({"fingerprint": "abc123"}, 422, "invalid_fingerprint", "fingerprint"),
    ({"fingerprint": "z" * 64}, 422, "invalid_fingerprint", "fingerprint"),
    ({"license_key": "PERM-AAAA-BBBB-CCCC-DDDD"}, 404, "license_not_found", "license_key"),
    ({"license_key": "robert'); drop table"}, 422, "invalid_license_key", "license_key"),
    ({"license_key": None}, 422, "missing_license_key", "license_key"),
    ({"device_name": "x" * 500}, 422, "invalid_device_field", "device_name"),
    ({"device_name": 7}, 422, "parameter_invalid", "device_name"),
    ({"colour": "blue"}, 422, "parameter_unknown", "colour"),
])
def test_bad_activation_input_is_refused_and_changes_nothing(session, client, make_license, body, status, code,
                                                             param):
    lic = make_license()
    r = post(client, "activate", {"license_key": lic.license_key, "fingerprint": WIN, **body})
    assert r.status_code == status, r.json
    assert (r.json["error"]["code"], r.json["error"]["param"]) == (code, param)
    assert r.json["error"]["message"]
    assert seats(session, lic) == 0


def test_bad_validation_input(client, make_license):
    lic = make_license()
    r = validate(client, lic, WIN, "2.0")
    assert (r.status_code, r.json["error"]["code"], r.json["error"]["param"]) == (422, "invalid_version", "version")
    assert "semantic version" in r.json["error"]["message"]
    r = post(client, "validate", {"license_key": lic.license_key, "fingerprint": WIN})
    assert (r.status_code, r.json["error"]["code"]) == (422, "parameter_missing")
    r = client.post("/api/v1/licenses/validate", data="{not json", content_type="application/json")
    assert (r.status_code, r.json["error"]["code"]) == (400, "invalid_json")


@pytest.mark.parametrize("action,code", [("revoke", "license_revoked"), ("suspend", "license_suspended")])
def test_activating_a_blocked_license(session, client, make_license, staff, action, code):
    lic = make_license()
    getattr(service, action)(session, lic, actor=staff, reason="fraud investigation")
    session.commit()
    r = activate(client, lic, WIN)
    assert (r.status_code, r.json["error"]["code"]) == (403, code)
    assert seats(session, lic) == 0


def test_activation_changes_are_rate_limited_with_retry_after(session, client, make_license, frozen_clock):
    lic = make_license()
    for _ in range(5):
        assert activate(client, lic, WIN).status_code == 201
        assert post(client, "deactivate", {"license_key": lic.license_key, "fingerprint": WIN}).status_code == 200
    r = activate(client, lic, WIN)
    assert r.status_code == 429 and r.json["error"]["code"] == "activation_rate_limited"
    # 24 h until the first change leaves the window (Flask-Limiter re-renders it, truncating a second)
    assert 24 * 3600 - 1 <= int(r.headers["Retry-After"]) <= 24 * 3600
    assert seats(session, lic) == 1 and service.active_count(session, lic.id) == 0


def test_deactivate_and_heartbeat_refuse_an_inactive_device(client, make_license):
    lic = make_license()
    r = post(client, "deactivate", {"license_key": lic.license_key, "fingerprint": WIN})
    assert (r.status_code, r.json["error"]["code"]) == (404, "not_activated")
    r = post(client, "heartbeat", {"license_key": lic.license_key, "fingerprint": WIN})
    assert (r.status_code, r.json["error"]["code"]) == (404, "not_activated")


@pytest.fixture
def api_key(session):
    from app.api.keys import create_api_key

    def make(owner, key_type="production", scopes=None):
        _, plain = create_api_key(session, None, owner=owner, name="desktop", key_type=key_type, scopes=scopes)
        return {"Authorization": f"Bearer {plain}"}

    return make


def test_api_key_reaches_only_its_owners_licenses(session, client, make_license, customer, api_key):
    owner, stranger = customer(), customer()
    lic = make_license(owner)
    activations.activate(session, lic, WIN)
    owner_key, stranger_key = api_key(owner), api_key(stranger)
    session.commit()
    assert validate(client, lic, WIN, **owner_key).json["code"] == "VALID"
    r = validate(client, lic, WIN, **stranger_key)
    assert (r.status_code, r.json["error"]["code"]) == (404, "license_not_found")
    r = client.post("/api/v1/licenses/activate", json={"license_key": lic.license_key, "fingerprint": MAC},
                    headers=stranger_key)
    assert r.status_code == 404 and seats(session, lic) == 1
    r = validate(client, lic, WIN, Authorization="Bearer rph_live_nope")
    assert r.status_code == 401
    narrow = api_key(owner, scopes=["test_data:read"])
    session.commit()
    r = validate(client, lic, WIN, **narrow)
    assert (r.status_code, r.json["error"]["code"]) == (403, "insufficient_scope")


def test_test_licenses_answer_in_test_mode(session, client, make_license, customer):
    lic = make_license(customer(test=True))
    r = activate(client, lic, WIN)
    assert r.headers.get("X-Test-Mode") == "true"
    assert validate(client, lic, WIN).headers.get("X-Test-Mode") == "true"
    assert "X-Test-Mode" not in validate(client, make_license(), WIN).headers


def quote(client, lic, to, fingerprint=WIN):
    return client.get(f"/api/v1/licenses/upgrade-quote?to={to}",
                      headers={"X-License-Key": lic.license_key, "X-License-Fingerprint": fingerprint})


def test_upgrade_quote_and_purchase(session, client, versions, make_license, frozen_clock):
    lic = make_license(purchased_version="1.0.0")  # the clock says 2025-11-09: day 39 of 2.0.0
    activations.activate(session, lic, WIN)
    session.commit()
    r = quote(client, lic, "2.0.0")
    assert r.status_code == 200, r.json
    assert (r.json["price_usd"], r.json["pricing_rule"], r.json["eligible_until_after"]) == ("99.00", "standard", "3.0.0")
    assert quote(client, lic, "2.0.0", fingerprint=MAC).json["error"]["code"] == "device_not_activated"
    body = {"license_key": lic.license_key, "fingerprint": WIN, "to_version": "2.0.0"}
    # The upgrade is paid before it exists (paid and declined charges: tests/accounts/test_purchases.py);
    # without a card nothing is recorded.
    r1 = post(client, "upgrade", body, **{"Idempotency-Key": "buy-1"})
    assert (r1.status_code, r1.json["error"]["code"]) == (409, "no_payment_method")
    assert session.scalar(select(func.count()).select_from(LicenseUpgrade)) == 0


def test_an_api_key_quotes_and_buys_without_a_device(session, client, versions, make_license, customer, api_key):
    owner = customer()
    lic = make_license(owner, purchased_version="1.0.0")
    headers = api_key(owner)
    session.commit()
    r = client.get("/api/v1/licenses/upgrade-quote?to=2.5.0", headers={**headers, "X-License-Key": lic.license_key})
    assert r.status_code == 200 and r.json["price_usd"] == "99.00"
    r = client.post("/api/v1/licenses/upgrade", json={"license_key": lic.license_key, "to_version": "2.5.0"},
                    headers=headers)
    assert (r.status_code, r.json["error"]["code"]) == (409, "no_payment_method")  # no card on file
    r = post(client, "upgrade", {"license_key": lic.license_key, "to_version": "2.5.0"})  # no key, no device
    assert (r.status_code, r.json["error"]["code"]) == (422, "invalid_fingerprint")


@pytest.mark.parametrize("to,code", [("1.0.0", "upgrade_not_newer"), ("0.9.0", "upgrade_not_newer"),
                                     ("3.0.0", "upgrade_skips_major"), ("2.0", "invalid_version"),
                                     ("9.9.9-x", "upgrade_skips_major")])
def test_bad_upgrade_targets(session, client, versions, make_license, to, code):
    lic = make_license(purchased_version="1.0.0")
    activations.activate(session, lic, WIN)
    session.commit()
    r = post(client, "upgrade", {"license_key": lic.license_key, "fingerprint": WIN, "to_version": to})
    assert (r.status_code, r.json["error"]["code"], r.json["error"]["param"]) == (422, code, "to_version")
    assert r.json["error"]["message"]
    assert session.scalar(select(func.count()).select_from(LicenseUpgrade)) == 0
    r = quote(client, lic, to)
    assert (r.status_code, r.json["error"]["code"], r.json["error"]["param"]) == (422, code, "to")


def test_openapi_documents_the_license_routes(client):
    doc = client.get("/api/v1/openapi.json").json
    for path in ("activate", "deactivate", "validate", "heartbeat", "upgrade-quote", "upgrade"):
        assert f"/api/v1/licenses/{path}" in doc["paths"]
    validate_op = doc["paths"]["/api/v1/licenses/validate"]["post"]
    assert "VERSION_NOT_ELIGIBLE" in validate_op["description"]
    assert validate_op["requestBody"]["content"]["application/json"]["schema"]


@pytest.mark.postgres
def test_ten_parallel_http_activations_on_three_seats(app, real_db, make_user):
    import threading

    with app.test_request_context():
        lic = service.create_license(real_db.session, owner=make_user(), actor=None, purchase_price="299.99",
                                     purchased_version="1.0.0", max_activations=3)
        real_db.session.commit()
        key, license_id = lic.license_key, lic.id
    barrier, statuses = threading.Barrier(10), []

    def worker(i):
        client = app.test_client()
        barrier.wait()
        r = client.post("/api/v1/licenses/activate", json={"license_key": key, "fingerprint": fp(f"m{i}")})
        statuses.append((r.status_code, (r.json.get("error") or {}).get("code")))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(statuses) == [(201, None)] * 3 + [(422, "too_many_activations")] * 7
    with app.app_context():
        assert service.active_count(real_db.session, license_id) == 3
