"""The one guard under every write path: in test mode, production rows never change.

DESIGN.md §3. It sits on the Session, so the ORM flush and every statement run through
`session.execute()` (ORM-enabled or Core: UPDATE, DELETE, INSERT and upserts) pass it; the
hot path's raw statements (core/pg.py) send their Core writes through it in test mode, and its
one-statement charge, whose writes sit in CTEs, carries the same rule in its WHERE clause
(testmode.may_change_sql, credits/charge.py).

In test mode:
- an UPDATE or DELETE may touch only rows whose is_test is true;
- a new row may refer only to test rows (its owner `user_id`, its invoice, license,
  subscription...), so a test write can never hang off a production account;
- the shared catalogue (tiers, prices, margins, coupons, versions, roles), which has no test
  copy, is read-only, except for a staff test persona on the screens (who administers it,
  audited) and for the coupons' test-lane counters inside `testmode.test_lane()`;
- bookkeeping tables (audit, request counters, job records, statistics) are written freely.
Every table is in exactly one of these classes; tests/core/test_world_guard.py walks them all.
In live mode the guard costs one context-variable read per flush or statement.
"""
from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Table, event, false, inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Delete, Insert, Update

from app.core import testmode
from app.core.models import Base, IsTestMixin
from app.core.testmode import TestModeViolation

# Shared reference data: no is_test column, one copy for both worlds.
CATALOGUE = frozenset({
    "app_versions", "coupon_campaigns", "coupon_validation_rules", "coupons", "credit_packs", "margin_audit_log",
    "margin_configs", "model_prices", "permissions", "pricing_state", "providers", "role_permissions", "roles",
    "subscription_tiers",
})
# Catalogue tables whose test-lane counters a test redemption moves (testmode.test_lane()).
TEST_LANES = frozenset({"coupons", "coupon_campaigns"})
# Written by any actor in either world: append-only logs, counters of traffic by world, job
# bookkeeping and statistics rebuilt by jobs, a sign-in factor of the actor's own, the API
# request's own Idempotency-Key record (claimed before the route knows its mode).
BOOKKEEPING = frozenset({
    "api_request_days", "audit_log", "cleanup_runs", "credit_daily_totals", "credit_summary_runs",
    "credit_usage_daily", "job_records", "model_daily_totals", "revenue_daily_totals", "stripe_events",
    "token_usage_daily", "recovery_codes", "idempotency_records",
    "cleanup_stage",  # the cleanup's temporary staging table (sandbox/cleanup_stage.py)
    "scheduler_leases",  # which process runs the embedded scheduler (ops/scheduler.py)
})
# Rows without is_test of their own that belong to a parent row which has it: they are in the
# parent's world (column -> parent).
CHILDREN = {"invoice_lines": "invoice_id"}
# Columns that name who acted, not whose row it is: a production staff member may act on test data.
_ACTOR_COLUMNS = frozenset({"created_by_id", "actor_id", "applied_by_id", "reviewed_by_id", "approved_by_id",
                            "requested_by_id", "reversed_by_id", "decided_by_id", "granted_by_id",
                            "revoked_by_id", "issued_by_id", "assigned_by_id", "changed_by_id"})


def world_of(table_name: str) -> str:
    """'rows' (guarded row by row by is_test), 'children' (by their parent's), 'catalogue',
    'bookkeeping' or 'unclassified'."""
    if table_name in BOOKKEEPING:
        return "bookkeeping"
    if table_name in CATALOGUE:
        return "catalogue"
    if table_name in CHILDREN:
        return "children"
    table = Base.metadata.tables.get(table_name)
    return "rows" if table is not None and "is_test" in table.c else "unclassified"


def _tables() -> dict[str, Table]:
    return Base.metadata.tables


def _owner_columns(table: Table) -> list[tuple[str, Table]]:
    """(column name, referred table) of the foreign keys a new test row must point into the test world."""
    found = []
    for column in table.c:
        for fk in column.foreign_keys:
            referred = fk.column.table
            if "is_test" not in referred.c or referred.name in BOOKKEEPING:
                continue
            if referred.name == "users" and (column.name in _ACTOR_COLUMNS or column.name != "user_id"):
                continue
            found.append((column.name, referred))
    return found


_OWNERS: dict[str, list[tuple[str, Table]]] = {}


def owner_columns(table: Table) -> list[tuple[str, Table]]:
    if table.name not in _OWNERS:
        _OWNERS[table.name] = _owner_columns(table)
    return _OWNERS[table.name]


def _refuse_catalogue(table_name: str, lane: bool = False) -> None:
    if testmode.catalogue_writable() or (lane and table_name in TEST_LANES and testmode.in_test_lane()):
        return
    raise TestModeViolation(f"Test mode cannot change the shared catalogue ({table_name.replace('_', ' ')}).")


def _check_owners(session, refs: dict[Table, set]) -> None:
    """Every referred row must be a test row (one query per referred table)."""
    for referred, ids in refs.items():
        ids = {i for i in ids if i is not None}
        if not ids:
            continue
        pk = referred.primary_key.columns.values()[0]
        hit = session.execute(select(pk).where(pk.in_(ids), referred.c.is_test == false()).limit(1)).first()
        if hit is not None:
            what = "account" if referred.name == "users" else referred.name.replace("_", " ").rstrip("s")
            raise TestModeViolation(f"Test mode cannot attach test data to a production {what} (#{hit[0]}).")


def _was_test(obj) -> bool:
    """The row's is_test as stored (a change of the flag itself does not launder a production row)."""
    history = inspect(obj).attrs.is_test.history
    if history.deleted:
        return bool(history.deleted[0])
    return bool(history.unchanged[0]) if history.unchanged else bool(obj.is_test)


@event.listens_for(Session, "before_flush")
def _guard_flush(session: Session, flush_context, instances) -> None:
    if not testmode.active():
        return
    refs_of_changed: dict[Table, set] = defaultdict(set)
    for obj in list(session.dirty) + list(session.deleted):
        table = getattr(obj, "__table__", None)
        if table is None or (obj in session.dirty and not session.is_modified(obj, include_collections=False)):
            continue
        world = world_of(table.name)
        if world == "catalogue":
            _refuse_catalogue(table.name, lane=obj not in session.deleted)
        elif world == "rows" and not _was_test(obj):
            raise TestModeViolation(f"Test mode cannot change a production {table.name.replace('_', ' ')} row "
                                    f"(#{getattr(obj, 'id', '?')}).")
        elif world == "children":
            column = CHILDREN[table.name]
            refs_of_changed[_parent(table)].add(getattr(obj, column, None))
        elif world == "unclassified":
            raise TestModeViolation(f"Test mode cannot change {table.name}.")
    with session.no_autoflush:
        _check_owners(session, refs_of_changed)
    refs: dict[Table, set] = defaultdict(set)
    for obj in session.new:
        table = getattr(obj, "__table__", None)
        if table is None:
            continue
        world = world_of(table.name)
        if world == "catalogue":
            _refuse_catalogue(table.name)
        elif world == "unclassified":
            raise TestModeViolation(f"Test mode cannot write {table.name}.")
        if world != "catalogue":
            for column, referred in owner_columns(table):
                refs[referred].add(getattr(obj, column, None))
    with session.no_autoflush:
        _check_owners(session, refs)


def _parent(table: Table) -> Table:
    column = table.c[CHILDREN[table.name]]
    return next(iter(column.foreign_keys)).column.table


def _insert_owner_ids(stmt: Insert, parameters) -> dict[Table, set]:
    refs: dict[Table, set] = defaultdict(set)
    owners = owner_columns(stmt.table)
    if not owners:
        return refs
    rows = [stmt.compile().params]
    if isinstance(parameters, dict):
        rows.append(parameters)
    elif isinstance(parameters, (list, tuple)):
        rows.extend(p for p in parameters if isinstance(p, dict))
    for row in rows:
        for column, referred in owners:
            if row.get(column) is not None:
                refs[referred].add(row[column])
    return refs


def check_statement(session, stmt, parameters=None) -> None:
    """Refuse a Core/ORM write statement that would change production data (test mode only)."""
    if not isinstance(stmt, (Update, Delete, Insert)):
        return
    table = stmt.table
    name = getattr(table, "name", None)
    world = world_of(name) if name else "unclassified"
    if world == "bookkeeping":
        return
    if world == "unclassified":
        raise TestModeViolation(f"Test mode cannot write {name}.")
    if world == "catalogue":
        _refuse_catalogue(name, lane=isinstance(stmt, Update))
        return
    if isinstance(stmt, Insert):
        _check_owners(session, _insert_owner_ids(stmt, parameters))
        return
    if world == "children":
        parent = _parent(table)
        probe = (select(parent.c.is_test).select_from(table.join(parent)).where(parent.c.is_test == false())
                 .limit(1))
    else:
        probe = select(table.c.is_test).where(table.c.is_test == false()).limit(1)
    if stmt.whereclause is not None:
        probe = probe.where(stmt.whereclause)
    rows = parameters if isinstance(parameters, (list, tuple)) else [parameters or {}]
    for params in rows:
        if session.execute(probe, params).first() is not None:
            raise TestModeViolation(f"Test mode cannot change production {name.replace('_', ' ')} rows.")


@event.listens_for(Session, "do_orm_execute")
def _guard_execute(state) -> None:
    if testmode.active() and (state.is_update or state.is_delete or state.is_insert):
        check_statement(state.session, state.statement, state.parameters)
