"""POST /api/v1/licenses/validate under gunicorn, side by side with pgbench running the same SQL.

Run by hand:
    .venv/bin/python bench/license_validate.py [--licenses 100000] [--devices 3] [--workers 4]
        [--clients 16] [--seconds 20] [--redis redis://127.0.0.1:6379/14] [--hot 0] [--keep]

It makes its own database (rephlo_bench_licenses), migrates it, fills it with `--licenses`
licenses and `--devices` active activations each (bulk SQL), starts gunicorn on it, drives
POST /validate from `--clients` keep-alive connections for `--seconds` (random license and
one of its devices, so every answer is VALID and does the full lookup), then runs pgbench
on the exact statement the service issues (compiled from validation.lookup_statement) with
as many connections. With --redis the app caches validation state in Redis; --hot N draws
from only N devices so repeats hit the cache. Prints throughput, p50 and p99 of both.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
NAME = "rephlo_bench_licenses"


def key_of(i: int) -> str:
    return f"PERM-BENCH-{i:08d}"


def fingerprint_of(i: int, j: int) -> str:
    return f"{i:032x}{j:032x}"  # 64 hex characters, computable in SQL and in pgbench alike


def fresh_database() -> str:
    engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{NAME}"'))
    engine.dispose()
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{NAME}"


def migrate_and_fill(url: str, licenses: int, devices: int) -> None:
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": None, "JOBS_INLINE": True})
    with app.app_context():
        upgrade()
        fill(db.session, licenses, devices)
    with app.app_context():
        db.engine.dispose()


def fill(session, licenses: int, devices: int, make_owners: bool = True, owners: int = 1000) -> None:
    """`licenses` licenses (PERM-BENCH-00000001...) owned round-robin by `owners` users with
    consecutive ids (made here, or the first users already there: bench/vs_bare.py passes the
    users of bench/common.populate, so license i belongs to the (i % owners)-th key's owner),
    each with `devices` active activations (fingerprint_of(i, j)); bulk SQL, then ANALYZE."""
    from app.licensing import semver

    began = time.perf_counter()
    # bulk statements on a busy machine outlast the app's statement timeout (DB_STATEMENT_TIMEOUT_MS)
    session.execute(text("SET LOCAL statement_timeout = 0"))
    if make_owners:
        session.execute(text("""
            INSERT INTO users (email, first_name, last_name, account_type, is_staff, status, email_verified,
                               auth_provider, totp_enabled, session_version, is_test, created_at, updated_at)
            SELECT 'bench' || g || '@example.com', 'Bench', 'Owner', 'standard', false, 'active', true, 'local',
                   false, 1, false, now(), now()
            FROM generate_series(1, :owners) g"""), {"owners": owners})
    session.execute(text("""
        INSERT INTO licenses (license_key, user_id, status, purchase_price, purchased_version,
                              purchased_version_key, eligible_until_version, eligible_until_key, max_activations,
                              purchased_at, activated_at, is_test, created_at, updated_at)
        SELECT 'PERM-BENCH-' || lpad(g::text, 8, '0'), (SELECT min(id) FROM users) + g % :owners, 'active', 299.99,
               '1.0.0', :low, '2.0.0', :high, :seats, now(), now(), false, now(), now()
        FROM generate_series(1, :n) g"""),
        {"low": semver.sort_key("1.0.0"), "high": semver.sort_key("2.0.0"), "seats": devices + 2, "n": licenses,
         "owners": owners})
    session.execute(text("""
        INSERT INTO license_activations (license_id, fingerprint, device_name, os_type, os_version, cpu_info,
                                         status, activated_at, last_seen_at, is_test, created_at, updated_at)
        SELECT l.id, lpad(to_hex(substr(l.license_key, 12)::int), 32, '0') || lpad(to_hex(d), 32, '0'),
               'Bench device ' || d, 'Windows', '11', 'x86-64', 'active', now(), now(), false, now(), now()
        FROM licenses l CROSS JOIN generate_series(1, :d) d"""), {"d": devices})
    session.commit()
    session.execute(text("SET LOCAL statement_timeout = 0"))
    session.execute(text("ANALYZE"))
    session.commit()
    counts = session.execute(text(
        "SELECT (SELECT count(*) FROM licenses), (SELECT count(*) FROM license_activations)")).one()
    print(f"filled {counts[0]:,} licenses and {counts[1]:,} activations in {time.perf_counter() - began:.1f} s")


def lookup_sql() -> str:
    """The service's statement, with pgbench variables where the app binds parameters."""
    from sqlalchemy.dialects import postgresql

    from app.licensing.validation import lookup_statement

    sql = str(lookup_statement().compile(dialect=postgresql.dialect()))
    sql = sql.replace("%(license_key)s", "'PERM-BENCH-' || lpad(:i::text, 8, '0')")
    sql = sql.replace("%(fingerprint)s", "lpad(to_hex(:i::int), 32, '0') || lpad(to_hex(:j::int), 32, '0')")
    assert "%(" not in sql, sql
    return " ".join(sql.split())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(url: str, workers: int, threads: int, redis_url: str | None) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url.replace("+psycopg", ""), "REDIS_URL": redis_url or "",
           "SECRET_KEY": "bench", "JOBS_INLINE": "1", "LOG_FORMAT": "text",
           "LICENSE_CACHE_SECONDS": "15" if redis_url else "0"}
    factory = "app:create_app({'LICENSE_API_RATE_LIMIT': '100000000 per minute'})"
    proc = subprocess.Popen([str(ROOT / ".venv/bin/gunicorn"), "-w", str(workers), "--threads", str(threads),
                             "-k", "gthread", "-b", f"127.0.0.1:{port}", "--keep-alive", "30",
                             "--log-level", "warning", factory], cwd=ROOT, env=env)
    for _ in range(200):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/api/v1/health")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("gunicorn did not start")


def drive(port: int, clients: int, seconds: float, licenses: int, devices: int, hot: int) -> dict:
    stop = time.perf_counter() + seconds
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[int] = [0] * clients
    pool = [(i, j) for i in range(1, licenses + 1) for j in range(1, devices + 1)] if hot == 0 else None
    hot_set = [(random.Random(n).randint(1, licenses), random.Random(-n).randint(1, devices)) for n in range(hot)]

    def client(n: int) -> None:
        rng = random.Random(n)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.perf_counter() < stop:
            i, j = rng.choice(hot_set) if hot else pool[rng.randrange(len(pool))]
            body = json.dumps({"license_key": key_of(i), "fingerprint": fingerprint_of(i, j), "version": "1.5.0"})
            began = time.perf_counter()
            conn.request("POST", "/api/v1/licenses/validate", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
            latencies[n].append(time.perf_counter() - began)
            if response.status != 200 or b'"VALID"' not in data:
                errors[n] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    samples = sorted(x for per in latencies for x in per)
    return {"requests": len(samples), "rps": len(samples) / elapsed, "p50_ms": 1000 * statistics.median(samples),
            "p99_ms": 1000 * samples[int(len(samples) * 0.99) - 1], "errors": sum(errors)}


def cpu_per_request(url: str, licenses: int, devices: int, n: int = 500) -> float:
    """Python CPU milliseconds per validation, in-process (test client, no Redis): load-independent."""
    from app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": None,
                      "LICENSE_API_RATE_LIMIT": "100000000 per minute"})
    client, rng = app.test_client(), random.Random(3)

    def one():
        i, j = rng.randint(1, licenses), rng.randint(1, devices)
        body = {"license_key": key_of(i), "fingerprint": fingerprint_of(i, j), "version": "1.5.0"}
        assert client.post("/api/v1/licenses/validate", json=body).json["code"] == "VALID"

    for _ in range(50):
        one()
    began = time.process_time()
    for _ in range(n):
        one()
    return (time.process_time() - began) * 1000 / n


def pgbench(clients: int, seconds: int, licenses: int, devices: int) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="pgbench-licenses-"))
    script = workdir / "validate.sql"
    script.write_text(f"\\set i random(1, {licenses})\n\\set j random(1, {devices})\n{lookup_sql()};\n")
    out = subprocess.run(["pgbench", "-h", "127.0.0.1", "-U", "postgres", "-n", "-M", "prepared", "-c", str(clients),
                          "-j", str(min(clients, 2)), "-T", str(seconds), "-f", str(script), "-l",
                          "--log-prefix", str(workdir / "log"), NAME], capture_output=True, text=True, check=True)
    tps = float(re.search(r"tps = ([\d.]+)", out.stdout).group(1))
    samples = sorted(int(line.split()[2]) for log in workdir.glob("log*") for line in log.read_text().splitlines())
    shutil.rmtree(workdir)
    return {"tps": tps, "p50_ms": statistics.median(samples) / 1000, "p99_ms": samples[int(len(samples) * 0.99) - 1] / 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--licenses", type=int, default=100_000)
    parser.add_argument("--devices", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--redis", default=None, help="REDIS_URL for the app (and the validation cache on, 15 s)")
    parser.add_argument("--hot", type=int, default=0, help="draw from only this many devices (cache hits)")
    parser.add_argument("--keep", action="store_true", help="reuse the filled database")
    args = parser.parse_args()

    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{NAME}"
    if not args.keep:
        url = fresh_database()
        migrate_and_fill(url, args.licenses, args.devices)
    print(f"statement: {lookup_sql()}")
    with create_engine(url).connect() as conn:
        sample = re.sub(r"(?<!:):j\b", "2", re.sub(r"(?<!:):i\b", "4242", lookup_sql()))
        plan = conn.execute(text("EXPLAIN " + sample)).scalars().all()
    print("plan:\n  " + "\n  ".join(plan))
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} before the run")
    print(f"Python CPU per validation (in-process, no Redis): {cpu_per_request(url, args.licenses, args.devices):.2f} ms")
    proc, port = start_gunicorn(url, args.workers, args.threads, args.redis)
    try:
        drive(port, args.clients, 3, args.licenses, args.devices, args.hot)  # warm-up
        app = drive(port, args.clients, args.seconds, args.licenses, args.devices, args.hot)
    finally:
        proc.terminate()
        proc.wait(10)
    cache = f"Redis cache, hot set {args.hot or 'all'}" if args.redis else "no cache"
    print(f"POST /validate  gunicorn {args.workers}x{args.threads} gthread, {args.clients} clients, {cache}: "
          f"{app['rps']:,.0f} req/s, p50 {app['p50_ms']:.2f} ms, p99 {app['p99_ms']:.2f} ms "
          f"({app['requests']:,} requests, {app['errors']} not VALID)")
    base = pgbench(args.clients, args.seconds, args.licenses, args.devices)
    print(f"pgbench same SQL, {args.clients} connections, prepared: {base['tps']:,.0f} tps, "
          f"p50 {base['p50_ms']:.2f} ms, p99 {base['p99_ms']:.2f} ms")


if __name__ == "__main__":
    main()
