"""POST /api/v1/coupons/redeem on one hot coupon, by hand: gunicorn (gunicorn.conf.py) on
PostgreSQL with every fraud detector on, side by side in the same run with pgbench running the
redemption transaction on the same coupon row.

    .venv/bin/python bench/coupon_redeem.py [--clients 32] [--customers 2000] [--max-uses 1000]
        [--workers 2] [--worker-class gevent|gthread] [--threads 8] [--pgbench-seconds 15]
        [--paced 0.25 | --offered RPS] [--paced-seconds 30] [--warmup N]

A fresh database (rephlo_bench_coupons) gets N production customers with a live key each and
one coupon in a campaign with --max-uses uses and one use per customer. Every customer tries
to redeem it twice (shuffled, so the two attempts of a customer often race), from --clients
concurrent clients, each request from its own loopback address (127.x.y.z) as real customers
would, so the per-IP velocity check sees realistic traffic while all five detectors run.

First pgbench runs what a successful redemption writes, on the same coupon and campaign rows
(limits lifted so every transaction succeeds): the per-user upsert, the redemption insert, the
coupon's and the campaign's conditional counter updates, in one transaction. That is the
ceiling of one hot row; the app's ratio to it is the target (issue 19: >= 0.25).

Prints JSON and a table: throughput, latency percentiles, outcomes, over-redemptions (successes
beyond max_uses, beyond one per customer, spend beyond the budget, counter != rows: must be 0)
the gunicorn workers' CPU milliseconds per request (/proc, bench/vs_bare.py's helper: hardly
moved by other work on the machine) and the load average (the machine is shared: compare runs
made back to back).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    REDIS_DB,
    RESULTS,
    Gunicorn,
    app_for,
    fresh_database,
    populate,
    psql,
)
from bench.vs_bare import workers_cpu_seconds

DB = "rephlo_bench_coupons"
CODE = "BENCH-30OFF"
CAMPAIGN = "Bench campaign"


def setup(app, customers: int, max_uses: int, budget: str) -> list[tuple[int, str]]:
    """Customers with live keys (bench/common.py), then the campaign and the hot coupon."""
    from datetime import timedelta

    from app.core import clock
    from app.coupons.models import Campaign, Coupon
    from app.extensions import db

    keys = populate(app, customers)
    with app.app_context():
        now = clock.now()
        campaign = Campaign(name=CAMPAIGN, campaign_type="promotional", starts_at=now - timedelta(days=1),
                            ends_at=now + timedelta(days=30), budget_limit=Decimal(budget))
        db.session.add(campaign)
        db.session.flush()
        db.session.add(Coupon(code=CODE, coupon_type="percentage_discount", discount_type="percentage",
                              discount_value=Decimal("30.00"), max_uses=max_uses, max_uses_per_user=1,
                              min_purchase_amount=Decimal("50.00"), tier_eligibility=["pro", "pro_max"],
                              billing_cycles=["monthly", "annual"], valid_from=now - timedelta(days=1),
                              valid_until=now + timedelta(days=30), campaign_id=campaign.id))
        db.session.commit()
    return keys


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


def drive(port: int, keys: list[tuple[int, str]], clients: int, rate: float = 0.0, seconds: float = 0.0) -> dict:
    """Every customer's two attempts from `clients` clients. Saturated (rate 0): each client sends
    its next request as soon as it has the answer, which gives the throughput; then the mean
    latency is clients / throughput (Little's law), whatever the server. Paced: each client
    sends on a schedule of random (exponential) gaps, measured from its previous send, not from
    its previous answer, so that together they offer `rate` req/s whatever the latency (as long
    as an answer comes before the client's next send), which gives the latency at that rate,
    for `seconds` of sending."""
    jobs = [(i, secret, f"127.{1 + i // 62500}.{(i // 250) % 250}.{1 + i % 250}")
            for i, (_, secret) in enumerate(keys * 2)]
    random.Random(7).shuffle(jobs)
    queue = iter(jobs)
    lock, latencies, outcomes, by_outcome = threading.Lock(), [], Counter(), {}
    think = clients / rate if rate else 0.0
    started = time.perf_counter()

    def client(seed: int) -> None:
        rnd = random.Random(seed)
        next_send = started + (rnd.expovariate(1 / think) if think else 0.0)
        while True:
            if think:  # sends on its own schedule (a Poisson process): the answer's latency does not
                # delay the next send, unless the answer comes after it (then it goes at once)
                if seconds and next_send - started >= seconds:
                    return
                delay = next_send - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                next_send += rnd.expovariate(1 / think)
            elif seconds and time.perf_counter() - started >= seconds:
                return
            with lock:
                job = next(queue, None)
            if job is None:
                return
            elapsed, _, outcome = attempt(port, job)
            with lock:
                latencies.append(elapsed)
                outcomes[outcome] += 1
                by_outcome.setdefault(outcome, []).append(elapsed)

    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - started
    # paced: the rate delivered over the sending window (the last answers come in after it)
    window = min(wall, seconds) if think and seconds else wall
    latencies.sort()
    pct = lambda v, p: round(v[min(len(v) - 1, int(len(v) * p))] * 1000, 1)
    return {"requests": len(latencies), "seconds": round(wall, 2), "rps": round(len(latencies) / window, 1),
            "p50_ms": pct(latencies, 0.50), "p95_ms": pct(latencies, 0.95), "p99_ms": pct(latencies, 0.99),
            "max_ms": round(latencies[-1] * 1000, 1), "mean_ms": round(statistics.mean(latencies) * 1000, 1),
            "outcomes": dict(outcomes),
            "p99_ms_by_outcome": {k: pct(sorted(v), 0.99) for k, v in by_outcome.items()},
            "load_avg_1m": round(os.getloadavg()[0], 2)}


def workers_ready(workers: int, seconds: float = 30) -> None:
    """Wait for every worker to have loaded the app (gunicorn.conf.py prints a line), so that the
    CPU per request leaves out their start-up."""
    log, deadline = RESULTS / "gunicorn.log", time.monotonic() + seconds
    while log.read_text().count("worker ready to serve") < workers and time.monotonic() < deadline:
        time.sleep(0.1)


def reset(max_uses: int, budget: str) -> None:
    """Back to an untouched coupon and campaign (between pgbench and each app run)."""
    psql("DELETE FROM coupon_fraud_detections; DELETE FROM coupon_redemptions; DELETE FROM coupon_user_uses; "
         "DELETE FROM idempotency_records; "
         f"UPDATE coupons SET uses_count = 0, test_uses_count = 0, max_uses = {max_uses} WHERE code = '{CODE}'; "
         f"UPDATE coupon_campaigns SET spent = 0, test_spent = 0, budget_limit = {budget} "
         f"WHERE name = '{CAMPAIGN}'", DB)


def check(max_uses: int, budget: str) -> dict:
    row = psql("SELECT (SELECT count(*) FROM coupon_redemptions WHERE status = 'success'), "
               "(SELECT count(*) FROM (SELECT user_id FROM coupon_redemptions WHERE status = 'success' "
               " GROUP BY user_id HAVING count(*) > 1) t), "
               f"(SELECT uses_count FROM coupons WHERE code = '{CODE}'), "
               f"(SELECT spent FROM coupon_campaigns WHERE name = '{CAMPAIGN}'), "
               "(SELECT coalesce(sum(budget_cost), 0) FROM coupon_redemptions WHERE status = 'success'), "
               "(SELECT count(*) FROM coupon_user_uses WHERE uses > 1)", DB).split("|")
    successes, twice, uses, spent, cost, users_over = int(row[0]), int(row[1]), int(row[2]), Decimal(row[3]), \
        Decimal(row[4]), int(row[5])
    detections = dict(line.split("|") for line in psql(
        "SELECT detection_type, count(*) FROM coupon_fraud_detections GROUP BY 1", DB).splitlines() if line)
    over = (max(0, successes - max_uses) + twice + users_over + (1 if spent > Decimal(budget) else 0)
            + abs(uses - successes) + (1 if spent != cost else 0))
    return {"successes": successes, "uses_count": uses, "spent": str(spent), "customers_with_two": twice,
            "detections": detections, "over_redemptions": over}


PGBENCH = """\\set uid random({lo}, {hi})
BEGIN;
INSERT INTO coupon_user_uses (coupon_id, user_id, uses, is_test) VALUES ({coupon}, :uid, 1, false)
  ON CONFLICT (coupon_id, user_id) DO UPDATE SET uses = coupon_user_uses.uses + 1
  WHERE coupon_user_uses.uses < 2000000000 RETURNING uses;
UPDATE coupons SET uses_count = uses_count + 1 WHERE id = {coupon} AND (max_uses IS NULL OR uses_count < max_uses)
  RETURNING uses_count;
UPDATE coupon_campaigns SET spent = spent + 30.00 WHERE id = {campaign} AND spent + 30.00 <= budget_limit
  RETURNING spent;
INSERT INTO coupon_redemptions (created_at, coupon_id, campaign_id, user_id, status, tier, billing_cycle,
  original_amount, discount_amount, final_amount, credits_granted, months_granted, budget_cost, ip_address,
  user_agent, credits_clawed_back, is_test)
  VALUES (now(), {coupon}, {campaign}, :uid, 'success', 'pro', 'monthly', 99.99, 30.00, 69.99, 0, 0, 30.00,
  '127.0.0.1', 'pgbench', 0, false) RETURNING id;
COMMIT;
"""


def run_pgbench(url: str, lo: int, hi: int, clients: int, seconds: int) -> dict:
    """The redemption transaction on the same rows, limits lifted (every transaction succeeds)."""
    coupon = psql(f"SELECT id FROM coupons WHERE code = '{CODE}'", DB)
    campaign = psql(f"SELECT id FROM coupon_campaigns WHERE name = '{CAMPAIGN}'", DB)
    psql(f"UPDATE coupons SET max_uses = NULL WHERE id = {coupon}; "
         f"UPDATE coupon_campaigns SET budget_limit = 99999999.99 WHERE id = {campaign}", DB)
    script = Path(tempfile.mkstemp(suffix=".sql")[1])
    script.write_text(PGBENCH.format(lo=lo, hi=hi, coupon=coupon, campaign=campaign))
    proc = subprocess.run(["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", "2", "-T", str(seconds),
                           "-r", "-f", str(script), url], capture_output=True, text=True, check=False)
    script.unlink()
    out = proc.stdout + proc.stderr
    if proc.returncode:
        raise RuntimeError(out)
    return {"tps": float(re.search(r"tps = ([\d.]+)", out).group(1)),
            "latency_avg_ms": float(re.search(r"latency average = ([\d.]+) ms", out).group(1)),
            "load_avg_1m": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--max-uses", type=int, default=1000)
    parser.add_argument("--budget", default="100000.00")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn processes (one per core)")
    parser.add_argument("--worker-class", default="gevent", choices=["gevent", "gthread"],
                        help="gunicorn worker: gevent (the deployment's, gunicorn.conf.py) or gthread")
    parser.add_argument("--threads", type=int, default=8, help="threads per process with gthread")
    parser.add_argument("--pgbench-seconds", type=int, default=15)
    parser.add_argument("--paced", type=float, default=0.25, metavar="SHARE",
                        help="also measure latency with clients offering SHARE x pgbench's tps (0: skip)")
    parser.add_argument("--offered", type=float, default=0, metavar="RPS",
                        help="the paced run's offered req/s, instead of SHARE x this run's pgbench tps (on a "
                             "shared machine pgbench's rate moves from run to run: a fixed rate compares runs)")
    parser.add_argument("--paced-seconds", type=float, default=30)
    parser.add_argument("--warmup", type=int, default=0, metavar="N",
                        help="N attempts at full speed on each fresh server before it is measured (then the coupon, "
                             "the redemptions and the Idempotency-Keys are reset): a fresh server's first hundred "
                             "or so requests are slow (statements compiled, then prepared on each pooled "
                             "connection after 5 uses) and set a short paced run's p99")
    parser.add_argument("--label", default="", help="a name for this run in the JSON (before/after)")
    args = parser.parse_args()

    url = fresh_database(DB)
    app = app_for(url)
    started = time.perf_counter()
    keys = setup(app, args.customers, args.max_uses, args.budget)
    print(f"setup: {args.customers} customers with live keys in {time.perf_counter() - started:.1f} s", flush=True)
    pg = run_pgbench(url, keys[0][0], keys[-1][0], args.clients, args.pgbench_seconds)
    reset(args.max_uses, args.budget)

    def app_run(rate: float = 0.0, seconds: float = 0.0) -> dict:
        subprocess.run(["redis-cli", "-n", str(REDIS_DB), "flushdb"], capture_output=True, check=False)
        server = Gunicorn(url, args.workers, args.threads, worker_class=args.worker_class)
        try:
            workers_ready(args.workers)
            if args.warmup:  # then back to an untouched coupon: only the server stays warm
                drive(server.port, keys[:max(1, args.warmup // 2)], args.clients)
                reset(args.max_uses, args.budget)
            cpu = workers_cpu_seconds(server)
            run = drive(server.port, keys, args.clients, rate, seconds)
            cpu = workers_cpu_seconds(server) - cpu
        finally:
            server.stop()
        # the workers' CPU per request: unlike req/s, hardly moved by other work on the machine
        run["cpu_ms_per_request"] = round(cpu * 1000 / max(run["requests"], 1), 3)
        run.update(check(args.max_uses, args.budget))
        reset(args.max_uses, args.budget)
        return run

    run = app_run()
    row = {"label": args.label, "clients": args.clients, "worker_class": args.worker_class, "workers": args.workers,
           **run, "pgbench_tps": pg["tps"], "pgbench_latency_avg_ms": pg["latency_avg_ms"],
           "pgbench_load_avg_1m": pg["load_avg_1m"], "ratio": round(run["rps"] / pg["tps"], 3), "paced": None}
    if args.paced or args.offered:
        offered = args.offered or args.paced * pg["tps"]
        paced = app_run(offered, args.paced_seconds)
        row["paced"] = {"offered_rps": round(offered, 1), **paced}
    print(json.dumps(row), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"coupon_redeem{'_' + args.label if args.label else ''}.json").write_text(json.dumps(row, indent=2))
    print(f"{'run':>9} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'success p99':>11} "
          f"{'pgbench tps':>11} {'ratio':>6} {'successes':>9} {'over':>5} {'load 1m':>7} {'CPU ms/req':>10}")
    for name, r in (("saturated", row), ("paced", row["paced"])):
        if r:
            print(f"{name:>9} {r['rps']:>7} {r['p50_ms']:>7} {r['p99_ms']:>7} {r['max_ms']:>7} "
                  f"{r['p99_ms_by_outcome'].get('success', 0):>11} {row['pgbench_tps']:>11.1f} "
                  f"{round(r['rps'] / row['pgbench_tps'], 3):>6} {r['successes']:>9} {r['over_redemptions']:>5} "
                  f"{r['load_avg_1m']:>7} {r['cpu_ms_per_request']:>10}")
    over = row["over_redemptions"] + (row["paced"] or {}).get("over_redemptions", 0)
    paced = row["paced"]
    slow = paced is not None and paced["rps"] < 0.9 * paced["offered_rps"]
    p99 = (paced or row)["p99_ms"]
    print(f"target (issue 19): ratio {row['ratio']} >= 0.25 {'yes' if row['ratio'] >= 0.25 else 'NO'}; "
          f"{'paced' if paced else 'saturated'} p99 {p99} ms < 100 {'yes' if p99 < 100 and not slow else 'NO'}"
          + (f" (only {paced['rps']} of {paced['offered_rps']} req/s offered: saturated)" if slow else "")
          + f"; over-redemptions {over} (target 0); load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    sys.exit(1 if over else 0)


if __name__ == "__main__":
    main()
