"""Test and live are two worlds (DESIGN.md §3): what a new user found (issue 14), each refused.

A production customer's sandbox key acts as the customer's test twin; an admin's sandbox key
reaches test accounts only; a test account asked for with a tier is priced and funded at once.
"""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.core import testmode
from app.core.testmode import TestModeViolation
from app.credits import balances
from app.extensions import db
from app.licensing.models import Activation, License
from app.sandbox import twins
from app.users.models import User
from tests.support.worlds import (CHARGE, DEVICE, balance_mismatches, fingerprint_device, make_coupon,
                                  production_customer, production_fingerprint, seed_catalogue)


@pytest.fixture
def world(session, make_user, make_api_key):
    seed_catalogue(session)
    return production_customer(session, make_user, make_api_key)


def call(client, method, path, key, body=None, idem=None):
    headers = {**key.headers, **({"Idempotency-Key": idem} if idem else {})}
    return client.open(f"/api/v1{path}", method=method, json=body, headers=headers)


def test_a_customers_sandbox_key_moves_only_the_twin(client, world):
    customer = world.user
    coupon = make_coupon(db.session, max_uses_per_user=1)  # production, one use per customer
    db.session.commit()
    before = production_fingerprint(db.session)
    live_total = balances.get_balance(db.session, customer.id).total

    charged = call(client, "POST", "/credits/calculate-and-deduct", world.sandbox_key, {**CHARGE, "request_id": "t1"},
                   idem="t1")
    assert charged.status_code == 201, charged.json
    assert charged.headers["X-Test-Mode"] == "true"
    twin = twins.twin_of(db.session, customer)
    assert twin is not None and twin.is_test and twin.account_type == "test" and twin.twin_of_id == customer.id
    # The twin is on the customer's tier (pro), with the tier's credits, priced at the pro margin.
    assert charged.json["credits_deducted"] == 49
    assert charged.json["balance"]["total"] == balances.get_balance(db.session, twin.id).total

    deducted = call(client, "POST", "/credits/deduct", world.sandbox_key, {"amount": 1000, "deduction_type": "inference"}, idem="t2")
    assert deducted.status_code == 201 and deducted.headers["X-Test-Mode"] == "true", deducted.json

    # Its own test license (a copy of the customer's): two seats; the production license is not found.
    copy = db.session.scalar(select(License).where(License.user_id == twin.id))
    assert copy.is_test and copy.license_key != world.license.license_key
    for n in range(2):
        got = call(client, "POST", "/licenses/activate", world.sandbox_key,
                   {"license_key": copy.license_key, "fingerprint": fingerprint_device(f"twin-{n}"), **DEVICE})
        assert got.status_code in (200, 201) and got.headers["X-Test-Mode"] == "true", got.json
    real = call(client, "POST", "/licenses/activate", world.sandbox_key,
                {"license_key": world.license.license_key, "fingerprint": fingerprint_device("x"), **DEVICE})
    assert real.status_code == 404 and real.headers["X-Test-Mode"] == "true"

    # The production coupon: the twin's use is counted in the test lane.
    body = {"code": coupon.code, "amount": "99.99", "tier": "pro", "billing_cycle": "monthly"}
    redeemed = call(client, "POST", "/coupons/redeem", world.sandbox_key, body, idem="t3")
    assert redeemed.status_code == 201 and redeemed.headers["X-Test-Mode"] == "true", redeemed.json

    changed = call(client, "POST", "/subscription/change", world.sandbox_key, {"to_tier": "free"}, idem="t4")
    assert changed.status_code == 201 and changed.headers["X-Test-Mode"] == "true", changed.json

    # The customer's world did not move: balance, seats, subscription, every production row.
    assert balances.get_balance(db.session, customer.id).total == live_total
    assert production_fingerprint(db.session) == before
    assert balance_mismatches(db.session) == []
    db.session.expire_all()
    assert (coupon.uses_count, coupon.test_uses_count) == (0, 1)
    assert db.session.scalar(select(func.count()).select_from(Activation).where(
        Activation.license_id == world.license.id, Activation.status == "active")) == 1
    # ... and the customer's own live redemption and device still work.
    live = call(client, "POST", "/coupons/redeem", world.live_key, body, idem="l1")
    assert live.status_code == 201 and live.json["redemption"]["redemption_status"] == "success", live.json
    seat = call(client, "POST", "/licenses/activate", world.live_key,
                {"license_key": world.license.license_key, "fingerprint": fingerprint_device("live-2"), **DEVICE})
    assert seat.status_code in (200, 201), seat.json


def test_the_twin_is_made_once_and_again_after_cleanup(client, world):
    for n in range(3):
        assert call(client, "GET", "/credits/balance", world.sandbox_key).status_code == 200
    assert db.session.scalar(select(func.count()).select_from(User).where(User.twin_of_id == world.user.id)) == 1


def test_an_admins_sandbox_key_reaches_test_accounts_only(client, world, make_user, make_api_key):
    admin = make_user(roles=("admin",))
    sandbox = make_api_key(admin, "sandbox")
    before = production_fingerprint(db.session)
    granted = call(client, "POST", "/admin/credits/allocate", sandbox,
                   {"user_id": world.user.id, "amount": 1_000_000, "reason": "QA run"}, idem="a1")
    assert (granted.status_code, granted.json["error"]["code"]) == (403, "test_mode_not_allowed")
    minted = call(client, "POST", "/admin/test/api-keys", sandbox,
                  {"user_id": world.user.id, "name": "sneaky"}, idem="a2")
    assert (minted.status_code, minted.json["error"]["code"]) == (403, "test_mode_not_allowed")
    assert production_fingerprint(db.session) == before
    # A test account is fair game.
    made = call(client, "POST", "/admin/test/users", sandbox, {"tier": "pro"}, idem="a3")
    assert made.status_code == 201
    topped = call(client, "POST", "/admin/credits/allocate", sandbox,
                  {"user_id": made.json["id"], "amount": 500, "reason": "QA top-up"}, idem="a4")
    assert topped.status_code == 201, topped.json


def test_a_test_account_made_with_a_tier_is_funded_and_priced_at_once(client, world, make_user, make_api_key):
    admin = make_api_key(make_user(roles=("admin",)), "production")
    made = call(client, "POST", "/admin/test/users", admin, {"tier": "pro"}, idem="p1")
    assert made.status_code == 201, made.json
    tester = db.session.get(User, made.json["id"])
    key = make_api_key(tester, "sandbox")
    charged = call(client, "POST", "/credits/calculate-and-deduct", key, {**CHARGE, "request_id": "p1"}, idem="p2")
    assert charged.status_code == 201, charged.json
    assert charged.json["credits_deducted"] == 49  # gpt-4-turbo 500/300 at the pro margin of 40% (DESIGN.md §4)
    cost = call(client, "POST", "/credits/calculate-cost", key, CHARGE)
    assert cost.json["margin_percentage"] == "40.00"
    from app.billing.subscriptions import live_subscription

    sub = live_subscription(db.session, tester.id)
    assert sub.is_test and sub.tier.name == "pro"


def test_the_guard_refuses_in_every_write_path(world):
    """ORM flush, ORM-enabled UPDATE, Core UPDATE/DELETE, Core INSERT owned by a production account."""
    from sqlalchemy import delete, insert, update

    from app.credits.models import CreditAllocation, CreditBalance

    customer = world.user
    before = production_fingerprint(db.session)
    with testmode.test_mode():
        with pytest.raises(TestModeViolation):
            customer.first_name = "Mallory"
            db.session.flush()
        db.session.rollback()
        for statement in (update(CreditBalance).where(CreditBalance.user_id == customer.id).values(bonus_credits=1),
                          update(CreditBalance.__table__).values(bonus_credits=1),
                          delete(License.__table__).where(License.id == world.license.id)):
            with pytest.raises(TestModeViolation):
                db.session.execute(statement)
        with pytest.raises(TestModeViolation):
            db.session.execute(insert(CreditAllocation.__table__).values(
                user_id=customer.id, amount=5, source="admin_grant", bucket="bonus", reason="x", balance_after=5))
        with pytest.raises(TestModeViolation):
            balances.allocate(db.session, customer.id, 5, "admin_grant", reason="x")
    db.session.rollback()
    assert production_fingerprint(db.session) == before


def test_the_twin_is_listed_on_the_customers_page(client, world, login_as):
    call(client, "GET", "/credits/balance", world.sandbox_key)
    twin = twins.twin_of(db.session, world.user)
    staff = login_as("support")
    page = staff.get(f"/admin/users/{world.user.id}").get_data(as_text=True)
    assert "Test twin" in page and twin.email in page
    back = staff.get(f"/admin/users/{twin.id}").get_data(as_text=True)
    assert "Test twin of" in back and world.user.email in back


def test_a_test_staff_persona_changes_no_production_customer_on_the_screens(world, make_user, login_as):
    persona = make_user(roles=("admin",), test=True)
    staff = login_as(user=persona)
    before = production_fingerprint(db.session)
    refused = staff.post(f"/admin/credits/users/{world.user.id}/grant", data={"amount": "1000", "reason": "QA top-up"})
    assert refused.status_code in (403, 422) and "Test mode" in refused.get_data(as_text=True)
    assert production_fingerprint(db.session) == before
    # A test account is the persona's to change.
    from app.sandbox import service as test_accounts

    tester = test_accounts.create_test_user(db.session, persona, tier="pro").user
    db.session.commit()
    granted = staff.post(f"/admin/credits/users/{tester.id}/grant", data={"amount": "1000", "reason": "QA top-up"})
    assert granted.status_code in (200, 302), granted.get_data(as_text=True)[-2000:]
    assert balances.get_balance(db.session, tester.id).bonus_credits == 1000
