"""The seeded super admin deletes all test data and watches the progress bar fill.

The personas are test data: this test runs its own server on its own database, with a real
RQ worker (Redis database 14), so the other browser tests keep their personas and the bar
really moves while the job runs.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from urllib.request import urlopen

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from tests.e2e.conftest import IN_CI, OUTPUT, ROOT, _free_port, confirm_sudo
from tests.support import dbs
from tests.support.totp import fresh_code
from tests.testdata.cleanup_factories import insert_owned_rows, insert_users

REDIS_URL = os.environ.get("TEST_REDIS_URL_CLEANUP", "redis://127.0.0.1:6379/14")
pytestmark = pytest.mark.redis


def _redis_ready() -> bool:
    from redis import Redis

    try:
        return bool(Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except Exception:
        return False


@pytest.fixture(scope="module")
def cleanup_server():
    if not _redis_ready():
        if IN_CI:
            raise RuntimeError(f"Redis is not reachable at {REDIS_URL}")
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    from redis import Redis

    Redis.from_url(REDIS_URL).flushdb()
    name = f"rephlo_e2e_cleanup_{os.getpid()}"
    url = dbs.prepare_database(name)
    env = {**os.environ, "DATABASE_URL": url, "FLASK_APP": "wsgi", "SECRET_KEY": "e2e-cleanup", "JOBS_INLINE": "0",
           "REDIS_URL": REDIS_URL, "LOG_FORMAT": "text", "TEST_DATA_CLEANUP_BATCH_SIZE": "20",
           "TEST_DATA_CLEANUP_PAUSE_MS": "150"}
    flask = [sys.executable, "-m", "flask"]
    subprocess.run(flask + ["db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True)
    subprocess.run(flask + ["seed"], env=env, cwd=ROOT, check=True, capture_output=True)
    import app.models  # noqa: F401  (the tables, for the factories)

    engine = create_engine(url)
    with Session(engine) as session:  # enough test rows for the job to take a few seconds
        ids = insert_users(session, 40, test=True, expires_in=timedelta(days=3), label="qa")
        insert_owned_rows(session, ids, is_test=True)
        session.commit()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = open(OUTPUT / "cleanup-server.log", "w")
    server = subprocess.Popen(flask + ["run", "--port", str(port), "--no-reload"], env=env, cwd=ROOT,
                              stdout=log, stderr=subprocess.STDOUT)
    worker = subprocess.Popen(flask + ["jobs", "worker", "--queues", "default"], env=env, cwd=ROOT,
                              stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urlopen(base + "/api/v1/health", timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError("the app server did not start: see test-output/e2e/cleanup-server.log")
                time.sleep(0.1)
        yield {"base": base, "engine": engine}
    finally:
        for proc in (worker, server):
            proc.terminate()
            proc.wait(10)
        log.close()
        engine.dispose()
        dbs.drop_database(name)


@pytest.fixture
def cleanup_page(browser, cleanup_server, request):
    context = browser.new_context(base_url=cleanup_server["base"])
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.console_errors = errors
    yield page
    page.screenshot(path=str(OUTPUT / f"{request.node.name}.png"), full_page=True)
    context.close()


def test_super_admin_deletes_all_test_data_and_watches_the_progress(cleanup_page, cleanup_server):
    page = cleanup_page
    # The seeded super admin has no authenticator yet: enrol it from the page's own secret.
    page.goto("/auth/login")
    page.fill("input[name=email]", "super.admin@rephlo.ai")
    page.fill("input[name=password]", "SuperAdminPassword123!")
    page.click("button[type=submit]")
    page.wait_for_url("**/auth/enrol")
    secret = page.locator("#totp-secret").inner_text().strip()
    page.fill("input[name=code]", fresh_code(secret))
    page.click("main button[type=submit]")

    page.goto("/admin")
    page.click("nav >> text=Test data")
    page.wait_for_url("**/admin/test-data")
    with cleanup_server["engine"].connect() as conn:  # seeded personas and service accounts + 40 QA users
        test_users = conn.execute(text("SELECT count(*) FROM users WHERE account_type = 'test'")).scalar()
    assert test_users >= 49
    assert page.locator("#metric-test-share .figure").inner_text().startswith(str(test_users))
    page.click("#delete-all-link")
    confirm_sudo(page, secret)
    page.wait_for_url("**/admin/test-data/delete-all*")
    page.check("input[name=confirm]")
    page.fill("textarea[name=reason]", "Fresh start before the release test")
    page.click("#delete-all-submit")
    page.wait_for_url("**/admin/test-data/jobs/*")
    job_url = page.url

    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        value = page.get_attribute("#cleanup-progress-bar", "value")
        if not seen or seen[-1] != value:
            seen.append(value)
        if value == "100" and page.locator("#cleanup-summary").count():
            break
        time.sleep(0.1)
    assert seen[-1] == "100", seen
    assert any(v not in ("0", "100") for v in seen), f"the bar never moved between 0 and 100: {seen}"
    assert page.url == job_url  # it filled in place, polled by HTMX, no reload
    summary = page.locator("#cleanup-summary").inner_text()
    assert "rows deleted" in summary and "users" in summary and "super.admin@rephlo.ai" in summary
    assert page.console_errors == []

    with cleanup_server["engine"].connect() as conn:
        left = conn.execute(text("SELECT email FROM users WHERE is_test")).scalars().all()
    assert left == ["super.admin@rephlo.ai"]
    page.goto("/admin/test-data")
    assert page.locator("#metric-last-run").inner_text().startswith("Last cleanup")
    assert "all test data" in page.locator("#cleanup-runs").inner_text()

