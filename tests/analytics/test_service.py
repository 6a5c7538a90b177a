"""Each dashboard figure equals the one counted by hand from the seeded month (tests/analytics/
conftest.py): production only by default, test rows added with "include test data"."""
from __future__ import annotations

from decimal import Decimal

import pytest

from app.analytics import service
from app.rbac.catalogue import ALL_PERMISSIONS
from tests.analytics.conftest import TODAY


def everything(permission: str) -> bool:
    return permission in ALL_PERMISSIONS


def figures_of(board) -> dict:
    f = board.figures
    return {
        "new_users_today": f["new_users"]["today"], "new_users_30d": f["new_users"]["window"],
        "active_subscriptions": f["subscriptions"]["total"],
        "active": {t["name"]: t["count"] for t in f["subscriptions"]["by_tier"] if t["count"]},
        "mrr": f["revenue"]["mrr"], "revenue_30d": f["revenue"]["collected"],
        "failed_payments": f["failed_payments"]["count"],
        "credits_issued_30d": f["credits"]["issued"], "credits_spent_30d": f["credits"]["spent"],
        "top_models": [m["model"] for m in f["top_models"]["models"]],
        "license_activations_30d": f["licenses"]["activations"],
        "coupon_redemptions_30d": f["coupons"]["redemptions"], "fraud_flags_open": f["fraud"]["open"],
    }


@pytest.mark.parametrize("include_test", [False, True], ids=["production", "with-test-data"])
def test_every_figure_matches_the_seeded_month(session, month_of_activity, include_test):
    board = service.dashboard(session, everything, include_test=include_test)
    assert (board.start.isoformat(), board.today) == ("2025-10-11", TODAY)
    assert figures_of(board) == month_of_activity[include_test]


def test_daily_series_put_each_row_on_its_day(session, month_of_activity):
    f = service.dashboard(session, everything).figures
    users = {d["date"]: d["count"] for d in f["new_users"]["by_day"]}
    assert len(users) == 30 and (users["2025-10-11"], users["2025-10-20"], users["2025-11-09"]) == (1, 3, 2)
    credits = {d["date"]: (d["issued"], d["spent"]) for d in f["credits"]["by_day"]}
    assert len(credits) == 30
    # 10-20 and 11-08 from the daily totals, 10-25 from the ledger (never built), today live
    # although a summary was built for it before its last rows.
    assert (credits["2025-10-20"], credits["2025-10-25"], credits["2025-11-08"], credits["2025-11-09"]) == (
        (1000, 100), (0, 5), (0, 40), (500, 7))
    money = {d["date"]: d["net"] for d in f["revenue"]["by_day"]}
    assert (money["2025-11-09"], money["2025-11-01"], money["2025-10-15"], money["2025-11-08"]) == (
        Decimal("99.99"), Decimal("-10.00"), Decimal("299.99"), Decimal("0.00"))
    top = f["top_models"]["models"][0]
    assert (top["model"], top["requests"], top["vendor_cost_usd"]) == ("claude-3.5-sonnet", 1, "0.050000")


def test_after_deleting_all_test_data_every_figure_is_the_production_one(session, month_of_activity):
    """The credits daily totals never store a test row (the test share comes from the per-user
    summaries, which go with their test users), so nothing test outlives the cleanup."""
    from sqlalchemy import select

    from app.credits.models import CreditDailyTotal
    from app.sandbox import cleanup

    totals = {r.day.isoformat(): (r.credits_allocated, r.credits_deducted) for r in session.scalars(select(CreditDailyTotal))}
    assert totals == {"2025-10-20": (1000, 100), "2025-11-08": (0, 40), "2025-11-09": (500, 0)}
    cleanup.delete_all_test_data(session)
    for include_test in (True, False):
        assert figures_of(service.dashboard(session, everything, include_test=include_test)) == month_of_activity[False]


def test_a_rebuilt_day_replaces_its_totals(session, month_of_activity):
    from datetime import date

    from app.credits import summaries

    before = summaries.daily_totals(session, date(2025, 10, 11), TODAY)
    summaries.build_day(session, date(2025, 10, 20))
    summaries.build_day(session, date(2025, 10, 25))  # now built: the same figure, from the totals
    after = summaries.daily_totals(session, date(2025, 10, 11), TODAY)
    assert (after.by_day, sorted(after.by_model, key=lambda m: m["model"])) == (
        before.by_day, sorted(before.by_model, key=lambda m: m["model"]))


ROLE_CARDS = {
    "super_admin": [c.name for c in service.CARDS],
    "admin": [c.name for c in service.CARDS],
    "ops": [c.name for c in service.CARDS],
    "support": ["new_users", "subscriptions", "failed_payments", "credits", "top_models", "licenses", "coupons"],
    "analyst": ["new_users", "subscriptions", "revenue", "failed_payments", "credits", "top_models", "licenses",
                "coupons"],
    "auditor": ["subscriptions", "failed_payments", "licenses"],
}


@pytest.mark.parametrize("role", list(ROLE_CARDS))
def test_each_role_gets_the_cards_of_its_permissions_and_only_their_figures(session, role):
    from app.rbac.catalogue import SYSTEM_ROLES

    perms = next(set(r["permissions"]) for r in SYSTEM_ROLES if r["name"] == role)
    board = service.dashboard(session, perms.__contains__)
    assert [c.name for c in board.cards] == ROLE_CARDS[role]
    assert list(board.figures) == ROLE_CARDS[role]  # nothing computed for a card not shown


def test_no_dashboard_permission_no_cards(session):
    perms = set(ALL_PERMISSIONS) - {"analytics.view_dashboard"}
    assert service.dashboard(session, perms.__contains__).cards == []
