"""Staff lists at scale: users list, audit log, role change log and CSV export on PostgreSQL.

Run by hand:  .venv/bin/python bench/rbac_lists.py [--users 100000] [--audit 200000] [--changes 50000]
It makes its own database (rephlo_bench_rbac), fills it with bulk inserts, signs a super admin
in through the test client and prints the median time of each screen over a few requests.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, insert, text  # noqa: E402

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
NAME = "rephlo_bench_rbac"
BATCH = 5000


def fresh_database() -> str:
    engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{NAME}"'))
    engine.dispose()
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{NAME}"


def fill(db, users: int, audits: int, changes: int) -> int:
    from app.core.audit import AuditEntry
    from app.rbac.models import RoleChangeLog
    from app.users.models import User

    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    rng = random.Random(7)
    for first in range(0, users, BATCH):
        db.session.execute(insert(User), [
            {"email": f"person{n}@example.com", "first_name": f"First{n}", "last_name": f"Last{n % 997}",
             "is_staff": n % 50 == 0, "is_test": n % 10 == 0, "account_type": "test" if n % 10 == 0 else "standard",
             "created_at": start + timedelta(seconds=n * 30), "updated_at": start}
            for n in range(first, min(first + BATCH, users))])
    db.session.commit()
    ids = [row[0] for row in db.session.execute(text("SELECT id FROM users ORDER BY id"))]
    actions = ["users.suspended", "credits.granted", "auth.login_succeeded", "rbac.role_assigned", "coupons.created"]
    for first in range(0, audits, BATCH):
        db.session.execute(insert(AuditEntry), [
            {"actor_id": ids[n % len(ids)], "actor_label": f"person{n % len(ids)}@example.com",
             "action": actions[n % len(actions)], "target_type": "users", "target_id": str(rng.choice(ids)),
             "target_label": f"person{n % 1000}@example.com", "is_test": n % 10 == 0,
             "created_at": start + timedelta(seconds=n * 10), "ip_address": "203.0.113.45", "user_agent": "bench"}
            for n in range(first, min(first + BATCH, audits))])
    perms = ["subscriptions.view", "users.view", "roles.view"]
    for first in range(0, changes, BATCH):
        db.session.execute(insert(RoleChangeLog), [
            {"target_user_id": rng.choice(ids), "changed_by_label": "admin.test@rephlo.ai",
             "action": "role_assigned", "old_permissions": [], "new_permissions": perms, "reason": "bench",
             "is_test": n % 10 == 0, "created_at": start + timedelta(seconds=n * 40)}
            for n in range(first, min(first + BATCH, changes))])
    db.session.commit()
    db.session.execute(text("ANALYZE"))
    db.session.commit()
    return ids[0]


def timed(client, url: str, runs: int = 5) -> tuple[float, int]:
    samples, status = [], 0
    for _ in range(runs):
        began = time.perf_counter()
        response = client.get(url)
        response.get_data()
        samples.append((time.perf_counter() - began) * 1000)
        status = response.status_code
    return statistics.median(samples), status


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--audit", type=int, default=200_000)
    parser.add_argument("--changes", type=int, default=50_000)
    args = parser.parse_args()

    from app import create_app
    from app.auth.guards import SESSION_MFA, SESSION_SEEN, SESSION_STARTED
    from app.core import clock
    from app.extensions import db
    from app.rbac.models import Role, RoleAssignment
    from app.rbac.service import ensure_catalogue
    from flask_migrate import upgrade

    app = create_app({"SQLALCHEMY_DATABASE_URI": fresh_database(), "JOBS_INLINE": True, "REDIS_URL": None,
                      "RATELIMIT_STORAGE_URI": "memory://", "SECRET_KEY": "bench", "LOG_FORMAT": "text"})
    with app.app_context():
        upgrade()
        ensure_catalogue(db.session)
        began = time.perf_counter()
        admin_id = fill(db, args.users, args.audit, args.changes)
        print(f"filled {args.users} users, {args.audit} audit rows, {args.changes} changes "
              f"in {time.perf_counter() - began:.1f} s")
        role = db.session.query(Role).filter_by(name="super_admin").one()
        db.session.add(RoleAssignment(user_id=admin_id, role_id=role.id, reason="bench"))
        admin = db.session.get(__import__("app.users.models", fromlist=["User"]).User, admin_id)
        admin.is_staff, admin.totp_enabled, admin.totp_secret = True, True, "JBSWY3DPEHPK3PXP"
        db.session.commit()
        login_id = admin.get_id()
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["_user_id"], sess["_fresh"] = login_id, True
        sess[SESSION_STARTED] = sess[SESSION_SEEN] = clock.now().timestamp()
        sess[SESSION_MFA] = True

    deep = None
    for label, url in [
        ("users: staff, first page", "/admin/users"),
        ("users: all, first page", "/admin/users?scope=all"),
        ("users: search 'last42'", "/admin/users?scope=all&q=last42"),
        ("users: search, no match", "/admin/users?scope=all&q=zzzz-none"),
        ("user page", f"/admin/users/{admin_id}"),
        ("audit: first page", "/admin/audit?include_test=0"),
        ("audit: actor filter", "/admin/audit?actor=person77%40&include_test=0"),
        ("audit: action + dates", "/admin/audit?action=credits.granted&date_from=2025-01-10&date_to=2025-01-12"),
        ("changes: first page", "/admin/roles/changes"),
        ("changes: target filter", "/admin/roles/changes?target=person4242%40"),
        ("roles matrix", "/admin/roles"),
    ]:
        ms, status = timed(client, url)
        print(f"{label:32} {ms:8.1f} ms  ({status})")
    with app.app_context():
        from app.core.pagination import encode_cursor

        deep = encode_cursor(datetime(2025, 1, 10, tzinfo=timezone.utc), 10**9)
    ms, status = timed(client, f"/admin/users?scope=all&cursor={deep}")
    print(f"{'users: deep page (cursor)':32} {ms:8.1f} ms  ({status})")
    ms, status = timed(client, "/admin/audit/export.csv?action=credits.granted&include_test=1", runs=1)
    print(f"{'audit CSV export (' + str(args.audit // 5) + ' rows)':32} {ms:8.1f} ms  ({status})")
    engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with app.app_context():
        db.engine.dispose()
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
