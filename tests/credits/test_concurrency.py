"""Parallel deductions on PostgreSQL with real commits: exactly as many succeed as the balance
(or the monthly cap) allows, the balance ends exact, the ledgers add up, nothing deadlocks."""
from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from app.core.errors import DomainError
from app.credits import balances, metering
from app.credits.models import CreditDeduction, TokenUsage
from tests.credits.conftest import ledger_total

pytestmark = pytest.mark.postgres
COST = 49  # gpt-4-turbo 500/300 at the pro tier's 40%


def _setup(db, subscription: int, cap: int | None = None, users: int = 1) -> list[int]:
    from app.credits.seed import _pricing
    from app.users.models import User

    _pricing(db.session, {}, log=lambda *_: None)
    ids = []
    for i in range(users):
        user = User(email=f"racer{i}@example.com", first_name="R", last_name="R")
        db.session.add(user)
        db.session.flush()
        balances.ensure_balance(db.session, user.id, tier="pro")
        balances.allocate(db.session, user.id, subscription, "monthly_allocation")
        if cap is not None:
            balances.set_monthly_cap(db.session, user.id, cap)
        ids.append(user.id)
    db.session.commit()
    return ids


def _race(app, db, fn, jobs: list, workers: int = 32) -> list[str]:
    def run(job):
        with app.app_context():
            try:
                fn(db.session, *job)
                db.session.commit()
                return "ok"
            except DomainError as error:
                db.session.rollback()
                return error.code
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, jobs))


def _charge(session, user_id, request_id):
    metering.calculate_and_deduct(session, user_id, "gpt-4-turbo", 500, 300, request_id)


def test_200_parallel_deductions_against_a_balance_for_150(app, real_db):
    (user_id,) = _setup(real_db, subscription=150 * COST)
    outcomes = _race(app, real_db, _charge, [(user_id, f"req-{i}") for i in range(200)])
    assert outcomes.count("ok") == 150
    assert outcomes.count("insufficient_credits") == 50
    session = real_db.session
    assert balances.get_balance(session, user_id).total == 0
    assert session.scalar(select(func.sum(CreditDeduction.amount))) == 150 * COST
    assert session.scalar(select(func.count()).select_from(TokenUsage)) == 150
    assert ledger_total(session, user_id) == 0


def test_200_parallel_deductions_against_a_monthly_cap_for_150(app, real_db):
    (user_id,) = _setup(real_db, subscription=1_000_000, cap=150 * COST)
    outcomes = _race(app, real_db, _charge, [(user_id, f"req-{i}") for i in range(200)])
    assert outcomes.count("ok") == 150
    assert outcomes.count("monthly_cap_exceeded") == 50
    view = balances.get_balance(real_db.session, user_id)
    assert view.mtd_credits == 150 * COST and view.total == 1_000_000 - 150 * COST
    assert ledger_total(real_db.session, user_id) == view.total


def test_mixed_grants_and_deductions_on_many_users_never_deadlock(app, real_db):
    ids = _setup(real_db, subscription=2_000, users=6)
    rng = random.Random(7)

    def op(session, kind, user_id, n):
        if kind == "charge":
            metering.calculate_and_deduct(session, user_id, "gpt-4-turbo", 500, 300, f"mix-{n}")
        elif kind == "deduct":
            balances.deduct(session, user_id, rng.randint(1, 80), "embedding")
        else:
            balances.allocate(session, user_id, rng.randint(1, 60), "purchase")

    jobs = [(rng.choice(["charge", "deduct", "grant"]), rng.choice(ids), n) for n in range(300)]
    outcomes = _race(app, real_db, op, jobs)
    assert set(outcomes) <= {"ok", "insufficient_credits"}
    for user_id in ids:
        assert balances.get_balance(real_db.session, user_id).total == ledger_total(real_db.session, user_id)


def test_20_concurrent_requests_with_one_idempotency_key_deduct_once(app, real_db):
    from app.api.keys import create_api_key
    from app.users.models import User

    (user_id,) = _setup(real_db, subscription=10_000)
    _, secret = create_api_key(real_db.session, None, owner=real_db.session.get(User, user_id), name="bench",
                               key_type="production")
    real_db.session.commit()
    body = {"model": "gpt-4-turbo", "input_tokens": 500, "output_tokens": 300, "request_id": "once"}
    headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": "same-key"}

    def call(_):
        response = app.test_client().post("/api/v1/credits/calculate-and-deduct", json=body, headers=headers)
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(call, range(20)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 19 + [201]
    assert len({json_body["usage_id"] for _, json_body in results}) == 1
    assert real_db.session.scalar(select(func.count()).select_from(CreditDeduction)) == 1
    assert balances.get_balance(real_db.session, user_id).total == 10_000 - COST
