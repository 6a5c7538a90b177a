"""The whole product in one browser journey (issue 8).

The seeded admin signs in with TOTP, creates a test account and a sandbox key on the screens,
gives the account credits and a license; the account then spends credits, activates the
license and redeems a coupon through the JSON API (a plain HTTP client against the live
server). None of it counts on the dashboard or the other production screens, and all of it
shows with "include test data". The super admin then deletes all test data (sudo, a background
job on a real RQ worker, with its progress bar): the test account is gone and every
production figure is what it was.

A production customer (tests/e2e/journey_customer.py) uses the API the same way first, so the
production figures are not all zero and "unchanged" means something; the same setup makes the
coupon both redeem (the seeded coupons all end on 2026-12-31). The journey runs on its
own database, server and RQ worker (it deletes the seeded personas), on the Redis database of
TEST_REDIS_URL_CLEANUP like the cleanup browser test (module-scoped servers run one at a time).
Screenshots of each main screen: test-output/e2e/journey/.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from decimal import Decimal
from urllib.error import HTTPError
from urllib.parse import quote
from urllib.request import Request, urlopen

import pytest
from playwright.sync_api import expect
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.seed import ADMIN_TOTP_SECRET
from tests.e2e.conftest import (OUTPUT, ROOT, create_sandbox_key, delete_all_test_data, open_page, own_server,
                                sign_in, sign_in_staff)
from tests.e2e import journey_customer
from tests.sandbox.cleanup_factories import assert_production_unchanged, production_snapshot

REDIS_URL = os.environ.get("TEST_REDIS_URL_CLEANUP", "redis://127.0.0.1:6379/14")
SHOTS = OUTPUT / "journey"
COUPON = journey_customer.COUPON  # 20% off the Pro plan, monthly, one per user
GRANTED = 5_000
PRO_MONTHLY_CREDITS = 10_000  # a test account made on tier pro is funded at once (issue 14)
# The dashboard's figures (data-figure) an administrator sees.
FIGURES = {"new_users_today", "new_users_30d", "active_subscriptions", "active_subscriptions_pro", "mrr",
           "failed_payments", "credits_issued_30d", "credits_spent_30d", "license_activations_30d",
           "coupon_redemptions_30d", "fraud_flags_open", "top_models"}
pytestmark = pytest.mark.redis


def _production_customer(engine, env) -> None:
    done = subprocess.run([sys.executable, "-m", journey_customer.__name__], env=env, cwd=ROOT, check=True,
                          capture_output=True, text=True)
    env["JOURNEY_CUSTOMER"] = done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def journey_server():
    with own_server("journey", REDIS_URL, prepare=_production_customer,
                    extra_env={"TEST_DATA_CLEANUP_BATCH_SIZE": "50"}) as server:
        server["customer"] = json.loads(server["env"]["JOURNEY_CUSTOMER"])
        yield server


@pytest.fixture
def journey_page(browser, journey_server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    with open_page(browser, journey_server["base"], SHOTS / "99-end-of-journey.png", 15_000) as page:
        yield page


def production_rows(engine) -> dict:
    import app.models  # noqa: F401  (the tables)

    with Session(engine) as session:
        return production_snapshot(session, ignore_links_to_test_users=True)


def search_users(page, email: str):
    """The Users screen's results for `email` among every account, production and test."""
    page.goto(f"/admin/users?scope=all&include_test=1&q={quote(email)}")
    return page.locator("#user-results")


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


# ---- the API, as a client application calls it ---------------------------------------------

CLIENT = "RephloDesktop/1.4.2 (Linux x86_64)"  # urllib's own user agent would trip the coupon bot detector


def call(base: str, key: str, path: str, body: dict) -> tuple[int, dict, dict]:
    request = Request(base + path, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4()),
        "User-Agent": CLIENT})
    try:
        with urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def use_the_product(base: str, key: str, license_key: str, device: str, *, test_mode: bool) -> int:
    """Spend credits on a model call, activate the license on a device, redeem the coupon.
    Returns the credits deducted."""
    calls = {
        "deduct": ("/api/v1/credits/calculate-and-deduct",
                   {"model": "gpt-4-turbo", "input_tokens": 500, "output_tokens": 300, "request_id": uuid.uuid4().hex}),
        "activate": ("/api/v1/licenses/activate",
                     {"license_key": license_key, "fingerprint": hashlib.sha256(device.encode()).hexdigest(),
                      "device_name": device, "os_type": "linux", "os_version": "6.8", "cpu_info": "x86_64"}),
        "redeem": ("/api/v1/coupons/redeem", {"code": COUPON, "amount": "19.99", "tier": "pro",
                                              "billing_cycle": "monthly"}),
    }
    answers = {}
    for name, (path, body) in calls.items():
        status, answer, headers = call(base, key, path, body)
        assert status == 201, (name, status, answer)
        assert (headers.get("X-Test-Mode") == "true") is test_mode, (name, headers)
        answers[name] = answer
    assert answers["activate"]["license"]["current_activations"] == 1
    assert answers["redeem"]["redemption"]["redemption_status"] == "success"
    assert answers["redeem"]["redemption"]["discount"] == "4.00"
    return answers["deduct"]["credits_deducted"]


# ---- what the screens show ------------------------------------------------------------------

def _number(text_: str) -> Decimal:
    return Decimal(re.sub(r"[^0-9.\-]", "", text_) or "0")


def _set_include_test(page, include: bool) -> None:
    toggle = page.locator("#include-test-toggle")
    wanted = "Show production only" if include else "Include test data"
    if toggle.inner_text().strip() != wanted:
        toggle.click()
    expect(page.locator("#include-test-toggle")).to_have_text(wanted)


def dashboard(page, include_test: bool, name: str | None = None) -> dict:
    """Every figure of the dashboard (data-figure), and the top models table."""
    page.click("nav >> text=Rephlo Admin")
    page.wait_for_url(re.compile(r".*/admin(\?.*)?$"))
    _set_include_test(page, include_test)
    figures = {}
    for element in page.locator("[data-figure]").all():
        key = element.get_attribute("data-figure")
        if key == "top_models":
            figures[key] = {row.get_attribute("data-model"): row.inner_text()
                            for row in element.locator("tr[data-model]").all()}
        else:
            figures[key] = _number(element.inner_text())
    if name:
        shot(page, name)
    return figures


def other_screens(page, test_email: str, include_test: bool, name: str | None = None) -> dict:
    """The production figures of the screens that are not the dashboard: the test-data overview's
    user statistics, the credits system totals, the coupon's uses, the licenses listed."""
    flag = "1" if include_test else "0"
    seen = {}
    page.goto(f"/admin/test-data?include_test={flag}")
    seen["users"] = [cell.inner_text() for cell in page.locator("#user-stats tbody td").all()]
    if name:
        shot(page, f"{name}-test-data")
    page.goto(f"/admin/credits/?include_test={flag}")
    seen["credits"] = {article.locator("small").inner_text(): _number(article.locator("strong").inner_text())
                       for article in page.locator("#totals article").all()}
    if name:
        shot(page, f"{name}-credits")
    page.goto(f"/admin/coupons?include_test={flag}&q={COUPON}")
    uses = page.locator("table:has(#coupon-rows) thead th").all_inner_texts().index("Uses")  # after a tick box
    seen["coupon_uses"] = page.locator("#coupon-rows tr", has_text=COUPON).locator("td").nth(uses).inner_text()
    page.goto(f"/admin/licenses?data={'all' if include_test else 'production'}")
    seen["licenses"] = sorted(row.inner_text() for row in page.locator("#license-rows tr").all())
    seen["test_license_listed"] = page.locator("#license-rows tr", has_text=test_email).count() == 1
    if name:
        shot(page, f"{name}-licenses")
    return seen


# ---- the journey ----------------------------------------------------------------------------

def test_whole_product_journey(journey_page, journey_server):
    page, base, customer = journey_page, journey_server["base"], journey_server["customer"]

    # A production customer uses the product: it counts.
    spent_in_production = use_the_product(base, customer["api_key"], customer["license_key"], "prod-workstation",
                                          test_mode=False)
    assert spent_in_production == 49  # gpt-4-turbo 500/300 tokens at the Pro margin of 40%

    sign_in(page, "admin.test@rephlo.ai", "AdminPassword123!", ADMIN_TOTP_SECRET)
    production = dashboard(page, include_test=False, name="01-dashboard-production")
    with_test = dashboard(page, include_test=True, name="02-dashboard-with-test-data")
    assert FIGURES <= set(production), FIGURES - set(production)
    assert production["license_activations_30d"] >= 1 and production["coupon_redemptions_30d"] >= 1
    assert production["credits_spent_30d"] >= spent_in_production and production["new_users_today"] >= 1
    assert production["active_subscriptions_pro"] >= 1 and production["mrr"] > 0

    rows_before = production_rows(journey_server["engine"])

    # A test account, on the screens; its password and its sandbox key are shown once.
    page.click("nav >> text=Test accounts")
    page.click("text=New test account")
    page.select_option("select[name=tier]", "pro")
    page.click("button:has-text('Create test account')")
    email = page.locator("#created-users td.email").inner_text().strip()
    assert email.endswith("@example.test")
    shot(page, "03-test-account-created")
    expect(search_users(page, email).locator("tr", has_text=email)).to_have_count(1)
    key = create_sandbox_key(page, email, "Journey sandbox key")
    shot(page, "04-sandbox-key-created")

    # Credits and a license for it, on the credits and licensing screens.
    page.click("nav >> text=Credits")
    page.fill("#user-q", email)
    page.press("#user-q", "Enter")
    page.locator("#found-users a", has_text=email).click()
    page.fill("#grant input[name=amount]", str(GRANTED))
    page.fill("#grant textarea[name=reason]", "Credits for the release journey")
    page.click("#grant button:has-text('Grant')")
    expect(page.locator("#bonus-credits")).to_have_text(f"{GRANTED:,}")
    shot(page, "05-credits-granted")
    page.click("nav >> text=Licenses")
    page.click("text=Issue a license")
    page.fill("input[name=owner_email]", email)
    page.fill("input[name=purchased_version]", "1.0.0")
    page.click("main button[type=submit]")
    expect(page.locator(".flash-info")).to_contain_text(f"issued to {email}")
    license_key = re.search(r"License (\S+) issued", page.locator(".flash-info").inner_text()).group(1)
    shot(page, "06-license-issued")

    before_screens = other_screens(page, email, include_test=False)
    before_screens_with_test = other_screens(page, email, include_test=True)

    # The test account uses the product through the API: test mode, every row test data.
    spent_in_test = use_the_product(base, key, license_key, "qa-laptop", test_mode=True)
    assert spent_in_test == 49  # the same call, the same tier

    # None of it counts...
    assert dashboard(page, include_test=False, name="07-dashboard-production-after-test-traffic") == production
    assert other_screens(page, email, include_test=False, name="08-production") == before_screens
    assert not before_screens["test_license_listed"]
    # ...and all of it shows with "include test data".
    after = dashboard(page, include_test=True, name="09-dashboard-with-test-traffic")
    assert after["new_users_today"] == with_test["new_users_today"] + 1
    assert after["license_activations_30d"] == with_test["license_activations_30d"] + 1
    assert after["coupon_redemptions_30d"] == with_test["coupon_redemptions_30d"] + 1
    assert after["credits_spent_30d"] == with_test["credits_spent_30d"] + spent_in_test
    assert after["credits_issued_30d"] == with_test["credits_issued_30d"] + GRANTED + PRO_MONTHLY_CREDITS
    # The seed's test usage lies in the last 30 days too (app/core/seedtime.py): calls and credits
    # of the model in production alone, then on top of what "include test data" showed before.
    assert production["top_models"]["gpt-4-turbo"].split("\t")[1:3] == ["1", str(spent_in_production)]
    calls, credits = (int(v) for v in with_test["top_models"]["gpt-4-turbo"].split("\t")[1:3])
    assert after["top_models"]["gpt-4-turbo"].split("\t")[1:3] == [str(calls + 1), str(credits + spent_in_test)]
    screens_with_test = other_screens(page, email, include_test=True, name="10-with-test-data")
    assert screens_with_test["test_license_listed"]
    assert screens_with_test["credits"]["Credits spent"] == (before_screens_with_test["credits"]["Credits spent"]
                                                             + spent_in_test)
    assert "(test " in screens_with_test["coupon_uses"] and "(test " not in before_screens["coupon_uses"]

    # The super admin deletes all test data (sudo; a job on the worker, with its progress bar).
    page.click("nav button:has-text('Sign out')")
    secret = sign_in_staff(page, "super.admin@rephlo.ai", "SuperAdminPassword123!")
    page.click("nav >> text=Test data")
    shot(page, "11-test-data-overview")
    delete_all_test_data(page, secret, "Release journey finished")
    shot(page, "12-delete-all-finished")
    assert "super.admin@rephlo.ai" in page.locator("#cleanup-summary").inner_text()

    # The test account is gone; every production figure is what it was.
    results = search_users(page, email)
    expect(results).to_contain_text("No user matches these filters.")
    expect(results.locator("tr", has_text=email)).to_have_count(0)
    shot(page, "13-test-account-gone")
    with journey_server["engine"].connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM users WHERE email = :e"), {"e": email}).scalar() == 0
        left = conn.execute(text("SELECT email FROM users WHERE is_test AND NOT is_staff")).scalars().all()
        staff = conn.execute(text("SELECT email FROM users WHERE is_test AND is_staff")).scalars().all()
    assert left == [] and {"super.admin@rephlo.ai", "admin.test@rephlo.ai"} <= set(staff)  # personas stay
    # Row by row, production is as it was: the only new production rows are the request and the
    # run of the deletion (the personas' sign-out and sudo, and the job a persona started, are test rows).
    assert_production_unchanged(rows_before, production_rows(journey_server["engine"]), audit_log=2)
    after_cleanup = dashboard(page, include_test=False, name="14-dashboard-production-after-cleanup")
    assert {name: after_cleanup[name] for name in production} == production  # the super admin sees more cards
    assert other_screens(page, email, include_test=False, name="15-production-after-cleanup") == before_screens
    assert page.console_errors == []
