"""Licenses in the browser: support (view only) sees a license and no revoke button; an admin
revokes one after sudo, and the desktop app's next validation answers REVOKED."""
from __future__ import annotations

import json
from urllib.request import Request, urlopen

from playwright.sync_api import expect

from app.licensing.seed import fingerprint
from app.seed import ADMIN_TOTP_SECRET
from tests.e2e.conftest import sign_in_staff, confirm_sudo

ENTERPRISE_KEY = "PERM-2025-ENT-002-GOLD"
WORKSTATION = fingerprint("seed:PERM-2025-ENT-002-GOLD:workstation-1")


def validate(base: str, key: str, device: str, version: str) -> dict:
    body = json.dumps({"license_key": key, "fingerprint": device, "version": version}).encode()
    request = Request(base + "/api/v1/licenses/validate", data=body, headers={"Content-Type": "application/json"})
    with urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _sign_in_support_enrolling(page) -> None:
    """support.user has no authenticator until a browser test enrols it (sign_in_staff)."""
    sign_in_staff(page, "support.user@rephlo.ai", "SupportPassword123!")


def _open_license(page, owner: str, key: str) -> None:
    page.click("nav >> text=Licenses")
    page.wait_for_url("**/admin/licenses")  # loaded: HTMX listens to the filters
    page.select_option("select[name=include_test]", "1")  # seeded licenses belong to test accounts
    page.fill("#owner", owner)
    link = page.locator(f"#license-results a:has-text('{key}')")
    expect(link).to_have_count(1)  # the live filter swapped the results in
    link.click()
    expect(page.locator("h1")).to_contain_text(key)


def test_support_sees_a_license_but_no_revoke_button(page):
    _sign_in_support_enrolling(page)
    _open_license(page, "perpetual.user1", "PERM-2025-WIN-001-BETA")
    expect(page.locator("h1 [data-status=active]")).to_have_count(1)  # revocable, were it allowed
    expect(page.locator("#devices")).to_contain_text("John's Desktop")
    expect(page.locator("#seat-count")).to_have_text("2 of 3 active")
    expect(page.locator("#upgrades")).to_contain_text("loyalty")
    expect(page.locator("#revoke-link")).to_have_count(0)
    expect(page.locator("text=Suspend")).to_have_count(0)
    assert page.console_errors == []


def test_admin_revokes_after_sudo_and_validation_answers_revoked(admin_page, live_server):
    page = admin_page
    assert validate(live_server, ENTERPRISE_KEY, WORKSTATION, "1.5.0")["code"] == "VALID"
    _open_license(page, "perpetual.user2", ENTERPRISE_KEY)
    page.click("#revoke-link")
    page.wait_for_url("**/auth/sudo**")
    confirm_sudo(page, ADMIN_TOTP_SECRET)
    page.wait_for_url("**/revoke")
    page.fill("textarea[name=reason]", "Key posted on a public forum")
    page.click("main button[type=submit]")
    page.wait_for_url("**/admin/licenses/*")
    expect(page.locator("h1 [data-status=revoked]")).to_have_count(1)
    expect(page.locator("#history")).to_contain_text("Key posted on a public forum")
    expect(page.locator("#revoke-link")).to_have_count(0)
    answer = validate(live_server, ENTERPRISE_KEY, WORKSTATION, "1.5.0")
    assert (answer["valid"], answer["code"]) == (False, "REVOKED")
    assert page.console_errors == []
