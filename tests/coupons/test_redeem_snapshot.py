"""The API's redeem reads the coupon (its campaign, its rules) and the key's owner in one
compiled statement into frozen values (coupons/snapshot.py), not ORM objects: it answers as
the ORM coupon does through the same validation service, on PostgreSQL and SQLite, and on a
connection of its own (as a server runs it) a plain successful redeem makes no ORM Session."""
from __future__ import annotations

import traceback
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from app.coupons import rules, validation
from app.coupons.models import Coupon
from app.extensions import db
from tests.coupons.conftest import NOW
from tests.coupons.test_api import BODY, black_friday, live, post  # noqa: F401 (fixtures)


def _orm_answer(coupon_id: int, user, body: dict) -> dict:
    """What validation.check says for the ORM coupon (the staff preview's way)."""
    db.session.expire_all()
    coupon = db.session.get(Coupon, coupon_id)
    attempt = validation.build_attempt(db.session, coupon, user, {k: v for k, v in body.items() if k != "code"},
                                       is_test=False)
    return validation.check(db.session, coupon, attempt).as_dict()


@pytest.mark.parametrize("case", ["email_rule", "inactive_rule", "campaign_inactive", "campaign_ended",
                                  "not_yet_valid", "below_minimum", "tier"])
def test_the_snapshot_answers_as_the_orm_coupon(client, live, make_coupon, make_campaign, coupon_clock, case):
    campaign = make_campaign(name=f"Snap {case}", budget_limit="500.00",
                             is_active=case != "campaign_inactive",
                             ends_at=NOW - timedelta(hours=2) if case == "campaign_ended" else NOW + timedelta(days=3),
                             starts_at=NOW - timedelta(days=5))
    coupon = make_coupon(code=f"SNAP-{case.upper().replace('_', '-')}", campaign=campaign, min_purchase_amount="50.00",
                         tier_eligibility=["pro"] if case != "tier" else ["enterprise_max"],
                         valid_from=NOW + timedelta(hours=1) if case == "not_yet_valid" else NOW - timedelta(days=1))
    if case in ("email_rule", "inactive_rule"):
        rule = rules.add(db.session, None, coupon, "specific_email_domain", {"domains": ["partner.org"]})
        rule.is_active = case != "inactive_rule"
    db.session.commit()
    body = {**BODY, "code": coupon.code.lower(), "amount": "20.00" if case == "below_minimum" else "99.99"}
    expected = _orm_answer(coupon.id, live.user, body)
    db.session.rollback()
    response = post(client, "redeem", live, body, idem=f"snap-{case}")
    assert response.status_code == 201, response.json
    red = response.json["redemption"]
    assert red["code"] == coupon.code
    if expected["valid"]:
        assert (red["redemption_status"], red["discount"], red["final_amount"]) == (
            "success", expected["discount"], expected["final_amount"]), (red, expected)
    else:
        assert (red["redemption_status"], red["failure_code"], red["message"]) == (
            "failed", expected["code"], expected["message"]), (red, expected)
    assert expected["valid"] == (case == "inactive_rule"), expected  # each case tests what it names


def test_an_unknown_code_is_404_as_before(client, live, black_friday):
    response = post(client, "redeem", live, {**BODY, "code": "NO-SUCH-CODE"}, idem="snap-404")
    assert response.status_code == 404 and response.json["error"]["code"] == "coupon_not_found"
    assert response.json["error"]["param"] == "code"


def test_a_redeem_moves_the_counters_of_an_orm_coupon_the_session_holds(client, live, black_friday):
    assert black_friday.uses_count == 0 and black_friday.campaign.spent == 0
    response = post(client, "redeem", live, BODY, idem="snap-counters")
    assert response.json["redemption"]["redemption_status"] == "success"
    assert black_friday.uses_count == 1 and black_friday.campaign.spent > 0  # re-read, not the stale values


@pytest.mark.postgres
def test_a_plain_successful_redeem_on_its_own_connection_makes_no_orm_session(app, real_db, live, black_friday,
                                                                               monkeypatch):
    from app.core import pg
    from app.coupons.models import Redemption

    made = []
    real_session = pg.BoundSession.__init__

    def making(self, *args, **kwargs):
        made.append([f.name for f in traceback.extract_stack()])
        real_session(self, *args, **kwargs)

    monkeypatch.setattr(pg.BoundSession, "__init__", making)

    def call():  # from a thread with no app context of the test: the server's way (pg.transaction)
        return app.test_client().post("/api/v1/coupons/redeem", json=BODY, headers={
            **live.headers, "Idempotency-Key": "snap-own", "User-Agent": "RephloDesktop/2.1"})

    with ThreadPoolExecutor(1) as pool:
        response = pool.submit(call).result()
    assert response.status_code == 201 and response.json["redemption"]["redemption_status"] == "success"
    # (without Redis, as here, the request counter row is written after the answer, through the ORM)
    assert [stack for stack in made if "_after" not in stack] == []
    real_db.session.rollback()
    row = real_db.session.get(Redemption, response.json["redemption"]["id"])
    assert row.status == "success" and row.user_id == live.user.id and row.coupon.code == "BF2025-30OFF"
    # the answer, made from the inserted values (hot.NewRedemption), says what the stored row holds
    from app.coupons.api import RedemptionAnswer, redemption_dict

    stored = RedemptionAnswer.model_validate({"redemption": redemption_dict(row, row.coupon.code)})
    assert stored.model_dump(mode="json") == response.json
    assert real_db.session.get(Coupon, black_friday.id).uses_count == 1
