"""The hot path under load: POST /api/v1/credits/calculate-and-deduct through gunicorn on
PostgreSQL (API-key auth, a fresh Idempotency-Key per request, 1,000 users), side by side in
the same run with pgbench running the same SQL transaction.

    .venv/bin/python bench/deduct.py [--clients 16,32,64] [--duration 20] [--rounds 2] [--workers 2]
        [--worker-class gevent|gthread] [--threads 6] [--paced 0.25] [--bare] [--reuse-port]

gunicorn runs with the deployment's gunicorn.conf.py (gevent workers, one shared listening
socket, the heap frozen after start-up); --reuse-port gives each worker a socket of its own.
Saturated runs (each client sends its next request when it has the answer) give the throughput; at saturation the mean latency is clients / throughput
(Little's law), so the latency that matters is the paced run's: clients think a random
(exponential) time between requests, tuned so they offer `--paced` x pgbench's tps.

wrk drives the app (a Lua script picks a random user's key per request and replays about 5%
of requests with the same key and body, which must answer from the idempotency record and
charge nothing). Afterwards every user's balance is compared with the ledgers: zero lost and
zero duplicated deductions means initial - balance == sum(deductions) for each of them, and
one usage row per executed (201) request.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REDIS_DB, RESULTS, Gunicorn, app_for, fresh_database, populate, psql  # noqa: E402

CREDITS = 10_000_000
# An answer of the size the app stores (Charged): the store's parameter in the pgbench script.
ANSWER = ('{"credits_deducted": 49, "usage_id": "use_0000000000", "balance": {"subscription_credits": 9999951, '
          '"bonus_credits": 0, "total": 9999951, "monthly_cap": null, "month_to_date": {"credits": 49, "tokens": 800}}}')
COST = 49  # gpt-4-turbo 500/300 at the pro tier's 40%

LUA = r"""
local keys = {%(keys)s}
local think_ms = %(think_ms)d
local threads = {}
local counter = 0
local last = nil
statuses = {}
replays = 0
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(os.time() * 1000 + tid)
  prefix = "w" .. tid .. "-" .. math.random(1, 1000000000)
end
function delay()
  -- think time drawn from an exponential distribution: independent clients, arrivals close to
  -- Poisson (a fixed pause keeps clients in lockstep, arriving in bursts of all of them)
  if think_ms <= 0 then return 0 end
  return math.floor(-math.log(1 - math.random()) * think_ms)
end
function request()
  if last ~= nil and math.random() < 0.05 then
    local again = last
    last = nil
    replays = replays + 1
    return again
  end
  counter = counter + 1
  local rid = prefix .. "-" .. counter
  local body = '{"model":"gpt-4-turbo","input_tokens":500,"output_tokens":300,"request_id":"' .. rid .. '"}'
  last = wrk.format("POST", "/api/v1/credits/calculate-and-deduct",
    {["Authorization"] = "Bearer " .. keys[math.random(#keys)], ["Content-Type"] = "application/json",
     ["Idempotency-Key"] = rid}, body)
  return last
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local agg, rep = {}, 0
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("statuses")) do agg[tostring(code)] = (agg[tostring(code)] or 0) + n end
    rep = rep + t:get("replays")
  end
  local parts = {}
  for code, n in pairs(agg) do table.insert(parts, '"' .. code .. '":' .. n) end
  io.write(string.format('RESULT {"requests":%%d,"seconds":%%.3f,"p50_ms":%%.2f,"p99_ms":%%.2f,"replays":%%d,' ..
    '"socket_errors":%%d,"statuses":{%%s}}\n', summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, rep,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    table.concat(parts, ",")))
end
"""

def pgbench_script(price_id: int, pricing_token: str, month: str) -> str:
    """The app's own statements for one calculate-and-deduct (app/api/pipeline.py, optimistic
    charge), compiled from the app's code: BEGIN; the key lookup with the claim of the
    Idempotency-Key; the one-statement charge with its ledger rows (credits/charge.py); the answer
    stored on the claim; COMMIT. The key is
    found by a random bench user's id instead of the hash of its secret (the same unique-index
    probe); the values are the bench's request (gpt-4-turbo 500/300 at the pro tier's 40%)."""
    from app.api.idempotency import _STORE
    from app.api.pipeline import AUTHENTICATE_AND_CLAIM
    from app.core.pg import _compiled
    from app.credits.charge import CHARGE_AND_RECORD

    rid = "'pgb-' || :client_id || '-' || :rid"
    values = {
        "status_1": "'active'", "key": rid, "method": "'POST'", "path": "'/api/v1/credits/calculate-and-deduct'",
        "request_hash": "md5(:rid::text) || md5(:uid::text)", "now": "now()", "stale": "now() - interval '1 minute'",
        "amount": "49", "tokens": "800", "month": f"'{month}'::date", "at": "now()", "user_id": ":uid",
        "tier": "'pro'", "pricing_token": f"'{pricing_token}'", "mtd_lo": "0", "mtd_hi": "10000000",
        "request_id": rid, "price_id": str(price_id), "model": "'gpt-4-turbo'", "vendor": "'openai'",
        "input_tokens": "500", "output_tokens": "300", "vendor_cost": "0.014", "margin": "40.00",
        "customer_cost": "0.0196", "test_mode": "false", "deduction_type": "'inference'",
        "charge_user": ":uid", "charge_tier": "'pro'", "toward_cap": "true", "related_usage_id": rid,
        "reason": "NULL", "actor_id": "NULL", "record_id": ":record_id", "status": "201", "is_test": "false",
        "test_hash": "md5(:rid::text)",  # the request hash of a test-world key (the bench's keys are live)
        "body": "'" + ANSWER.replace("{", "{{").replace("}", "}}") + "'",  # the script goes through str.format
    }

    def fill(sql: str, defaults: dict | None = None) -> str:
        """The statement with every parameter spelled out (a statement's own constants from `defaults`)."""
        return re.sub(r"%\((\w+)\)s", lambda m: f"({values.get(m.group(1)) or repr((defaults or {})[m.group(1)])})",
                      sql).strip()

    claim, claim_defaults = _compiled(AUTHENTICATE_AND_CLAIM)
    by_hash = "api_keys.key_hash = %(key_hash)s::VARCHAR"
    assert by_hash in claim
    claim = claim.replace(by_hash, "api_keys.user_id = :uid")
    return (f"\\set uid random({{lo}}, {{hi}})\n\\set rid random(1, 2000000000)\nBEGIN;\n"
            f"{fill(claim, claim_defaults)} \\gset\n{fill(*_compiled(CHARGE_AND_RECORD))};\n{fill(_compiled(_STORE)[0])};\nCOMMIT;\n")


def run_wrk(base: str, keys: list[tuple[int, str]], clients: int, duration: int, think_ms: int = 0) -> dict:
    """wrk, each connection sending its next request as soon as it has the answer, or a random
    think time (mean `think_ms`) after it: a client that does something with the answer; the
    rate is then clients / (think time + latency), and the latency the server's at that rate,
    not at saturation."""
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(LUA % {"keys": ",".join(f'"{k}"' for _, k in keys), "think_ms": think_ms})
    out = subprocess.run(["wrk", "-t", "2", "-c", str(clients), "-d", f"{duration}s", "--latency", "-s", str(script),
                          base], capture_output=True, text=True, check=True).stdout
    script.unlink()
    result = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    result["rps"] = result["requests"] / result["seconds"]
    return result


def run_pgbench(db_url: str, sql: str, lo: int, hi: int, clients: int, duration: int) -> dict:
    script = Path(tempfile.mkstemp(suffix=".sql")[1])
    script.write_text(sql.format(lo=lo, hi=hi))
    proc = subprocess.run(["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", "2", "-T", str(duration),
                           "-f", str(script), db_url], capture_output=True, text=True)
    script.unlink()
    out = proc.stdout + proc.stderr
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    latency = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))
    return {"tps": tps, "latency_avg_ms": latency, "failed": int(re.search(r"failed transactions: (\d+)", out).group(1))}


def counts(app) -> tuple[int, int]:
    from sqlalchemy import text

    from app.extensions import db

    with app.app_context():  # one statement, one snapshot
        return tuple(db.session.execute(text(
            "SELECT (SELECT count(*) FROM token_usage), (SELECT count(*) FROM credit_deductions)")).one())


def verify(app, before: tuple[int, int], run: dict, clients: int) -> dict:
    """Every user: what left the balance equals what the ledger says (nothing lost, nothing
    charged twice); and one usage and one deduction row per executed (201) request, give or
    take the requests still in flight when wrk stopped (at most one per connection) or that
    wrk gave up waiting for (its timeouts: executed, the answer unread)."""
    from sqlalchemy import text

    from app.extensions import db

    with app.app_context():
        rows = db.session.execute(text(
            "SELECT b.user_id, b.subscription_credits + b.bonus_credits, "
            "  (SELECT coalesce(sum(amount), 0) FROM credit_deductions d WHERE d.user_id = b.user_id), "
            "  (SELECT coalesce(sum(amount), 0) FROM credit_allocations a WHERE a.user_id = b.user_id) "
            "FROM credit_balances b")).all()
        duplicates = db.session.scalar(text(
            "SELECT count(*) FROM (SELECT user_id, request_id FROM token_usage GROUP BY 1, 2 HAVING count(*) > 1) x"))
    usage, deductions = counts(app)
    created = usage - before[0]
    ok = run["statuses"].get("201", 0)
    return {"users_checked": len(rows), "balance_ledger_mismatches": sum(1 for r in rows if r[1] != r[3] - r[2]),
            "usage_rows_created": created, "deduction_rows_created": deductions - before[1], "responses_201": ok,
            "in_flight_at_stop": created - ok, "replays_sent": run["replays"],
            "replayed_200": run["statuses"].get("200", 0), "duplicate_request_ids": duplicates,
            "accounted": 0 <= created - ok <= clients + run["socket_errors"] and created == deductions - before[1]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", default="16,32,64")
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn processes (one per core)")
    parser.add_argument("--worker-class", default="gevent", choices=["gevent", "gthread"],
                        help="gunicorn worker: gevent (the deployment's) or gthread")
    parser.add_argument("--threads", type=int, default=6, help="threads per process with gthread")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--reuse-port", action="store_true",
                        help="a listening socket per worker (SO_REUSEPORT) instead of the deployment's shared one")
    parser.add_argument("--rounds", type=int, default=2, help="app and pgbench runs per client count (best kept)")
    parser.add_argument("--bare", action="store_true", help="also measure bench/bare_deduct_app.py (the ceiling)")
    parser.add_argument("--paced", type=float, default=0.25, metavar="SHARE",
                        help="also measure latency with clients pacing themselves to SHARE of pgbench's tps "
                             "(0: skip)")
    args = parser.parse_args()
    url = fresh_database("rephlo_bench_deduct")
    app = app_for(url)
    keys = populate(app, args.users, CREDITS)
    lo, hi = keys[0][0], keys[-1][0]
    price_id = int(psql("SELECT id FROM model_prices WHERE model_name = 'gpt-4-turbo'", "rephlo_bench_deduct"))
    token = psql("SELECT token FROM pricing_state WHERE id = 1", "rephlo_bench_deduct")
    sql = pgbench_script(price_id, token, time.strftime("%Y-%m-01", time.gmtime()))
    reuse = ("--reuse-port",) if args.reuse_port else ()
    subprocess.run(["redis-cli", "-n", str(REDIS_DB), "flushdb"], capture_output=True)
    results = []
    for clients in [int(c) for c in args.clients.split(",")]:
        app_runs, pg_runs = [], []
        for _ in range(args.rounds):  # alternate, so a noisy neighbour hits both sides alike
            server = Gunicorn(url, args.workers, args.threads, worker_class=args.worker_class, extra_args=reuse)
            try:
                run_wrk(server.base, keys, clients, 3)  # warm-up: imports, pools, prepared statements
                time.sleep(2)  # the warm-up's last requests finish
                before = counts(app)
                app_run = run_wrk(server.base, keys, clients, args.duration)
            finally:
                server.stop()
            app_run["check"] = verify(app, before, app_run, clients)
            app_run["load_avg_1m"] = round(os.getloadavg()[0], 2)
            app_runs.append(app_run)
            pg_runs.append(run_pgbench(url, sql, lo, hi, clients, args.duration))
        bare = None
        if args.bare:  # the ceiling: a bare Flask endpoint running only this SQL
            server = Gunicorn(url, args.workers, args.threads, module="bench.bare_deduct_app:app", worker_class=args.worker_class,
                              extra_env={"BARE_DB_URL": url, "BARE_PRICE_ID": str(price_id)})
            try:
                run_wrk(server.base, keys, clients, 3)
                bare = run_wrk(server.base, keys, clients, args.duration)
                failed = {code: n for code, n in bare["statuses"].items() if code not in ("200", "201")}
                if failed or bare["socket_errors"]:  # a ceiling made of error answers is no ceiling
                    raise SystemExit(f"the bare endpoint failed: statuses {bare['statuses']}, socket errors "
                                     f"{bare['socket_errors']} (bench/results/gunicorn.log)")
            finally:
                server.stop()
        best, pg = max(app_runs, key=lambda r: r["rps"]), max(pg_runs, key=lambda r: r["tps"])
        paced = None
        if args.paced:  # the latency at the target's rate, below saturation (Little's law: at saturation
            # the mean latency is clients / throughput, 64 / 500 req/s = 128 ms, whatever the server)
            target = args.paced * pg["tps"]
            think = max(1, round(clients / target * 1000))
            server = Gunicorn(url, args.workers, args.threads, worker_class=args.worker_class, extra_args=reuse)
            try:
                for _ in range(2):  # warm up, then calibrate once more on the warm server
                    warm = run_wrk(server.base, keys, clients, 3, think)
                    # Little's law: clients = rate x (think + latency); take the latency off the think time
                    latency_ms = max(0.0, clients / warm["rps"] * 1000 - think)
                    think = max(1, round(clients / target * 1000 - latency_ms))
                time.sleep(1)
                before = counts(app)
                paced = run_wrk(server.base, keys, clients, args.duration, think)
            finally:
                server.stop()
            paced["check"] = verify(app, before, paced, clients)
            paced["think_ms"] = think
        row = {"clients": clients, "worker_class": args.worker_class, "reuse_port": args.reuse_port, "app_rps": round(best["rps"], 1), "app_p50_ms": best["p50_ms"],
               "app_p99_ms": best["p99_ms"], "pgbench_tps": round(pg["tps"], 1),
               "pgbench_latency_avg_ms": pg["latency_avg_ms"], "ratio": round(best["rps"] / pg["tps"], 3),
               "statuses": best["statuses"], "socket_errors": best["socket_errors"],
               "load_avg_1m": best["load_avg_1m"], **best["check"],
               "paced": None if paced is None else {
                   "target_rps": round(args.paced * pg["tps"], 1), "think_ms": paced["think_ms"],
                   "rps": round(paced["rps"], 1), "p50_ms": paced["p50_ms"], "p99_ms": paced["p99_ms"],
                   "mismatches": paced["check"]["balance_ledger_mismatches"],
                   "duplicates": paced["check"]["duplicate_request_ids"], "accounted": paced["check"]["accounted"]},
               "bare_endpoint_rps": round(bare["rps"], 1) if bare else None,
               "bare_ratio": round(bare["rps"] / pg["tps"], 3) if bare else None,
               "app_to_bare": round(best["rps"] / bare["rps"], 3) if bare else None,
               "all_rounds": {"app_rps": [round(r["rps"], 1) for r in app_runs],
                              "pgbench_tps": [round(r["tps"], 1) for r in pg_runs],
                              "mismatches": [r["check"]["balance_ledger_mismatches"] for r in app_runs],
                              "duplicates": [r["check"]["duplicate_request_ids"] for r in app_runs],
                              "socket_errors": [r["socket_errors"] for r in app_runs],
                              "load_avg_1m": [r["load_avg_1m"] for r in app_runs],
                              "accounted": [r["check"]["accounted"] for r in app_runs]}}
        results.append(row)
        print(json.dumps(row), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "deduct.json").write_text(json.dumps(results, indent=2))
    print(f"{'clients':>7} {'app req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'pgbench tps':>11} {'ratio':>6} "
          f"{'mismatches':>10} {'accounted':>9} {'bare req/s':>10} {'bare ratio':>10} {'paced req/s':>11} "
          f"{'paced p50':>9} {'paced p99':>9}")
    for r in results:
        print(f"{r['clients']:>7} {r['app_rps']:>9} {r['app_p50_ms']:>7.2f} {r['app_p99_ms']:>7.2f} "
              f"{r['pgbench_tps']:>11.1f} {r['ratio']:>6} {sum(r['all_rounds']['mismatches']):>10} "
              f"{str(all(r['all_rounds']['accounted'])):>9} {str(r['bare_endpoint_rps']):>10} {str(r['bare_ratio']):>10} "
              + (f"{r['paced']['rps']:>11} {r['paced']['p50_ms']:>9.2f} {r['paced']['p99_ms']:>9.2f}" if r["paced"] else ""))
    print(f"load average at the end: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    for r in results:  # issue 19's targets
        p = r["paced"]
        # clients that could not send at the offered rate measured a saturated server, not a paced p99
        slow = p is not None and p["rps"] < 0.9 * p["target_rps"]
        print(f"target at {r['clients']} clients: ratio {r['ratio']} >= 0.40 {'yes' if r['ratio'] >= 0.40 else 'NO'}; "
              + ("no paced run" if p is None else
                 f"paced p99 {p['p99_ms']:.1f} ms < 50 {'yes' if p['p99_ms'] < 50 and not slow else 'NO'}"
                 + (f" (only {p['rps']} of {p['target_rps']} req/s offered: saturated)" if slow else ""))
              + f"; mismatches {sum(r['all_rounds']['mismatches']) + (p['mismatches'] if p else 0)} (target 0)"
              # with --bare: how much of what a bare Flask + psycopg endpoint makes here the app makes
              + (f"; app / bare endpoint {r['app_to_bare']} (the bare endpoint: {r['bare_ratio']}x pgbench)"
                 if r["app_to_bare"] is not None else ""))


if __name__ == "__main__":
    main()
