"""The staff list of coupon redemptions: sortable columns, filters in the URL, streamed CSV."""
from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from app.coupons import redemption_list
from app.coupons.models import Coupon, Redemption


def _csv(response) -> list[dict]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def _ids(body: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', body)]


@pytest.fixture
def redemptions(session, make_user):
    """SPRING redeemed by ann (1 Nov, 10.00 off), bob (2 Nov, 2.50 off, failed) and cid (3 Nov, 25.00 off); WINTER by a tester."""
    start = datetime(2025, 10, 1, tzinfo=UTC)
    spring, winter = (Coupon(code=c, coupon_type="discount", discount_type="fixed_amount", discount_value=Decimal(5),
                             valid_from=start, valid_until=start + timedelta(days=90)) for c in ("SPRING", "WINTER"))
    session.add_all([spring, winter])
    session.flush()
    made = {}
    for day, (email, coupon, off, status, test) in enumerate([("ann@example.com", spring, "10.00", "success", False),
                                                              ("bob@example.com", spring, "2.50", "failed", False),
                                                              ("cid@example.com", spring, "25.00", "success", False),
                                                              ("tess@example.com", winter, "1.00", "success", True)],
                                                             start=1):
        user = make_user(email, staff=False, test=test)
        row = Redemption(coupon_id=coupon.id, user_id=user.id, status=status, original_amount=Decimal("50.00"),
                         discount_amount=Decimal(off), final_amount=Decimal("50.00") - Decimal(off), is_test=test,
                         created_at=datetime(2025, 11, day, 8, 0, tzinfo=UTC))
        session.add(row)
        session.flush()
        made[email[:3]] = row.id
    session.commit()
    return made


def test_redemptions_sort_filter_and_export(login_as, redemptions):
    client = login_as("support")
    ann, bob, cid = redemptions["ann"], redemptions["bob"], redemptions["cid"]
    assert _ids(client.get("/admin/coupons/redemptions").get_data(as_text=True)) == [cid, bob, ann]
    body = client.get("/admin/coupons/redemptions?sort=discount").get_data(as_text=True)
    assert _ids(body) == [bob, ann, cid] and 'aria-sort="ascending"' in body and "$25.00" in body
    assert _ids(client.get("/admin/coupons/redemptions?sort=-discount").get_data(as_text=True)) == [cid, ann, bob]
    ok = client.get("/admin/coupons/redemptions?status=success&sort=-discount").get_data(as_text=True)
    assert _ids(ok) == [cid, ann] and 'name="sort" value="-discount"' in ok
    for bad in ("bogus", "-coupon_id", ""):
        response = client.get(f"/admin/coupons/redemptions?sort={bad}")
        assert response.status_code == 200 and _ids(response.get_data(as_text=True)) == [cid, bob, ann]
    rows = _csv(client.get("/admin/coupons/redemptions/export.csv?status=success&sort=discount"))
    assert list(rows[0]) == redemption_list.HEADER
    assert [(r["customer"], r["discount_amount"], r["final_amount"]) for r in rows] == [
        ("ann@example.com", "10.00", "40.00"), ("cid@example.com", "25.00", "25.00")]
    assert rows[0]["created_at"] == "2025-11-01T08:00:00+00:00" and rows[0]["code"] == "SPRING"
    tests_only = _csv(client.get("/admin/coupons/redemptions/export.csv?include_test=only&q=winter"))
    assert [(r["customer"], r["world"]) for r in tests_only] == [("tess@example.com", "test")]
    assert login_as().get("/admin/coupons/redemptions/export.csv").status_code == 403
