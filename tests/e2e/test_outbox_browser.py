"""The outbox screen is reachable from the navigation and filters by status."""


def test_outbox_from_navigation(admin_page):
    page = admin_page
    page.click("nav >> text=Outbox")
    page.wait_for_url("**/admin/outbox")
    assert page.locator("text=No SMTP server is configured").is_visible()
    page.select_option("select[name=status]", "failed")
    page.wait_for_load_state("networkidle")
    assert page.locator("#outbox-rows").inner_text().strip() == "No messages."
    assert page.console_errors == []
