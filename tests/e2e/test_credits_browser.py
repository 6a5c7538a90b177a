"""Browser journeys of the credits screens: the live price calculator, inline provider and
price edits behind sudo, a margin change in the audit log; ops granting credits within its
cap and above it (an approval request that the admin approves); the usage chart drawn."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from app.seed import ADMIN_TOTP_SECRET
from tests.e2e.conftest import confirm_sudo, sign_in, sign_in_staff


def test_pricing_calculator_and_inline_edits(admin_page):
    page = admin_page
    page.click("nav >> text=Pricing")
    page.wait_for_url("**/admin/credits/pricing/")
    page.select_option("select[name=tier]", "pro")
    page.select_option("select[name=model]", "gpt-4-turbo")
    page.fill("input[name=input_tokens]", "500")
    page.fill("input[name=output_tokens]", "300")
    expect(page.locator("#calc-credits")).to_have_text("49")  # live, as you type
    assert page.locator("#calc-vendor-cost").inner_text() == "$0.014000"
    assert page.locator("#calc-customer-cost").inner_text() == "$0.019600"
    page.select_option("select[name=tier]", "free")
    expect(page.locator("#calc-margin")).to_have_text("50.00%")
    expect(page.locator("#calc-credits")).to_have_text("53")
    page.select_option("select[name=tier]", "pro_max")
    expect(page.locator("#calculator-result [role=alert]")).to_contain_text("No margin is configured")

    # Inline edit of a provider: the first save asks for sudo, and after the code the save completes
    # with what was typed (sudo resume); the next edit goes through in place.
    row = page.locator("#provider-mistral")
    row.locator("text=Edit").click()
    form = page.locator("#provider-mistral form")
    form.locator("input[name=display_name]").fill("Mistral AI (EU)")
    form.locator("input[name=reason]").fill("Regional endpoint")
    form.locator("button:has-text('Save')").click()
    page.wait_for_url(re.compile(r".*/auth/sudo.*"))
    confirm_sudo(page, ADMIN_TOTP_SECRET)
    page.wait_for_url(re.compile(r".*/admin/credits/pricing/?$"))
    expect(page.locator("#provider-mistral")).to_contain_text("Mistral AI (EU)")
    page.locator("#provider-mistral").locator("text=Edit").click()
    form = page.locator("#provider-mistral form")
    form.locator("input[name=display_name]").fill("Mistral AI (Europe)")
    form.locator("input[name=reason]").fill("Regional endpoint")
    form.locator("button:has-text('Save')").click()
    expect(page.locator("#providers")).to_contain_text("Saved Mistral AI (Europe).")
    assert "/auth/sudo" not in page.url

    # A new price version for a model, then its history.
    page.locator("#model-llama-2-70b").locator("text=New price").click()
    form = page.locator("#prices form").first
    form.locator("input[name=input_price]").fill("0.65")
    form.locator("input[name=output_price]").fill("0.90")
    form.locator("input[name=reason]").fill("Vendor price cut")
    form.locator("button:has-text('Add price')").click()
    expect(page.locator("#prices")).to_contain_text("New price for llama-2-70b")
    expect(page.locator("#model-llama-2-70b")).to_contain_text("0.650000")
    page.locator("#model-llama-2-70b").locator("text=History").click()
    expect(page.locator("#price-history")).to_contain_text("Vendor price cut")

    # A margin change lands in the margin audit log.
    page.click("text=Margins per tier")
    page.locator("#tier-free").locator("text=Change").click()
    form = page.locator("#margins form")
    form.locator("input[name=margin_percentage]").fill("45")
    form.locator("input[name=reason]").fill("Competitive pressure")
    form.locator("button:has-text('Save margin')").click()
    expect(page.locator("#margins")).to_contain_text("New free margin saved.")
    expect(page.locator("#tier-free .margin")).to_have_text("45.00%")
    expect(page.locator("#margin-audit")).to_contain_text("Competitive pressure")
    assert page.console_errors == []


def test_ops_grants_within_the_cap_and_an_admin_approves_above_it(page):
    sign_in_staff(page, "ops.user@rephlo.ai", "OpsPassword123!")
    page.click("nav >> text=Credits")
    page.wait_for_url("**/admin/credits/")
    page.fill("#user-q", "pro.user")
    page.locator("#found-users a", has_text="pro.user@example.com").click()
    page.wait_for_url(re.compile(r".*/admin/credits/users/\d+$"))
    user_url = page.url
    bonus = int(page.locator("#bonus-credits").inner_text().replace(",", ""))
    assert "Your cap: 250,000 credits per grant" in page.locator("#grant").inner_text()
    page.wait_for_function("document.querySelector('#usage-chart').chart !== undefined")  # Chart.js drew it

    page.fill("#grant input[name=amount]", "1500")
    page.fill("#grant textarea[name=reason]", "Goodwill after the outage")
    page.click("#grant button:has-text('Grant')")
    expect(page.locator(".flash-info")).to_contain_text("Granted 1,500 credits")
    expect(page.locator("#bonus-credits")).to_have_text(f"{bonus + 1500:,}")
    expect(page.locator("#ledger-table")).to_contain_text("Goodwill after the outage")

    page.fill("#grant input[name=amount]", "300000")
    page.fill("#grant textarea[name=reason]", "Enterprise trial")
    page.click("#grant button:has-text('Grant')")
    expect(page.locator(".flash-info")).to_contain_text("approval request was sent")
    expect(page.locator("#grant-requests")).to_contain_text("Waiting for an administrator")
    expect(page.locator("#bonus-credits")).to_have_text(f"{bonus + 1500:,}")
    assert page.console_errors == []

    page.click("nav button:has-text('Sign out')")
    sign_in(page, "admin.test@rephlo.ai", "AdminPassword123!", ADMIN_TOTP_SECRET)
    page.click("nav >> text=Credits")
    request_row = page.locator("#grant-requests tr", has_text="Enterprise trial")
    request_row.locator("input[name=note]").fill("Approved for the trial")
    request_row.locator("button:has-text('Approve')").click()
    expect(page.locator(".flash-info")).to_contain_text("Approved: 300,000 credits")
    page.goto(user_url)
    expect(page.locator("#bonus-credits")).to_have_text(f"{bonus + 301500:,}")
    assert page.console_errors == []
