"""Calibration for bench/deduct.py: a bare Flask endpoint that runs only the SQL transaction
of a calculate-and-deduct (the pgbench script's statements, through psycopg, one connection
per thread), with no authentication, validation, idempotency logic or middleware. Its ratio to
pgbench is the ceiling a Python web process can reach on this machine.

    gunicorn -w 2 --threads 6 bench.bare_app:app   (BARE_DB_URL, BARE_PRICE_ID in the environment)
"""
from __future__ import annotations

import hashlib
import json
import os
import threading

import psycopg
from flask import Flask, Response, request

app = Flask(__name__)
_local = threading.local()
DB_URL = os.environ.get("BARE_DB_URL", "postgresql://postgres@127.0.0.1:5432/rephlo_bench_deduct")
PRICE_ID = int(os.environ.get("BARE_PRICE_ID", "1"))

CHARGE = """
WITH upd AS (
  UPDATE credit_balances SET
    subscription_credits = subscription_credits - LEAST(subscription_credits, 49),
    bonus_credits = bonus_credits - (49 - LEAST(subscription_credits, 49)),
    mtd_month = date_trunc('month', now())::date,
    mtd_credits = CASE WHEN mtd_month = date_trunc('month', now())::date THEN mtd_credits ELSE 0 END + 49,
    mtd_tokens = CASE WHEN mtd_month = date_trunc('month', now())::date THEN mtd_tokens ELSE 0 END + 800,
    updated_at = now()
  WHERE user_id = %(uid)s AND subscription_credits + bonus_credits >= 49
  RETURNING subscription_credits, bonus_credits, is_test
), used AS (
  INSERT INTO token_usage (user_id, request_id, model_price_id, model_name, vendor_name, tier, input_tokens,
      output_tokens, vendor_cost_usd, margin_percentage, customer_cost_usd, credits, is_test, created_at)
  SELECT %(uid)s, %(rid)s, %(price)s, 'gpt-4-turbo', 'openai', 'pro', 500, 300, 0.014, 40.00, 0.0196, 49,
         upd.is_test, now() FROM upd
  RETURNING id, is_test
), deducted AS (
  INSERT INTO credit_deductions (user_id, amount, deduction_type, usage_id, related_usage_id, balance_after,
      is_test, created_at)
  SELECT %(uid)s, 49, 'inference', used.id, %(rid)s, upd.subscription_credits + upd.bonus_credits, used.is_test,
         now() FROM upd, used
)
SELECT upd.subscription_credits, upd.bonus_credits, used.id FROM upd, used
"""


def _conn() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = psycopg.connect(DB_URL)
    return conn


@app.post("/api/v1/credits/calculate-and-deduct")
def charge():
    body = json.loads(request.get_data())
    secret = request.headers.get("Authorization", "").removeprefix("Bearer ")
    rid = "bare-" + body["request_id"]
    conn = _conn()
    with conn.transaction():
        uid = conn.execute("SELECT user_id FROM api_keys WHERE key_hash = %s",
                           (hashlib.sha256(secret.encode()).hexdigest(),)).fetchone()[0]
        idem = conn.execute(
            "INSERT INTO idempotency_records (user_id, key, method, path, request_hash, is_test, created_at) "
            "VALUES (%s, %s, 'POST', '/api/v1/credits/calculate-and-deduct', md5(%s), false, now()) "
            "ON CONFLICT (user_id, key) DO NOTHING RETURNING id", (uid, rid, rid)).fetchone()
        row = conn.execute(CHARGE, {"uid": uid, "rid": rid, "price": PRICE_ID}).fetchone()
        answer = {"credits_deducted": 49, "usage_id": row[2], "balance": {"total": row[0] + row[1]}}
        conn.execute("UPDATE idempotency_records SET response_status = 201, response_body = %s WHERE id = %s",
                     (json.dumps(answer), idem[0]))
    return Response(json.dumps(answer), status=201, mimetype="application/json")


@app.get("/api/v1/health")
def health():
    return {"status": "ok"}
