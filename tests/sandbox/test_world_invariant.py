"""The invariant of DESIGN.md §3, driven at random: whatever test actors do, production stays put.

A database holds production customers (subscriptions, balances and ledgers, licenses with
devices, coupon redemptions, live and sandbox keys) beside the seed's test data. A seeded
random driver (fixed seeds, so CI is repeatable) sends sequences of every client API call and
every staff screen action, done by test actors of every kind: a production customer's sandbox
key (its twin), a test account's key, a test staff persona's sandbox key, a production
admin's sandbox key, and a test staff persona on the screens; targets are drawn from both
worlds. After each sequence every production row of every table has the same fingerprint,
every production balance equals its ledger and no audit row is gone; then cleanup and
delete-all run and the same holds.

The screen driver leaves out the catalogue screens (tiers, packs, prices, margins, coupons,
campaigns, versions, custom roles): a test staff persona may administer the shared catalogue
(DESIGN.md §3), so those rows are not the production data this test pins; API test actors
may not, and for them the catalogue is fingerprinted too (less its test-lane counters).
"""
from __future__ import annotations

import random
import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.core import clock
from app.extensions import db
from app.users.models import User
from tests.support.worlds import (CHARGE, DEVICE, audit_count, balance_mismatches, fingerprint_device, make_coupon,
                                  production_customer, production_fingerprint, seed_catalogue)

SEEDS = (11, 23, 37)
STEPS = 45
CATALOGUE_SCREENS = re.compile(r"^/admin/(billing/(packs|tiers)|campaigns|coupons/(new|bulk-deactivate|<int:coupon_id>)|credits/pricing|"
                               r"licenses/versions|roles($|/<int:role_id>)|account|jobs|test-data/(delete-all|cleanup))")
TIERS = ("free", "pro", "pro_max", "enterprise_pro", "enterprise_max", "perpetual")


@pytest.fixture
def two_worlds(app, session, make_user, make_api_key, login_as, sudo):
    from app.sandbox import service as test_accounts

    seed_catalogue(session, with_test_data=True)
    customers = [production_customer(session, make_user, make_api_key, tier) for tier in ("pro", "free")]
    live_admin = make_user(roles=("admin",))
    persona = make_user(roles=("admin",), test=True)
    coupon = make_coupon(session, max_uses_per_user=1)
    credit_coupon = make_coupon(session, coupon_type="bonus_credits", discount_type="credits", discount_value="5000")
    tester = test_accounts.create_test_user(session, live_admin, tier="pro").user
    session.commit()
    keys = {
        "twin": customers[0].sandbox_key,
        "twin-free": customers[1].sandbox_key,
        "test-account": make_api_key(tester, "sandbox"),
        "persona-key": make_api_key(persona, "sandbox"),
        "live-admin-sandbox": make_api_key(live_admin, "development"),
    }
    screen = sudo(login_as(user=persona))
    return {"customers": customers, "live_admin": live_admin, "persona": persona, "tester": tester, "keys": keys,
            "screen": screen, "codes": [coupon.code, credit_coupon.code, "BF2025-30OFF", "WELCOME20"]}


class Pool(list):
    """Ids of one kind, drawn half from each world (production targets are what the guard is for)."""

    def __init__(self, production, test):
        super().__init__(production + test)
        self.production, self.test = production, test

    def draw(self, rng: random.Random):
        side = self.production if (rng.random() < 0.5 and self.production) or not self.test else self.test
        return rng.choice(side) if side else 1


def _ids(model, column="id"):
    column_ = getattr(model, column)
    return Pool(list(db.session.scalars(select(column_).where(model.is_test.is_(False)))),
                list(db.session.scalars(select(column_).where(model.is_test.is_(True)))))


def _pools() -> dict[str, list]:
    from app.billing.models import RefundRequest, Subscription
    from app.coupons.models import FraudDetection, Redemption
    from app.credits.models import CreditGrantRequest
    from app.licensing.models import Activation, License
    from app.notifications.models import OutboxMessage
    from app.rbac.models import PermissionOverride, RoleAssignment
    from app.sandbox.clock_models import TestClock
    from app.api.models import ApiKey, OAuthClient

    return {
        "user_id": _ids(User), "subscription_id": _ids(Subscription), "license_id": _ids(License),
        "activation_id": _ids(Activation), "key_id": _ids(ApiKey), "assignment_id": _ids(RoleAssignment),
        "override_id": _ids(PermissionOverride), "redemption_id": _ids(Redemption),
        "request_id": _ids(CreditGrantRequest), "refund_id": _ids(RefundRequest), "detection_id": _ids(FraudDetection),
        "message_id": _ids(OutboxMessage), "pk": _ids(OAuthClient), "clock_id": _ids(TestClock),
        "license_key": _ids(License, "license_key"),
        "decision": Pool(["approve", "approved"], ["reject", "declined"]),
    }


def _form(rng: random.Random, pools) -> dict:
    """Plausible values for the fields the staff forms use (unknown fields are ignored)."""
    return {"reason": "QA run by a test persona", "amount": str(rng.choice([1, 50, 1000, 100_000])),
            "credits": str(rng.choice([10, 5000])), "note": "QA", "expires_in_days": "3",
            "max_activations": str(rng.choice([1, 5])), "eligible_until_version": "3.0.0",
            "to_tier": rng.choice(TIERS), "tier": rng.choice(TIERS), "billing_cycle": "monthly",
            "role_id": str(rng.randint(1, 6)), "permission": "credits.grant", "effect": "grant",
            "key_type": rng.choice(["sandbox", "production"]), "name": "qa", "email": f"qa-{uuid.uuid4().hex[:6]}@x.test",
            "owner_email": "", "owner": str(pools["user_id"].draw(rng)), "user_id": str(pools["user_id"].draw(rng)),
            "fingerprint": fingerprint_device(str(rng.random())), "new_fingerprint": fingerprint_device("n"),
            "code": "WELCOME20", "ids": [str(pools["user_id"].draw(rng))], "count": "2", "prefix": "qa",
            "days": "3", "advance_days": "10", "action": "extend", "confirm": "DELETE", "refund_amount": "5.00"}


def _screen_routes(app) -> list:
    return [r for r in app.url_map.iter_rules()
            if "POST" in r.methods and r.rule.startswith("/admin") and not CATALOGUE_SCREENS.match(r.rule)]


def _screen_step(app, rng, world, pools):
    rule = rng.choice(_screen_routes(app))
    values = {}
    for name in rule.arguments:
        pool = pools.get("refund_id" if "refund" in rule.rule and name == "request_id" else name)
        values[name] = pool.draw(rng) if pool is not None else 1
    path = rule.rule
    for name, value in values.items():
        path = re.sub(rf"<(?:[a-z]+(?:\([^)]*\))?:)?{name}>", str(value), path)
    screen = world["screen"]
    response = screen.post(path, data=_form(rng, pools), headers=rng.choice([{}, {"HX-Request": "true"}]))
    with screen.session_transaction() as sess:  # a redirect carries the refusal as a flash message
        flashes = " ".join(str(m) for _, m in sess.pop("_flashes", []))
    refused = "Test mode" in response.get_data(as_text=True) + flashes
    return rule.rule, response.status_code, refused


def _api_step(client, rng, world, pools):
    key = world["keys"][rng.choice(sorted(world["keys"]))]
    user = pools["user_id"].draw(rng)
    license_key = pools["license_key"].draw(rng)
    fp = fingerprint_device(f"qa-{rng.randint(0, 5)}")
    code = rng.choice(world["codes"])
    calls = [
        ("GET", "/credits/balance", None),
        ("POST", "/credits/calculate-and-deduct", {**CHARGE, "request_id": uuid.uuid4().hex}),
        ("POST", "/credits/deduct", {"amount": rng.choice([1, 500, 100_000]), "deduction_type": "inference"}),
        ("POST", "/credits/monthly-cap", {"monthly_cap": rng.choice([None, 100])}),
        ("POST", "/licenses/activate", {"license_key": license_key, "fingerprint": fp, **DEVICE}),
        ("POST", "/licenses/deactivate", {"license_key": license_key, "fingerprint": fp}),
        ("POST", "/licenses/heartbeat", {"license_key": license_key, "fingerprint": fp}),
        ("POST", "/licenses/validate", {"license_key": license_key, "fingerprint": fp, "version": "1.2.0"}),
        ("POST", "/coupons/redeem", {"code": code, "amount": "99.99", "tier": "pro", "billing_cycle": "monthly"}),
        ("POST", "/subscription/change", {"to_tier": rng.choice(TIERS)}),
        ("POST", "/subscription/cancel", {}),
        # Paid purchases (issue 17): no Stripe here, so they end in a clear 4xx, never a production write.
        ("POST", "/subscription/subscribe", {"tier": rng.choice(TIERS), "payment_method": "pm_card_visa"}),
        ("POST", "/licenses/purchase", {"payment_method": "pm_card_visa"}),
        ("POST", "/licenses/upgrade", {"license_key": license_key, "target_version": "2.0.0"}),
        # The provisioning API: in test mode it makes test accounts, and patches only those.
        ("POST", "/customers", {"email": f"qa-{uuid.uuid4().hex[:8]}@example.com", "name": "QA"}),
        ("PATCH", f"/customers/{user}", {"name": "Renamed by QA"}),
        ("POST", "/admin/credits/allocate", {"user_id": user, "amount": 1_000_000, "reason": "QA grant"}),
        ("POST", "/admin/credits/bulk-allocate", {"user_ids": [user], "amount": 10, "reason": "QA bulk"}),
        ("POST", "/admin/test/users", {"tier": rng.choice(TIERS)}),
        ("PATCH", f"/admin/test/users/{user}", {"expires_in_days": 2}),
        ("DELETE", f"/admin/test/users/{user}", None),
        ("POST", "/admin/test/api-keys", {"user_id": user, "name": "qa"}),
        ("DELETE", f"/admin/test/api-keys/{pools['key_id'].draw(rng)}", None),
    ]
    method, path, body = rng.choice(calls)
    headers = {**key.headers, "Idempotency-Key": uuid.uuid4().hex}
    response = client.open(f"/api/v1{path}", method=method, json=body, headers=headers)
    code_ = (response.get_json(silent=True) or {}).get("error", {}).get("code")
    # No Stripe in this test: a purchase's gateway outage is a 503 (nothing charged, nothing written).
    assert response.status_code < 500 or code_ == "payment_gateway_unavailable", (path, response.get_json(silent=True))
    if response.status_code < 400 or code_ == "test_mode_not_allowed":
        assert response.headers.get("X-Test-Mode") == "true", path
    return path, response.status_code, code_ == "test_mode_not_allowed"


def _sure_refusal(client, world):
    """An admin's sandbox key granting credits to a production customer: refused by the guard."""
    key = world["keys"]["live-admin-sandbox"]
    target = world["customers"][0].user.id
    response = client.post("/api/v1/admin/credits/allocate", json={"user_id": target, "amount": 1_000_000,
                                                                   "reason": "QA grant"},
                           headers={**key.headers, "Idempotency-Key": uuid.uuid4().hex})
    code_ = (response.get_json(silent=True) or {}).get("error", {}).get("code")
    return "/admin/credits/allocate", response.status_code, code_ == "test_mode_not_allowed"


def _check(before, audits):
    assert production_fingerprint(db.session) == before
    assert balance_mismatches(db.session) == []
    assert audit_count(db.session) >= audits


@pytest.mark.parametrize("seed", SEEDS)
def test_no_test_actor_changes_a_production_row(app, client, two_worlds, seed):
    rng = random.Random(seed)
    before = production_fingerprint(db.session)
    audits = audit_count(db.session)
    outcomes = [_sure_refusal(client, two_worlds)]
    assert outcomes[0][2], outcomes  # the guard answers, whatever the seed draws next
    for _ in range(STEPS):
        pools = _pools()
        step = _screen_step(app, rng, two_worlds, pools) if rng.random() < 0.4 else _api_step(client, rng, two_worlds,
                                                                                               pools)
        outcomes.append(step)
        db.session.rollback()  # what a request left open is not ours to keep
        after = production_fingerprint(db.session)
        assert after == before, (step, sorted(k for k in after if after[k] != before[k]))
    _check(before, audits)
    # The driver did real work in the test world and met the guard: it is not a no-op.
    assert any(status < 300 for _, status, _ in outcomes)
    assert any(refused for _, _, refused in outcomes), "\n".join(map(str, outcomes))

    audits = audit_count(db.session)
    from app.sandbox import cleanup

    db.session.execute(update(User).where(User.is_test.is_(True), User.is_staff.is_(False),
                                          User.test_expires_at.is_not(None))
                       .values(test_expires_at=clock.now() - timedelta(minutes=1)))
    db.session.commit()
    cleanup.cleanup_expired(db.session, soft_delete=False)
    db.session.commit()
    _check(before, audits)
    cleanup.delete_all_test_data(db.session)
    db.session.commit()
    _check(before, audits)
