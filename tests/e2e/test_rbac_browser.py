"""The seeded admin finds a user, passes sudo, assigns the Ops role through the HTMX form with
"Notify the user", and sees the change in the role change log and the notice in the outbox;
the roles matrix and audit log open from the nav."""
from __future__ import annotations

from playwright.sync_api import expect

from app.seed import ADMIN_TOTP_SECRET
from tests.e2e.conftest import confirm_sudo


def _open_user(page, email: str) -> None:
    page.click("nav >> text=Users")
    page.wait_for_url("**/admin/users")  # loaded: HTMX listens to the filters
    page.select_option("#scope", "all")
    page.fill("#q", email)
    link = page.locator(f"#user-results a:text-is('{email}')")
    expect(link).to_have_count(1)  # the live filter swapped the results in
    link.click()
    expect(page.locator("h1")).to_have_text("Free User")  # the customer page
    page.click("#profile-link")  # roles live on the user's profile page
    expect(page.locator("h1")).to_have_text("Free User")


def test_admin_assigns_ops_with_htmx_and_sees_it_in_the_change_log_and_outbox(admin_page):
    page = admin_page
    _open_user(page, "free.user@example.com")
    page.click("#confirm-sudo")
    confirm_sudo(page, ADMIN_TOTP_SECRET)
    page.wait_for_url("**/admin/users/*")
    expect(page.locator("#confirm-sudo")).to_have_count(0)

    page.evaluate("window.__samePage = true")  # survives only if the form swaps in place
    page.click("#assign-role summary")
    page.select_option("#assign-role_id", label="Operations")
    page.fill("#assign-reason", "New team member - operations")
    page.fill("#assign-expires_at", "2020-01-01T00:00")
    page.click("#assign-role button[type=submit]")
    expect(page.locator("#access")).to_contain_text("The expiry must be in the future.")  # 422 swapped in
    expect(page.locator("#roles-table tr[data-role=ops]")).to_have_count(0)

    page.fill("#assign-expires_at", "2030-12-31T18:00")
    page.check("#assign-notify_user")
    page.click("#assign-role button[type=submit]")
    expect(page.locator("#access")).to_contain_text("Role assigned.")
    expect(page.locator("#roles-table tr[data-role=ops]")).to_contain_text("user notified by email")
    expect(page.locator("#roles-table tr[data-role=ops][data-status=active]")).to_have_count(1)
    expect(page.locator("#access code[data-effective='subscriptions.create']")).to_have_count(1)
    assert page.evaluate("window.__samePage") is True

    page.click("nav >> text=Role changes")
    page.wait_for_url("**/admin/roles/changes")
    page.check("#include_test")  # free.user is a test account, so its rows are test data
    row = page.locator("#changes-table tr[data-action=role_assigned][data-target='free.user@example.com']")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("New team member - operations")
    expect(row).to_contain_text("admin.test@rephlo.ai")

    page.click("nav >> text=Outbox")  # free.user is a test account: its notice is kept, suppressed
    expect(page.locator("#outbox-production-only")).to_be_visible()  # "include test data" follows the session
    notice = page.locator("#outbox-rows tr", has_text="You now have the Operations role in Rephlo Admin")
    expect(notice).to_have_count(1)
    expect(notice).to_contain_text("free.user@example.com")
    expect(notice).to_contain_text("Suppressed")
    notice.locator("a").click()
    expect(page.locator("pre")).to_contain_text("admin.test@rephlo.ai gave you the Operations role")
    expect(page.locator("pre")).to_contain_text("It expires on 2030-12-31 at 18:00 UTC.")
    # Chromium reports the deliberate 422 as a failed resource; nothing else (no CSP or JS error)
    assert [e for e in page.console_errors if "status of 422" not in e] == []
    assert len(page.console_errors) == 1


def test_roles_matrix_and_audit_log_open_from_the_nav(admin_page):
    page = admin_page
    page.click("nav >> text=Roles")
    expect(page.locator("#permission-matrix td[data-role=ops][data-permission='subscriptions.create'] "
                        "[aria-label=yes]")).to_have_count(1)
    expect(page.locator("#create-role")).to_have_count(0)  # admin is not a super admin
    page.click("nav >> text=Audit log")
    page.wait_for_url("**/admin/audit")
    page.check("#include_test")
    page.fill("#actor", "admin.test")
    expect(page.locator("#log-results tr[data-action='auth.login_succeeded']").first).to_be_visible()
    expect(page.locator("#export-csv")).to_have_attribute("href", "/admin/audit/export.csv?actor=admin.test&include_test=1")
    assert page.console_errors == []
