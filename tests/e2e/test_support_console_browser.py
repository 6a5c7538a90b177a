"""The support lead's jobs in a browser, each from the global search (issue 18), on the shared
server: one support and one admin sign-in for the module. Screenshots at 1440x900 and 390x844
go to test-output/e2e/console/; on a phone no page is wider than the screen, and every input
has a label."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC

import pytest
from playwright.sync_api import expect

from app.seed import ADMIN_TOTP_SECRET
from tests.e2e import charged_twice
from tests.e2e.conftest import OUTPUT, ROOT, confirm_sudo, sign_in, sign_in_staff

SHOTS = OUTPUT / "console"
DESKTOP, PHONE = {"width": 1440, "height": 900}, {"width": 390, "height": 844}
CUSTOMER = "pro.user@example.com"

# Inputs without a label, a wrapping label, aria-label or aria-labelledby (hidden inputs excepted).
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(el => el.type !== 'hidden' && !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                && !el.getAttribute('aria-labelledby'))
  .map(el => el.outerHTML.slice(0, 120))"""
WIDE = """() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
  && !(e.parentElement && e.parentElement.getBoundingClientRect().right > window.innerWidth + 1))
  .slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className)"""
DUPLICATE_IDS = """() => { const seen = {}; document.querySelectorAll('[id]').forEach(e => seen[e.id] = (seen[e.id] || 0) + 1);
  return Object.keys(seen).filter(k => seen[k] > 1); }"""


@pytest.fixture(scope="module")
def staff(browser, live_server):
    """One signed-in context per persona for the whole module (sign-ins are the slow part)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    contexts = {}
    for name in ("support", "admin"):
        context = browser.new_context(base_url=live_server, viewport=DESKTOP)
        page = context.new_page()
        page.set_default_timeout(10_000)
        if name == "support":
            sign_in_staff(page, "support.user@rephlo.ai", "SupportPassword123!")
        else:
            sign_in(page, "admin.test@rephlo.ai", "AdminPassword123!", ADMIN_TOTP_SECRET)
        contexts[name] = page
    yield contexts
    for page in contexts.values():
        page.context.close()


def shots(page, name: str) -> None:
    """Both sizes; on the phone the page may not be wider than the screen."""
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(SHOTS / f"{name}-1440x900.png"), full_page=True)
    page.set_viewport_size(PHONE)
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate(WIDE) if width > PHONE["width"] else []
    page.screenshot(path=str(SHOTS / f"{name}-390x844.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    assert width <= PHONE["width"], f"{name}: {width} px wide on a 390 px phone: {wide}"
    assert page.evaluate(UNLABELLED) == [], name
    assert page.evaluate(DUPLICATE_IDS) == [], name


def find_customer(page, term: str = CUSTOMER) -> None:
    """The top bar's search, reached with "/", then the customer's result."""
    page.goto("/admin")
    page.keyboard.press("/")
    expect(page.locator("#global-search")).to_be_focused()
    page.keyboard.type(term)
    hit = page.locator("#global-search-results a", has_text=term).first
    expect(hit).to_be_visible()
    hit.click()
    page.wait_for_url(re.compile(r".*/admin/customers/\d+$"))


def _charged_twice_customer(env) -> dict:
    done = subprocess.run([sys.executable, "-m", charged_twice.__name__], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_charged_twice_to_a_refund_in_four_pages(staff, server_env):
    """An admin, from the global search, refunds the duplicate charge through Stripe (localstripe):
    customer page, subscription page, the sudo prompt, and the subscription page with the refund."""
    made = _charged_twice_customer(server_env)
    page = staff["admin"]
    pages: list[str] = []
    page.on("framenavigated", lambda frame: pages.append(frame.url) if frame == page.main_frame else None)
    find_customer(page, made["email"])
    pages.clear()
    pages.append(page.url)  # 1: the customer page
    shots(page, "01-customer-page")
    page.click("#tab-payments")  # an HTMX tab: the URL changes, the page does not reload
    expect(page.locator("#customer-payments")).to_be_visible()
    assert page.url.endswith("/payments")
    expect(page.locator("#customer-payments tr[id^=payment-]")).to_have_count(2)  # charged twice
    shots(page, "02-customer-payments")
    duplicate = made["duplicate_payment_id"]
    page.locator(f"#payment-{duplicate} .refund-link").click()  # 2: the subscription page
    page.wait_for_url(re.compile(r".*/admin/billing/subscriptions/\d+(#.*)?$"))
    row = page.locator(f"#sub-payment-{duplicate}")
    row.locator("summary", has_text="Refund").click()
    row.locator("input[name=reason]").fill("Charged twice for the same invoice")
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/auth/sudo.*"))  # 3: sudo, then the refund completes (sudo resume)
    confirm_sudo(page, ADMIN_TOTP_SECRET)
    page.wait_for_url(re.compile(r".*/admin/billing/subscriptions/\d+$"))  # 4
    expect(page.locator(".flash-info")).to_contain_text(f"Refunded ${made['amount']}.")
    expect(page.locator(f"#sub-payment-{duplicate} .payment-status")).to_have_text("Refunded")
    shots(page, "03-refunded")
    # Pages by path: the customer page (its payments tab is an HTMX swap with its own URL), the
    # subscription page, and the sudo prompt (its code POSTs to itself); the refund lands back on
    # the subscription page.
    assert len({url.split("#")[0].split("?")[0] for url in pages}) <= 4, pages
    page.goto(f"/admin/customers/{made['user_id']}/payments")  # the customer page says so too
    expect(page.locator(f"#payment-{duplicate} td").nth(4)).to_contain_text("Refunded")
    expect(page.locator(f"#payment-{duplicate} .refund-link")).to_have_count(0)
    expect(page.locator("#customer-payments tr.refund-row")).to_have_count(1)


def test_support_requests_approved_and_declined_from_the_one_queue(staff):
    """A support agent asks for credits above the cap and for a refund; the admin approves the grant
    and declines the refund (with a reason) from the one approvals queue."""
    page = staff["support"]
    find_customer(page)
    page.click("#tab-credits")
    expect(page.locator("#customer-ledger")).to_be_visible()
    page.click("text=Grant or deduct credits")
    page.wait_for_url(re.compile(r".*/admin/credits/users/\d+"))
    user_url = page.url.split("#")[0]
    bonus = int(page.locator("#bonus-credits").inner_text().replace(",", ""))
    page.fill("#request-grant input[name=amount]", "2500")
    page.fill("#request-grant textarea[name=reason]", "Outage on 3 December")
    page.click("#request-grant button[type=submit]")
    expect(page.locator(".flash-info")).to_contain_text("Asked an administrator")
    shots(page, "04-grant-requested")
    find_customer(page)
    page.click("#tab-payments")
    expect(page.locator("#customer-payments")).to_be_visible()
    page.locator("#customer-payments .refund-link").first.click()
    page.wait_for_url(re.compile(r".*/admin/billing/subscriptions/\d+(#.*)?$"))
    request = page.locator("details[id^=request-refund-]").first
    request.locator("summary").click()
    request.locator("input[name=amount]").fill("10.00")
    request.locator("input[name=reason]").fill("Charged twice for November")
    request.locator("button[type=submit]").click()
    expect(page.locator(".flash-info")).to_contain_text("Refund of $10.00 requested")

    admin = staff["admin"]
    admin.goto("/admin?include_test=1")  # the seed personas are test accounts
    admin.click("nav >> text=Approvals")
    admin.wait_for_url("**/admin/approvals")
    grant = admin.locator("#approvals tr[data-kind=credits]", has_text="Outage on 3 December")
    refund = admin.locator("#approvals tr[data-kind=refund]", has_text="Charged twice for November")
    expect(grant).to_have_count(1)
    expect(refund).to_have_count(1)
    shots(admin, "08-approvals-queue")
    grant.locator("input[id^=approve-note-]").fill("Approved")
    grant.locator("button:has-text('Approve')").click()
    expect(admin.locator(".flash-info")).to_contain_text("Approved: 2,500 credits")
    refund.locator("input[id^=decline-note-]").fill("Only one charge on the Stripe side")
    refund.locator("button:has-text('Decline')").click()
    confirm_sudo(admin, ADMIN_TOTP_SECRET)  # a refund decision needs sudo; the decline completes after the code
    expect(admin.locator(".flash-info")).to_contain_text("Refund request declined")
    expect(admin.locator("#approvals tr", has_text="Charged twice for November")).to_have_count(0)
    expect(admin.locator("#approvals tr", has_text="Outage on 3 December")).to_have_count(0)
    page.goto(user_url)
    expect(page.locator("#bonus-credits")).to_have_text(f"{bonus + 2500:,}")


def test_plan_change_with_the_proration_preview(staff):
    page = staff["admin"]
    find_customer(page, "google.user@example.com")
    page.locator("#customer-section article header a").first.click()  # the subscription
    page.wait_for_url(re.compile(r".*/admin/billing/subscriptions/\d+$"))
    page.select_option("select[name=to_tier]", "enterprise_pro")
    page.click("#preview-button")
    expect(page.locator("#proration-preview")).to_be_visible()  # swapped in by HTMX, nothing changed yet
    assert page.locator("#sub-tier").inner_text() == "Pro"
    shots(page, "05-proration-preview")
    page.on("dialog", lambda dialog: dialog.accept())
    page.fill("#change-block input[name=reason]", "Customer moves the team to Enterprise")
    page.click("#apply-change")
    expect(page.locator("#sub-tier")).to_have_text("Enterprise Pro")


def test_device_deactivation_from_the_customer_page(staff):
    page = staff["admin"]
    find_customer(page, "perpetual.user2@example.com")
    page.click("#tab-licenses")
    row = page.locator("#customer-section tr", has_text="Enterprise Workstation 3")
    expect(row).to_contain_text("Active")
    page.on("dialog", lambda dialog: dialog.accept())
    row.locator("input[type=text]").fill("Machine returned to IT")
    row.locator("button:has-text('Deactivate')").click()
    expect(page.locator(".flash-info")).to_contain_text("Device deactivated")
    find_customer(page, "perpetual.user2@example.com")
    page.click("#tab-licenses")
    expect(page.locator("#customer-section tr", has_text="Enterprise Workstation 3")).to_contain_text("Deactivated")
    shots(page, "06-device-deactivated")


def test_black_friday_coupon_with_a_rule_on_the_form_and_fifty_codes_exported(staff):
    from datetime import datetime, timedelta

    page = staff["admin"]
    now = datetime.now(UTC)
    page.goto("/admin/campaigns/new")
    page.fill("input[name=name]", "Black Friday console")
    page.select_option("select[name=campaign_type]", "seasonal")
    page.fill("input[name=starts_at]", (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("input[name=ends_at]", (now + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("input[name=budget_limit]", "50,000")  # as people type it
    page.click("button:has-text('Create campaign')")
    page.wait_for_url(re.compile(r".*/admin/campaigns/\d+$"))
    expect(page.locator("main")).to_contain_text("$50,000.00")
    page.click("text=Generate codes")
    page.fill("input[name=count]", "50")
    page.fill("input[name=prefix]", "bf-")
    page.select_option("select[name=discount_type]", "percentage")
    page.fill("input[name=discount_value]", "30")
    page.click("button:has-text('Generate codes')")
    expect(page.locator(".flash")).to_contain_text("50 codes created")
    export = page.request.get(page.locator("text=Export codes (CSV)").get_attribute("href"))
    lines = export.text().strip().splitlines()
    assert export.headers["content-type"].startswith("text/csv") and len(lines) == 51
    code = lines[1].split(",")[0]
    page.goto("/admin")
    page.keyboard.press("/")
    page.keyboard.type(code)
    page.locator("#global-search-results a", has_text=code).first.click()
    page.wait_for_url(re.compile(r".*/admin/coupons/\d+$"))
    page.select_option("select[name=rule_type]", "minimum_credit_balance")
    page.fill("input[name=min_balance]", "1,000")
    page.click("button:has-text('Add rule')")
    expect(page.locator("main")).to_contain_text("1,000")
    shots(page, "07-coupon-rule")


def test_screens_fit_a_phone_and_label_every_input(staff):
    admin = staff["admin"]
    find_customer(admin)
    base = admin.url
    for section in ("subscription", "invoices", "credits", "licenses", "coupons", "keys", "audit"):
        admin.goto(f"{base}/{section}")
        shots(admin, f"10-customer-{section}")
    for name, path in [("dashboard", "/admin"), ("users", "/admin/users"), ("search", "/admin/search?q=pro"),
                       ("subscriptions", "/admin/billing/subscriptions"), ("coupons", "/admin/coupons"),
                       ("licenses", "/admin/licenses"), ("credits", "/admin/credits/")]:
        admin.goto(path)
        shots(admin, f"20-{name}")
    admin.set_viewport_size(PHONE)
    admin.goto("/admin")
    expect(admin.locator(".nav-groups")).to_be_hidden()  # folded on a phone
    admin.click("label[for=nav-toggle]")
    expect(admin.locator(".nav-groups")).to_be_visible()
    admin.keyboard.press("Tab")
    admin.set_viewport_size(DESKTOP)
