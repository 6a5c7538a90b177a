"""Instructions per request of the hot API routes, in-process, counted by valgrind's callgrind:
the same number on a busy machine as on a quiet one, so a change's effect on the app's own work
can be measured while other work runs (req/s and CPU seconds cannot).

    .venv/bin/python bench/api_instructions.py [--routes balance,validate,validate_key,deduct]
        [--requests 500] [--warm 1000] [--bare] [--reuse]

1. The database of bench/vs_bare.py (rephlo_bench_bare: 1,000 customers with a balance and a key,
   100,000 licenses with 3 devices each), seeded afresh unless --reuse; the keys' secrets are kept
   in bench/results/api_instructions_keys.json for --reuse.
2. Per route, a child process builds the app as the benchmarks serve it (bench/common.py
   server_env: Redis on) and sends --warm requests through app.wsgi_app (no server, no socket:
   every key's rate window and every prepared statement warm), then --requests more with
   callgrind's instrumentation on (callgrind_control -i on/off). Prints Ir per request.
   --bare: the same requests through bench/bare_app.py replaying the route's recorded statements
   (bench/vs_bare.py's recipes, recorded here first).

Requests: balance (a random customer's key), validate (a random license and one of its devices,
no key), validate_key (the same with the owner's key), deduct (calculate-and-deduct, gpt-4-turbo
500/300 tokens, a fresh Idempotency-Key each). The licenses and keys are drawn from a seeded
random, so two runs send the same requests (but for deduct's new request ids). The count includes building each request's WSGI
environ (a few thousand instructions) and a background thread's work while instrumented (the
request counters' flush, once a second: run one route at a time, as this script does).
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

from bench.common import BIN, REDIS_DB, RESULTS, ROOT, server_env  # noqa: E402

KEYS = RESULTS / "api_instructions_keys.json"
ROUTES = ("balance", "validate", "validate_key", "deduct")

# The child: one route, in-process, instrumentation on for the measured requests only.
CHILD = r'''
import io, json, os, random, sys, uuid
sys.path.insert(0, os.environ["ROOT"])
from bench.license_validate import fingerprint_of, key_of
route, warm, n, licenses = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
secrets = json.load(open(os.environ["KEYS"]))
if os.environ.get("BARE_RECIPES"):
    from bench.bare_app import app
else:
    from app import create_app
    app = create_app()
random.seed(1)

def environ(i):
    env = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/json"}
    body = b""
    if route == "balance":
        env.update(REQUEST_METHOD="GET", PATH_INFO="/api/v1/credits/balance",
                   HTTP_AUTHORIZATION="Bearer " + secrets[i % len(secrets)])
    elif route == "deduct":
        rid = uuid.uuid4().hex  # new each run: a key sent before would be a replay
        body = json.dumps({"model": "gpt-4-turbo", "input_tokens": 500, "output_tokens": 300, "request_id": rid}).encode()
        env.update(PATH_INFO="/api/v1/credits/calculate-and-deduct", HTTP_IDEMPOTENCY_KEY=rid,
                   HTTP_AUTHORIZATION="Bearer " + secrets[i % len(secrets)])
    else:
        lic = random.randint(1, licenses)
        body = json.dumps({"license_key": key_of(lic), "fingerprint": fingerprint_of(lic, 1), "version": "1.5.0"}).encode()
        env["PATH_INFO"] = "/api/v1/licenses/validate"
        if route == "validate_key":  # license i belongs to the (i % users)-th key's owner (bench/vs_bare.py)
            env["HTTP_AUTHORIZATION"] = "Bearer " + secrets[lic % len(secrets)]
    env.update({"SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "wsgi.url_scheme": "http", "SCRIPT_NAME": "",
                "QUERY_STRING": "", "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
                "REMOTE_ADDR": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.errors": sys.stderr,
                "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
                "wsgi.version": (1, 0), "HTTP_HOST": "127.0.0.1:8000"})
    return env

statuses = {}
def call(i):
    seen = {}
    b"".join(app.wsgi_app(environ(i), lambda status, headers, exc=None: seen.setdefault("s", status)))
    statuses[seen["s"]] = statuses.get(seen["s"], 0) + 1

for i in range(warm):
    call(i)
os.system(f"callgrind_control -i on {os.getpid()} >/dev/null")
for i in range(n):
    call(i)
os.system(f"callgrind_control -i off {os.getpid()} >/dev/null")
print("STATUSES " + json.dumps(statuses), file=sys.__stdout__, flush=True)
'''


def seed_keys() -> str:
    from bench.vs_bare import seed

    url, keys = seed(1000, 100_000, 3)
    RESULTS.mkdir(parents=True, exist_ok=True)
    KEYS.write_text(json.dumps([secret for _, secret in keys]))
    return url


def instructions(route: str, env: dict, warm: int, n: int) -> tuple[int, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        child, out = Path(tmp) / "child.py", Path(tmp) / "callgrind.out"
        child.write_text(CHILD)
        proc = subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
                               str(BIN / "python"), str(child), route, str(warm), str(n), "100000"],
                              env=env, cwd=ROOT, capture_output=True, text=True)
        statuses = json.loads(proc.stdout.split("STATUSES ", 1)[1].splitlines()[0]) if "STATUSES" in proc.stdout \
            else {"error": proc.stderr[-2000:]}
        totals = [line for line in out.read_text().splitlines() if line.startswith("totals:")] if out.exists() else []
    return (int(totals[-1].split()[1]) // n if totals else 0), statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--routes", default=",".join(ROUTES))
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--warm", type=int, default=1000)
    parser.add_argument("--bare", action="store_true", help="also the bare endpoint (balance and validate routes)")
    parser.add_argument("--reuse", action="store_true", help="keep the database and keys of the last run")
    args = parser.parse_args()
    from bench.vs_bare import DB, record

    url = f"postgresql://postgres@127.0.0.1:5432/{DB}"
    if not (args.reuse and KEYS.exists()):
        url = seed_keys()
    env = {**os.environ, **server_env(url, REDIS_DB, "gevent"), "ROOT": str(ROOT), "KEYS": str(KEYS),
           "PYTHONPATH": str(ROOT)}
    routes = args.routes.split(",")
    bare_env = None
    bare_routes = [r for r in routes if r != "deduct"]
    if args.bare and bare_routes:
        secrets = json.loads(KEYS.read_text())
        recipes = record(url, list(enumerate(secrets)), bare_routes, "gevent")
        recipe_file = RESULTS / "api_instructions_recipes.json"
        recipe_file.write_text(json.dumps(recipes, default=str))
        bare_env = {**env, "BARE_RECIPES": str(recipe_file), "BARE_DB_URL": url}
    print(f"{'route':<14} {'app Ir/request':>15} {'bare Ir/request':>16}  statuses")
    for route in routes:
        subprocess.run(["redis-cli", "-n", str(REDIS_DB), "flushdb"], capture_output=True, check=False)
        app_ir, statuses = instructions(route, env, args.warm, args.requests)
        bare_ir = instructions(route, bare_env, args.warm, args.requests)[0] if bare_env and route != "deduct" else None
        print(f"{route:<14} {app_ir:>15,} {'-' if bare_ir is None else f'{bare_ir:,}':>16}  {statuses}", flush=True)


if __name__ == "__main__":
    main()
