"""Staff apply a coupon to a subscription from its page (billing's screen, coupons' form)."""
from decimal import Decimal

from sqlalchemy import select

from app.core.audit import AuditEntry
from app.coupons.models import Redemption


def test_apply_a_coupon_from_the_subscription_page(login_as, session, make_subscription, make_coupon,
                                                   make_campaign, coupon_clock):
    from app.billing.invoices import find_period_invoice

    sub = make_subscription(invoice=True)
    coupon = make_coupon(code="SORRY20", campaign=make_campaign())
    session.commit()
    admin = login_as("admin")
    page = admin.get(f"/admin/billing/subscriptions/{sub.id}")
    assert page.status_code == 200 and b"Apply coupon" in page.data
    response = admin.post(f"/admin/coupons/subscriptions/{sub.id}/apply", data={"code": "sorry20",
                                                                                "reason": "Outage credit"})
    assert response.status_code == 302 and response.location.endswith(f"/admin/billing/subscriptions/{sub.id}#coupons")
    row = session.scalar(select(Redemption).where(Redemption.coupon_id == coupon.id))
    assert (row.status, row.discount_amount, row.applied_by_id) == ("success", Decimal("20.00"), admin.user.id)
    assert find_period_invoice(session, sub.id, sub.current_period_start).total == Decimal("79.99")
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "coupons.applied_to_subscription"))
    assert entry.reason == "Outage credit" and entry.after["code"] == "SORRY20"
    page = admin.get(f"/admin/billing/subscriptions/{sub.id}").get_data(as_text=True)
    assert "SORRY20" in page and "$20.00 off" in page


def test_apply_refusals_change_nothing(login_as, session, make_subscription, make_coupon, coupon_clock):
    sub = make_subscription(invoice=True)
    make_coupon(code="ENTONLY", tier_eligibility=["enterprise_pro"])
    session.commit()
    admin = login_as("admin")
    admin.post(f"/admin/coupons/subscriptions/{sub.id}/apply", data={"code": "ENTONLY", "reason": ""})
    admin.post(f"/admin/coupons/subscriptions/{sub.id}/apply", data={"code": "NOSUCH", "reason": "x"})
    assert session.scalar(select(Redemption)) is None
    admin.post(f"/admin/coupons/subscriptions/{sub.id}/apply", data={"code": "ENTONLY", "reason": "try"},
               follow_redirects=False)
    row = session.scalar(select(Redemption))
    assert (row.status, row.failure_code) == ("failed", "tier_not_eligible")
    page = admin.get(f"/admin/billing/subscriptions/{sub.id}").get_data(as_text=True)
    assert "tier_not_eligible" in page
    assert login_as("analyst").post(f"/admin/coupons/subscriptions/{sub.id}/apply",
                                    data={"code": "ENTONLY", "reason": "x"}).status_code == 403
