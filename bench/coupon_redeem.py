"""POST /api/v1/coupons/redeem under load, by hand: gunicorn on PostgreSQL, fraud detection on.

    .venv/bin/python bench/coupon_redeem.py                       # 32 clients, 2,000 customers
    .venv/bin/python bench/coupon_redeem.py --clients 32 --customers 2000 --max-uses 1000

A fresh database (rephlo_bench_coupons on 127.0.0.1:5432 unless --admin-url says otherwise)
gets N production customers, each with a live API key, and one coupon in a campaign with
--max-uses uses and one use per customer. Every customer tries to redeem it twice (shuffled,
so the two attempts of a customer often race), from 32 concurrent clients. Each request
comes from its own loopback address (127.x.y.z) as real customers would, so the per-IP
velocity check sees realistic traffic while all five detectors run on every attempt.

Prints throughput, latency percentiles, the outcome counts and the over-redemptions
(successes beyond max_uses, beyond one per customer, or spend beyond the budget): must be 0.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
CODE = "BENCH-30OFF"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_database(admin_url: str, name: str) -> str:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def setup(customers: int, max_uses: int, budget: str) -> list[str]:
    """Migrate, then create the campaign, the coupon and the customers with their live keys."""
    from datetime import timedelta

    from flask_migrate import upgrade

    from app import create_app
    from app.core import clock
    from app.coupons.models import Campaign, Coupon
    from app.extensions import db
    from app.testdata.keys import create_api_key
    from app.users.models import User

    app = create_app()
    with app.app_context(), app.test_request_context():
        upgrade(revision="heads")
        now = clock.now()
        campaign = Campaign(name="Bench campaign", campaign_type="promotional", starts_at=now - timedelta(days=1),
                            ends_at=now + timedelta(days=30), budget_limit=Decimal(budget))
        db.session.add(campaign)
        db.session.flush()
        db.session.add(Coupon(code=CODE, coupon_type="percentage_discount", discount_type="percentage",
                              discount_value=Decimal("30.00"), max_uses=max_uses, max_uses_per_user=1,
                              min_purchase_amount=Decimal("50.00"), tier_eligibility=["pro", "pro_max"],
                              billing_cycles=["monthly", "annual"], valid_from=now - timedelta(days=1),
                              valid_until=now + timedelta(days=30), campaign_id=campaign.id))
        secrets = []
        for n in range(customers):
            user = User(email=f"bench-{n}@example.com", first_name="Bench", last_name=str(n))
            db.session.add(user)
            db.session.flush()
            _, secret = create_api_key(db.session, None, owner=user, name="bench", key_type="production")
            secrets.append(secret)
            if n % 500 == 499:
                db.session.commit()
        db.session.commit()
    return secrets


def start_server(env: dict, port: int, workers: int, threads: int) -> subprocess.Popen:
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    proc = subprocess.Popen([gunicorn, "-w", str(workers), "-k", "gthread", "--threads", str(threads),
                             "-b", f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("gunicorn did not start")


def attempt(port: int, job: tuple[int, str, str]) -> tuple[float, int, str]:
    number, secret, source = job
    body = json.dumps({"code": CODE.lower(), "amount": "99.99", "tier": "pro", "billing_cycle": "monthly"})
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json",
               "Idempotency-Key": f"bench-{number}", "User-Agent": "RephloDesktop/2.1 (Windows NT 10.0)"}
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(source, 0))
    try:
        conn.request("POST", "/api/v1/coupons/redeem", body=body, headers=headers)
        response = conn.getresponse()
        payload = json.loads(response.read() or b"{}")
    finally:
        conn.close()
    elapsed = time.perf_counter() - started
    if response.status != 201:
        return elapsed, response.status, payload.get("error", {}).get("code", "?")
    red = payload["redemption"]
    return elapsed, response.status, red["failure_code"] or red["redemption_status"]


def report(database_url: str, max_uses: int, budget: str) -> dict:
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        successes = conn.execute(text("SELECT count(*) FROM coupon_redemptions WHERE status = 'success'")).scalar()
        per_user = conn.execute(text("SELECT count(*) FROM (SELECT user_id FROM coupon_redemptions WHERE status = "
                                     "'success' GROUP BY user_id HAVING count(*) > 1) t")).scalar()
        uses = conn.execute(text(f"SELECT uses_count FROM coupons WHERE code = '{CODE}'")).scalar()
        spent = conn.execute(text("SELECT spent FROM coupon_campaigns WHERE name = 'Bench campaign'")).scalar()
        detections = dict(conn.execute(text("SELECT detection_type, count(*) FROM coupon_fraud_detections "
                                            "GROUP BY detection_type")).all())
    engine.dispose()
    over = max(0, successes - max_uses) + per_user + (1 if spent > Decimal(budget) else 0) + abs(uses - successes)
    return {"successes": successes, "uses_count": uses, "spent": str(spent), "customers_with_two": per_user,
            "detections": detections, "over_redemptions": over}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--max-uses", type=int, default=1000)
    parser.add_argument("--budget", default="100000.00")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_PG_ADMIN_URL",
                                                              "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()

    database_url = fresh_database(args.admin_url.replace("postgresql://", "postgresql+psycopg://"),
                                  "rephlo_bench_coupons").replace("postgresql+psycopg://", "postgresql://")
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": "", "JOBS_INLINE": "1",
           "SECRET_KEY": "bench-secret", "LOG_FORMAT": "text", "API_RATE_LIMIT_LIVE": "6000 per minute"}
    os.environ.update(env)
    started = time.perf_counter()
    secrets = setup(args.customers, args.max_uses, args.budget)
    print(f"setup: {args.customers} customers with live keys in {time.perf_counter() - started:.1f} s")

    jobs = [(i, secret, f"127.{1 + i // 62500}.{(i // 250) % 250}.{1 + i % 250}")
            for i, secret in enumerate(secrets * 2)]
    random.Random(7).shuffle(jobs)
    port = free_port()
    server = start_server(env, port, args.workers, args.threads)
    try:
        lock, latencies, outcomes = threading.Lock(), [], Counter()

        def run(job):
            elapsed, _, outcome = attempt(port, job)
            with lock:
                latencies.append(elapsed)
                outcomes[outcome] += 1

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            list(pool.map(run, jobs))
        wall = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(20)
    latencies.sort()
    pct = lambda p: latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000  # noqa: E731
    print(f"{len(jobs)} redeem requests from {args.clients} clients in {wall:.1f} s: "
          f"{len(jobs) / wall:.0f} req/s; latency p50 {pct(0.50):.0f} ms, p95 {pct(0.95):.0f} ms, "
          f"p99 {pct(0.99):.0f} ms, max {latencies[-1] * 1000:.0f} ms, mean {statistics.mean(latencies) * 1000:.0f} ms")
    print(f"outcomes: {dict(outcomes)}")
    figures = report(database_url, args.max_uses, args.budget)
    print(f"database: {figures}")
    print(f"over-redemptions: {figures['over_redemptions']}")
    sys.exit(1 if figures["over_redemptions"] else 0)


if __name__ == "__main__":
    main()
