"""Bulk factories for cleanup and statistics tests: Core inserts, so 10,000 rows stay quick."""
from __future__ import annotations

import hashlib
import itertools
import uuid
from datetime import timedelta

from sqlalchemy import insert, select

from app.core import clock
from app.extensions import db

_seq = itertools.count(1)


def table(name: str):
    return db.metadata.tables[name]


def role_id(session, name: str = "support") -> int:
    roles = table("roles")
    return session.scalar(select(roles.c.id).where(roles.c.name == name))


def insert_users(session, count: int, *, test: bool, expires_in: timedelta | None = None, deleted: bool = False,
                 staff=False, status="active", verified=False, mfa=False, label: str = "u") -> list[int]:
    """Insert `count` users; test users expire `expires_in` from now (negative: already expired)."""
    now = clock.now()
    rows = []
    for _ in range(count):
        n = next(_seq)
        rows.append({
            "email": f"{label}-{n}-{uuid.uuid4().hex[:6]}@{'example.test' if test else 'example.com'}",
            "first_name": "F", "last_name": f"L{n}",
            "account_type": "test" if test else "standard", "is_test": test,
            "is_staff": staff(n) if callable(staff) else staff,
            "status": status(n) if callable(status) else status,
            "email_verified": verified(n) if callable(verified) else verified,
            "totp_enabled": mfa(n) if callable(mfa) else mfa,
            "test_expires_at": now + expires_in if (test and expires_in is not None) else None,
            "deleted_at": now - timedelta(days=1) if deleted else None,
        })
    users = table("users")
    session.execute(insert(users), rows)
    emails = [r["email"] for r in rows]
    ids = session.scalars(select(users.c.id).where(users.c.email.in_(emails)).order_by(users.c.id)).all()
    return list(ids)


def insert_owned_rows(session, user_ids: list[int], *, is_test: bool, per_user: int = 1, actor_id: int | None = None):
    """Rows in every table that hangs from users: owned ones and mere references."""
    if not user_ids:
        return
    rid = role_id(session)
    rows = {name: [] for name in ("role_assignments", "permission_overrides", "recovery_codes", "audit_log",
                                  "job_records", "role_change_log")}
    for uid in user_ids:
        for i in range(per_user):
            rows["role_assignments"].append({"user_id": uid, "role_id": rid, "is_test": is_test,
                                             "assigned_by_id": actor_id, "reason": f"r{i}"})
            rows["permission_overrides"].append({"user_id": uid, "permission": "users.view", "action": "grant",
                                                 "is_test": is_test, "granted_by_id": actor_id, "reason": f"o{i}"})
            rows["recovery_codes"].append({"user_id": uid, "code_hash": hashlib.sha256(f"{uid}-{i}".encode()).hexdigest()})
            rows["audit_log"].append({"actor_id": uid, "actor_label": f"user-{uid}", "action": "test.action",
                                      "target_type": "users", "target_id": str(uid), "is_test": is_test,
                                      "after": {"i": i}})
            rows["job_records"].append({"id": str(uuid.uuid4()), "kind": "test.job", "requested_by_id": uid,
                                        "is_test": is_test, "status": "finished"})
            rows["role_change_log"].append({"target_user_id": uid, "changed_by_id": actor_id, "changed_by_label": "x",
                                            "action": "role_assigned", "reason": "t", "is_test": is_test,
                                            "old_permissions": [], "new_permissions": ["users.view"]})
    for name, batch in rows.items():
        session.execute(insert(table(name)), batch)


def count(session, name: str, **where) -> int:
    t = table(name)
    query = select(t)
    for column, value in where.items():
        query = query.where(t.c[column].in_(value) if isinstance(value, (list, tuple, set)) else t.c[column] == value)
    return len(session.execute(query).all())


# Job bookkeeping (when a run happened), not customer data: a reseed may rewrite it.
BOOKKEEPING = {"cleanup_runs", "credit_summary_runs"}


def _set_null_user_refs(t) -> set[str]:
    return {fk.parent.name for fk in t.foreign_keys if fk.column.table.name == "users" and fk.ondelete == "SET NULL"}


def production_snapshot(session, *, ignore_links_to_test_users: bool = False) -> dict[str, dict]:
    """Every production row of every table, by primary key, hashed.

    Production: is_test false where the table has the column; for tables without it, the
    rows of production users (recovery codes) or every row (catalogue tables).
    """
    snapshot = {}
    users = table("users")
    production_users = select(users.c.id).where(users.c.is_test.is_(False))
    for t in db.metadata.sorted_tables:
        if t.name in BOOKKEEPING:
            continue
        query = select(t)
        if "is_test" in t.c:
            query = query.where(t.c.is_test.is_(False))
        elif "user_id" in t.c:
            query = query.where(t.c.user_id.in_(production_users))
        else:  # a child row (invoice line) is production when its parent row is
            parent_fk = next((fk for fk in t.foreign_keys if "is_test" in fk.column.table.c
                              and not fk.parent.nullable), None)
            if parent_fk is not None:
                parent = fk_table = parent_fk.column.table
                query = query.where(parent_fk.parent.in_(
                    select(fk_table.c[parent_fk.column.name]).where(parent.c.is_test.is_(False))))
        key_cols = list(t.primary_key.columns)
        rows = {}
        for row in session.execute(query.order_by(*key_cols)).mappings():
            key = tuple(row[c.name] for c in key_cols)
            # test_* columns (coupon test_uses_count/test_spent) count test traffic on a production
            # configuration row by design: test redemptions move them, production figures never.
            items = {k: v for k, v in row.items() if not k.startswith("test_")}
            if ignore_links_to_test_users:  # "created by" links to a deleted test account become NULL
                # and the reseed's test redemptions move test_* counters, touching updated_at
                for name in _set_null_user_refs(t) | {"updated_at"}:
                    items.pop(name, None)
            rows[key] = hashlib.sha256(repr(sorted(items.items())).encode()).hexdigest()
        snapshot[t.name] = rows
    return snapshot


def remaining_test_rows(session) -> dict[str, int]:
    """Test rows left, outside the logs that are never deleted (audit_log, role_change_log)."""
    from app.sandbox.cleanup_graph import KEPT_TABLES

    left = {}
    for t in db.metadata.sorted_tables:
        if "is_test" in t.c and t.name not in KEPT_TABLES:
            n = len(session.execute(select(t.c.is_test).where(t.c.is_test.is_(True))).all())
            if n:
                left[t.name] = n
    return left


def assert_production_unchanged(before: dict, after: dict, **new_rows: int) -> None:
    """Every production row of `before` is in `after`, unchanged; the only new production
    rows are the ones a cleanup writes about itself (audit entries, its job record)."""
    for name, rows in before.items():
        added = set(after[name]) - set(rows)
        assert len(added) == new_rows.get(name, 0), f"{name}: {len(added)} new production rows"
        kept = {key: digest for key, digest in after[name].items() if key not in added}
        assert kept == rows, f"production rows of {name} changed"
