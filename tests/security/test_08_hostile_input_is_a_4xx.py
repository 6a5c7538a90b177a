"""Issue 15 item 8: hostile input answered 500 (integers past 2^63 in bodies, cursors and URLs,
dates at the ends of the calendar, deeply nested JSON, huge bodies). Each must be a 4xx naming
the parameter, and change nothing. Runs on PostgreSQL and on SQLite (where a huge id overflowed
the driver)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.rbac.test_permission_matrix import _url, sample_ids  # noqa: F401  (a value for every URL variable)

HUGE = 2**63  # one past the largest BIGINT
HUGE_DIGITS = "99999999999999999999"


@pytest.fixture
def admin_key(make_api_key, make_user):
    return make_api_key(make_user(roles=("admin",)), "production")


@pytest.fixture
def customer_key(make_api_key):
    return make_api_key(key_type="production")


def _error(response, status, param):
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert body["error"]["param"] == param, body
    return body["error"]


@pytest.mark.parametrize("body, param", [
    ({"user_id": HUGE, "name": "x"}, "user_id"),
    ({"user_id": -HUGE - 1, "name": "x"}, "user_id"),
])
def test_integers_past_bigint_in_a_json_body_are_422(client, admin_key, session, body, param):
    from app.api.auth import ApiKey

    before = session.scalar(select(func.count()).select_from(ApiKey))
    error = _error(client.post("/api/v1/admin/test/api-keys", json=body, headers=admin_key.headers), 422, param)
    assert error["code"] == "parameter_invalid_integer"
    assert session.scalar(select(func.count()).select_from(ApiKey)) == before


@pytest.mark.parametrize("url", [
    f"/api/v1/admin/test/api-keys?starting_after={HUGE_DIGITS}",
    f"/api/v1/admin/test/users?starting_after={HUGE_DIGITS}",
])
def test_a_huge_list_cursor_is_422(client, admin_key, url):
    _error(client.get(url, headers=admin_key.headers), 422, "starting_after")


@pytest.mark.parametrize("query, param", [
    ("start=0001-01-01&end=9999-12-31", "start"),
    ("start=2025-01-01&end=9999-12-31", "end"),
    (f"starting_after=ded_{HUGE_DIGITS}", "starting_after"),
])
def test_transactions_and_their_export_bound_dates_and_ids(client, customer_key, query, param):
    _error(client.get(f"/api/v1/credits/transactions?{query}", headers=customer_key.headers), 422, param)
    if "starting_after" not in query:  # the export checks before it streams, not mid-stream
        _error(client.get(f"/api/v1/credits/transactions/export?{query}", headers=customer_key.headers), 422, param)


def test_deeply_nested_json_is_a_400(client, admin_key):
    for depth in (100, 100_000):
        raw = '{"license_key": ' + "[" * depth + "]" * depth + "}"
        response = client.post("/api/v1/licenses/validate", data=raw, content_type="application/json")
        assert response.status_code == 400, depth
        assert response.get_json()["error"]["code"] == "invalid_json"
        response = client.post("/api/v1/admin/test/api-keys", data=raw, content_type="application/json",
                               headers=admin_key.headers)
        assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_json", depth


def test_a_body_past_max_content_length_is_413(app, client, customer_key):
    assert app.config["MAX_CONTENT_LENGTH"] <= 10 * 2**20
    raw = b'{"license_key": "' + b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1) + b'"}'
    response = client.post("/api/v1/licenses/validate", data=raw, content_type="application/json")
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("path", [
    f"/admin/users/{HUGE_DIGITS}",
    f"/admin/credits/users/{HUGE_DIGITS}",
    f"/admin/coupons/?campaign_id={HUGE_DIGITS}",
    f"/admin/coupons/new?campaign_id={HUGE_DIGITS}",
    f"/admin/users/?cursor=WyIyMDI1LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgOTk5OTk5OTk5OTk5OTk5OTk5OTld",
    f"/admin/credits/users/1?cursor=x&start=0001-01-01&end=9999-12-31",
])
def test_huge_ids_and_dates_in_admin_urls_are_not_500(login_as, path):
    response = login_as("super_admin").get(path)
    assert 200 <= response.status_code < 500 and response.status_code != 500, (path, response.status_code)


HUGE_CURSOR = "WyIyMDI1LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgOTk5OTk5OTk5OTk5OTk5OTk5OTld"  # [date, 99999999999999999999]
HOSTILE_QUERY = "&".join(f"{name}={value}" for name, value in {
    "cursor": HUGE_CURSOR, "starting_after": HUGE_DIGITS, "limit": HUGE_DIGITS, "start": "0001-01-01",
    "end": "9999-12-31", "date_from": "0001-01-01", "date_to": "9999-12-31", "campaign_id": HUGE_DIGITS,
    "user_id": HUGE_DIGITS, "owner": HUGE_DIGITS, "days": HUGE_DIGITS, "actor": HUGE_DIGITS,
    "target": HUGE_DIGITS, "tier": HUGE_DIGITS, "to": HUGE_DIGITS, "history": HUGE_DIGITS}.items())


def test_every_get_route_answers_hostile_query_strings_without_a_500(app, login_as, admin_key, sudo):
    """Every admin screen and API list, with every query parameter they read set past its range."""
    staff = sudo(login_as("super_admin"))
    failures = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.arguments or not rule.rule.startswith(("/admin", "/api/v1")):
            continue
        client = staff if rule.rule.startswith("/admin") else app.test_client()
        headers = admin_key.headers if rule.rule.startswith("/api/") else {}
        response = client.get(f"{rule.rule}?{HOSTILE_QUERY}", headers=headers)
        if response.status_code >= 500:
            failures.append((rule.rule, response.status_code))
    assert failures == []


HOSTILE_FORM = {name: HUGE_DIGITS for name in (
    "amount", "count", "expires_in_days", "ids", "max_activations", "hierarchy", "credits", "user_id", "role_id",
    "payment_id", "pack_id", "campaign_id", "days", "hours", "input_tokens", "output_tokens", "month_tokens",
    "monthly_credits", "max_rollover", "max_uses", "max_uses_per_user", "quantity", "tier_id", "provider_id",
    "assignment_id")}
HOSTILE_FORM.update({"reason": "probe", "note": "probe", "expires_on": "9999-12-31", "day": "9999-12-31",
                     "effective_date": "9999-12-31", "valid_from": "0001-01-01", "valid_until": "9999-12-31",
                     "starts_at": "0001-01-01", "ends_at": "9999-12-31", "frozen_time": "9999-12-31T23:59"})


def _removes(rule) -> bool:
    return any(word in rule.rule for word in ("delete", "revoke", "erase", "remove"))


def test_every_admin_form_answers_huge_numbers_and_dates_without_a_500(app, login_as, sudo, sample_ids, session):
    """Every admin POST, as super_admin with real ids in its URL, with every numeric field past BIGINT and
    every date at an end of the calendar (a refund's payment, a pack, a test account's expiry, the
    ids of a bulk delete, the summaries day answered 500 or failed the job). A refusal (422) comes
    from the one form handler (issue 19) and changes nothing, not even the audit log."""
    from app.core.audit import AuditEntry
    from app.core.forms import HANDLED
    from app.core.jobs import JobRecord

    staff = sudo(login_as("super_admin"))
    failures, unhandled, changed = [], [], []
    # Deletions after the forms of what they delete; the sign-in flow's own steps last (signing out
    # everywhere ends this client's session).
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.endpoint.startswith("auth."), _removes(r))):
        if "POST" not in rule.methods or not rule.rule.startswith("/admin"):
            continue
        data = HOSTILE_FORM
        if rule.endpoint == "testdata_overview.delete_all":
            data = {"reason": "probe"}  # never confirmed here: it must be refused, and change nothing
        HANDLED.discard(rule.endpoint)
        audited = session.scalar(select(func.count()).select_from(AuditEntry))
        response = staff.post(_url(rule, sample_ids), data=data)
        if response.status_code >= 500:
            failures.append((rule.rule, response.status_code))
        if response.status_code == 422 and rule.endpoint not in HANDLED:
            unhandled.append(rule.endpoint)
        if response.status_code in (409, 422) and session.scalar(
                select(func.count()).select_from(AuditEntry)) != audited:
            changed.append((rule.rule, response.status_code))
    assert failures == []
    assert unhandled == [], "a refused form is answered by app.core.forms.handle_form"
    assert changed == [], "a refused form changes nothing (not even the audit log)"
    assert session.scalars(select(JobRecord.kind).where(JobRecord.status == "failed")).all() == []
