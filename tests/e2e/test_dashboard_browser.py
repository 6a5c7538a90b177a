"""The dashboard in Chromium: the admin's cards and Chart.js charts render under the CSP (no
console error), "include test data" brings the banner and the seeded test personas into the
figures; the auditor sees no revenue. Screenshots in test-output/e2e/."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import OUTPUT, sign_in_staff

CHARTS = ("new-users-chart", "credits-chart", "revenue-chart")


def figure(page, name: str) -> int:
    return int(page.locator(f'[data-figure="{name}"]').inner_text().replace(",", "").replace("$", "").split(".")[0])


def test_admin_dashboard_cards_charts_and_the_include_test_toggle(admin_page):
    page = admin_page
    page.goto("/admin")
    for name in ("new_users_today", "new_users_30d", "active_subscriptions", "active_subscriptions_pro", "mrr",
                 "failed_payments", "credits_issued_30d", "credits_spent_30d", "license_activations_30d",
                 "coupon_redemptions_30d", "fraud_flags_open", "top_models"):
        expect(page.locator(f'[data-figure="{name}"]')).to_be_visible()
    expect(page.locator('[data-figure="mrr"]')).to_have_text(re.compile(r"^\$[\d,]+\.\d\d$"))
    for canvas in CHARTS:  # drawn by Chart.js (charts.js keeps the instance on the canvas)
        page.wait_for_function(f"() => !!document.getElementById('{canvas}').chart")
    assert page.evaluate("() => document.getElementById('credits-chart').chart.data.labels.length") == 30
    expect(page.locator(".test-banner")).to_have_count(0)
    production_users = figure(page, "new_users_30d")
    page.screenshot(path=str(OUTPUT / "dashboard-production.png"), full_page=True)

    page.click("#include-test-toggle")
    expect(page.locator(".test-banner")).to_contain_text("Viewing test data")
    expect(page.locator("#include-test-toggle")).to_have_text("Show production only")
    # The seeded personas are test accounts that joined today: now they count.
    assert figure(page, "new_users_30d") > production_users
    for canvas in CHARTS:
        page.wait_for_function(f"() => !!document.getElementById('{canvas}').chart")
    page.screenshot(path=str(OUTPUT / "dashboard-with-test-data.png"), full_page=True)

    page.click('[data-figure="failed_payments"]')  # a figure opens its list, the toggle still on
    page.wait_for_url("**/admin/billing/failed-payments")
    expect(page.locator(".test-banner")).to_be_visible()
    page.goto("/admin")
    page.click("#include-test-toggle")
    expect(page.locator(".test-banner")).to_have_count(0)
    assert figure(page, "new_users_30d") == production_users
    assert page.console_errors == []


def test_auditor_dashboard_has_no_revenue(page):
    sign_in_staff(page, "auditor.user@rephlo.ai", "AuditorPassword123!")
    page.goto("/admin")
    expect(page.locator('[data-figure="active_subscriptions"]')).to_be_visible()
    expect(page.locator('[data-figure="license_activations_30d"]')).to_be_visible()
    for hidden in ("mrr", "revenue_30d", "credits_spent_30d", "new_users_30d", "fraud_flags_open", "top_models"):
        expect(page.locator(f'[data-figure="{hidden}"]')).to_have_count(0)
    expect(page.locator("#revenue-chart")).to_have_count(0)
    assert "$" not in page.locator("#dashboard-cards").inner_text()
    page.screenshot(path=str(OUTPUT / "dashboard-auditor.png"), full_page=True)
    assert page.console_errors == []
