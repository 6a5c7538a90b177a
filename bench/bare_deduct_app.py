"""Calibration for bench/deduct.py: a bare Flask endpoint that runs only the SQL transaction
of a calculate-and-deduct (the app's own three statements, as pgbench runs them, through
psycopg, one connection per thread or greenlet, waiting as the app does under gevent), with no
validation, pricing, idempotency logic, rate limit or middleware. Its ratio to pgbench is the
ceiling a Python web process can reach here.

    gunicorn -w 2 --threads 6 bench.bare_deduct_app:app   (BARE_DB_URL, BARE_PRICE_ID in the environment)
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import psycopg
from flask import Flask, Response, request

from app.api.idempotency import _STORE
from app.api.pipeline import AUTHENTICATE_AND_CLAIM
from app.core.green import install as _install_green_wait
from app.core.pg import _compiled
from app.credits.charge import CHARGE_AND_RECORD

_install_green_wait()  # under gevent, psycopg waits as in the app (the same I/O wait on both sides)

app = Flask(__name__)
_local = threading.local()
DB_URL = os.environ.get("BARE_DB_URL", "postgresql://postgres@127.0.0.1:5432/rephlo_bench_deduct")
PRICE_ID = int(os.environ.get("BARE_PRICE_ID", "1"))
CLAIM, CHARGE, STORE = (_compiled(stmt)[0] for stmt in (AUTHENTICATE_AND_CLAIM, CHARGE_AND_RECORD, _STORE))
CLAIM_CONSTANTS, CHARGE_CONSTANTS = _compiled(AUTHENTICATE_AND_CLAIM)[1], _compiled(CHARGE_AND_RECORD)[1]


def _conn() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = psycopg.connect(DB_URL)
        _local.token = conn.execute("SELECT token FROM pricing_state WHERE id = 1").fetchone()[0]
        conn.rollback()
    return conn


@app.post("/api/v1/credits/calculate-and-deduct")
def charge():
    body = json.loads(request.get_data())
    secret = request.headers.get("Authorization", "").removeprefix("Bearer ")
    rid = "bare-" + body["request_id"]
    now = datetime.now(timezone.utc)
    conn = _conn()
    fingerprint = hashlib.sha256(rid.encode()).hexdigest()
    key = conn.execute(CLAIM, {**CLAIM_CONSTANTS, "key_hash": hashlib.sha256(secret.encode()).hexdigest(),
                               "key": rid, "method": "POST", "path": request.path, "request_hash": fingerprint,
                               "test_hash": fingerprint, "now": now, "stale": now - timedelta(minutes=1)}).fetchone()
    if key[-2] is None:  # a replay (wrk resends ~5%): the idempotency record is there
        conn.commit()
        return Response("{}", status=200, mimetype="application/json")
    row = conn.execute(CHARGE, {
        **CHARGE_CONSTANTS, "amount": 49, "tokens": 800, "month": date(now.year, now.month, 1), "at": now,
        "user_id": key[1], "charge_user": key[1], "request_id": rid, "related_usage_id": rid, "price_id": PRICE_ID,
        "model": "gpt-4-turbo", "vendor": "openai", "tier": "pro", "charge_tier": "pro", "input_tokens": 500,
        "output_tokens": 300, "vendor_cost": Decimal("0.014"), "margin": Decimal("40.00"),
        "customer_cost": Decimal("0.0196"), "test_mode": False, "toward_cap": True, "deduction_type": "inference",
        "reason": None, "actor_id": None, "pricing_token": _local.token, "mtd_lo": 0, "mtd_hi": 10_000_000,
    }).fetchone()
    answer = json.dumps({"credits_deducted": 49, "usage_id": row[-1],
                         "balance": {"subscription_credits": row[0], "bonus_credits": row[1]}})
    conn.execute(STORE, {"status": 201, "body": answer, "is_test": False, "record_id": key[-2]})
    conn.commit()
    return Response(answer, status=201, mimetype="application/json")


@app.get("/api/v1/health")
def health():
    return {"status": "ok"}
