"""As ops: find the pro test user's subscription, preview an upgrade to Enterprise Pro (15 of
30 days left in the seeded period: net 100.00), apply it, and see its invoice on the timeline.
Then the other billing screens open from the navigation."""
import re

from playwright.sync_api import expect


from tests.e2e.conftest import sign_in_staff

OPS = ("ops.user@rephlo.ai", "OpsPassword123!")


def sign_in_ops(page) -> None:
    """ops.user has no TOTP until a browser test enrols it; sign_in_staff remembers the secret."""
    sign_in_staff(page, *OPS)


def test_ops_previews_and_applies_an_upgrade(page):
    sign_in_ops(page)
    page.click("nav >> text=Subscriptions")
    page.wait_for_url("**/admin/billing/subscriptions")
    page.select_option("select[name=include_test]", "only")
    page.fill("input[name=q]", "pro.user@example.com")
    expect(page.locator("#subscription-rows tr")).to_have_count(1)  # the live search has narrowed the list
    page.locator("#subscription-rows a", has_text="pro.user@example.com").click()
    page.wait_for_url(re.compile(r".*/admin/billing/subscriptions/\d+$"))
    assert page.locator("#sub-tier").inner_text() == "Pro"

    page.select_option("select[name=to_tier]", "enterprise_pro")
    page.click("#preview-button")
    net = page.locator("#net-charge")
    net.wait_for()
    assert net.inner_text() == "$100.00"
    preview = page.locator("#proration-preview").inner_text()
    assert "15 of 30" in preview and "-$49.99" in preview and "$149.99" in preview

    page.fill("#change-block input[name=reason]", "Customer asked for Enterprise Pro")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#apply-change")
    page.wait_for_selector("text=Changed from Pro to Enterprise Pro")
    assert page.locator("#sub-tier").inner_text() == "Enterprise Pro"
    invoice_row = page.locator("#timeline tr.timeline-invoice", has_text="(proration)")
    assert invoice_row.count() == 1 and "100.00" in invoice_row.inner_text()
    assert "Unused time on pro (15 of 30 days): -49.99" in invoice_row.inner_text()
    assert page.locator("#timeline tr.timeline-proration", has_text="Upgrade: Pro to Enterprise Pro").count() == 1
    assert page.console_errors == []


def test_billing_screens_from_the_navigation(admin_page):
    page = admin_page
    page.click("nav >> text=Failed payments")
    page.wait_for_url("**/admin/billing/failed-payments")
    page.goto("/admin/billing/failed-payments?include_test=1")
    assert page.locator("#failed-payments", has_text="dunning.user@example.com").is_visible()
    page.click("nav >> text=Tiers")
    assert page.locator("#tier-enterprise_pro", has_text="299.99").is_visible()
    page.click("nav >> text=Credit packs")
    assert page.locator("text=Starter 5,000").is_visible()
    page.click("nav >> text=Revenue")
    assert page.locator("#mrr").is_visible()
    page.click("nav >> text=Approvals")  # refund requests wait in the one approvals queue
    page.wait_for_url("**/admin/approvals")
    assert page.locator("text=Nothing waiting for approval.").is_visible()
    assert page.console_errors == []
