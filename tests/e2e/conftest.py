"""Browser tests: the real app in a subprocess on its own seeded database, driven by
Playwright in Debian's headless Chromium. Screenshots go to test-output/e2e/."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse
from urllib.request import urlopen

import pytest

from app.seed import ADMIN_TOTP_SECRET
from tests.support.services import redis_or_unavailable, unavailable
from tests.support import dbs
from tests.support.stripe_emulator import localstripe
from tests.support.totp import fresh_code

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output" / "e2e"
CHROMIUM = "/usr/bin/chromium"
IN_CI = os.environ.get("CI", "").lower() == "true"

pytestmark = pytest.mark.e2e


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def _transaction():
    """Browser tests talk to a separate server process: no shared transaction here."""
    yield


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def stripe_emulator():
    """localstripe for the browser-test servers: a refund made in the browser really goes to Stripe.
    The seed stays Stripe-free (its template is made without it); a test that needs a payment
    taken through Stripe makes one (tests/e2e/charged_twice.py)."""
    with localstripe() as base:
        yield base


@pytest.fixture(scope="session")
def server_env(stripe_emulator):
    name = f"rephlo_e2e_{os.getpid()}"
    url = seeded_database(name)
    env = {**os.environ, "DATABASE_URL": url.replace("+psycopg", ""), "FLASK_APP": "wsgi",
           "SECRET_KEY": "e2e-secret", "JOBS_INLINE": "1", "REDIS_URL": "", "LOG_FORMAT": "text",
           "SESSION_COOKIE_SECURE": "0",  # plain HTTP on 127.0.0.1
           "STRIPE_API_BASE": stripe_emulator, "STRIPE_API_KEY": "sk_test_e2e", "STRIPE_TEST_API_KEY": "sk_test_e2e",
           "STRIPE_MAX_RETRIES": "0"}
    yield env
    dbs.drop_database(name)


def _migrate_and_seed(env: dict) -> None:
    flask = [sys.executable, "-m", "flask"]
    subprocess.run(flask + ["db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True)
    subprocess.run(flask + ["seed"], env=env, cwd=ROOT, check=True, capture_output=True)


# The session's migrated and seeded template database, made on first use (dropped at the end).
_TEMPLATE: list[str] = []


def seeded_database(name: str) -> str:
    """A database `name` holding the migrated and seeded product; returns its URL.

    Migrating and seeding takes two app start-ups in subprocesses (many seconds on a busy machine);
    they run once per session into a template, and every server's database is a copy of it
    (CREATE DATABASE ... TEMPLATE). Seeding reads no configuration, so one template serves all."""
    if dbs.backend() != "postgresql":
        url = dbs.prepare_database(name)
        _migrate_and_seed({**os.environ, "DATABASE_URL": url, "FLASK_APP": "wsgi", "SECRET_KEY": "e2e-seed"})
        return url
    if not _TEMPLATE:
        template = f"rephlo_e2e_seeded_{os.getpid()}"
        url = dbs.prepare_database(template)
        _migrate_and_seed({**os.environ, "DATABASE_URL": url, "FLASK_APP": "wsgi", "SECRET_KEY": "e2e-seed",
                           "JOBS_INLINE": "1", "REDIS_URL": "", "LOG_FORMAT": "text"})
        _TEMPLATE.append(template)
    return dbs.clone_database(name, _TEMPLATE[0])


@pytest.fixture(scope="session", autouse=True)
def _drop_seeded_template():
    yield
    while _TEMPLATE:
        dbs.drop_database(_TEMPLATE.pop())


def _wait_for(base: str, proc: subprocess.Popen, log_name: str, timeout: float = 90) -> None:
    """Until the server answers; on a loaded machine its imports alone can take many seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urlopen(base + "/api/v1/health", timeout=2)
            return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"the app server did not start: see test-output/e2e/{log_name}")
            time.sleep(0.1)
    raise RuntimeError(f"the app server did not answer within {timeout:.0f} s: see test-output/e2e/{log_name}")


@pytest.fixture(scope="session")
def live_server(server_env):
    port = _free_port()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    log = open(OUTPUT / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "flask", "run", "--port", str(port), "--no-reload"],
                            env=server_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    _wait_for(base, proc, "server.log")
    yield base
    stop(proc)
    forget_sign_ins(base)
    log.close()


def stop(proc: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited in `grace` seconds (an RQ worker mid-job
    waits for its job before a warm shutdown; the test is over, nothing needs to finish)."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def require_redis(url: str) -> None:
    """Skip (fail under CI) when Redis does not answer at `url`; empty its database otherwise."""
    redis_or_unavailable(url).flushdb()


@contextmanager
def own_server(label: str, redis_url: str, extra_env: dict | None = None,
               prepare: Callable | None = None):
    """An app server and a real RQ worker (queue `default`) on a freshly seeded database of their own
    (a copy of the session's seeded template),
    for browser tests that change what the shared server's tests rely on (deleting test data).

    `prepare(engine, env)` runs after the seed and before the server starts. Yields base, engine, env.
    """
    from sqlalchemy import create_engine

    require_redis(redis_url)
    name = f"rephlo_e2e_{label}_{os.getpid()}"
    url = seeded_database(name)
    env = {**os.environ, "DATABASE_URL": url, "FLASK_APP": "wsgi", "SECRET_KEY": f"e2e-{label}", "JOBS_INLINE": "0",
           "REDIS_URL": redis_url, "LOG_FORMAT": "text", "SESSION_COOKIE_SECURE": "0", **(extra_env or {})}
    flask = [sys.executable, "-m", "flask"]
    engine = create_engine(url)
    if prepare is not None:
        prepare(engine, env)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    log_name = f"{label}-server.log"
    log = open(OUTPUT / log_name, "w")
    port = _free_port()
    server = subprocess.Popen(flask + ["run", "--port", str(port), "--no-reload"], env=env, cwd=ROOT,
                              stdout=log, stderr=subprocess.STDOUT)
    worker = subprocess.Popen(flask + ["jobs", "worker", "--queues", "default"], env=env, cwd=ROOT,
                              stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(base, server, log_name)
        yield {"base": base, "engine": engine, "env": env}
    finally:
        # RQ 3's worker often hangs for good after "unsubscribing" (closing its pubsub): 3 s, then killed.
        stop(worker, grace=3)
        stop(server)
        forget_sign_ins(base)  # its port may serve another server later
        log.close()
        engine.dispose()
        dbs.drop_database(name)


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        unavailable(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


@contextmanager
def open_page(browser, base: str, screenshot: Path, timeout_ms: int = 10_000):
    """A fresh browser context on `base`; console errors collected in page.console_errors;
    a full-page screenshot saved at the end."""
    context = browser.new_context(base_url=base)
    page = context.new_page()
    page.base = base  # whose sign-ins sign_in may reuse
    page.set_default_timeout(timeout_ms)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.console_errors = errors
    try:
        yield page
        page.screenshot(path=str(screenshot), full_page=True)
    finally:
        context.close()


@pytest.fixture
def page(browser, live_server, request):
    with open_page(browser, live_server, OUTPUT / f"{request.node.name}.png") as page:
        yield page


# Browser state (Playwright's storage_state) right after each persona's first real sign-in, per
# server: {(base, email): {"state": ..., "secret": totp secret}}. A sign-in costs a password hash
# and a TOTP code (at most three per 30 s per secret and server: fresh_code waits out the rest).
_SIGNED_IN: dict[tuple[str, str], dict] = {}


def _code_scope(page) -> str:
    """Whose database remembers the codes used: the server's (fresh_code's scope)."""
    return getattr(page, "base", None) or urlparse(page.url)._replace(path="", query="", fragment="").geturl()


def forget_sign_ins(base: str) -> None:
    for key in [key for key in _SIGNED_IN if key[0] == base]:
        del _SIGNED_IN[key]


def _remember_sign_in(page, email: str, secret: str) -> None:
    base = getattr(page, "base", None)
    if base is not None:
        _SIGNED_IN[(base, email)] = {"state": page.context.storage_state(), "secret": secret}


def _reuse_sign_in(page, email: str) -> str | None:
    """On a page that has been nowhere yet, restore the state of an earlier sign-in of `email` on the
    same server and open /admin. Returns the persona's TOTP secret, or None when there is nothing to
    reuse or the server no longer honours it (signed out everywhere, idle timeout): sign in for real."""
    remembered = _SIGNED_IN.get((getattr(page, "base", None), email))
    if remembered is None or page.url != "about:blank":
        return None
    page.context.add_cookies(remembered["state"]["cookies"])
    page.goto("/admin")
    if urlparse(page.url).path != "/admin":
        page.context.clear_cookies()
        del _SIGNED_IN[(page.base, email)]
        return None
    _remember_sign_in(page, email, remembered["secret"])  # its last-seen time moves on: no idle timeout
    return remembered["secret"]


def sign_in(page, email: str, password: str, totp_secret: str, *, reuse: bool = True) -> None:
    """Signed in on /admin. A fresh page reuses this persona's earlier sign-in on the same server;
    `reuse=False` (or a page already in use, e.g. after signing out) fills the forms."""
    if reuse and _reuse_sign_in(page, email) is not None:
        return
    page.goto("/auth/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.fill("input[name=code]", fresh_code(totp_secret, _code_scope(page)))
    page.click("button[type=submit]")
    page.wait_for_url("**/admin")
    _remember_sign_in(page, email, totp_secret)


# Authenticator secrets of seeded staff enrolled during this test session (by sign_in_staff).
ENROLLED: dict[str, str] = {}


def sign_in_staff(page, email: str, password: str, *, reuse: bool = True) -> str:
    """Sign a seeded staff member in; the first time, enrol their authenticator from the secret
    the page shows and keep it for the rest of the session (so tests in any order can share
    the same persona). Reuses an earlier sign-in as sign_in does. Returns the TOTP secret."""
    import re

    if reuse and (secret := _reuse_sign_in(page, email)) is not None:
        return secret
    page.goto("/auth/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/auth/(enrol|verify).*"))
    if "/auth/enrol" in page.url:
        secret = ENROLLED[email] = page.locator("#totp-secret").inner_text().strip()
    else:
        assert email in ENROLLED, f"{email} was enrolled outside sign_in_staff: its secret is unknown"
        secret = ENROLLED[email]
    page.fill("input[name=code]", fresh_code(secret, _code_scope(page)))
    page.click("button[type=submit]")
    page.wait_for_load_state()  # let the code's POST land before leaving the page
    page.goto("/admin")
    page.wait_for_url("**/admin")
    _remember_sign_in(page, email, secret)
    return secret


def confirm_sudo(page, totp_secret: str) -> None:
    """If the sudo prompt is showing, answer it with a fresh code."""
    if "/auth/sudo" in page.url:
        page.fill("input[name=code]", fresh_code(totp_secret, _code_scope(page)))
        page.click("main button[type=submit]")  # the nav's "Sign out" is a submit button too


def create_sandbox_key(page, owner_email: str, name: str) -> str:
    """On the API keys screen: a sandbox key for `owner_email`; returns the key the page shows once."""
    page.click("nav >> text=API keys")
    page.click("text=New API key")
    page.fill("input[name=name]", name)
    page.fill("input[name=owner]", owner_email)
    page.select_option("select[name=key_type]", "sandbox")
    page.click("button:has-text('Create key')")
    key = page.locator("#new-api-key").inner_text().strip()
    assert key.startswith("rph_test_") and "Shown once" in page.locator("#once-panel").inner_text()
    return key


def counts_table(page, selector: str) -> dict[str, str]:
    """{what: rows} of a delete-all counts table (the preview or the summary)."""
    rows = page.locator(f"{selector} tbody tr")
    return {rows.nth(i).locator("td").nth(0).inner_text(): rows.nth(i).locator("td").nth(1).inner_text()
            for i in range(rows.count())}


def delete_all_test_data(page, totp_secret: str, reason: str, timeout: float = 60.0,
                         preview: dict | None = None) -> list[str]:
    """From the Test data screen, as a super admin: "delete all test data" (through sudo), then
    watch the job's progress bar, polled in place by HTMX, until it reaches 100 and the summary
    shows. Returns the successive values the bar showed."""
    page.click("#delete-all-link")
    confirm_sudo(page, totp_secret)
    page.wait_for_url("**/admin/test-data/delete-all*")
    if preview is not None:
        preview.update(counts_table(page, "#delete-all-preview-counts"))
    page.check("input[name=confirm]")
    page.fill("textarea[name=reason]", reason)
    page.click("#delete-all-submit")
    page.wait_for_url("**/admin/test-data/jobs/*")
    job_url = page.url
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = page.get_attribute("#cleanup-progress-bar", "value")
        if not seen or seen[-1] != value:
            seen.append(value)
        if value == "100" and page.locator("#cleanup-summary").count():
            break
        time.sleep(0.1)
    assert seen[-1] == "100", seen
    assert page.url == job_url  # it filled in place, no reload
    return seen


@pytest.fixture
def admin_page(page):
    sign_in(page, "admin.test@rephlo.ai", "AdminPassword123!", ADMIN_TOTP_SECRET)
    return page
