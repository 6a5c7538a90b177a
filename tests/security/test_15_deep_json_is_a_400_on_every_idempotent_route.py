"""Deeply nested JSON is a 400 also where a body is read before (or instead of) parse_body:
the Idempotency-Key fingerprint (app/api/idempotency.py), computed for every idempotent route
sent with a key, and the bulk allocation's own JSON reader. Both called json.loads, whose
RecursionError was a 500 (test_08 sent no Idempotency-Key, so parse_body's bound answered)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.api.models import IdempotencyRecord
from app.credits.models import CreditAllocation

DEEP = '{"allocations": ' + "[" * 50_000 + "]" * 50_000 + "}"


@pytest.fixture
def admin_key(make_api_key, make_user):
    return make_api_key(make_user(roles=("admin",)), "production")


def _count(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("url", ["/api/v1/admin/test/users", "/api/v1/admin/credits/allocate",
                                 "/api/v1/admin/credits/bulk-allocate", "/api/v1/credits/deduct",
                                 "/api/v1/customers"])
@pytest.mark.parametrize("idempotency_key", [None, "deep-1"])
def test_deeply_nested_json_is_a_400_and_writes_nothing(client, admin_key, session, url, idempotency_key):
    headers = dict(admin_key.headers)
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    response = client.post(url, data=DEEP, content_type="application/json", headers=headers)
    assert response.status_code == 400, response.get_data()[:300]
    assert response.get_json()["error"]["code"] == "invalid_json"
    assert _count(session, IdempotencyRecord) == 0
    assert _count(session, CreditAllocation) == 0
