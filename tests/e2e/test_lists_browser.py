"""As the analyst (a persona no other browser test signs in, so its authenticator code never waits
for a fresh step): open the invoices list from the navigation, show production and test, sort by total
with the column header (both directions, the filter kept in the URL), and download the CSV of the
filtered, sorted list: the same invoices in the same order. Then every list made sortable here
fits a phone, labels its inputs and repeats no id (the console's checks and screenshots)."""
import csv
import io
from decimal import Decimal
from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.conftest import sign_in_staff
from tests.e2e.test_support_console_browser import SHOTS, shots


def _totals(page) -> list[Decimal]:
    cells = page.locator("#list-rows tr[data-id] td:nth-child(6)").all_inner_texts()
    return [Decimal(c.replace("$", "").replace(",", "")) for c in cells]


def test_sort_the_invoices_and_download_them(page):
    sign_in_staff(page, "analyst.user@rephlo.ai", "AnalystPassword123!")
    page.click("nav >> text=Invoices")
    page.wait_for_url("**/admin/billing/invoices")
    page.select_option("select[name=include_test]", "1")
    page.wait_for_url("**include_test=1**")  # the filter is in the URL
    assert page.locator("#list-rows tr[data-id]").count() >= 2
    page.click("#invoices-list th >> text=Total")
    page.wait_for_url("**sort=total**")
    assert "include_test=1" in page.url
    expect(page.locator("#invoices-list th[aria-sort=ascending]")).to_have_text("Total ▲")
    ascending = _totals(page)
    assert ascending == sorted(ascending)
    page.click("#invoices-list th >> text=Total")
    page.wait_for_url("**sort=-total**")
    descending = _totals(page)
    assert descending == sorted(ascending, reverse=True)
    numbers = page.locator("#list-rows tr[data-id] td:first-child").all_inner_texts()

    with page.expect_download() as info:
        page.click("#invoices-csv")
    download = info.value
    assert download.suggested_filename == "invoices.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert [r["number"] for r in rows][:len(numbers)] == numbers
    assert [Decimal(r["total"]) for r in rows][:len(descending)] == descending
    assert all(r["created_at"].endswith("+00:00") for r in rows)

    # Coupons: sort by code with the header (the state filter kept), then the same list as CSV.
    page.goto("/admin/coupons")
    page.select_option("select[name=state]", "active")
    page.wait_for_url("**state=active**")
    page.click("#coupon-list th >> text=Code")
    page.wait_for_url("**sort=code**")
    assert "state=active" in page.url
    codes = page.locator("#coupon-rows tr td a code").all_inner_texts()
    assert len(codes) >= 2 and codes == sorted(codes)
    with page.expect_download() as info:
        page.click("#coupons-csv")
    exported = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8"))))
    assert [r["code"] for r in exported][:len(codes)] == codes and all(r["active"] == "yes" for r in exported)
    assert page.console_errors == []
    SHOTS.mkdir(parents=True, exist_ok=True)
    for name, path in [("invoices", "/admin/billing/invoices?include_test=1&sort=-total"),
                       ("payments", "/admin/billing/payments?include_test=1"), ("redemptions", "/admin/coupons/redemptions"),
                       ("coupons", "/admin/coupons?sort=code"),
                       ("api-keys", "/admin/api-keys")]:
        page.goto(path)
        shots(page, f"30-list-{name}")
