"""Benchmark of the nightly test-data cleanup on PostgreSQL (run by hand, not in the suite).

    .venv/bin/python bench/cleanup.py [--users 10000] [--rows 100] [--production 100000] [--batch 200]

Builds a scratch database next to the test ones: `--users` expired test accounts owning about
`--rows` rows each (usage ledger + ledger items, as a later billing/credits issue would add,
declared here only as tables with foreign keys; plus recovery codes, role assignments and
permission overrides), next to `--production` production ledger rows. While the cleanup runs,
a probe writes production rows every 20 ms on its own connection and records its slowest
write. Reports rows/s, the longest single batch transaction (the longest any lock was held),
and checks that every production row is still there.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Integer, Table, create_engine, text  # noqa: E402

ADMIN_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
DB_NAME = "rephlo_bench_cleanup"


def fresh_database() -> str:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
    admin.dispose()
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{DB_NAME}"


def declare_fact_tables(metadata) -> tuple[Table, Table]:
    ledger = Table("bench_usage_ledger", metadata,
                   Column("id", BigInteger, primary_key=True),
                   Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
                   Column("credits", Integer, nullable=False),
                   Column("is_test", Boolean, nullable=False, index=True))
    items = Table("bench_usage_items", metadata,
                  Column("id", BigInteger, primary_key=True),
                  Column("ledger_id", ForeignKey("bench_usage_ledger.id", ondelete="CASCADE"), nullable=False,
                         index=True),
                  Column("tokens", Integer, nullable=False),
                  Column("is_test", Boolean, nullable=False, index=True))
    return ledger, items


def copy_rows(raw, table: str, columns: list[str], rows) -> int:
    n = 0
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def populate(engine, args, role_id: int) -> dict:
    """COPY the data in: test users first get ids 1..users, production users the next ones."""
    ledger_per_user = max(1, args.rows - 40)  # 60 ledger + 20 items + 10 codes + 5 roles + 5 overrides
    raw = engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        users_cols = ["id", "email", "first_name", "last_name", "account_type", "is_test", "is_staff", "status",
                      "email_verified", "auth_provider", "totp_enabled", "session_version", "test_expires_at",
                      "created_at", "updated_at"]
        prod_users = max(1, args.production // 100)

        def user_rows():
            for i in range(1, args.users + prod_users + 1):
                test = i <= args.users
                yield (i, f"{'t' if test else 'p'}{i}@{'example.test' if test else 'example.com'}", "F", "L",
                       "test" if test else "standard", test, False, "active", True, "local", False, 1,
                       "2025-01-01T00:00:00Z" if test else None, "2024-12-01T00:00:00Z", "2024-12-01T00:00:00Z")

        counts = {"users": copy_rows(dbapi, "users", users_cols, user_rows())}
        ledger_id = 0
        ledger_rows, item_rows = [], []

        def ledger_gen():
            nonlocal ledger_id
            for uid in range(1, args.users + 1):
                for _ in range(ledger_per_user):
                    ledger_id += 1
                    yield (ledger_id, uid, 3, True)
            for uid in range(args.users + 1, args.users + prod_users + 1):
                for _ in range(100):
                    ledger_id += 1
                    yield (ledger_id, uid, 7, False)

        counts["bench_usage_ledger"] = copy_rows(dbapi, "bench_usage_ledger", ["id", "user_id", "credits", "is_test"],
                                                 ledger_gen())

        def items_gen():
            item_id = 0
            for uid in range(args.users):
                first = uid * ledger_per_user + 1
                for j in range(20):
                    item_id += 1
                    yield (item_id, first + j % ledger_per_user, 100, True)

        counts["bench_usage_items"] = copy_rows(dbapi, "bench_usage_items", ["id", "ledger_id", "tokens", "is_test"],
                                                items_gen())
        counts["recovery_codes"] = copy_rows(dbapi, "recovery_codes", ["user_id", "code_hash", "created_at"], (
            (uid, f"{uid:032x}{j:032x}", "2024-12-01T00:00:00Z") for uid in range(1, args.users + 1) for j in range(10)))
        counts["role_assignments"] = copy_rows(
            dbapi, "role_assignments", ["user_id", "role_id", "assigned_at", "is_active", "reason", "notify_user", "is_test"],
            ((uid, role_id, "2024-12-01T00:00:00Z", True, "bench", False, True)
             for uid in range(1, args.users + 1) for _ in range(5)))
        counts["permission_overrides"] = copy_rows(
            dbapi, "permission_overrides", ["user_id", "permission", "action", "reason", "granted_at", "is_active", "is_test"],
            ((uid, "users.view", "grant", "bench", "2024-12-01T00:00:00Z", True, True)
             for uid in range(1, args.users + 1) for _ in range(5)))
        with dbapi.cursor() as cur:
            cur.execute("SELECT setval('users_id_seq', (SELECT max(id) FROM users))")
            cur.execute("SELECT setval('bench_usage_ledger_id_seq', (SELECT max(id) FROM bench_usage_ledger))")
        dbapi.commit()
        dbapi.autocommit = True  # VACUUM cannot run in a transaction
        try:
            with dbapi.cursor() as cur:
                cur.execute("VACUUM ANALYZE")
        finally:
            dbapi.autocommit = False  # the connection goes back to the pool: as it came
    finally:
        raw.close()
    counts["production_users"] = prod_users
    return counts


class Probe(threading.Thread):
    """Production writes on their own connection every 20 ms; keeps the slowest one."""

    def __init__(self, url: str, user_id: int):
        super().__init__(daemon=True)
        self.engine = create_engine(url)
        self.user_id, self.stop, self.worst, self.writes = user_id, threading.Event(), 0.0, 0

    def run(self):
        while not self.stop.is_set():
            started = time.perf_counter()
            with self.engine.begin() as conn:
                conn.execute(text("INSERT INTO bench_usage_ledger (user_id, credits, is_test) VALUES (:u, 1, false)"),
                             {"u": self.user_id})
                conn.execute(text("UPDATE users SET updated_at = now() WHERE id = :u"), {"u": self.user_id})
            self.worst = max(self.worst, time.perf_counter() - started)
            self.writes += 1
            time.sleep(0.02)
        self.engine.dispose()


class StatementProfile:
    """Time spent per statement shape (its first line and table), for --profile."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.totals: dict[str, list[float]] = {}

        @event.listens_for(engine, "before_cursor_execute")
        def before(conn, cursor, statement, params, context, executemany):
            conn.info["profile_started"] = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def after(conn, cursor, statement, params, context, executemany):
            elapsed = time.perf_counter() - conn.info.pop("profile_started", time.perf_counter())
            shape = " ".join(statement.split())[:110]
            entry = self.totals.setdefault(shape, [0.0, 0])
            entry[0] += elapsed
            entry[1] += 1

    def report(self, top: int = 15) -> None:
        print("slowest statement shapes (total s, count):")
        for shape, (total, count) in sorted(self.totals.items(), key=lambda kv: -kv[1][0])[:top]:
            print(f"  {total:7.2f}s {count:6d}  {shape}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--production", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=200, help="test accounts per batch (TEST_DATA_CLEANUP_BATCH_SIZE)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database afterwards")
    parser.add_argument("--profile", action="store_true", help="print the statements that took the most time")
    args = parser.parse_args()

    url = fresh_database()
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db
    from app.rbac.service import ensure_catalogue
    from app.sandbox import cleanup

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "JOBS_INLINE": True, "REDIS_URL": None,
                      "TEST_DATA_CLEANUP_BATCH_SIZE": args.batch})
    with app.app_context():
        upgrade()
        ensure_catalogue(db.session)
        db.session.commit()
        ledger, items = declare_fact_tables(db.metadata)
        db.metadata.create_all(db.engine, tables=[ledger, items])
        role_id = db.session.execute(text("SELECT id FROM roles WHERE name = 'support'")).scalar_one()
        started = time.perf_counter()
        counts = populate(db.engine, args, role_id)
        print(f"populated in {time.perf_counter() - started:.1f}s: " + ", ".join(f"{k}={v:,}" for k, v in counts.items()))
        production_before = db.session.execute(text(
            "SELECT count(*), sum(credits) FROM bench_usage_ledger WHERE is_test = false")).one()

        profile = StatementProfile(db.engine) if args.profile else None
        probe = Probe(url, args.users + 1)
        probe.start()
        started = time.perf_counter()
        run = cleanup.cleanup_expired(db.session, trigger="cli")
        elapsed = time.perf_counter() - started
        probe.stop.set()
        probe.join()
        if profile:
            profile.report()

        production_after = db.session.execute(text(
            "SELECT count(*), sum(credits) FROM bench_usage_ledger WHERE is_test = false AND credits = 7")).one()
        left = db.session.execute(text("SELECT count(*) FROM users WHERE is_test")).scalar()
        rows = run.total_deleted
        print(f"cleanup: {rows:,} rows ({run.deleted.get('users', 0):,} test accounts) in {elapsed:.1f}s "
              f"= {rows / elapsed:,.0f} rows/s, {run.batches} batches of {args.batch} accounts")
        print(f"longest batch transaction (longest lock held): {run.longest_batch_ms} ms; "
              f"average {elapsed * 1000 / max(run.batches, 1):.0f} ms")
        print(f"probe: {probe.writes} production writes during the cleanup, slowest {probe.worst * 1000:.0f} ms")
        print("deleted per table: " + ", ".join(f"{k}={v:,}" for k, v in sorted(run.deleted.items())))
        print(f"test accounts left: {left}; production ledger rows before {production_before[0]:,}, "
              f"after {production_after[0]:,} (sum of credits {production_before[1]:,} -> {production_after[1]:,})")
        assert production_after == production_before and left == 0
        db.session.remove()
        db.engine.dispose()
    if not args.keep:
        admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
