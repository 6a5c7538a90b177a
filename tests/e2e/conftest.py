"""Browser tests: the real app in a subprocess on its own seeded database, driven by
Playwright in Debian's headless Chromium. Screenshots go to test-output/e2e/."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import urlopen

import pytest

from app.seed import ADMIN_TOTP_SECRET
from tests.support import dbs
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
def server_env():
    name = f"rephlo_e2e_{os.getpid()}"
    url = dbs.prepare_database(name)
    env = {**os.environ, "DATABASE_URL": url.replace("+psycopg", ""), "FLASK_APP": "wsgi",
           "SECRET_KEY": "e2e-secret", "JOBS_INLINE": "1", "REDIS_URL": "", "LOG_FORMAT": "text"}
    flask = [sys.executable, "-m", "flask"]
    subprocess.run(flask + ["db", "upgrade", "heads"], env=env, cwd=ROOT, check=True, capture_output=True)
    subprocess.run(flask + ["seed"], env=env, cwd=ROOT, check=True, capture_output=True)
    yield env
    dbs.drop_database(name)


@pytest.fixture(scope="session")
def live_server(server_env):
    port = _free_port()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    log = open(OUTPUT / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "flask", "run", "--port", str(port), "--no-reload"],
                            env=server_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urlopen(base + "/api/v1/health", timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("the app server did not start: see test-output/e2e/server.log")
            time.sleep(0.1)
    yield base
    proc.terminate()
    proc.wait(10)
    log.close()


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if IN_CI:
            raise RuntimeError(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server, request):
    context = browser.new_context(base_url=live_server)
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.console_errors = errors
    yield page
    page.screenshot(path=str(OUTPUT / f"{request.node.name}.png"), full_page=True)
    context.close()


def sign_in(page, email: str, password: str, totp_secret: str) -> None:
    page.goto("/auth/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.fill("input[name=code]", fresh_code(totp_secret))
    page.click("button[type=submit]")
    page.wait_for_url("**/admin")


# Authenticator secrets of seeded staff enrolled during this test session (by sign_in_staff).
ENROLLED: dict[str, str] = {}


def sign_in_staff(page, email: str, password: str) -> str:
    """Sign a seeded staff member in; the first time, enrol their authenticator from the secret
    the page shows and keep it for the rest of the session (so tests in any order can share
    the same persona). Returns the TOTP secret."""
    import re

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
    page.fill("input[name=code]", fresh_code(secret))
    page.click("button[type=submit]")
    page.goto("/admin")
    page.wait_for_url("**/admin")
    return secret


def confirm_sudo(page, totp_secret: str) -> None:
    """If the sudo prompt is showing, answer it with a fresh code."""
    if "/auth/sudo" in page.url:
        page.fill("input[name=code]", fresh_code(totp_secret))
        page.click("main button[type=submit]")  # not the navigation's Sign out button


@pytest.fixture
def admin_page(page):
    sign_in(page, "admin.test@rephlo.ai", "AdminPassword123!", ADMIN_TOTP_SECRET)
    return page
