"""GET /api/v1/credits/balance and POST /api/v1/licenses/validate against a bare Flask + psycopg
endpoint running the same statements (issue 19: real >= 0.80x bare, paced p99 < 20 ms at 16
clients), both under gunicorn.conf.py, both driven by wrk in the same run.

    .venv/bin/python bench/vs_bare.py [--clients 16] [--duration 20] [--rounds 2] [--paced 0.5]
        [--routes balance,validate,validate_key] [--workers 2] [--worker-class gevent|gthread]
        [--users 1000] [--licenses 100000] [--devices 3]

1. A fresh database (rephlo_bench_bare): the seed's pricing, --users production customers with a
   balance and a live key each (bench/common.py), --licenses licenses owned round-robin by them
   with --devices active devices each (bench/license_validate.py).
2. One request per route is sent through the app in-process, configured as the served app is
   (same environment, Redis on), after warm-up requests that put the key in the state it has
   under load (used a moment ago); bench/sql_capture.py records every statement and commit it
   sends to PostgreSQL. They are printed, and bench/bare_app.py replays them per request.
3. Both apps run under gunicorn -c gunicorn.conf.py (-k/-w from the flags) at the same time on
   two ports (an idle one costs nothing). Per route and round, wrk (-t 2, --clients keep-alive
   connections, a Lua script: a random customer's key in the Authorization header; a random
   license and one of its devices in the body) saturates first the bare endpoint, then the app.
4. Paced: wrk 4 has no -R (that is wrk2, not packaged here), so each connection waits a random
   exponential think time after each answer (Lua delay()), calibrated so that the clients offer
   --paced x the bare endpoint's saturated req/s; p99 is wrk's, of the requests sent, at that
   rate (a closed loop: if the server falls behind, the clients slow down, shown as a rate
   below the offer).

Each saturated run also reads the gunicorn workers' CPU time from /proc: CPU milliseconds per
request of the app and of the bare endpoint move much less with the machine's load than req/s
do, so on a shared machine their quotient is the better guess at the quiet machine's ratio.

Routes: balance (Bearer key), validate (license key and fingerprint in the body, no key: the
desktop app's call), validate_key (the same with the owner's API key). Prints a table, writes
bench/results/vs_bare.json. The machine's load average is printed: it is shared; compare runs
made back to back, and re-run on a quiet machine for numbers to quote.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
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
    server_env,
)
from bench.license_validate import fingerprint_of, key_of
from bench.sql_capture import printable, recipe, recording, request_inputs

DB = "rephlo_bench_bare"
PATHS = {"balance": ("GET", "/api/v1/credits/balance"), "validate": ("POST", "/api/v1/licenses/validate"),
         "validate_key": ("POST", "/api/v1/licenses/validate")}

LUA = r"""
local mode = "%(mode)s"
local keys = {%(keys)s}
local licenses, devices, think_ms = %(licenses)d, %(devices)d, %(think_ms)d
local threads = {}
statuses, valid = {}, 0
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(os.time() * 1000 + tid)
end
function delay()
  -- exponential think time: independent clients, arrivals close to Poisson
  if think_ms <= 0 then return 0 end
  return math.floor(-math.log(1 - math.random()) * think_ms)
end
function request()
  if mode == "balance" then
    return wrk.format("GET", "/api/v1/credits/balance", {["Authorization"] = "Bearer " .. keys[math.random(#keys)]})
  end
  local i, j = math.random(licenses), math.random(devices)
  local body = string.format('{"license_key":"PERM-BENCH-%%08d","fingerprint":"%%032x%%032x","version":"1.5.0"}',
    i, i, j)
  local headers = {["Content-Type"] = "application/json"}
  if mode == "validate_key" then headers["Authorization"] = "Bearer " .. keys[(i %% #keys) + 1] end
  return wrk.format("POST", "/api/v1/licenses/validate", headers, body)
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if string.find(body, '"VALID"', 1, true) then valid = valid + 1 end
end
function done(summary, latency, requests)
  local agg, ok = {}, 0
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("statuses")) do agg[tostring(code)] = (agg[tostring(code)] or 0) + n end
    ok = ok + t:get("valid")
  end
  local parts = {}
  for code, n in pairs(agg) do table.insert(parts, '"' .. code .. '":' .. n) end
  io.write(string.format('RESULT {"requests":%%d,"seconds":%%.3f,"p50_ms":%%.2f,"p99_ms":%%.2f,"max_ms":%%.2f,' ..
    '"valid_bodies":%%d,"socket_errors":%%d,"statuses":{%%s}}\n', summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000, ok,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    table.concat(parts, ",")))
end
"""


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (/proc/loadavg): the machine may be shared."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def seed(users: int, licenses: int, devices: int) -> tuple[str, list[tuple[int, str]]]:
    from app.extensions import db
    from bench.license_validate import fill

    url = fresh_database(DB)
    app = app_for(url)
    keys = populate(app, users)
    with app.app_context():
        fill(db.session, licenses, devices, make_owners=False, owners=users)
        db.engine.dispose()
    first, count = psql("SELECT min(id) || '|' || count(*) FROM users", DB).split("|")
    assert int(first) == keys[0][0] and int(count) == users, "license owners must be the keys' owners"
    return url, keys


def record(url: str, keys: list[tuple[int, str]], routes: list[str], worker_class: str) -> list[dict]:
    """The statements each route sends, recorded from one in-process request (module docstring)."""
    from app import create_app

    os.environ.update(server_env(url, REDIS_DB, worker_class))
    subprocess.run(["redis-cli", "-n", str(REDIS_DB), "flushdb"], capture_output=True, check=False)
    client = create_app().test_client()
    recipes = []
    for number, route in enumerate(routes):
        method, path = PATHS[route]
        # The customer (and, n licenses apart, the license) of the recorded request: one per route,
        # so no route's license is in the validation cache from another's recording.
        k = 7 + number
        n = len(keys)

        def send(i: int, key_index: int | None, route=route, method=method, path=path):
            secret = keys[key_index][1] if key_index is not None else None
            headers = {"Authorization": f"Bearer {secret}"} if secret else {}
            body = None if method == "GET" else {"license_key": key_of(i), "fingerprint": fingerprint_of(i, 1),
                                                 "version": "1.5.0"}
            answer = client.open(path, method=method, headers=headers, json=body)
            assert answer.status_code == 200, (route, answer.status_code, answer.data)
            assert route == "balance" or answer.json["code"] == "VALID", answer.data
            return secret, body

        uses_key = route != "validate"
        for warm in (k + n, k + n):  # the key used a moment ago; this license not yet (cache miss)
            send(warm, k if uses_key else None)
        with recording() as log:
            secret, body = send(k, k if uses_key else None)
        steps = recipe(log, request_inputs(secret, body))
        assert route == "balance" or any("body.license_key" in str(s.get("params")) for s in steps), \
            f"{route}: the recorded request did not look the license up (a cache hit?)"
        print(f"-- {route}: {method} {path}, {sum('sql' in s for s in steps)} statements\n{printable(steps)}\n")
        recipes.append({"route": route, "method": method, "path": path, "bearer": uses_key, "steps": steps})
    return recipes


def workers_cpu_seconds(server: Gunicorn) -> float:
    """User + system CPU time of the server's worker processes so far (/proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()
    total = 0
    for pid in children:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / tick


def measured(server: Gunicorn, *args, **kwargs) -> dict:
    """run_wrk, with the workers' CPU milliseconds per request: unlike req/s, hardly moved by
    other work on the machine, so the two apps' CPU per request compare even on a busy one."""
    before = workers_cpu_seconds(server)
    result = run_wrk(server.base, *args, **kwargs)
    result["cpu_ms_per_request"] = round((workers_cpu_seconds(server) - before) * 1000 / max(result["requests"], 1), 3)
    return result


def run_wrk(base: str, mode: str, keys, licenses: int, devices: int, clients: int, seconds: int,
            think_ms: int = 0) -> dict:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(LUA % {"mode": mode, "keys": ",".join(f'"{k}"' for _, k in keys), "licenses": licenses,
                             "devices": devices, "think_ms": think_ms})
    try:
        out = subprocess.run(["wrk", "-t", "2", "-c", str(clients), "-d", f"{seconds}s", "-s", str(script), base],
                             capture_output=True, text=True, check=True).stdout
    finally:
        script.unlink()
    result = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    result["rps"] = round(result["requests"] / result["seconds"], 1)
    result["errors"] = result["requests"] - result["statuses"].get("200", 0) + result["socket_errors"]
    result["load_avg_1m"] = round(os.getloadavg()[0], 2)
    return result


def paced(base: str, mode: str, keys, licenses: int, devices: int, clients: int, seconds: int,
          target: float) -> dict:
    """Clients thinking between requests so that they offer `target` req/s (module docstring)."""
    think = max(1, round(clients / target * 1000))
    for _ in range(2):  # calibrate on the warm server: take the latency off the think time (Little's law)
        warm = run_wrk(base, mode, keys, licenses, devices, clients, 3, think)
        latency_ms = max(0.0, clients / max(warm["rps"], 1) * 1000 - think)
        think = max(1, round(clients / target * 1000 - latency_ms))
    result = run_wrk(base, mode, keys, licenses, devices, clients, seconds, think)
    result["think_ms"], result["offered_rps"] = think, round(target, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--routes", default="balance,validate,validate_key")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2, help="saturated bare/app runs per route (best kept)")
    parser.add_argument("--paced", type=float, default=0.5, metavar="SHARE",
                        help="paced run offering SHARE x the bare endpoint's saturated req/s (0: skip)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="gevent", choices=["gevent", "gthread"])
    parser.add_argument("--threads", type=int, default=6, help="threads per process with gthread")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--licenses", type=int, default=100_000)
    parser.add_argument("--devices", type=int, default=3)
    args = parser.parse_args()
    routes = args.routes.split(",")
    assert args.licenses > args.users + len(routes) + 7, "the recording warms up on license k + users"

    print(f"machine: {os.cpu_count()} cores, load average {load_average()} at start")
    url, keys = seed(args.users, args.licenses, args.devices)
    recipes = record(url, keys, routes, args.worker_class)
    RESULTS.mkdir(parents=True, exist_ok=True)
    recipe_file = RESULTS / "bare_recipes.json"
    recipe_file.write_text(json.dumps(recipes, indent=1, default=str))

    subprocess.run(["redis-cli", "-n", str(REDIS_DB), "flushdb"], capture_output=True, check=False)
    common = {"worker_class": args.worker_class}
    real = Gunicorn(url, args.workers, args.threads, log_name="gunicorn_real.log", **common)
    bare = Gunicorn(url, args.workers, args.threads, module="bench.bare_app:app", log_name="gunicorn_bare.log",
                    extra_env={"BARE_DB_URL": url, "BARE_RECIPES": str(recipe_file)}, **common)
    shape = (keys, args.licenses, args.devices, args.clients)
    rows = []
    try:
        for route in routes:
            for server in (bare, real):  # warm-up: imports, pools, prepared statements
                run_wrk(server.base, route, *shape, 3)
            runs = {"bare": [], "real": []}
            for _ in range(args.rounds):  # alternate, so a noisy neighbour hits both alike
                runs["bare"].append(measured(bare, route, *shape, args.duration))
                runs["real"].append(measured(real, route, *shape, args.duration))
            best = {side: max(r, key=lambda x: x["rps"]) for side, r in runs.items()}
            row = {"route": route, "path": PATHS[route][1], "clients": args.clients,
                   "real_rps": best["real"]["rps"], "bare_rps": best["bare"]["rps"],
                   "ratio": round(best["real"]["rps"] / best["bare"]["rps"], 3),
                   "real_cpu_ms_per_request": min(r["cpu_ms_per_request"] for r in runs["real"]),
                   "bare_cpu_ms_per_request": min(r["cpu_ms_per_request"] for r in runs["bare"]),
                   "real_errors": sum(r["errors"] for r in runs["real"]),
                   "bare_errors": sum(r["errors"] for r in runs["bare"]),
                   "real_not_valid": (None if route == "balance" else
                                      sum(r["requests"] - r["valid_bodies"] for r in runs["real"])),
                   "rounds": runs, "paced": None}
            if args.paced:
                target = args.paced * best["bare"]["rps"]
                row["paced"] = {side: paced(server.base, route, *shape, args.duration, target)
                                for side, server in (("bare", bare), ("real", real))}
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "rounds"}), flush=True)
    finally:
        real.stop()
        bare.stop()
    (RESULTS / "vs_bare.json").write_text(json.dumps(rows, indent=2))
    print(f"\n{args.worker_class} x{args.workers}, {args.clients} clients, wrk -t 2, {args.duration} s runs, "
          f"best of {args.rounds}; load average at the end {load_average()}")
    print(f"{'route':<14} {'real req/s':>10} {'bare req/s':>10} {'ratio':>6} {'>=0.80':>6} {'offered':>7} "
          f"{'real paced':>10} {'real p99':>8} {'bare p99':>8} {'<20ms':>5} {'errors':>6} {'CPU ms/req real/bare':>20}")
    for r in rows:
        p = r["paced"]
        # a paced run whose clients could not send at the offered rate measured a saturated server
        slow = p and p["real"]["rps"] < 0.9 * p["real"]["offered_rps"]
        paced_cols = (f"{p['real']['offered_rps']:>7} {p['real']['rps']:>10} {p['real']['p99_ms']:>8.2f} "
                      f"{p['bare']['p99_ms']:>8.2f} {'yes' if p['real']['p99_ms'] < 20 and not slow else 'NO':>5}"
                      ) if p else f"{'-':>7} {'-':>10} {'-':>8} {'-':>8} {'-':>5}"
        print(f"{r['route']:<14} {r['real_rps']:>10} {r['bare_rps']:>10} {r['ratio']:>6} "
              f"{'yes' if r['ratio'] >= 0.8 else 'NO':>6} {paced_cols} {r['real_errors'] + r['bare_errors']:>6} "
              f"{str(r['real_cpu_ms_per_request']) + ' / ' + str(r['bare_cpu_ms_per_request']):>20}"
              + ("  (paced run fell below the offered rate: saturated, not a paced p99)" if slow else ""))


if __name__ == "__main__":
    main()
