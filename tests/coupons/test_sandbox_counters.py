"""A test-data cleanup recounts the test lane of the coupons and campaigns that stay."""
from decimal import Decimal

from sqlalchemy import select

from app.core.audit import AuditEntry
from app.coupons import redemption
from app.sandbox import cleanup


def test_delete_all_gives_the_test_lane_back_and_leaves_the_live_lane(session, make_user, make_campaign,
                                                                      make_coupon, attempt, coupon_clock):
    campaign = make_campaign(budget_limit="100.00")
    coupon = make_coupon(discount_type="fixed_amount", discount_value="10.00", max_uses=3, campaign=campaign)
    live = redemption.redeem(session, coupon, attempt(make_user()))
    for _ in range(2):
        redemption.redeem(session, coupon, attempt(make_user(test=True), is_test=True))
    session.commit()
    assert (coupon.uses_count, coupon.test_uses_count, campaign.spent, campaign.test_spent) == \
        (1, 2, Decimal("10.00"), Decimal("20.00"))
    stamped = coupon.updated_at

    run = cleanup.delete_all_test_data(session)

    session.refresh(coupon), session.refresh(campaign)
    assert (coupon.uses_count, coupon.test_uses_count, campaign.spent, campaign.test_spent) == \
        (1, 0, Decimal("10.00"), Decimal("0.00"))
    assert coupon.updated_at == stamped and session.get(type(live), live.id) is not None
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "testdata.delete_all")).one()
    assert entry.after["recounted"] == {"coupon_test_usage": {"coupons": 1, "campaigns": 1}}
    assert run.deleted["coupon_redemptions"] == 2
    # QA can use the whole test lane again: three more test redemptions fit under max_uses=3.
    statuses = [redemption.redeem(session, coupon, attempt(make_user(test=True), is_test=True)).status
                for _ in range(3)]
    assert statuses == ["success"] * 3


def test_a_recount_with_nothing_to_correct_changes_nothing(session, make_coupon, make_user, attempt, coupon_clock):
    from app.coupons import sandbox_counters as test_usage

    coupon = make_coupon()
    redemption.redeem(session, coupon, attempt(make_user(test=True), is_test=True))
    session.commit()
    assert test_usage.recount(session) == {"coupons": 0, "campaigns": 0}
    session.refresh(coupon)
    assert coupon.test_uses_count == 1
