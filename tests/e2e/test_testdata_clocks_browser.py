"""Staff put a seeded test customer on a test clock, advance it a month, and bring it back."""
from __future__ import annotations


def test_admin_advances_a_test_accounts_clock(admin_page):
    page = admin_page
    page.click("nav >> text=Test data")
    page.click("#test-clocks-link")
    page.wait_for_url("**/admin/test-data/clocks")

    page.fill("input[name=email]", "pro.user@example.com")
    page.click("#create-clock")
    row = page.locator("#test-clocks tbody tr", has_text="pro.user@example.com")
    assert "0 days 0 h" in row.locator(".clock-offset").inner_text()

    row.locator("input[name=days]").fill("0")
    row.locator("button", has_text="Advance").click()
    assert "only moves forward" in page.locator("#test-clocks").inner_text()  # the form's own error

    row = page.locator("#test-clocks tbody tr", has_text="pro.user@example.com")
    row.locator("input[name=days]").fill("30")
    row.locator("input[name=hours]").fill("6")
    row.locator("button", has_text="Advance").click()
    assert "moved to" in page.locator(".flash").inner_text()
    row = page.locator("#test-clocks tbody tr", has_text="pro.user@example.com")
    assert row.locator(".clock-offset").inner_text() == "30 days 6 h ahead"

    page.on("dialog", lambda dialog: dialog.accept())
    row.locator("button", has_text="Back to real time").click()
    assert "back on real time" in page.locator(".flash").inner_text()
    assert "No test account is on a test clock." in page.locator("#test-clocks").inner_text()
    # The refused advance answered 422, which Chromium logs; nothing else may be an error.
    assert [e for e in page.console_errors if "422" not in e] == []
