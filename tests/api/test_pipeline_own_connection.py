"""The pipeline on a pooled connection of its own (app/core/pg.py transaction()), as a server
runs it: real commits, requests from a thread with no app context of the test. Every branch
answers as the session path does and leaves the database as it does."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import traceback

import pytest
from sqlalchemy import func, select

from app.core import clock, pg
from app.credits import balances
from app.credits.models import CreditDeduction, TokenUsage
from app.api.models import ApiKey, IdempotencyRecord
from tests.credits.test_concurrency import COST, _setup

pytestmark = pytest.mark.postgres
URL = "/api/v1/credits/calculate-and-deduct"
BODY = {"model": "gpt-4-turbo", "input_tokens": 500, "output_tokens": 300}


@pytest.fixture
def own(app, real_db, monkeypatch):
    """A funded user with a live key; send(rid, idem) posts from a fresh thread; opened counts
    the requests that took their own connection."""
    from app.api.keys import create_api_key
    from app.users.models import User

    (user_id,) = _setup(real_db, subscription=COST * 2)
    key, secret = create_api_key(real_db.session, None, owner=real_db.session.get(User, user_id), name="own",
                                 key_type="production")
    real_db.session.commit()
    opened = []
    real_init = pg._OwnConnection.__init__

    def counting(self, *args):
        opened.append(1)
        real_init(self, *args)

    monkeypatch.setattr(pg._OwnConnection, "__init__", counting)

    def send(rid: str, idem: str | None = None, secret_=secret, body=None):
        def call():
            return app.test_client().post(URL, json=body or {**BODY, "request_id": rid},
                                          headers={"Authorization": f"Bearer {secret_}",
                                                   "Idempotency-Key": idem or rid})

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(call).result()

    return {"user_id": user_id, "key_id": key.id, "send": send, "opened": opened, "db": real_db, "secret": secret}


def _count(db, model) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model))


def test_charge_replay_and_reuse_with_another_body(own):
    first = own["send"]("r1", "k1")
    assert first.status_code == 201 and first.json["balance"]["total"] == COST
    replay = own["send"]("r1", "k1")
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json == first.json
    reused = own["send"]("r2", "k1")
    assert (reused.status_code, reused.json["error"]["code"]) == (409, "idempotency_key_reused")
    assert _count(own["db"], CreditDeduction) == 1 and _count(own["db"], IdempotencyRecord) == 1
    assert len(own["opened"]) == 3


def test_refusal_writes_nothing_and_the_key_can_be_retried_after_funding(own):
    db = own["db"]
    assert own["send"]("r1").status_code == 201 and own["send"]("r2").status_code == 201
    refused = own["send"]("r3", "k3")
    assert (refused.status_code, refused.json["error"]["code"]) == (402, "insufficient_credits")
    assert _count(db, IdempotencyRecord) == 2 and _count(db, TokenUsage) == 2
    balances.allocate(db.session, own["user_id"], COST, "admin_grant")
    db.session.commit()
    retried = own["send"]("r3", "k3")
    assert retried.status_code == 201 and retried.json["balance"]["total"] == 0
    assert balances.get_balance(db.session, own["user_id"]).total == 0


def test_rate_limited_request_still_counts_and_touches_the_key(app, own, monkeypatch):
    from app.api import traffic

    db = own["db"]
    key = db.session.get(ApiKey, own["key_id"])
    key.last_used_at = clock.now() - timedelta(hours=1)
    db.session.commit()
    before = traffic.requests_on(db.session)["production"]
    monkeypatch.setitem(app.config, "API_RATE_LIMIT_LIVE", "0 per minute")
    refused = own["send"]("r1")
    assert (refused.status_code, refused.json["error"]["code"]) == (429, "rate_limited")
    db.session.rollback()
    assert db.session.get(ApiKey, own["key_id"]).last_used_at > clock.now() - timedelta(minutes=1)
    assert traffic.requests_on(db.session)["production"] == before + 1  # counted in its own short transaction
    assert _count(db, IdempotencyRecord) == 0 and _count(db, CreditDeduction) == 0


def test_bad_body_is_422_and_nothing_stays(own):
    bad = own["send"]("r1", body={**BODY, "request_id": "r1", "input_tokens": -5})
    assert (bad.status_code, bad.json["error"]["param"]) == (422, "input_tokens")
    assert _count(own["db"], IdempotencyRecord) == 0
    assert own["send"]("r1").status_code == 201


def test_a_charge_makes_no_orm_session_and_a_replay_ends_in_a_commit(own, monkeypatch):
    """The common charge runs on the raw connection only (db.session's session is made when a
    branch needs the ORM: the replay's lookup); a replay commits rather than rolls back, since
    psycopg drops the connection's prepared statements at every rollback."""
    made, rollbacks = [], []
    real_session, real_rollback = pg.BoundSession.__init__, pg._OwnConnection.rollback

    def making(self, *args, **kwargs):
        made.append([f.name for f in traceback.extract_stack()])
        real_session(self, *args, **kwargs)

    def rolling_back(self):
        rollbacks.append(1)
        real_rollback(self)

    assert own["send"]("r1", "k1").status_code == 201  # a process's first charge of a user may load pricing
    monkeypatch.setattr(pg.BoundSession, "__init__", making)
    monkeypatch.setattr(pg._OwnConnection, "rollback", rolling_back)
    assert own["send"]("r2", "k2").status_code == 201
    # (without Redis, as here, the request counter row is written after the charge, through the ORM)
    assert [stack for stack in made if "_after" not in stack] == [] and rollbacks == []
    replay = own["send"]("r2", "k2")
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert any("after_conflict" in stack for stack in made) and rollbacks == []
    assert own["send"]("r3", "k3").status_code == 402 and len(rollbacks) == 1  # its claim is undone
    assert _count(own["db"], IdempotencyRecord) == 2 and _count(own["db"], CreditDeduction) == 2


def _in_thread(app, method: str, path: str, secret: str, **kwargs):
    def call():
        return app.test_client().open(path, method=method, headers={"Authorization": f"Bearer {secret}",
                                                                    **kwargs.pop("headers", {})}, **kwargs)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()


def test_reads_and_refusals_of_other_routes_take_the_same_connection(app, own):
    """Not a lane for one route: a balance read, a scope refusal and a coupon redemption's
    validation failure all run on the request's own connection and answer as on the session."""
    from app.api.keys import create_api_key
    from app.users.models import User

    db = own["db"]
    secret = own["secret"]
    balance = _in_thread(app, "GET", "/api/v1/credits/balance", secret)
    assert balance.status_code == 200 and balance.json["total"] == COST * 2
    assert len(own["opened"]) == 1
    _, read_only = create_api_key(db.session, None, owner=db.session.get(User, own["user_id"]), name="ro",
                                  key_type="production", scopes=["credits:read"])
    db.session.commit()
    refused = _in_thread(app, "POST", "/api/v1/credits/deduct", read_only, json={"amount": 1, "deduction_type": "custom"},
                         headers={"Idempotency-Key": "ro-1"})
    assert (refused.status_code, refused.json["error"]["code"]) == (403, "insufficient_scope")
    missing = _in_thread(app, "POST", "/api/v1/coupons/redeem", secret, json={"code": "NOPE", "purchase_type": "subscription"},
                         headers={"Idempotency-Key": "c-1"})
    assert missing.status_code in (404, 422) and missing.json["error"]["code"]
    assert len(own["opened"]) == 3
    assert _count(db, IdempotencyRecord) == 0 and _count(db, CreditDeduction) == 0
