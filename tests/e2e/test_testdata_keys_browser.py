"""Browser journey: the admin creates a test account, reads its one-time password, extends it
inline, then creates a sandbox key for it and sees the key once."""
from __future__ import annotations

import re

from tests.e2e.conftest import create_sandbox_key


def test_test_account_and_sandbox_key_journey(admin_page):
    page = admin_page
    page.click("nav >> text=Test accounts")
    page.wait_for_url("**/admin/test-data/users")
    page.click("text=New test account")
    page.select_option("select[name=tier]", "pro")
    page.fill("input[name=expires_in_days]", "5")
    page.click("button:has-text('Create test account')")

    panel = page.locator("#once-panel")
    assert "Shown once" in panel.inner_text()
    password = page.locator("#one-time-password").inner_text().strip()
    email = page.locator("#created-users td.email").inner_text().strip()
    assert re.fullmatch(r"[A-Za-z0-9]{20}", password) and email.endswith("@example.test")

    page.click("text=Back to test accounts")
    row = page.locator("tr", has_text=email)
    assert "Pro" in row.inner_text() and password not in page.content()
    row.locator("input[name=expires_in_days]").fill("20")
    row.locator("button:has-text('Extend')").click()
    row = page.locator("tr", has_text=email)
    row.locator("text=Expiry updated.").wait_for()
    assert page.url.endswith("/admin/test-data/users")  # swapped in place by htmx, no reload

    # Bulk: tick the account, extend the selection. No confirmation is asked (Playwright dismisses an
    # unhandled dialog, which would cancel the submit and the flash below would never come).
    page.locator("tr", has_text=email).locator("input[type=checkbox]").check()
    page.fill("input[form=bulk-delete][name=expires_in_days]", "25")
    page.click("button:has-text('Extend selected')")
    page.locator(".flash-info", has_text="Extended 1 test account to 25 days from now.").wait_for()

    key = create_sandbox_key(page, email, "QA sandbox key")

    # The key authenticates in test mode (its test owner holds no admin permission).
    answer = page.request.get("/api/v1/admin/test/api-keys", headers={"Authorization": f"Bearer {key}"})
    assert answer.status == 403 and answer.headers["x-test-mode"] == "true"
    assert answer.json()["error"]["code"] == "missing_permission"

    page.click("text=Back to API keys")
    listed = page.locator("tr", has_text="QA sandbox key")
    assert key[-4:] in listed.inner_text() and key not in page.content()
    assert page.console_errors == []
