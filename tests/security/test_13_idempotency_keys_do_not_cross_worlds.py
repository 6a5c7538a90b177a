"""An Idempotency-Key is scoped per user *and world* (as Stripe scopes keys per mode): a staff
owner's sandbox key (never twinned) must not be answered from the record its production key
stored, nor the reverse. Before the fix the sandbox request was replayed the production grant
("granted", the production balance) that a fresh sandbox request is refused (403)."""
from __future__ import annotations

from sqlalchemy import func, select

from app.credits.models import CreditAllocation

URL = "/api/v1/admin/credits/allocate"


def _allocations(session, user_id: int) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(CreditAllocation).where(CreditAllocation.user_id == user_id))


def test_a_sandbox_key_is_not_replayed_its_owners_production_answer(client, make_api_key, make_user, session):
    staff = make_user(roles=("admin",))
    live, sandbox = make_api_key(staff, "production"), make_api_key(staff, "sandbox")
    customer = make_user()
    body = {"user_id": customer.id, "amount": 5, "reason": "goodwill"}
    first = client.post(URL, json=body, headers={**live.headers, "Idempotency-Key": "grant-1"})
    assert first.status_code == 201, first.get_json()

    again = client.post(URL, json=body, headers={**sandbox.headers, "Idempotency-Key": "grant-1"})
    assert again.status_code in (403, 409), again.get_json()
    assert "Idempotent-Replayed" not in again.headers
    assert "balance" not in (again.get_json() or {})
    assert _allocations(session, customer.id) == 1


def test_a_production_key_is_not_replayed_its_owners_sandbox_answer(client, make_api_key, make_user, session):
    staff = make_user(roles=("admin",))
    live, sandbox = make_api_key(staff, "production"), make_api_key(staff, "sandbox")
    tester = make_user(test=True)
    body = {"user_id": tester.id, "amount": 5, "reason": "goodwill"}
    assert client.post(URL, json=body, headers={**sandbox.headers, "Idempotency-Key": "grant-2"}).status_code == 201

    again = client.post(URL, json=body, headers={**live.headers, "Idempotency-Key": "grant-2"})
    assert "Idempotent-Replayed" not in again.headers, again.get_json()


def test_each_world_still_replays_its_own_answer(client, make_api_key, make_user, session):
    staff = make_user(roles=("admin",))
    sandbox = make_api_key(staff, "sandbox")
    tester = make_user(test=True)
    body = {"user_id": tester.id, "amount": 5, "reason": "goodwill"}
    headers = {**sandbox.headers, "Idempotency-Key": "grant-3"}
    assert client.post(URL, json=body, headers=headers).status_code == 201
    replay = client.post(URL, json=body, headers=headers)
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert _allocations(session, tester.id) == 1
