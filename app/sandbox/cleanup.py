"""Test-data cleanup: expired test accounts every night, all test data on demand.

Work goes in batches, each its own short transaction that also records the run's counts,
so a large cleanup never holds locks on production tables for long, and a run killed
between two batches leaves a consistent database and an exact record: the next run marks
it 'interrupted' and simply carries on (every batch selects from what is still there).
A batch is worked out level by level in cleanup_stage, which puts the test guard in the
WHERE clause of every DELETE.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import timedelta
from typing import Callable

from flask import current_app
from sqlalchemy import and_, delete, func, select, text, tuple_, update

from app.core import audit, clock
from app.core.errors import Conflict, NotFound
from app.core.jobs import JobRecord
from app.coupons import sandbox_counters as coupon_test_usage
from app.extensions import db
from app.sandbox import cleanup_stage as stage
from app.sandbox.cleanup_graph import USERS, Graph
from app.sandbox.cleanup_models import CleanupRun

Progress = Callable[[int, int, str], None]
LOCK_KEY = 0x7E57DA7A  # one cleanup at a time (PostgreSQL advisory lock)


def settings() -> dict:
    cfg = current_app.config
    return {
        "batch_size": int(cfg.get("TEST_DATA_CLEANUP_BATCH_SIZE", 200)),
        "soft_delete": bool(cfg.get("TEST_DATA_SOFT_DELETE", False)),
        "purge_days": int(cfg.get("TEST_DATA_PURGE_DAYS", 30)),
        "pause": int(cfg.get("TEST_DATA_CLEANUP_PAUSE_MS", 0)) / 1000,
    }


def graph() -> Graph:
    return Graph(db.metadata)


def summary(run: CleanupRun) -> dict:
    return {"run_id": run.id, "kind": run.kind, "status": run.status, "deleted": dict(run.deleted or {}),
            "total_deleted": run.total_deleted, "soft_deleted": run.soft_deleted, "kept": run.kept,
            "batches": run.batches, "longest_batch_ms": run.longest_batch_ms}


@contextmanager
def _exclusive(session):
    """Hold a PostgreSQL advisory lock on a connection of its own for the whole run.

    It dies with the process, so a killed run never blocks the next one.
    """
    engine = db.engine.engine  # the Engine, also when tests stand a Connection in for it
    if engine.dialect.name != "postgresql":
        yield
        return
    conn = engine.connect()
    try:
        if not conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}):
            raise Conflict("cleanup_running", "Another test-data cleanup is running; try again when it has finished.")
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
            conn.commit()
    finally:
        conn.close()


def _mark_interrupted(session) -> None:
    """Runs still 'running' while we hold the lock died midway: say so, with what they did."""
    for run in session.scalars(select(CleanupRun).where(CleanupRun.status == "running")):
        run.status, run.finished_at = "interrupted", clock.now()
        run.error = "The process stopped between two batches; the next run carried on."
        audit.record(session, "testdata.cleanup_interrupted", target=run, after=summary(run), is_test=False)
    session.commit()


class _Runner:
    """Runs batches: one transaction each, counts recorded with the deletes, timed."""

    def __init__(self, session, run: CleanupRun, pause: float, progress: Progress | None, total: int):
        self.session, self.run, self.pause, self.progress = session, run, pause, progress
        self.total, self.done = total, 0
        self.longest = run.longest_batch_ms or 0

    def batch(self, work: Callable[[], dict[str, int]], label: str, processed: int | None = None,
              started: float | None = None) -> dict[str, int]:
        """Run `work` and commit; `processed` counts toward progress (default: rows deleted).

        started: when the batch's transaction began, if before `work` (timing is from there).
        """
        started = time.perf_counter() if started is None else started
        counts = work()
        merged = dict(self.run.deleted or {})
        for table, rows in counts.items():
            merged[table] = merged.get(table, 0) + rows
        self.run.deleted = merged
        self.run.batches += 1
        self.done += sum(counts.values()) if processed is None else processed
        if self.progress:
            self.progress(self.done, self.total, label)
        self.session.commit()
        elapsed = int((time.perf_counter() - started) * 1000)
        # Kept here, not read back from the expired row: a read would open a transaction that
        # the pause then holds (on SQLite, the write lock every request is waiting for).
        self.longest = max(self.longest, elapsed)
        self.run.longest_batch_ms = self.longest
        if self.pause:
            time.sleep(self.pause)
        return counts


def _start(session, kind: str, trigger: str, actor, job_id: str | None) -> CleanupRun:
    run = CleanupRun(kind=kind, trigger=trigger, actor_id=getattr(actor, "id", None),
                     actor_label=getattr(actor, "email", None) or audit.SYSTEM, job_id=job_id, deleted={})
    session.add(run)
    session.commit()
    return run


def _finish(session, run: CleanupRun, actor, action: str, status: str = "finished") -> CleanupRun:
    run.status, run.finished_at = status, clock.now()
    after = summary(run)
    if status != "failed":  # counters of test traffic kept on rows that stay follow what is left
        after["recounted"] = {"coupon_test_usage": coupon_test_usage.recount(session)}
    audit.record(session, action, actor=actor, target=run, after=after, is_test=False)
    session.commit()
    return run


def _fail(session, run: CleanupRun, actor, action: str, error: Exception) -> None:
    session.rollback()
    run.error = f"{type(error).__name__}: {error}"[:4000]
    _finish(session, run, actor, action, status="failed")


def _clear_references(session, g: Graph, tables: set[str]) -> None:
    """SQLite enforces no foreign keys here: do what ON DELETE SET NULL does on PostgreSQL."""
    if session.get_bind().dialect.name != "sqlite":
        return
    for edge in g.references_to(tables):
        col, parent = edge.child.c[edge.child_col], edge.parent
        values = {edge.child_col: None}
        if "updated_at" in edge.child.c:  # as the database would: the row itself was not edited
            values["updated_at"] = edge.child.c.updated_at
        session.execute(update(edge.child).where(col.isnot(None), col.not_in(select(parent.c[edge.parent_col])))
                        .values(values))


# -- expired test accounts ------------------------------------------------------------------


def cleanup_expired(session, *, actor=None, trigger: str = "schedule", job_id: str | None = None,
                    batch_size: int | None = None, max_batches: int | None = None, soft_delete: bool | None = None,
                    purge_days: int | None = None, progress: Progress | None = None) -> CleanupRun:
    """Delete expired test accounts and everything they own; soft-delete first if configured.

    max_batches time-boxes a run: it stops as 'partial' and the next run carries on.
    """
    cfg = settings()
    batch_size = batch_size or cfg["batch_size"]
    soft = cfg["soft_delete"] if soft_delete is None else soft_delete
    purge_days = cfg["purge_days"] if purge_days is None else purge_days
    now = clock.now()
    g = graph()
    users = g.by_name[USERS]

    def expired(u):
        return and_(g.guard(users, u), u.c.test_expires_at.isnot(None), u.c.test_expires_at < now)

    def pending(u):  # soft delete: not marked yet
        return and_(expired(u), u.c.deleted_at.is_(None))

    if soft:
        cutoff = now - timedelta(days=purge_days)

        def hard(u):
            return and_(expired(u), u.c.deleted_at.isnot(None), u.c.deleted_at < cutoff)
    else:
        hard = expired

    with _exclusive(session):
        _mark_interrupted(session)
        run = _start(session, "expired", trigger, actor, job_id)
        try:
            total = _count(session, users, hard(users)) + (_count(session, users, pending(users)) if soft else 0)
            runner = _Runner(session, run, cfg["pause"], progress, total)
            stopped = _by_accounts(session, g, hard, runner, batch_size, max_batches, "expired test accounts",
                                   _hard_delete)
            if soft and not stopped:
                stopped = _by_accounts(session, g, pending, runner, batch_size, max_batches,
                                       "soft-deleting expired test accounts", _soft_delete(now))
        except Exception as error:
            _fail(session, run, actor, "testdata.cleanup_expired", error)
            raise
        return _finish(session, run, actor, "testdata.cleanup_expired", "partial" if stopped else "finished")


def _count(session, table, condition) -> int:
    return session.scalar(select(func.count()).select_from(table).where(condition)) or 0


def _by_accounts(session, g: Graph, accounts, runner: _Runner, batch_size: int, max_batches: int | None,
                 label: str, work) -> bool:
    """Run `work` over the accounts selected, batch by batch; True when max_batches stopped the run."""
    plan = _accounts_plan(g, accounts)
    users = plan.root
    last_id = 0
    while True:
        started = time.perf_counter()  # the batch's transaction begins with the next query
        if max_batches is not None and runner.run.batches >= max_batches:
            session.commit()
            return True
        ids = session.scalars(select(users.c.id).where(accounts(users), users.c.id > last_id)
                              .order_by(users.c.id).limit(batch_size)).all()
        if not ids:
            session.commit()
            return False
        last_id = ids[-1]
        runner.batch(lambda ids=ids: work(session, plan, runner.run, ids), label, processed=len(ids), started=started)


def _accounts_plan(g: Graph, accounts) -> stage.Plan:
    """A plan rooted at the batch's test accounts that `accounts` selects."""
    users = g.by_name[USERS]
    return stage.Plan(g, users, lambda u: and_(u.c.id.in_(stage.batch_ids()), g.guard(users, u), accounts(u)))


def _hard_delete(session, plan: stage.Plan, run: CleanupRun, ids: list[int]) -> dict[str, int]:
    result = _account_batch(session, plan, ids)
    run.kept = (run.kept or 0) + result.kept
    return result.deleted


def _soft_delete(now):
    def work(session, plan: stage.Plan, run: CleanupRun, ids: list[int]) -> dict[str, int]:
        """Mark the accounts of the batch that own nothing that stays; delete nothing yet."""
        users = plan.root
        params = {"batch_ids": ids}
        _lock_accounts(session, users, ids)
        if plan.block(session, plan.stage(session, params)):
            run.kept = (run.kept or 0) + plan.kept_roots(session)
        rows = session.execute(update(users).where(users.c.id.in_(plan.unblocked_roots()), plan.root_condition(users))
                               .values(deleted_at=now), params).rowcount
        plan.clear(session)
        run.soft_deleted = (run.soft_deleted or 0) + rows
        return {}
    return work


def _lock_accounts(session, users, ids: list[int]) -> None:
    """Lock the accounts on PostgreSQL: no row can start hanging from them mid-batch."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(users.c.id).where(users.c.id.in_(ids)).with_for_update())


def _account_batch(session, plan: stage.Plan, ids: list[int]) -> stage.Result:
    _lock_accounts(session, plan.root, ids)
    result = plan.run(session, {"batch_ids": ids})
    _clear_references(session, plan.g, set(result.deleted))
    return result


def delete_user_batch(session, g: Graph, ids: list[int], root_filter) -> dict[str, int]:
    """Delete the test users among `ids` that `root_filter` selects, and what they own.

    Whatever ids it is given, the statements only reach rows marked as test: the guard
    is repeated in the WHERE clause of every DELETE. Returns rows deleted per table.
    """
    return _account_batch(session, _accounts_plan(g, root_filter), ids).deleted


# -- everything marked as test ------------------------------------------------------------


def delete_all_test_data(session, *, actor=None, trigger: str = "staff", job_id: str | None = None,
                         batch_size: int | None = None, progress: Progress | None = None) -> CleanupRun:
    """Delete every row marked is_test in every table, children first, in batches.

    Kept: the staff member who asked (their account and what it owns, so the screen they are
    watching keeps working), the job record running this, and test rows that own production rows.
    Rows without is_test go with the test row that owns them.
    """
    cfg = settings()
    batch_size = batch_size or cfg["batch_size"]
    g = graph()
    actor_id = getattr(actor, "id", None)
    tables = [t for t in g.children_first() if g.guard(t) is not None]
    with _exclusive(session):
        _mark_interrupted(session)
        run = _start(session, "all", trigger, actor, job_id)
        try:
            protected = stage.owned_by(session, g, g.by_name[USERS], _kept_accounts(session, g, actor_id))
            plans = {t.name: _table_plan(g, t, protected, job_id) for t in tables if g.owns_rows(t)}
            total = sum(_count(session, t, _test_rows(g, t, protected, job_id)(t)) for t in tables)
            total += sum(_count(session, t, g.guard_through(t)) for t in g.tables if g.guard(t) is None
                         and g.owners[t.name] and g.guard_through(t) is not None)
            runner = _Runner(session, run, cfg["pause"], progress, total)
            for table in tables:
                rows = _test_rows(g, table, protected, job_id)
                if table.name in plans:
                    _delete_staged(session, plans[table.name], runner, rows, batch_size)
                else:
                    _delete_leaf(session, g, runner, table, rows, batch_size)
        except Exception as error:
            _fail(session, run, actor, "testdata.delete_all", error)
            raise
        return _finish(session, run, actor, "testdata.delete_all")


def delete_all_preview(session, *, actor=None) -> dict[str, int]:
    """What delete-all would delete now, per table (the same conditions as the run, so the
    confirmation page and the run's summary show the same counts)."""
    g = graph()
    protected = stage.owned_by(session, g, g.by_name[USERS], _kept_accounts(session, g, getattr(actor, "id", None)))
    counts: dict[str, int] = {}
    for table in g.children_first():
        if g.guard(table) is not None:
            n = _count(session, table, _test_rows(g, table, protected, None)(table))
        elif g.owners[table.name] and (through := _owned_by_deleted(g, table, protected)) is not None:
            n = _count(session, table, through)
        else:
            continue
        if n:
            counts[table.name] = n
    return counts


def _owned_by_deleted(g: Graph, table, protected: stage.Protected):
    """Rows without is_test that go with the test rows owning them (not with kept owners)."""
    through = g.guard_through(table)
    if through is None:
        return None
    kept = stage.protected_row(g, protected, table, table)
    return through if kept is None else and_(through, ~kept)


def _kept_accounts(session, g: Graph, actor_id: int | None) -> list[int]:
    """Staff accounts (test personas included) and the one who asked: people who sign in keep
    their accounts, roles and keys through a delete-all (issue 14)."""
    users = g.by_name[USERS]
    staff = set(session.scalars(select(users.c.id).where(users.c.is_test.is_(True), users.c.is_staff.is_(True))))
    return sorted(staff | ({actor_id} if actor_id is not None else set()))


def _test_rows(g: Graph, table, protected: stage.Protected, job_id: str | None):
    """The table's test rows, less the ones that must stay (the actor's, the running job)."""
    def condition(sel):
        parts = [g.guard(table, sel)]
        kept = stage.protected_row(g, protected, table, sel)
        if kept is not None:
            parts.append(~kept)
        if job_id is not None and table.name == "job_records":
            parts.append(sel.c.id != job_id)
        return and_(*parts)
    return condition


def _table_plan(g: Graph, table, protected: stage.Protected, job_id: str | None) -> stage.Plan:
    rows = _test_rows(g, table, protected, job_id)
    return stage.Plan(g, table, lambda sel: and_(stage.row_id(sel).in_(stage.batch_ids()), rows(sel)), protected)


def _delete_staged(session, plan: stage.Plan, runner: _Runner, rows, batch_size: int) -> None:
    """Batches of a table that owns rows: staged, blocked and deleted with what they own."""
    table = plan.root
    key = stage.row_id(table)
    last_id = None
    while True:
        started = time.perf_counter()
        query = select(key).where(rows(table)).order_by(key).limit(batch_size)
        ids = session.scalars(query if last_id is None else query.where(key > last_id)).all()
        if not ids:
            session.commit()
            return
        last_id = ids[-1]

        def work(ids=ids):
            result = plan.run(session, {"batch_ids": ids})
            runner.run.kept = (runner.run.kept or 0) + result.kept
            _clear_references(session, plan.g, set(result.deleted))
            return result.deleted

        runner.batch(work, f"deleting test rows from {table.name}", started=started)
        if len(ids) < batch_size:
            return


def _delete_leaf(session, g: Graph, runner: _Runner, table, rows, batch_size: int) -> None:
    """Batches of a table that owns nothing: no row of it can hold another one back."""
    keys = g.key_columns(table)
    if not keys:  # no primary key to batch on: one statement
        statement = delete(table).where(rows(table))
    else:
        inner = table.alias()
        picked = select(*g.key_columns(inner)).where(rows(inner)).limit(batch_size)
        target = keys[0] if len(keys) == 1 else tuple_(*keys)
        statement = delete(table).where(target.in_(picked), g.guard(table))

    def work():
        deleted = session.execute(statement).rowcount
        _clear_references(session, g, {table.name} if deleted else set())
        return {table.name: deleted} if deleted else {}

    while True:
        deleted = runner.batch(work, f"deleting test rows from {table.name}").get(table.name, 0)
        if not keys or deleted < batch_size:
            return


# -- jobs started from the Test data screen ------------------------------------------------


def cleanup_job(session, job_id: str, kinds: tuple[str, ...]):
    """The job record of a staff-started cleanup (NotFound for any other job)."""
    record = session.get(JobRecord, job_id)
    if record is None or record.kind not in kinds:
        raise NotFound("cleanup job")
    return record


def active_cleanup_job(session, kinds: tuple[str, ...]):
    return session.scalar(select(JobRecord).where(JobRecord.kind.in_(kinds), JobRecord.status.in_(("queued", "running")))
                          .order_by(JobRecord.created_at.desc()).limit(1))
