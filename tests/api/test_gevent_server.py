"""The deployment's web server: gunicorn with gevent workers (docs/deployment.md), on PostgreSQL
and Redis, under concurrent calculate-and-deduct calls. Greenlets share a process, so this
checks what threads used to guarantee: psycopg and Redis yield to each other, the pool hands
out connections, test mode never leaks from a sandbox request into a live one, and the
ledger stays exact."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
from sqlalchemy import create_engine, text

from tests.support import dbs
from tests.support.services import redis_or_unavailable
from tests.support.workers import TEST_REDIS_URL

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
ROOT = Path(__file__).resolve().parents[2]
COST = 49  # gpt-4-turbo, 500 in / 300 out, at the pro tier's 40% margin
BODY = {"model": "gpt-4-turbo", "input_tokens": 500, "output_tokens": 300}


def _populate(url: str) -> dict[str, tuple[int, str]]:
    """Pricing, and three pro users with a live key each, and a test account with a sandbox key
    (a production customer's sandbox key would act as the customer's test twin instead)."""
    sys.path.insert(0, str(ROOT))
    from app.api.models import secret_hash
    from bench.common import app_for, populate  # the benchmark's funded users: the same setup

    app = app_for(url.replace("+psycopg", ""))
    keys = populate(app, 4, credits=COST * 30)
    from app.extensions import db

    sandbox = "rph_test_" + secrets.token_hex(20)
    with app.app_context():
        for table in ("users", "credit_balances"):  # (its allocation row stays as made: append-only)
            db.session.execute(text(f"UPDATE {table} SET is_test = true WHERE {'id' if table == 'users' else 'user_id'}"
                                    " = :uid"), {"uid": keys[3][0]})
        db.session.execute(text("UPDATE users SET account_type = 'test' WHERE id = :uid"), {"uid": keys[3][0]})
        db.session.execute(text(
            "INSERT INTO api_keys (user_id, name, key_type, prefix, key_hash, last4, scopes, is_test, created_at,"
            " updated_at) VALUES (:uid, 'sandbox', 'sandbox', 'rph_test_', :hash, :last4, '[\"*\"]', true, now(),"
            " now())"), {"uid": keys[3][0], "hash": secret_hash(sandbox),
                         "last4": sandbox[-4:]})
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return {"scarce": keys[0], "idempotent": keys[1], "live": keys[2], "sandbox": (keys[3][0], sandbox)}


@pytest.fixture(scope="module")
def server():
    redis_or_unavailable(TEST_REDIS_URL)
    name = f"rephlo_gevent_{os.getpid()}"
    url = dbs.prepare_database(name)
    env = {**os.environ, "DATABASE_URL": url.replace("+psycopg", ""), "FLASK_APP": "wsgi", "SECRET_KEY": "gevent",
           "REDIS_URL": TEST_REDIS_URL, "JOBS_INLINE": "1", "LOG_FORMAT": "json",
           # 60 charges of one customer at once queue on its balance row: on a busy 2-core machine
           # the last ones wait past the 2 s default and answer 503 (tests/reliability/test_lock_timeout.py).
           # Here the exact ledger under concurrency is the point, so they may wait.
           "DB_LOCK_TIMEOUT_MS": "15000"}
    subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], env=env, cwd=ROOT, check=True,
                   capture_output=True)
    keys = _populate(url)
    from bench.common import free_port

    port = free_port()
    (ROOT / "test-output").mkdir(exist_ok=True)
    log = open(ROOT / "test-output" / "gevent-server.log", "w")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("gunicorn")), "-c", "gunicorn.conf.py", "-w", "2",
                             "--worker-connections", "200", "-b", f"127.0.0.1:{port}", "wsgi:app"],
                            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    engine = create_engine(url)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urlopen(base + "/api/v1/health", timeout=2)
                break
            except HTTPError:
                break  # it answers (503: a dependency's state, not ours to judge here)
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn -k gevent did not start")
                time.sleep(0.1)
        yield {"base": base, "keys": keys, "engine": engine}
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
        engine.dispose()
        dbs.drop_database(name)


def _charge(base: str, secret: str, request_id: str, idem: str | None = None) -> tuple[int, dict, dict]:
    request = Request(base + "/api/v1/credits/calculate-and-deduct", method="POST",
                      data=json.dumps({**BODY, "request_id": request_id}).encode(),
                      headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json",
                               "Idempotency-Key": idem or request_id, "User-Agent": "rephlo-tests"})
    try:
        with urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def _parallel(calls, workers: int = 48):
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda call: call(), calls))


def test_parallel_deductions_stop_exactly_at_zero(server):
    uid, secret = server["keys"]["scarce"]
    results = _parallel([lambda n=n: _charge(server["base"], secret, f"scarce-{n}") for n in range(60)])
    statuses = sorted(r[0] for r in results)
    assert statuses == [201] * 30 + [402] * 30
    assert {r[2]["error"]["code"] for r in results if r[0] == 402} == {"insufficient_credits"}
    with server["engine"].connect() as conn:
        balance = conn.execute(text("SELECT subscription_credits + bonus_credits FROM credit_balances "
                                    "WHERE user_id = :u"), {"u": uid}).scalar_one()
        spent = conn.execute(text("SELECT coalesce(sum(amount), 0) FROM credit_deductions WHERE user_id = :u"),
                             {"u": uid}).scalar_one()
    assert (balance, spent) == (0, COST * 30)


def test_one_idempotency_key_sent_twenty_times_at_once_charges_once(server):
    uid, secret = server["keys"]["idempotent"]
    results = _parallel([lambda: _charge(server["base"], secret, "same-request", "same-key") for _ in range(20)])
    assert sorted(r[0] for r in results) == [200] * 19 + [201]
    assert len({json.dumps(r[2], sort_keys=True) for r in results}) == 1  # replays answer the same body
    with server["engine"].connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM credit_deductions WHERE user_id = :u"),
                            {"u": uid}).scalar_one() == 1


def test_test_mode_stays_with_its_own_request(server):
    uid, live = server["keys"]["live"]
    _, sandbox = server["keys"]["sandbox"]
    calls = [lambda n=n: (n % 2, _charge(server["base"], sandbox if n % 2 else live, f"mixed-{n}")) for n in range(30)]
    results = _parallel(calls)
    assert all(r[1][0] == 201 for r in results)
    for is_sandbox, (_, headers, _) in results:
        assert (headers.get("X-Test-Mode") == "true") == bool(is_sandbox)
    with server["engine"].connect() as conn:
        rows = dict(conn.execute(text("SELECT request_id, is_test FROM token_usage WHERE request_id LIKE 'mixed-%'")).all())
    assert len(rows) == 30
    assert all(rows[f"mixed-{n}"] is bool(n % 2) for n in range(30))
