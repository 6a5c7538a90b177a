"""Limits hold exactly under real parallel redemptions on PostgreSQL (threads, real commits)."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.core import clock

pytestmark = pytest.mark.postgres


def _setup(app, real_db, users: int, **coupon_values):
    from app.coupons.models import Campaign, Coupon
    from app.users.models import User

    now = clock.now()
    campaign = Campaign(name="Load test", campaign_type="promotional", starts_at=now - timedelta(days=1),
                        ends_at=now + timedelta(days=1), budget_limit=Decimal(coupon_values.pop("budget", "100000.00")))
    real_db.session.add(campaign)
    real_db.session.flush()
    coupon = Coupon(code=coupon_values.pop("code"), coupon_type="fixed_amount_discount", discount_type="fixed_amount",
                    discount_value=Decimal("10.00"), min_purchase_amount=Decimal("0"), tier_eligibility=[],
                    billing_cycles=[], valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=1),
                    campaign_id=campaign.id, **coupon_values)
    people = [User(email=f"racer{i}@example.com", first_name="R", last_name=str(i)) for i in range(users)]
    real_db.session.add_all([coupon, *people])
    real_db.session.commit()
    return coupon.id, campaign.id, [u.id for u in people]


def _redeem_all(app, coupon_id: int, jobs: list[tuple[int, str]]) -> list[str]:
    """Run one redemption per job (user id, IP) in parallel threads, each with its own session."""
    from app.coupons import redemption
    from app.coupons.models import Coupon
    from app.coupons.validation import Attempt
    from app.extensions import db
    from app.users.models import User

    start = threading.Event()

    def one(job):
        user_id, ip = job
        with app.app_context():
            try:
                coupon = db.session.get(Coupon, coupon_id)
                user = db.session.get(User, user_id)
                start.wait(10)
                row = redemption.redeem(db.session, coupon, Attempt(user=user, amount=Decimal("50.00"), tier="pro",
                                                                    billing_cycle="monthly", ip_address=ip,
                                                                    user_agent="Mozilla/5.0"))
                outcome = row.failure_code or row.status
                db.session.commit()
                return outcome
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=12) as pool:  # below the engine's pool of 15 connections
        futures = [pool.submit(one, job) for job in jobs]
        time.sleep(0.3)  # let the first wave load its rows, then release them together
        start.set()
        return [f.result() for f in futures]


def test_100_parallel_redemptions_of_a_coupon_with_10_uses_left(app, real_db):
    from app.coupons.models import Campaign, Coupon, Redemption

    coupon_id, campaign_id, users = _setup(app, real_db, 100, code="RACE10", max_uses=50, uses_count=40,
                                           max_uses_per_user=1)
    outcomes = _redeem_all(app, coupon_id, [(u, f"10.0.{i // 250}.{i % 250}") for i, u in enumerate(users)])
    assert outcomes.count("success") == 10
    assert outcomes.count("max_uses_reached") == 90
    real_db.session.expire_all()
    assert real_db.session.get(Coupon, coupon_id).uses_count == 50
    assert real_db.session.get(Campaign, campaign_id).spent == Decimal("100.00")
    assert real_db.session.scalar(select(func.count()).select_from(Redemption)
                                  .where(Redemption.status == "success")) == 10


def test_a_user_racing_two_redemptions_of_a_one_per_user_coupon_gets_one(app, real_db):
    from app.coupons.models import CouponUserUse, Redemption

    coupon_id, _, users = _setup(app, real_db, 10, code="ONEEACH", max_uses=None, max_uses_per_user=1)
    jobs = [(u, f"10.1.0.{i}") for i, u in enumerate(users)] * 2  # every user twice, at once
    outcomes = _redeem_all(app, coupon_id, jobs)
    assert outcomes.count("success") == 10
    assert outcomes.count("per_user_limit_reached") == 10
    per_user = real_db.session.execute(select(Redemption.user_id, func.count()).where(Redemption.status == "success")
                                       .group_by(Redemption.user_id)).all()
    assert sorted(n for _, n in per_user) == [1] * 10
    assert set(real_db.session.scalars(select(CouponUserUse.uses))) == {1}


def test_parallel_redemptions_never_overspend_the_campaign_budget(app, real_db):
    from app.coupons.models import Campaign

    coupon_id, campaign_id, users = _setup(app, real_db, 60, code="BUDGET7", budget="70.00", max_uses=None,
                                           max_uses_per_user=1)
    outcomes = _redeem_all(app, coupon_id, [(u, f"10.2.0.{i}") for i, u in enumerate(users)])
    assert outcomes.count("success") == 7
    assert outcomes.count("campaign_budget_exhausted") == 53
    real_db.session.expire_all()
    assert real_db.session.get(Campaign, campaign_id).spent == Decimal("70.00")


def test_live_and_test_racers_on_one_hot_coupon_keep_every_limit_and_counter_equal_to_rows(app, real_db):
    """Issue 19: 40 live customers each racing two attempts at a coupon with 12 uses, while 10
    test accounts (in test mode, the test lane) race too: exactly 12 live successes, one per
    customer at most, and every counter equal to the rows behind it, in each lane."""
    from app.core import testmode
    from app.coupons import redemption
    from app.coupons.models import Campaign, Coupon, CouponUserUse, Redemption
    from app.coupons.validation import Attempt
    from app.extensions import db
    from app.users.models import User

    coupon_id, campaign_id, live = _setup(app, real_db, 40, code="HOT12", max_uses=12, max_uses_per_user=1)
    testers = [User(email=f"tester{i}@example.com", first_name="T", last_name=str(i), is_test=True) for i in range(10)]
    real_db.session.add_all(testers)
    real_db.session.commit()
    jobs = [(u, False) for u in live] * 2 + [(t.id, True) for t in testers]
    start = threading.Event()

    def one(job):
        user_id, is_test = job
        with app.app_context():
            try:
                if is_test:
                    testmode.activate()
                coupon, user = db.session.get(Coupon, coupon_id), db.session.get(User, user_id)
                start.wait(10)
                row = redemption.redeem(db.session, coupon, Attempt(
                    user=user, amount=Decimal("50.00"), is_test=is_test, ip_address=f"10.3.{user_id % 250}.1"))
                db.session.commit()
                return is_test, row.failure_code or row.status
            finally:
                testmode.clear()
                db.session.remove()

    with ThreadPoolExecutor(max_workers=12) as pool:
        futures = [pool.submit(one, job) for job in jobs]
        time.sleep(0.3)
        start.set()
        outcomes = [f.result() for f in futures]

    live_outcomes = [o for t, o in outcomes if not t]
    assert live_outcomes.count("success") == 12
    assert set(live_outcomes) <= {"success", "max_uses_reached", "per_user_limit_reached"}
    assert [o for t, o in outcomes if t] == ["success"] * 10  # the test lane has its own 12 uses
    real_db.session.expire_all()
    coupon, campaign = real_db.session.get(Coupon, coupon_id), real_db.session.get(Campaign, campaign_id)
    rows = real_db.session.execute(select(Redemption.is_test, func.count(), func.sum(Redemption.budget_cost))
                                   .where(Redemption.status == "success").group_by(Redemption.is_test)).all()
    held = {is_test: (n, spent) for is_test, n, spent in rows}
    assert (coupon.uses_count, campaign.spent) == held[False] == (12, Decimal("120.00"))
    assert (coupon.test_uses_count, campaign.test_spent) == held[True] == (10, Decimal("100.00"))
    per_user = real_db.session.execute(select(func.count()).select_from(Redemption).where(
        Redemption.status == "success").group_by(Redemption.user_id)).scalars().all()
    assert max(per_user) == 1
    # The per-user counters hold exactly the successes: a refused attempt gave its use back.
    assert real_db.session.scalar(select(func.sum(CouponUserUse.uses))) == 22
    assert len(live_outcomes) == 80 and real_db.session.scalar(
        select(func.count()).select_from(Redemption).where(Redemption.is_test.is_(False))) == 80
