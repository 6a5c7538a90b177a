"""Shared plumbing of the credits benchmarks: a fresh PostgreSQL database, migrated, with the
seed's pricing and N funded production users with live API keys; a gunicorn to talk to."""
from __future__ import annotations

import os
import secrets
import socket
import string
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
RESULTS = ROOT / "bench" / "results"
# Redis database the benchmarked app uses (and flushes): keep it apart from test runs on the same Redis.
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "15"))


def psql(sql: str, db: str = "postgres") -> str:
    return subprocess.run(["psql", f"{PG}/{db}", "-qAtX", "-c", sql], check=True, capture_output=True,
                          text=True).stdout.strip()


def fresh_database(name: str) -> str:
    psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{name}"')
    url = f"{PG}/{name}"
    env = {**os.environ, "DATABASE_URL": url, "FLASK_APP": "wsgi", "REDIS_URL": ""}
    subprocess.run([str(BIN / "flask"), "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    return url


def app_for(url: str):
    sys.path.insert(0, str(ROOT))
    from app import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url.replace("postgresql://", "postgresql+psycopg://"),
                       "REDIS_URL": None, "JOBS_INLINE": True})


def populate(app, users: int, credits: int = 10_000_000, tier: str = "pro") -> list[tuple[int, str]]:
    """Seed pricing, then `users` production customers with a balance and one live key each."""
    from sqlalchemy import insert, select

    from app.core import clock
    from app.credits.models import CreditAllocation, CreditBalance
    from app.credits.seed import _pricing
    from app.extensions import db
    from app.api.models import ApiKey, secret_hash
    from app.users.models import User

    alphabet = string.ascii_letters + string.digits
    with app.app_context():
        _pricing(db.session, {}, log=lambda *_: None)
        now = clock.now()
        db.session.execute(insert(User), [
            {"email": f"bench{i}@example.com", "first_name": "Bench", "last_name": str(i), "account_type": "standard",
             "is_test": False, "created_at": now, "updated_at": now} for i in range(users)])
        ids = list(db.session.scalars(select(User.id).where(User.email.like("bench%@example.com"))
                                      .order_by(User.id)))
        month = now.date().replace(day=1)
        db.session.execute(insert(CreditBalance), [
            {"user_id": uid, "tier": tier, "subscription_credits": credits, "bonus_credits": 0, "mtd_month": month,
             "mtd_credits": 0, "mtd_tokens": 0, "is_test": False, "created_at": now, "updated_at": now}
            for uid in ids])
        db.session.execute(insert(CreditAllocation), [
            {"user_id": uid, "amount": credits, "source": "monthly_allocation", "bucket": "subscription",
             "reason": "bench", "balance_after": credits, "is_test": False, "created_at": now} for uid in ids])
        keys = []
        for uid in ids:
            plain = "rph_live_" + "".join(secrets.choice(alphabet) for _ in range(40))
            keys.append((uid, plain))
        db.session.execute(insert(ApiKey), [
            {"user_id": uid, "name": "bench", "key_type": "production", "prefix": "rph_live_",
             "key_hash": secret_hash(plain), "last4": plain[-4:], "scopes": ["*"], "is_test": False,
             "created_at": now, "updated_at": now} for uid, plain in keys])
        db.session.commit()
    return keys


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(url: str, redis_db: int = REDIS_DB, worker_class: str = "gthread") -> dict:
    """The environment the benchmarked app runs with (bench/vs_bare.py also builds its in-process
    app from it, to record the SQL of the same configuration)."""
    return {"DATABASE_URL": url, "FLASK_APP": "wsgi", "SECRET_KEY": "bench",
            "REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}", "LOG_FORMAT": "json",
            "API_RATE_LIMIT_LIVE": "1000000 per minute", "LICENSE_API_RATE_LIMIT": "100000000 per minute",
            "JOBS_INLINE": "1", **({"DB_POOL_SIZE": "32"} if worker_class == "gevent" else {})}


class Gunicorn:
    """gunicorn on the benchmark database, Redis for rate limits and request counters."""

    def __init__(self, url: str, workers: int, threads: int = 1, redis_db: int = REDIS_DB, module: str = "wsgi:app",
                 extra_env: dict | None = None, worker_class: str = "gthread", extra_args: tuple[str, ...] = (),
                 log_name: str = "gunicorn.log"):
        self.port = free_port()
        env = {**os.environ, **server_env(url, redis_db, worker_class), **(extra_env or {})}
        RESULTS.mkdir(parents=True, exist_ok=True)
        self.log = open(RESULTS / log_name, "w")
        concurrency = ["--threads", str(threads)] if worker_class == "gthread" else ["--worker-connections", "1000"]
        # The deployment's settings (gunicorn.conf.py: its start-up hook too), this run's on top.
        cmd = [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "-k", worker_class, "-w", str(workers),
               *concurrency, "-b", f"127.0.0.1:{self.port}", "--backlog", "2048", *extra_args, module]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        for _ in range(200):
            try:
                urlopen(self.base + "/api/v1/health", timeout=1)
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"gunicorn did not start: see bench/results/{log_name}")
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not answer")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)
        self.log.close()
