"""Idempotency-Key: replay, reuse with another body, failures not stored, retention, concurrency."""
from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.api.idempotency import purge_expired
from app.api.models import IdempotencyRecord
from app.users.models import User

URL = "/api/v1/admin/test/users"


@pytest.fixture
def admin_key(make_api_key, make_user):
    return make_api_key(make_user(roles=("admin",)), "production")


def _test_users(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(User).where(User.account_type == "test"))


def test_same_key_same_body_replays_without_a_second_row(client, admin_key, session):
    headers = {**admin_key.headers, "Idempotency-Key": "order-1"}
    first = client.post(URL, json={"tier": "pro", "expires_in_days": 3}, headers=headers)
    assert first.status_code == 201
    replay = client.post(URL, data='{ "expires_in_days": 3,  "tier": "pro" }', content_type="application/json",
                         headers=headers)  # same body, other spacing and key order
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    original, again = first.get_json(), replay.get_json()
    assert original["password"] and again["password"] is None  # a secret is never shown twice
    assert {k: v for k, v in again.items() if k != "password"} == \
        {k: v for k, v in original.items() if k != "password"}
    assert _test_users(session) == 1
    record = session.scalar(select(IdempotencyRecord))
    assert record.response_status == 201 and record.response_body["password"] is None
    assert original["password"] not in str(record.response_body)


def test_same_key_with_another_body_is_a_409(client, admin_key, session):
    headers = {**admin_key.headers, "Idempotency-Key": "order-2"}
    assert client.post(URL, json={"tier": "pro"}, headers=headers).status_code == 201
    response = client.post(URL, json={"tier": "free"}, headers=headers)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "idempotency_key_reused"
    assert _test_users(session) == 1


def test_keys_belong_to_their_user(client, admin_key, make_api_key, make_user, session):
    other = make_api_key(make_user(roles=("admin",)), "production")
    for creds in (admin_key, other):
        response = client.post(URL, json={}, headers={**creds.headers, "Idempotency-Key": "shared-name"})
        assert response.status_code == 201
    assert _test_users(session) == 2


def test_without_a_key_every_post_creates(client, admin_key, session):
    for _ in range(2):
        assert client.post(URL, json={}, headers=admin_key.headers).status_code == 201
    assert _test_users(session) == 2
    assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0


def test_a_failure_is_not_stored_so_the_key_can_be_retried(client, admin_key, session):
    headers = {**admin_key.headers, "Idempotency-Key": "retry-me"}
    failed = client.post(URL, json={"expires_in_days": 31}, headers=headers)
    assert failed.status_code == 422
    assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0
    assert client.post(URL, json={"expires_in_days": 31}, headers=headers).status_code == 422
    assert _test_users(session) == 0


@pytest.mark.parametrize("value", ["", "x" * 256])
def test_bad_idempotency_keys_are_refused(client, admin_key, value):
    response = client.post(URL, json={}, headers={**admin_key.headers, "Idempotency-Key": value})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_idempotency_key"


def test_records_are_kept_24_hours_then_purged(client, admin_key, session, frozen_clock, app):
    client.post(URL, json={}, headers={**admin_key.headers, "Idempotency-Key": "old"})
    frozen_clock.advance(timedelta(hours=23))
    client.post(URL, json={}, headers={**admin_key.headers, "Idempotency-Key": "new"})
    assert purge_expired(session) == 0
    frozen_clock.advance(timedelta(hours=1, seconds=1))
    assert purge_expired(session) == 1
    assert session.scalars(select(IdempotencyRecord.key)).all() == ["new"]
    # the purged key executes afresh; the kept one still replays
    assert client.post(URL, json={}, headers={**admin_key.headers, "Idempotency-Key": "new"}).status_code == 200


@pytest.mark.postgres
def test_twenty_concurrent_requests_with_one_key_execute_once(app, real_db):
    """PostgreSQL serializes the record insert on its unique index: one executes, 19 replay."""
    from app.auth.service import hash_password
    from app.rbac.models import Role, RoleAssignment
    from app.api.keys import create_api_key

    with app.app_context():
        admin = User(email=f"conc-{uuid.uuid4().hex[:8]}@example.com", is_staff=True,
                     password_hash=hash_password("CorrectHorse9Battery"))
        real_db.session.add(admin)
        real_db.session.flush()
        role = real_db.session.scalar(select(Role).where(Role.name == "admin"))
        real_db.session.add(RoleAssignment(user_id=admin.id, role_id=role.id, reason="concurrency test"))
        _, secret = create_api_key(real_db.session, None, owner=admin, name="conc", key_type="production")
        real_db.session.commit()
        admin_id = admin.id

    headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": "concurrent-1"}
    barrier = threading.Barrier(20)
    results: list = []
    lock = threading.Lock()

    def worker():
        client = app.test_client()
        barrier.wait()
        response = client.post(URL, json={"tier": "pro"}, headers=headers)
        with lock:
            results.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 19 + [201]
    assert len({body["id"] for _, body in results}) == 1
    with app.app_context():
        created = real_db.session.scalar(select(func.count()).select_from(User).where(
            User.account_type == "test", User.created_by_id == admin_id))
        assert created == 1
        assert real_db.session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 1
