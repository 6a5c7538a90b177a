"""The Jobs screen shows the periodic schedule with each job's last run."""


def test_jobs_screen_lists_periodic_jobs(admin_page):
    page = admin_page
    page.click("nav >> text=Jobs")
    page.wait_for_url("**/admin/jobs")
    assert page.locator("text=No Redis is configured").is_visible()
    assert page.locator("td", has_text="expire-rbac").first.is_visible()
    assert page.console_errors == []
