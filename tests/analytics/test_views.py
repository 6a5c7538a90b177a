"""The dashboard screen at /admin: each role sees the figures its permissions allow, each figure
is a link to a list that role can open, numbers are formatted, and the include-test toggle
(the session-wide one of every screen) adds the test rows under the banner."""
from __future__ import annotations

import html
import re

import pytest

from tests.analytics.conftest import OLD
from tests.analytics.test_service import ROLE_CARDS

FIGURE = re.compile(r'<a href="([^"]*)" class="figure-value" data-figure="([^"]+)">([^<]*)</a>')
TIERS = ("free", "pro", "pro_max", "enterprise_pro", "enterprise_max", "perpetual")
CARD_FIGURES = {
    "new_users": ["new_users_today", "new_users_30d"],
    "subscriptions": ["active_subscriptions", *[f"active_subscriptions_{t}" for t in TIERS]],
    "revenue": ["mrr", "revenue_30d"],
    "failed_payments": ["failed_payments"],
    "credits": ["credits_issued_30d", "credits_spent_30d"],
    "top_models": [],  # a table, data-figure="top_models"
    "licenses": ["license_activations_30d"],
    "coupons": ["coupon_redemptions_30d"],
    "fraud": ["fraud_flags_open"],
}


def figures(body: str) -> dict[str, tuple[str, str]]:
    return {name: (html.unescape(href), text) for href, name, text in FIGURE.findall(body)}


@pytest.fixture
def staff_client(login_as, make_user):
    """Signed in as a member of `role` who joined before the window (not a new user this month)."""

    def make(role: str | None):
        return login_as(user=make_user(roles=(role,) if role else (), staff=True, created_at=OLD))

    return make


@pytest.mark.parametrize("role", list(ROLE_CARDS))
def test_each_role_sees_only_its_cards_and_every_figure_opens_its_list(staff_client, month_of_activity, role):
    client = staff_client(role)
    body = client.get("/admin").get_data(as_text=True)
    shown = figures(body)
    expected = [name for card in ROLE_CARDS[role] for name in CARD_FIGURES[card]]
    assert sorted(shown) == sorted(expected)
    assert ('data-figure="top_models"' in body) == ("top_models" in ROLE_CARDS[role])
    assert ('id="revenue-chart"' in body) == ("revenue" in ROLE_CARDS[role])
    for name, (href, _) in shown.items():
        assert client.get(href).status_code == 200, f"{role}: {name} links to {href}, which it cannot open"
    if role == "auditor":  # no revenue, no money at all on its cards
        cards = body[body.index('id="dashboard-cards"'):body.index('class="grid"')]
        assert "$" not in cards and "MRR" not in cards


def test_figures_are_formatted_and_link_to_their_lists(app, staff_client, month_of_activity):
    shown = figures(staff_client("admin").get("/admin").get_data(as_text=True))
    text = {name: value for name, (_, value) in shown.items()}
    assert text["mrr"] == "$599.96" and text["revenue_30d"] == "$389.98"
    assert text["credits_issued_30d"] == "1,500" and text["credits_spent_30d"] == "152"
    assert (text["active_subscriptions"], text["active_subscriptions_pro"], text["active_subscriptions_pro_max"]) == (
        "4", "2", "0")
    assert (text["new_users_today"], text["new_users_30d"], text["failed_payments"]) == ("2", "6", "1")
    assert (text["license_activations_30d"], text["coupon_redemptions_30d"], text["fraud_flags_open"]) == (
        "3", "2", "2")
    links = {name: href for name, (href, _) in shown.items()}
    assert links["active_subscriptions_pro"] == "/admin/billing/subscriptions?status=active&tier=pro"
    assert links["failed_payments"] == "/admin/billing/failed-payments"
    assert links["fraud_flags_open"] == "/admin/fraud" and links["credits_spent_30d"] == "/admin/credits/"
    assert links["license_activations_30d"] == "/admin/licenses" and links["mrr"] == "/admin/billing/revenue"


def test_top_models_table_ranks_by_vendor_cost(staff_client, month_of_activity):
    body = staff_client("analyst").get("/admin").get_data(as_text=True)
    table = body[body.index('data-figure="top_models"'):]
    table = table[:table.index("</table>")]
    assert re.findall(r'data-model="([^"]+)"', table) == month_of_activity[False]["top_models"]


def test_include_test_toggle_shows_the_banner_and_the_test_rows(staff_client, month_of_activity):
    client = staff_client("admin")
    body = client.get("/admin").get_data(as_text=True)
    assert "Viewing test data" not in body
    assert '<a id="include-test-toggle" href="?include_test=1">Include test data</a>' in body
    body = client.get("/admin?include_test=1").get_data(as_text=True)
    assert "Viewing test data" in body and 'id="include-test-toggle" href="?include_test=0"' in body
    text = {name: value for name, (_, value) in figures(body).items()}
    assert (text["mrr"], text["new_users_30d"], text["credits_issued_30d"], text["fraud_flags_open"]) == (
        "$899.94", "9", "1,800", "3")
    # The toggle is the session-wide one: the next page (here the dashboard again) keeps it.
    assert figures(client.get("/admin").get_data(as_text=True))["mrr"][1] == "$899.94"
    body = client.get("/admin?include_test=0").get_data(as_text=True)
    assert "Viewing test data" not in body and figures(body)["mrr"][1] == "$599.96"


def test_staff_without_dashboard_permission_get_their_roles_and_links_only(staff_client):
    body = staff_client(None).get("/admin").get_data(as_text=True)
    assert 'id="no-cards"' in body and "data-figure" not in body and "No role yet" in body
    assert "chart.umd.min.js" not in body


def test_charts_carry_30_days_of_data_and_load_chart_js_with_the_nonce(staff_client, month_of_activity):
    response = staff_client("admin").get("/admin")
    body = response.get_data(as_text=True)
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
    assert f'vendor/chartjs/chart.umd.min.js" nonce="{nonce}"' in body
    assert f'js/charts.js" nonce="{nonce}"' in body
    import json

    for canvas in ("new-users-chart", "credits-chart", "revenue-chart"):
        spec = json.loads(html.unescape(re.search(rf'id="{canvas}"[^>]*data-chart=\'([^\']+)\'', body).group(1)))
        assert len(spec["labels"]) == 30 and spec["labels"][-1] == "2025-11-09"
        assert all(len(d["data"]) == 30 for d in spec["datasets"])


def test_empty_production_says_so_with_the_hidden_test_rows_and_the_switch(staff_client, make_user):
    """A fresh install: only test data (the seed's, as it must be), so production is all zeros."""
    from app.extensions import db
    from app.users.models import User

    client = staff_client("admin")  # the signed-in staff member is not a production customer
    before = db.session.query(User).filter_by(is_test=True).count()
    make_user(test=True), make_user(test=True)
    body = client.get("/admin").get_data(as_text=True)
    notice = body[body.index('id="production-empty"'):body.index('id="dashboard-cards"')]
    assert "No production data yet" in notice and f"{before + 2} test rows" in notice
    assert 'id="production-empty-include-test" role="button" href="?include_test=1"' in notice
    assert 'id="production-empty"' not in client.get("/admin?include_test=1").get_data(as_text=True)
    client.get("/admin?include_test=0")
    make_user()  # the first production customer
    assert 'id="production-empty"' not in client.get("/admin").get_data(as_text=True)


def test_production_with_data_shows_no_empty_notice(staff_client, month_of_activity):
    assert 'id="production-empty"' not in staff_client("admin").get("/admin").get_data(as_text=True)
