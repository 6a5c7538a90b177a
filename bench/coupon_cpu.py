"""CPU of one successful POST /api/v1/coupons/redeem in-process (Flask test client, PostgreSQL),
the figure bench/README.md's coupon section quotes: no server, no network, no other clients,
so it hardly moves with the shared machine's load.

    .venv/bin/python bench/coupon_cpu.py [--customers 1200] [--warmup 200] [--no-redis] [--profile out.prof]

A fresh database (rephlo_bench_coupon_cpu) gets the customers and the hot coupon of
bench/coupon_redeem.py (max uses lifted); each customer redeems once, each from its own
address, so every measured request is a success with all five fraud detectors on. Prints
the process CPU (time.process_time) per request over the requests after --warmup. The app is
configured as bench/coupon_redeem.py serves it (bench/common.py server_env: Redis on, so the
request counters and rate limits go to Redis); --no-redis: without Redis (the request counter
row is then written to the database after each answer, through the ORM).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REDIS_DB, app_for, fresh_database, server_env
from bench.coupon_redeem import CODE, setup

DB = "rephlo_bench_coupon_cpu"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1200)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("--profile", help="write a cProfile (process CPU) of the measured requests here")
    args = parser.parse_args()
    import time

    url = fresh_database(DB)
    if args.no_redis:
        app = app_for(url)
    else:
        import os

        from app import create_app

        os.environ.update(server_env(url, REDIS_DB))
        app = create_app({"SQLALCHEMY_DATABASE_URI": url.replace("postgresql://", "postgresql+psycopg://")})
    keys = setup(app, args.customers, max_uses=10 * args.customers, budget="10000000.00")
    client = app.test_client()
    body = json.dumps({"code": CODE.lower(), "amount": "99.99", "tier": "pro", "billing_cycle": "monthly"})

    def redeem(number: int, secret: str) -> None:
        answer = client.post("/api/v1/coupons/redeem", data=body, environ_base={
            "REMOTE_ADDR": f"127.{number // 65536 % 256}.{number // 256 % 256}.{number % 256 + 1}"},
            headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json",
                     "Idempotency-Key": f"cpu-{number}", "User-Agent": "RephloDesktop/2.1 (Windows NT 10.0)"})
        red = answer.get_json()["redemption"]
        assert answer.status_code == 201 and red["redemption_status"] == "success", answer.get_json()

    for number, (_, secret) in enumerate(keys[:args.warmup]):
        redeem(number, secret)
    measured = list(enumerate(keys))[args.warmup:]
    profile = None
    if args.profile:
        import cProfile

        profile = cProfile.Profile(time.process_time)
        profile.enable()
    started = time.process_time()
    for number, (_, secret) in measured:
        redeem(number, secret)
    spent = time.process_time() - started
    if profile is not None:
        profile.disable()
        profile.dump_stats(args.profile)
    print(json.dumps({"requests": len(measured), "cpu_ms_per_request": round(1000 * spent / len(measured), 3),
                      "redis": not args.no_redis, "profiled": bool(profile)}))


if __name__ == "__main__":
    main()
