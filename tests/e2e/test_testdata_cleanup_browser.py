"""The seeded super admin deletes all test data and watches the progress bar fill.

The personas are test data: this test runs its own server on its own database, with a real
RQ worker (Redis database 14), so the other browser tests keep their personas and the bar
really moves while the job runs.
"""
from __future__ import annotations

import os
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.e2e.conftest import (ADMIN_TOTP_SECRET, OUTPUT, counts_table, delete_all_test_data, open_page, own_server,
                                sign_in, sign_in_staff)
from tests.sandbox.cleanup_factories import insert_owned_rows, insert_users

REDIS_URL = os.environ.get("TEST_REDIS_URL_CLEANUP", "redis://127.0.0.1:6379/14")
pytestmark = pytest.mark.redis


def _forty_qa_users(engine, env) -> None:
    """Enough test rows for the job to take a few seconds."""
    import app.models  # noqa: F401  (the tables, for the factories)

    with Session(engine) as session:
        ids = insert_users(session, 40, test=True, expires_in=timedelta(days=3), label="qa")
        insert_owned_rows(session, ids, is_test=True)
        session.commit()


@pytest.fixture(scope="module")
def cleanup_server():
    with own_server("cleanup", REDIS_URL, prepare=_forty_qa_users,
                    extra_env={"TEST_DATA_CLEANUP_BATCH_SIZE": "20", "TEST_DATA_CLEANUP_PAUSE_MS": "150"}) as server:
        yield server


@pytest.fixture
def cleanup_page(browser, cleanup_server, request):
    with open_page(browser, cleanup_server["base"], OUTPUT / f"{request.node.name}.png", 15_000) as page:
        yield page


def test_super_admin_deletes_all_test_data_and_watches_the_progress(cleanup_page, cleanup_server):
    page = cleanup_page
    secret = sign_in_staff(page, "super.admin@rephlo.ai", "SuperAdminPassword123!")  # enrols its authenticator
    page.click("nav >> text=Test data")
    page.wait_for_url("**/admin/test-data")
    with cleanup_server["engine"].connect() as conn:  # seeded personas and service accounts + 40 QA users
        test_users = conn.execute(text("SELECT count(*) FROM users WHERE account_type = 'test'")).scalar()
    assert test_users >= 49
    assert page.locator("#metric-test-share .figure").inner_text().startswith(str(test_users))
    with cleanup_server["engine"].connect() as conn:
        customers = conn.execute(text("SELECT count(*) FROM users WHERE is_test AND NOT is_staff")).scalar()
    preview: dict = {}
    seen = delete_all_test_data(page, secret, "Fresh start before the release test", preview=preview)
    assert preview["Test accounts (customers and twins)"] == str(customers)  # QA and seeded customers; staff stay
    assert counts_table(page, "#cleanup-summary-counts") == preview  # what it showed is what went
    assert any(v not in ("0", "100") for v in seen), f"the bar never moved between 0 and 100: {seen}"
    summary = page.locator("#cleanup-summary").inner_text()
    assert "rows deleted" in summary and "Test accounts" in summary and "super.admin@rephlo.ai" in summary
    assert page.console_errors == []

    with cleanup_server["engine"].connect() as conn:
        left = conn.execute(text("SELECT email FROM users WHERE is_test AND NOT is_staff")).scalars().all()
        staff = conn.execute(text("SELECT count(*) FROM users WHERE is_test AND is_staff")).scalar()
    assert left == [] and staff >= 6  # test customers went; staff personas stay (issue 14)
    page.goto("/admin/test-data")
    assert page.locator("#metric-last-run").inner_text().startswith("Last cleanup")
    assert "all test data" in page.locator("#cleanup-runs").inner_text()
    # Staff can still sign in afterwards.
    page.click("nav button:has-text('Sign out')")
    sign_in(page, "admin.test@rephlo.ai", "AdminPassword123!", ADMIN_TOTP_SECRET)
    page.goto("/admin/test-data")
    assert page.locator("#metric-last-run").is_visible()

