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
