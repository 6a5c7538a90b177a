"""The seeded admin signs in with a real TOTP code in headless Chromium."""
from tests.e2e.conftest import sign_in
from app.seed import ADMIN_TOTP_SECRET


def test_admin_signs_in_with_totp(page):
    sign_in(page, "admin.test@rephlo.ai", "AdminPassword123!", ADMIN_TOTP_SECRET, reuse=False)  # the forms
    assert page.locator("h1").inner_text().startswith("Welcome")
    assert page.console_errors == []


def test_wrong_password_shows_one_message(page):
    page.goto("/auth/login")
    page.fill("input[name=email]", "admin.test@rephlo.ai")
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit]")
    assert page.locator("text=Wrong email or password.").is_visible()
