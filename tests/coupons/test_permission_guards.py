"""The coupon permissions that guarded nothing or only inside a service (issue 18):
coupons.delete deletes an unused coupon; campaigns.set_budget gates budget changes."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from app.core.audit import AuditEntry


def _audited(session, action: str) -> int:
    return len(session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all())


def test_campaign_budget_changes_need_set_budget(login_as, make_campaign):
    campaign = make_campaign(budget_limit=Decimal("100.00"))
    form = {"name": campaign.name, "campaign_type": campaign.campaign_type,
            "starts_at": campaign.starts_at.strftime("%Y-%m-%dT%H:%M"), "ends_at": campaign.ends_at.strftime("%Y-%m-%dT%H:%M"),
            "budget_limit": "500.00", "target_tier": "", "description": "", "reason": "bigger push"}
    assert login_as("ops").post(f"/admin/campaigns/{campaign.id}/edit", data=form).status_code == 403
    assert login_as("admin").post(f"/admin/campaigns/{campaign.id}/edit", data=form).status_code == 302


def test_coupons_delete_only_unused_coupons(login_as, make_coupon, session):
    unused, used = make_coupon(code="TYPO10"), make_coupon(code="USED10")
    used.uses_count = 1
    session.commit()
    assert login_as("ops").post(f"/admin/coupons/{unused.id}/delete", data={"reason": "typo"}).status_code == 403
    admin = login_as("admin")
    refused = admin.post(f"/admin/coupons/{used.id}/delete", data={"reason": "cleanup"})
    assert refused.status_code == 409 and "deactivate it instead" in refused.get_data(as_text=True)
    assert admin.post(f"/admin/coupons/{unused.id}/delete", data={"reason": "typo in the code"}).status_code == 302
    from app.coupons.models import Coupon

    assert session.get(Coupon, unused.id) is None and _audited(session, "coupons.deleted") == 1


def test_bulk_deactivate_ticked_coupons(login_as, make_coupon, session):
    from app.coupons.models import Coupon

    a, b, keep = make_coupon(code="LEAK1"), make_coupon(code="LEAK2"), make_coupon(code="KEEP1")
    session.commit()
    assert login_as("support").post("/admin/coupons/bulk-deactivate", data={"ids": [a.id], "reason": "leak"}).status_code == 403
    ops = login_as("ops")
    page = ops.get("/admin/coupons").get_data(as_text=True)
    assert 'form="bulk-coupons" name="ids"' in page
    refused = ops.post("/admin/coupons/bulk-deactivate", data={"ids": [a.id, b.id], "reason": ""})
    assert refused.status_code == 422 and session.get(Coupon, a.id).is_active
    done = ops.post("/admin/coupons/bulk-deactivate", data={"ids": [a.id, b.id], "reason": "codes leaked on a forum"})
    assert done.status_code == 302
    session.expire_all()
    assert (a.is_active, b.is_active, keep.is_active) == (False, False, True)
    assert _audited(session, "coupons.deactivated") == 2
