"""The embedded default as `make run` starts it: scripts/run.sh on its own port, with its own
SQLite file in a temporary INSTANCE_DIR, no Redis and no other process (no worker, no cron).

One server for the module, in this order: 16 parallel API clients (zero 5xx, every charge
once, balances equal to ledgers); a browser deletes all test data and sees the progress bar
between 0 and 100 (after the clients: it deletes their key); the scheduler (an every-minute
job runs on its schedule within 90 s of the start, the missed nightly cleanup removed an
expired test account), last so that its wait for the next minute overlaps the others.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from app.sandbox.seed import SEED_SANDBOX_KEY
from tests.e2e.conftest import OUTPUT, ROOT, _free_port, delete_all_test_data, open_page, sign_in_staff
from tests.support.worlds import balance_mismatches
from tests.sandbox.cleanup_factories import insert_users

CLIENTS, REQUESTS = 16, 100
BANNER = "Rephlo Admin is running"
# Keys and the license endpoints are rate limited per key and per IP: lifted here, where one
# key and one IP make all the traffic; the delete-all job runs slowly enough to be watched.
ENV = {"API_RATE_LIMIT_TEST": "100000 per minute", "API_RATE_LIMIT_LIVE": "100000 per minute",
       "LICENSE_API_RATE_LIMIT": "100000 per minute", "TEST_DATA_CLEANUP_BATCH_SIZE": "200",
       "TEST_DATA_CLEANUP_PAUSE_MS": "150", "LOG_FORMAT": "text"}
UNSET = ("DATABASE_URL", "REDIS_URL", "JOBS_INLINE", "JOBS_THREAD", "EMBEDDED_SCHEDULER", "SECRET_KEY", "PORT",
         "STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET")


def _wait_for_banner(proc: subprocess.Popen, log_path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if BANNER in log_path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"scripts/run.sh stopped: see {log_path}")
        time.sleep(0.2)
    raise RuntimeError(f"scripts/run.sh printed no start-up banner within {timeout:.0f} s: see {log_path}")


def _migrate(url: str) -> None:
    """The schema, in this process (run.sh's own `flask db upgrade` then finds nothing to do)."""
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "JOBS_INLINE": True, "REDIS_URL": None,
                      "SECRET_KEY": "embedded-migrate"})
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    instance = tmp_path_factory.mktemp("embedded")
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update(ENV, INSTANCE_DIR=str(instance), PORT=str(_free_port()), FLASK_APP="wsgi",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    # An expired test account waiting before the start: nobody runs the nightly cleanup by hand.
    url = f"sqlite:///{instance / 'rephlo.db'}"
    _migrate(url)
    engine = create_engine(url)
    with Session(engine) as session:
        [expired] = insert_users(session, 1, test=True, expires_in=timedelta(days=-1), label="expired")
        session.commit()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    log_path = OUTPUT / "embedded-run.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "run.sh")], env=env, cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_banner(proc, log_path)
        yield {"base": f"http://127.0.0.1:{env['PORT']}", "engine": engine, "log": log_path,
               "expired": expired, "started": datetime.now(timezone.utc)}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()
        engine.dispose()


def call(base: str, method: str, path: str, body: dict | None = None, key: str | None = None,
         bearer: str | None = SEED_SANDBOX_KEY) -> tuple[int, dict]:
    # A client app's own user agent (urllib's is taken for a bot by the coupons' fraud checks).
    headers = {"Content-Type": "application/json", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) RephloDesktop/3.0"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    if key:
        headers["Idempotency-Key"] = key
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urlopen(Request(base + path, data=data, method=method, headers=headers), timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_start_up_banner_tells_a_new_user_how_to_sign_in_and_call_the_api(embedded):
    banner = embedded["log"].read_text()
    banner = banner[banner.index(BANNER):]
    assert f"{embedded['base']}/admin" in banner and "admin.test@rephlo.ai / AdminPassword123!" in banner
    assert "TOTP code" in banner and "JBSWY3DPEHPK3PXPREPHLOADMIN23456" in banner and SEED_SANDBOX_KEY in banner


def test_sixteen_parallel_clients_get_no_5xx_and_every_charge_lands_once(embedded):
    base, run = embedded["base"], uuid.uuid4().hex[:8]
    fingerprint = lambda n: uuid.UUID(int=n).hex * 2  # noqa: E731  (64 hex characters)

    def client(n: int) -> list[tuple[str, int, dict, str | None]]:
        answers = []
        for i in range(REQUESTS):
            kind = ("deduct", "balance", "deduct", "redeem", "deduct", "activate", "balance", "replay", "deduct",
                    "balance")[i % 10]
            if kind in ("deduct", "replay"):
                request_id = f"par-{run}-{n}-{i - 7 if kind == 'replay' else i}"  # a replay repeats deduct i-7
                status, body = call(base, "POST", "/api/v1/credits/calculate-and-deduct",
                                    {"model": "llama-2-70b", "input_tokens": 500, "output_tokens": 300,
                                     "request_id": request_id}, key=request_id)
            elif kind == "balance":
                status, body = call(base, "GET", "/api/v1/credits/balance")
                request_id = None
            elif kind == "redeem":
                request_id = f"coupon-{run}-{n}-{i}"
                status, body = call(base, "POST", "/api/v1/coupons/redeem",
                                    {"code": "SAVE25", "amount": "99.99", "tier": "pro", "billing_cycle": "monthly"},
                                    key=request_id)
            else:
                request_id = f"device-{run}-{n}-{i}"
                status, body = call(base, "POST", "/api/v1/licenses/activate",
                                    {"license_key": "PERM-2025-ENT-002-GOLD", "fingerprint": fingerprint(n * 1000 + i),
                                     "device_name": f"client {n}"}, key=request_id, bearer=None)  # the key is the auth
            answers.append((kind, status, body, request_id))
        return answers

    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = [a for batch in pool.map(client, range(CLIENTS)) for a in batch]
    elapsed = time.monotonic() - started
    print(f"\n{len(answers)} requests from {CLIENTS} clients in {elapsed:.1f} s")

    assert len(answers) == CLIENTS * REQUESTS
    errors = [(kind, status, body) for kind, status, body, _ in answers if status >= 500]
    assert errors == [], errors[:5]
    charged = {rid: body["usage_id"] for kind, status, body, rid in answers if kind == "deduct" and status == 201}
    assert len(charged) == CLIENTS * 4 * REQUESTS // 10, "every new charge is made"
    replays = [(rid, status, body) for kind, status, body, rid in answers if kind == "replay"]
    assert all(status == 200 and body["usage_id"] == charged[rid] for rid, status, body in replays), replays[:3]
    assert all(status == 200 for kind, status, _, _ in answers if kind == "balance")
    redeemed = [body["redemption"]["redemption_status"] for kind, status, body, _ in answers if kind == "redeem"]
    assert redeemed.count("success") == 1, sorted(set(redeemed))  # one per user, however many ask at once
    with Session(embedded["engine"]) as session:
        usage = session.execute(text("SELECT request_id, id FROM token_usage WHERE request_id LIKE :p"),
                                {"p": f"par-{run}-%"}).all()
        assert dict((r, i) for r, i in usage) == charged  # each charge once, none from a replay
        assert balance_mismatches(session, production_only=False) == []
        seats = session.execute(text(
            "SELECT l.max_activations, COUNT(a.id) FROM licenses l JOIN license_activations a ON a.license_id = l.id"
            " AND a.status = 'active' WHERE l.license_key = 'PERM-2025-ENT-002-GOLD' GROUP BY l.id")).one()
        assert seats[1] == seats[0]  # filled to its limit, never past it


@pytest.fixture
def embedded_page(browser, embedded, request):
    with open_page(browser, embedded["base"], OUTPUT / f"{request.node.name}.png", 15_000) as page:
        yield page


def test_empty_production_explains_itself_and_delete_all_progress_moves(embedded_page):
    page = embedded_page
    secret = sign_in_staff(page, "super.admin@rephlo.ai", "SuperAdminPassword123!")
    # A fresh install has only test data: the production dashboard says so, with the switch.
    page.goto("/admin")
    notice = page.locator("#production-empty")
    assert "No production data yet" in notice.inner_text() and "test rows" in notice.inner_text()
    page.click("#production-empty-include-test")
    page.wait_for_selector(".test-banner")
    assert page.locator("#production-empty").count() == 0
    page.click("nav >> text=Test data")
    page.wait_for_url("**/admin/test-data")
    seen = delete_all_test_data(page, secret, "Fresh start on the embedded default")
    assert any(0 < int(v) < 100 for v in seen if v is not None), f"the bar never showed a value between 0 and 100: {seen}"
    assert page.console_errors == []


def test_periodic_jobs_run_on_their_schedule_without_any_other_process(embedded):
    """The every-minute job runs again after start-up on its own; the nightly cleanup, missed
    while the app was down, ran at start and removed the expired test account."""
    base, started = embedded["base"], embedded["started"]
    next_minute = started.replace(second=0, microsecond=0) + timedelta(minutes=1)
    deadline = time.monotonic() + 90 - (datetime.now(timezone.utc) - started).total_seconds()
    cron = {}
    while time.monotonic() < deadline:
        cron = {c["name"]: c for c in call(base, "GET", "/api/v1/health/redis")[1]["cron"]}
        ran = cron["expire-rbac"]["last_run_at"]
        if ran and datetime.fromisoformat(ran) >= next_minute:
            break
        time.sleep(1)
    assert datetime.fromisoformat(cron["expire-rbac"]["last_run_at"]) >= next_minute, cron["expire-rbac"]
    assert all(c["last_run_at"] for c in cron.values()), [n for n, c in cron.items() if not c["last_run_at"]]
    health = call(base, "GET", "/api/v1/health/redis")[1]
    assert (health["redis"], health["jobs"], health["scheduler"]) == ("not_configured", "thread", "embedded")
    assert cron["cleanup-test-data"]["last_status"] == "finished"
    with Session(embedded["engine"]) as session:
        assert session.scalar(text("SELECT COUNT(*) FROM users WHERE id = :id"), {"id": embedded["expired"]}) == 0
        nightly = session.execute(text("SELECT status, deleted FROM cleanup_runs WHERE trigger = 'schedule'")).all()
        assert [(status, json.loads(deleted)["users"]) for status, deleted in nightly] == [("finished", 1)]
        assert session.execute(text("SELECT COUNT(*) FROM scheduler_leases")).scalar() == 1
