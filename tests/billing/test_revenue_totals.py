"""Money collected per day: the nightly totals (production only, rebuilt for the last days so
a charge that succeeds late is counted), today and unbuilt days read live."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

from sqlalchemy import select

from app.billing import jobs, metrics
from app.billing.models import PaymentTransaction, RevenueDailyTotal
from app.core.jobs import PERIODIC


def pay(session, user, amount, when, *, kind="charge", status="succeeded", test=False):
    row = PaymentTransaction(user_id=user.id, kind=kind, amount=Decimal(amount), status=status, is_test=test,
                             idempotency_key=uuid.uuid4().hex, created_at=when)
    session.add(row)
    session.flush()
    return row


def test_a_day_total_is_production_only_and_a_rebuild_counts_a_late_success(session, make_user, frozen_clock):
    user, tester = make_user(), make_user(test=True)
    late = pay(session, user, "49.99", datetime(2025, 11, 7, 23, 59, tzinfo=timezone.utc), status="processing")
    pay(session, user, "99.99", datetime(2025, 11, 7, 8, tzinfo=timezone.utc))
    pay(session, user, "5.00", datetime(2025, 11, 7, 9, tzinfo=timezone.utc), kind="refund")
    pay(session, user, "7.00", datetime(2025, 11, 7, 9, tzinfo=timezone.utc), status="failed")
    pay(session, tester, "500.00", datetime(2025, 11, 7, 9, tzinfo=timezone.utc), test=True)
    pay(session, user, "1.00", datetime(2025, 11, 8, 0, 0, tzinfo=timezone.utc))  # the next day
    assert metrics.build_revenue_day(session, date(2025, 11, 7)) == {
        "day": "2025-11-07", "charges": "99.99", "refunds": "5.00"}
    late.status = "succeeded"  # its webhook came the next morning
    assert metrics.build_revenue_day(session, date(2025, 11, 7))["charges"] == "149.98"
    assert session.scalars(select(RevenueDailyTotal)).all()[0].charges == Decimal("149.98")


def test_series_mixes_totals_live_days_and_test_payments(session, make_user, frozen_clock):
    user, tester = make_user(), make_user(test=True)
    pay(session, user, "10.00", datetime(2025, 11, 7, 8, tzinfo=timezone.utc))
    metrics.build_revenue_day(session, date(2025, 11, 7))
    pay(session, user, "20.00", datetime(2025, 11, 8, 8, tzinfo=timezone.utc))  # never built: live
    pay(session, user, "30.00", datetime(2025, 11, 9, 8, tzinfo=timezone.utc))
    metrics.build_revenue_day(session, date(2025, 11, 9))  # today: ignored, read live
    pay(session, user, "1.50", datetime(2025, 11, 9, 11, tzinfo=timezone.utc))
    pay(session, tester, "4.00", datetime(2025, 11, 7, 9, tzinfo=timezone.utc), test=True)

    def series(include_test):
        return {d["date"]: d["net"] for d in metrics.net_collected_by_day(
            session, date(2025, 11, 6), date(2025, 11, 9), include_test)}

    assert series(False) == {"2025-11-06": Decimal("0.00"), "2025-11-07": Decimal("10.00"),
                             "2025-11-08": Decimal("20.00"), "2025-11-09": Decimal("31.50")}
    assert series(True)["2025-11-07"] == Decimal("14.00")


def test_the_nightly_job_builds_the_last_three_days(session, make_user, frozen_clock):
    user = make_user()
    pay(session, user, "12.00", datetime(2025, 11, 6, 8, tzinfo=timezone.utc))
    assert "billing-daily-revenue" in PERIODIC
    result = jobs.daily_revenue(None)
    assert [d["day"] for d in result["days"]] == ["2025-11-06", "2025-11-07", "2025-11-08"]
    assert result["days"][0]["charges"] == "12.00"
