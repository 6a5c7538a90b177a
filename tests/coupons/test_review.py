"""The fraud review queue: dismiss, confirm (reverses the redemption) and suspend, all audited."""
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.core.audit import AuditEntry
from app.coupons import redemption
from app.coupons.models import FraudDetection
from tests.coupons.conftest import NOW


@pytest.fixture
def flagged(session, make_user, make_campaign, make_coupon, attempt):
    """A customer whose third IP in 15 minutes raised an ip_switching flag on a successful redemption."""
    customer = make_user("switcher@example.com")
    campaign = make_campaign(budget_limit="500.00")
    coupon = make_coupon(campaign=campaign, max_uses_per_user=None, code="SWITCH20")
    for minutes, ip in ((12, "203.0.113.1"), (6, "198.51.100.1"), (0, "192.0.2.1")):
        row = redemption.redeem(session, coupon, attempt(customer, at=NOW - timedelta(minutes=minutes), ip_address=ip))
    detection = session.scalar(select(FraudDetection).where(FraudDetection.detection_type == "ip_switching"))
    assert detection.redemption_id == row.id and row.status == "success"
    session.commit()
    return detection


def test_queue_lists_open_flags_production_only(login_as, flagged, session, make_user):
    admin = login_as("admin")
    page = admin.get("/admin/fraud").get_data(as_text=True)
    assert "IP switching" in page and "switcher@example.com" in page and "SWITCH20" in page
    # details read as a list, not JSON (issue 18)
    assert "<dt>Ip addresses</dt><dd>203.0.113.1, 198.51.100.1, 192.0.2.1</dd>" in page and '"ip_addresses"' not in page
    flagged.is_test = True
    session.commit()
    assert "switcher@example.com" not in admin.get("/admin/fraud").get_data(as_text=True)
    assert "switcher@example.com" in admin.get("/admin/fraud?include_test=1").get_data(as_text=True)


def test_dismiss(login_as, flagged, session):
    admin = login_as("admin")
    assert admin.post(f"/admin/fraud/{flagged.id}/review", data={"action": "dismiss",
                                                                 "resolution": "Travelling, VPN"}).status_code == 302
    session.expire_all()
    assert (flagged.review_action, flagged.resolution, flagged.reviewed_by_id) == (
        "dismissed", "Travelling, VPN", admin.user.id)
    assert flagged.redemption.status == "success"
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "coupons.fraud_reviewed"))
    assert entry.reason == "Travelling, VPN" and entry.after["review_action"] == "dismissed"
    assert "switcher@example.com" not in admin.get("/admin/fraud").get_data(as_text=True)
    assert "Travelling, VPN" in admin.get("/admin/fraud?show=reviewed").get_data(as_text=True)
    again = admin.post(f"/admin/fraud/{flagged.id}/review", data={"action": "confirm", "resolution": "x"})
    assert again.status_code == 302
    session.expire_all()
    assert flagged.review_action == "dismissed"


def test_confirm_reverses_the_redemption(login_as, flagged, session):
    campaign = flagged.coupon.campaign
    spent = campaign.spent
    login_as("admin").post(f"/admin/fraud/{flagged.id}/review", data={"action": "confirm", "resolution": "Shared code"})
    session.expire_all()
    assert flagged.review_action == "confirmed"
    assert flagged.redemption.status == "reversed"
    assert flagged.redemption.reversal_reason == "Fraud confirmed (ip_switching): Shared code"
    assert campaign.spent == spent - Decimal("20.00")
    assert flagged.user.status == "active"


def test_suspend_the_account(login_as, flagged, session):
    version = flagged.user.session_version
    login_as("admin").post(f"/admin/fraud/{flagged.id}/review", data={"action": "suspend", "resolution": "Ring"})
    session.expire_all()
    assert flagged.review_action == "suspended"
    assert flagged.user.status == "suspended" and flagged.user.session_version == version + 1
    actions = set(session.scalars(select(AuditEntry.action)))
    assert {"users.suspended", "coupons.fraud_reviewed", "coupons.redemption_reversed"} <= actions


def test_review_needs_a_note_and_the_permission(login_as, flagged, session):
    admin = login_as("admin")
    admin.post(f"/admin/fraud/{flagged.id}/review", data={"action": "dismiss", "resolution": ""})
    session.expire_all()
    assert flagged.reviewed_at is None
    assert login_as("support").post(f"/admin/fraud/{flagged.id}/review",
                                    data={"action": "dismiss", "resolution": "x"}).status_code == 403
    ops = login_as("ops")  # approve_redemption and users.suspend
    assert ops.get("/admin/fraud").status_code == 200


def test_suspend_needs_users_suspend(session, make_user, flagged):
    from app.core.errors import PermissionDenied
    from app.coupons import review

    with pytest.raises(PermissionDenied):
        review.review(session, make_user(roles=("admin",)), flagged, "suspend", "ring", may_suspend=False)
