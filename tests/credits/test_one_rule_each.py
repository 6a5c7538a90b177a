"""Each rule once (issue 19): the balance charge and the ledger inserts are the statements of
credits/charge.py whoever deducts; a deduction or a grant made on the staff screen writes the
same ledger row as one made through the API; the charge refuses an overdraft, a passed cap and
a production balance in test mode on PostgreSQL and SQLite alike; is_test has one rule, in
Python and in SQL; the grant rules are one function for the screen, the API and a bulk row."""
from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import event, literal, select
from sqlalchemy.orm import Session

from app.core import clock, pg, testmode
from app.core.errors import DomainError
from app.credits import balances, charge, grants, metering
from app.credits.models import (CreditAllocation, CreditBalance, CreditDeduction, CreditGrantRequest, PricingState,
                                TokenUsage)
from app.extensions import db

LEDGER_OWN = ("id", "user_id", "created_at")  # what two rows of two users may not share


@pytest.fixture
def executed(monkeypatch, session):
    """Every statement object run through the session or pg.run() (both still run it)."""
    seen = []

    def listen(state):
        seen.append(state.statement)

    event.listen(Session, "do_orm_execute", listen)
    real = pg.run

    def spy(session_, stmt, params):
        seen.append(stmt)
        return real(session_, stmt, params)

    monkeypatch.setattr(pg, "run", spy)
    yield seen
    event.remove(Session, "do_orm_execute", listen)


def ran(seen, *statements) -> bool:
    return all(any(s is stmt for s in seen) for stmt in statements)


def row_of(model, **where) -> dict:
    key = model.__table__.primary_key.columns.values()[0]
    obj = db.session.scalars(select(model).filter_by(**where).order_by(key.desc())
                             .execution_options(populate_existing=True)).first()
    return {c.name: getattr(obj, c.key) for c in model.__table__.columns if c.name not in LEDGER_OWN}


def api(client, key, path, body):
    return client.post(f"/api/v1{path}", data=json.dumps(body), content_type="application/json",
                       headers={**key.headers, "Idempotency-Key": uuid.uuid4().hex})


def test_every_deduction_path_runs_the_one_charge_and_ledger_statements(
        app, client, login_as, priced, funded, make_api_key, session, executed, frozen_clock):
    user = funded(subscription=10_000, tier="pro")
    key = make_api_key(user, key_type="production")
    session.commit()
    one_statement = db.engine.dialect.name == "postgresql"
    paths = {
        "api deduct": lambda: api(client, key, "/credits/deduct", {"amount": 7, "deduction_type": "custom"}),
        "api calculate-and-deduct": lambda: api(client, key, "/credits/calculate-and-deduct", {
            "model": "gpt-4-turbo", "input_tokens": 500, "output_tokens": 300, "request_id": "r-1"}),
        "staff screen": lambda: login_as("admin").post(f"/admin/credits/users/{user.id}/deduct",
                                                       data={"amount": "9", "reason": "Duplicate grant"}),
        "service, zero cost": lambda: metering.charge(
            session, user.id, metering.estimate(session, user.id, "gpt-4-turbo", 0, 0), "r-zero", "inference",
            clock.now(), "pro"),
        "period lapse": lambda: balances.allocate_period(session, user.id, 100, 0, clock.now(),
                                                         clock.now() + timedelta(days=30)),
    }
    for name, call in paths.items():
        executed.clear()
        response = call()
        assert getattr(response, "status_code", 201) in (201, 302), (name, getattr(response, "data", None))
        if name == "api calculate-and-deduct" and one_statement:
            # the priced charge and both ledger inserts, in one statement built from the same pieces
            assert ran(executed, charge.CHARGE_AND_RECORD), name
        elif name == "api calculate-and-deduct" or name == "service, zero cost":
            assert ran(executed, charge.CHARGE, charge.USAGE_INSERT), name
        else:
            assert ran(executed, charge.CHARGE, charge.DEDUCTION_INSERT), name


def test_staff_screen_and_api_deductions_write_the_same_ledger_row(
        client, login_as, priced, funded, make_api_key, session, frozen_clock):
    by_api, by_screen = funded(subscription=100, bonus=50), funded(subscription=100, bonus=50)
    key = make_api_key(by_api, key_type="production")
    staff = login_as("admin")
    session.commit()
    assert api(client, key, "/credits/deduct", {"amount": 130, "deduction_type": "custom"}).status_code == 201
    assert staff.post(f"/admin/credits/users/{by_screen.id}/deduct",
                      data={"amount": "130", "reason": "Duplicate grant"}).status_code == 302
    api_row, screen_row = row_of(CreditDeduction, user_id=by_api.id), row_of(CreditDeduction, user_id=by_screen.id)
    # Subscription credits first, then bonus: 20 bonus left on both; only who and why differ.
    assert api_row == {**screen_row, "reason": None, "actor_id": None, "related_usage_id": None}
    assert (screen_row["balance_after"], screen_row["is_test"], screen_row["reason"], screen_row["actor_id"]) == (
        20, False, "Duplicate grant", staff.user.id)
    api_balance, screen_balance = row_of(CreditBalance, user_id=by_api.id), row_of(CreditBalance, user_id=by_screen.id)
    # A client's deduction counts toward the monthly cap, a staff correction does not.
    assert api_balance == {**screen_balance, "mtd_credits": 130, "updated_at": api_balance["updated_at"]}
    assert (screen_balance["subscription_credits"], screen_balance["bonus_credits"], screen_balance["mtd_credits"]) \
        == (0, 20, 0)


def test_staff_screen_and_api_grants_write_the_same_allocation(
        client, login_as, priced, funded, make_user, make_api_key, session, frozen_clock):
    by_api, by_screen = funded(), funded()
    admin = make_user(roles=("admin",))
    key = make_api_key(admin, key_type="production")
    staff = login_as(user=admin)
    body = {"amount": 250, "reason": "Conference raffle"}
    assert api(client, key, "/admin/credits/allocate", {**body, "user_id": by_api.id}).status_code == 201
    assert staff.post(f"/admin/credits/users/{by_screen.id}/grant", data=body).status_code == 302
    assert row_of(CreditAllocation, user_id=by_api.id) == row_of(CreditAllocation, user_id=by_screen.id)
    assert row_of(CreditAllocation, user_id=by_api.id)["actor_id"] == admin.id


def _params(user_id, amount, **kw):
    at = clock.now()
    return charge.params(user_id, amount, at, balances.month_start(at), **kw)


def test_the_charge_refuses_overdraft_cap_and_the_other_world(priced, funded, session, frozen_clock):
    user = funded(subscription=100, bonus=20, cap=110)
    run = lambda amount, **kw: session.execute(charge.CHARGE, _params(user.id, amount, **kw)).first()  # noqa: E731
    assert run(121) is None  # more than subscription + bonus
    assert run(111) is None  # within the balance, past the cap of 110
    first = run(105)
    assert (first.subscription_credits, first.bonus_credits, first.mtd_credits) == (0, 15, 105)
    assert run(6) is None  # 105 + 6 > 110
    staff = run(6, toward_cap=False)  # a staff correction ignores the cap and does not count toward it
    assert (staff.bonus_credits, staff.mtd_credits) == (9, 105)
    assert run(10, toward_cap=False) is None  # never below zero, cap or not
    with testmode.test_mode():
        assert run(1, toward_cap=False) is None  # a production balance, in test mode
        refusal = charge.refusal(session.execute(charge.LOCATE, {"user_id": user.id}).first(), 1,
                                 balances.month_start(clock.now()))
        assert refusal.code == "test_mode_not_allowed"
    assert session.scalar(select(CreditBalance.bonus_credits).where(CreditBalance.user_id == user.id)) == 9
    for amount, code in ((10, "insufficient_credits"), (6, "monthly_cap_exceeded")):
        with pytest.raises(DomainError) as refused:
            balances.deduct(session, user.id, amount, "custom")
        assert refused.value.code == code


@pytest.mark.postgres
def test_the_one_statement_charge_refuses_and_writes_no_ledger_row(priced, funded, session, frozen_clock):
    user = funded(subscription=30, cap=40)
    price = metering.estimate(session, user.id, "gpt-4-turbo", 500, 300)  # 49 credits
    token = session.scalar(select(PricingState.token))
    values = {**metering._usage_values(user.id, price, "r-1", "pro"), "deduction_type": "inference",
              "related_usage_id": "r-1", "reason": None, "actor_id": None}
    refused = pg.run(session, charge.CHARGE_AND_RECORD, {**values, **_params(
        user.id, price.credits, tokens=800, tier="pro", pricing_token=token, mtd_lo=0, mtd_hi=10**15)}).fetchone()
    assert refused is None
    assert session.scalar(select(TokenUsage.id)) is None and session.scalar(select(CreditDeduction.id)) is None
    done = pg.run(session, charge.CHARGE_AND_RECORD, {**values, **_params(
        user.id, 25, tokens=800, tier="pro", pricing_token=token, mtd_lo=0, mtd_hi=10**15)}).fetchone()
    assert (done.subscription_credits, done.mtd_credits, done.mtd_tokens) == (5, 25, 800)
    deduction = session.scalars(select(CreditDeduction)).one()
    assert (deduction.usage_id, deduction.balance_after, deduction.amount) == (done.usage_id, 5, 25)


@pytest.mark.parametrize("active", [False, True])
@pytest.mark.parametrize("owner", [False, True])
def test_is_test_has_one_rule_in_python_and_in_sql(session, active, owner):
    with testmode.test_mode(active):
        python = testmode.is_test_row(owner)
    sql = session.scalar(select(testmode.is_test_sql(literal(owner), literal(active))))
    assert bool(sql) is python is (active or owner)


def test_the_grant_rules_are_one_function_for_screen_api_and_bulk(
        client, login_as, priced, funded, make_user, make_api_key, session, frozen_clock, monkeypatch):
    admin = make_user(roles=("admin",))
    key = make_api_key(admin, key_type="production")
    staff = login_as(user=admin)
    checked = []
    real = grants.check_grant

    def spy(*args, **kwargs):
        checked.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(grants, "check_grant", spy)
    body = {"amount": 10, "reason": "For my own account", "user_id": admin.id}  # a grant to oneself
    screen = staff.post(f"/admin/credits/users/{admin.id}/grant", data=body)
    single = api(client, key, "/admin/credits/allocate", body)
    bulk = api(client, key, "/admin/credits/bulk-allocate", {"allocations": [body]})
    assert checked == [admin.id] * 3
    assert screen.status_code == 422 and b"cannot grant credits to yourself" in screen.data  # on the form
    assert (single.status_code, single.json["error"]["code"]) == (403, "self_grant")
    assert bulk.status_code == 422 and [(e["param"], e["code"]) for e in bulk.json["errors"]] == [
        ("user_id", "self_grant")]
    assert session.scalar(select(CreditAllocation.id).where(CreditAllocation.user_id == admin.id)) is None


@pytest.mark.parametrize("amount, reason, whom", [
    (0, "Outage week", "user"), ("10", "Outage week", "user"), (balances.MAX_CREDITS + 1, "Outage week", "user"),
    (10, " ", "user"), (10, "ab", "user"), (10, "Outage week", "nobody"), (10, "Outage week", "self"),
])
def test_a_grant_and_a_grant_request_refuse_the_same_inputs_with_the_same_words(
        session, frozen_clock, make_user, funded, monkeypatch, amount, reason, whom):
    """The screen's "Request credits" (request_grant) checks a grant by check_grant, as the
    screen's and the API's grant do: the same refusal, code, field and message."""
    admin, user = make_user(roles=("admin",)), funded()
    user_id = {"user": user.id, "nobody": 10**9, "self": admin.id}[whom]
    checked = []
    real = grants.check_grant
    monkeypatch.setattr(grants, "check_grant", lambda *a, **kw: checked.append(a[2]) or real(*a, **kw))
    refusals = []
    for call in (grants.grant, grants.request_grant):
        with pytest.raises(DomainError) as refused:
            call(session, admin, user_id, amount, reason)
        error = refused.value
        refusals.append((type(error), error.code, error.field, error.message, error.status))
    assert refusals[0] == refusals[1]
    assert checked == [user_id, user_id]
    assert session.scalar(select(CreditGrantRequest.id)) is None


def test_a_grant_request_needs_only_the_view_permission(session, frozen_clock, make_user, funded):
    analyst, user = make_user(roles=("analyst",)), funded()  # may see a balance, may not grant
    request = grants.request_grant(session, analyst, user.id, 900_000, "Outage week")
    assert (request.user_id, request.amount, request.reason, request.status) == (user.id, 900_000, "Outage week",
                                                                                 "pending")
    auditor = make_user(roles=("auditor",))
    with pytest.raises(DomainError) as refused:
        grants.request_grant(session, auditor, user.id, 10, "Outage week")
    assert (refused.value.code, refused.value.permission) == ("permission_denied", "credits.view_balance")
