"""Item 15 of issue 15: one locked row must not stall the service. Request transactions run
with lock_timeout (DB_LOCK_TIMEOUT_MS, 2 s) and statement_timeout (DB_STATEMENT_TIMEOUT_MS,
15 s); a request that waits on a held balance row gives up and answers 503 with Retry-After,
while every other customer is served meanwhile."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select, text

from app.credits.models import CreditDeduction
from tests.credits.test_concurrency import COST, _setup

pytestmark = pytest.mark.postgres
URL = "/api/v1/credits/calculate-and-deduct"
BODY = {"model": "gpt-4-turbo", "input_tokens": 500, "output_tokens": 300}


def test_request_connections_carry_the_timeouts(app, session):
    assert session.execute(text("SHOW lock_timeout")).scalar_one() == "2s"
    assert session.execute(text("SHOW statement_timeout")).scalar_one() == "15s"


def test_a_held_balance_row_costs_its_customer_a_quick_503_and_nobody_else_anything(app, real_db):
    """(And RQ workers connect with the job timeouts, checked at the end on this test's real_db.)"""
    from app.api.keys import create_api_key
    from app.users.models import User

    locked_id, other_id = _setup(real_db, subscription=COST * 20, users=2)
    secrets = {}
    for uid in (locked_id, other_id):
        _, secrets[uid] = create_api_key(real_db.session, None, owner=real_db.session.get(User, uid), name="k",
                                         key_type="production")
    real_db.session.commit()

    def charge(uid: int, rid: str):
        started = time.monotonic()
        response = app.test_client().post(URL, json={**BODY, "request_id": rid},
                                          headers={"Authorization": f"Bearer {secrets[uid]}", "Idempotency-Key": rid})
        return response, time.monotonic() - started

    holder = real_db.engine.connect()  # a long transaction elsewhere holds the customer's balance
    holder.execute(text("SELECT 1 FROM credit_balances WHERE user_id = :u FOR UPDATE"), {"u": locked_id})
    release = threading.Timer(10, holder.rollback)  # without a lock timeout the waiters wait this long
    release.start()
    try:
        with ThreadPoolExecutor(12) as pool:
            waiting = [pool.submit(charge, locked_id, f"locked-{n}") for n in range(2)]
            served = [pool.submit(charge, other_id, f"other-{n}") for n in range(8)]
            waiting, served = [f.result() for f in waiting], [f.result() for f in served]
    finally:
        release.cancel()
        holder.rollback()
        holder.close()

    assert [r.status_code for r, _ in served] == [201] * 8
    assert max(elapsed for _, elapsed in served) < 1.5
    for response, elapsed in waiting:
        assert response.status_code == 503 and response.headers["Retry-After"] == "2"
        assert response.json["error"]["code"] == "service_unavailable"
        # The 2 s lock timeout, not the holder's 10 s. PostgreSQL applies it to each lock wait:
        # a waiter queued behind another for the row's tuple lock waits once for that, then for
        # the holder (measured with 4 waiters: 2.05, 2.07, 4.09, 4.1 and once 6.06 s); the
        # statement_timeout (15 s) bounds the whole.
        assert 1.5 < elapsed < 5
    retried, _ = charge(locked_id, "locked-0")  # the same Idempotency-Key, once the row is free
    assert retried.status_code == 201
    real_db.session.rollback()
    assert real_db.session.scalar(select(func.count()).select_from(CreditDeduction)
                                  .where(CreditDeduction.user_id == locked_id)) == 1
    real_db.session.remove()
    _workers_connect_with_the_longer_job_timeouts(app, real_db)


def _workers_connect_with_the_longer_job_timeouts(app, real_db) -> None:
    """What `flask jobs worker` does before it works (app/cli.py); here, where the test holds
    no connection (real_db), so that closing the pool's connections is clean."""
    from app.core import db_timeouts

    try:
        db_timeouts.use_job_timeouts(app)
        with real_db.engine.connect() as conn:
            assert conn.execute(text("SHOW lock_timeout")).scalar_one() == "30s"
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "10min"
    finally:
        app.config[db_timeouts.PROFILE_KEY] = "requests"
        real_db.engine.dispose()
