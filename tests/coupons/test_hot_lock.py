"""A live redemption on PostgreSQL holds the hot coupon's row lock for as few round trips as
possible: from the statement that takes the coupon's use (coupons/hot.py) to the commit, the
request sends only the Idempotency-Key answer's store (no re-read of the row it just wrote),
and as a server runs it (the request's own connection, app/core/pg.py) the store and the
COMMIT are one round trip."""
from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import select

from app.coupons.models import Redemption
from tests.coupons.test_api import BODY, black_friday, count, live, post  # noqa: F401 (fixtures)

pytestmark = pytest.mark.postgres


@contextlib.contextmanager
def statements():
    """Every round trip made through psycopg meanwhile: each statement's text (whitespace
    folded), and "COMMIT" for a commit of a connection with a transaction open."""
    sent: list[str] = []
    execute, commit = psycopg.Cursor.execute, psycopg.Connection.commit

    def recorded(self, query, params=None, **kwargs):
        text = query if isinstance(query, str) else query.as_string(self.connection)
        sent.append(" ".join(text.split()))
        return execute(self, query, params, **kwargs)

    def committed(self):
        if self.pgconn.transaction_status != TransactionStatus.IDLE:
            sent.append("COMMIT")
        return commit(self)

    psycopg.Cursor.execute, psycopg.Connection.commit = recorded, committed
    try:
        yield sent
    finally:
        psycopg.Cursor.execute, psycopg.Connection.commit = execute, commit


def test_only_the_answers_store_is_sent_while_the_coupon_row_is_locked(client, live, black_friday):
    with statements() as sent:
        response = post(client, "redeem", live, BODY, idem="lock-1")
    assert response.status_code == 201 and response.json["redemption"]["redemption_status"] == "success"
    takes = [i for i, text in enumerate(sent) if text.startswith("WITH taken AS (UPDATE coupons")]
    assert len(takes) == 1, sent
    ends = [i for i, text in enumerate(sent) if i > takes[0] and text.startswith(("RELEASE SAVEPOINT", "COMMIT"))]
    assert ends, sent  # the tests' outer transaction: the request's commit releases its savepoint
    locked = sent[takes[0] + 1:ends[0]]
    assert len(locked) == 1 and locked[0].startswith("UPDATE idempotency_records"), locked


def test_on_its_own_connection_the_answers_store_and_the_commit_are_one_round_trip(app, real_db, live,
                                                                                   black_friday, monkeypatch):
    from app.core import green

    blocking = []  # what was sent while the worker did not yield (green.not_yielding)
    real_not_yielding = green.not_yielding

    @contextlib.contextmanager
    def recorded():
        with real_not_yielding():
            blocking.append(len(sent))
            yield
            blocking.append(len(sent))

    monkeypatch.setattr(green, "not_yielding", recorded)

    def call():  # from a thread with no app context of the test: the server's way (pg.transaction)
        return app.test_client().post("/api/v1/coupons/redeem", json=BODY, headers={
            **live.headers, "Idempotency-Key": "lock-2", "User-Agent": "RephloDesktop/2.1"})

    with statements() as sent, ThreadPoolExecutor(1) as pool:
        response = pool.submit(call).result()
    assert response.status_code == 201 and response.json["redemption"]["redemption_status"] == "success"
    takes = [i for i, text in enumerate(sent) if text.startswith("WITH taken AS (UPDATE coupons")]
    assert len(takes) == 1, sent
    after = sent[takes[0] + 1:]
    # the next round trip after the take ends the transaction (what follows is the request
    # counter's own short one, app/api/pipeline.py _after)
    assert after[0].startswith("UPDATE idempotency_records") and after[0].endswith("; COMMIT"), after
    # ... sent without yielding the worker: the coupon's lock is not held while it serves others
    assert blocking == [takes[0] + 1, takes[0] + 2], (blocking, takes)
    replay = app.test_client().post("/api/v1/coupons/redeem", json=BODY, headers={
        **live.headers, "Idempotency-Key": "lock-2", "User-Agent": "RephloDesktop/2.1"})
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json == response.json


def test_the_take_itself_refuses_to_move_production_counters_in_test_mode(session, black_friday, make_user):
    """The take is one statement of CTEs, which the world guard (core/world_guard.py) cannot see:
    the statement carries the test-mode rule itself. Were a test actor's attempt ever sent down
    this path, nothing would be taken or written."""
    from app.core import clock, testmode
    from app.coupons import hot
    from app.coupons.models import Campaign, Coupon

    user = make_user()
    columns = {"coupon_id": black_friday.id, "campaign_id": black_friday.campaign_id, "user_id": user.id,
               "status": "success", "original_amount": "99.99", "discount_amount": "30.00", "final_amount": "69.99",
               "budget_cost": "30.00", "is_test": False, "created_at": clock.now()}
    before = session.execute(select(Coupon.uses_count, Campaign.spent).join(Campaign, Campaign.id == Coupon.campaign_id)
                             .where(Coupon.id == black_friday.id)).one()
    with testmode.test_mode():
        row, refused = hot.take_and_insert(session, black_friday, dict(columns))
    assert row is None and refused == "max_uses_reached"
    after = session.execute(select(Coupon.uses_count, Campaign.spent).join(Campaign, Campaign.id == Coupon.campaign_id)
                            .where(Coupon.id == black_friday.id)).one()
    assert after == before and count(Redemption) == 0
    row, refused = hot.take_and_insert(session, black_friday, dict(columns))  # live: the same call takes
    assert refused is None and row is not None
