"""Test-data cleanup: expired test accounts every night, all test data on demand.

Work goes in batches, each its own short transaction that also records the run's counts,
so a large cleanup never holds locks on production tables for long, and a run killed
between two batches leaves a consistent database and an exact record: the next run marks
it 'interrupted' and simply carries on (every batch selects from what is still there).
The statements come from cleanup_graph, which puts the test guard in every WHERE clause.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import timedelta
from typing import Callable

from flask import current_app
from sqlalchemy import and_, delete, func, or_, select, text, tuple_, update

from app.core import audit, clock
from app.core.errors import Conflict
from app.testdata.cleanup_graph import USERS, Graph
from app.testdata.cleanup_models import CleanupRun

Progress = Callable[[int, int, str], None]
LOCK_KEY = 0x7E57DA7A  # one cleanup at a time (PostgreSQL advisory lock)


def settings() -> dict:
    cfg = current_app.config
    return {
        "batch_size": int(cfg.get("TEST_DATA_CLEANUP_BATCH_SIZE", 500)),
        "soft_delete": bool(cfg.get("TEST_DATA_SOFT_DELETE", False)),
        "purge_days": int(cfg.get("TEST_DATA_PURGE_DAYS", 30)),
        "pause": int(cfg.get("TEST_DATA_CLEANUP_PAUSE_MS", 0)) / 1000,
    }


def graph() -> Graph:
    from app.extensions import db

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
    from app.extensions import db

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
        self.run.longest_batch_ms = max(self.run.longest_batch_ms or 0, elapsed)
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
    audit.record(session, action, actor=actor, target=run, after=summary(run), is_test=False)
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
        session.execute(update(edge.child).where(col.isnot(None), col.not_in(select(parent.c[edge.parent_col])))
                        .values({edge.child_col: None}))


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
        return and_(u.c.test_expires_at.isnot(None), u.c.test_expires_at < now)

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
            total = _count(session, users, and_(g.deletable(users), hard(users)))
            if soft:
                total += _count(session, users, and_(g.deletable(users), expired(users), users.c.deleted_at.is_(None)))
            runner = _Runner(session, run, cfg["pause"], progress, total)
            stopped = _hard_delete(session, g, runner, hard, batch_size, max_batches)
            if soft and not stopped:
                stopped = _soft_delete(session, g, runner, expired, now, batch_size, max_batches)
            keeps = g.keeps(users)
            run.kept = 0 if keeps is None else _count(session, users, and_(g.guard(users), expired(users), keeps))
        except Exception as error:
            _fail(session, run, actor, "testdata.cleanup_expired", error)
            raise
        return _finish(session, run, actor, "testdata.cleanup_expired", "partial" if stopped else "finished")


def _count(session, table, condition) -> int:
    return session.scalar(select(func.count()).select_from(table).where(condition)) or 0


def _hard_delete(session, g: Graph, runner: _Runner, hard, batch_size: int, max_batches: int | None) -> bool:
    """Delete in batches of users; True when max_batches stopped the run early."""
    users = g.by_name[USERS]
    last_id = 0
    while True:
        started = time.perf_counter()  # the batch's transaction begins with the next query
        if max_batches is not None and runner.run.batches >= max_batches:
            session.commit()
            return True
        ids = session.scalars(select(users.c.id).where(g.guard(users), hard(users), users.c.id > last_id)
                              .order_by(users.c.id).limit(batch_size)).all()
        if not ids:
            session.commit()
            return False
        last_id = ids[-1]
        runner.batch(lambda ids=ids: delete_user_batch(session, g, ids, hard), "expired test accounts",
                     processed=len(ids), started=started)


def delete_user_batch(session, g: Graph, ids: list[int], root_filter) -> dict[str, int]:
    """Delete the test users among `ids` that `root_filter` selects, and what they own.

    Whatever ids it is given, the statements only reach rows marked as test: the guard
    is repeated in the WHERE clause of every DELETE. Returns rows deleted per table.
    """
    users = g.by_name[USERS]

    def roots(u):
        return and_(u.c.id.in_(ids), g.deletable(users, u), root_filter(u))

    if session.get_bind().dialect.name == "postgresql":
        # Lock the accounts: no production row can start hanging from them mid-batch.
        session.execute(select(users.c.id).where(users.c.id.in_(ids), g.guard(users)).with_for_update())
    counts = {}
    for table in g.children_first(g.user_owned - {USERS}):
        conditions = [g.belongs(table, table, roots)]
        if g.deletable(table) is not None:
            conditions.append(g.deletable(table))
        rows = session.execute(delete(table).where(*conditions)).rowcount
        if rows:
            counts[table.name] = rows
    rows = session.execute(delete(users).where(roots(users))).rowcount
    if rows:
        counts[USERS] = rows
    _clear_references(session, g, set(counts))
    return counts


def _soft_delete(session, g: Graph, runner: _Runner, expired, now, batch_size: int, max_batches: int | None) -> bool:
    users = g.by_name[USERS]
    pending = and_(g.deletable(users), expired(users), users.c.deleted_at.is_(None))
    last_id = 0
    while True:
        started = time.perf_counter()
        if max_batches is not None and runner.run.batches >= max_batches:
            session.commit()
            return True
        ids = session.scalars(select(users.c.id).where(pending, users.c.id > last_id)
                              .order_by(users.c.id).limit(batch_size)).all()
        if not ids:
            session.commit()
            return False
        last_id = ids[-1]

        def work(ids=ids):
            rows = session.execute(update(users).where(users.c.id.in_(ids), pending).values(deleted_at=now)).rowcount
            runner.run.soft_deleted = (runner.run.soft_deleted or 0) + rows
            return {}

        runner.batch(work, "soft-deleting expired test accounts", processed=len(ids), started=started)


# -- everything marked as test ------------------------------------------------------------


def delete_all_test_data(session, *, actor=None, trigger: str = "staff", job_id: str | None = None,
                         batch_size: int | None = None, progress: Progress | None = None) -> CleanupRun:
    """Delete every row marked is_test in every table, children first, in batches.

    Kept: the staff member who asked (their account and what it owns, so the screen they are
    watching keeps working), the job record running this, and test rows that own production rows.
    """
    cfg = settings()
    batch_size = batch_size or cfg["batch_size"]
    g = graph()
    actor_id = getattr(actor, "id", None)

    def excluded(table, sel):
        parts = []
        if actor_id is not None and table.name == USERS:
            parts.append(sel.c.id == actor_id)
        elif actor_id is not None and table.name in g.user_owned:
            parts.append(g.belongs(table, sel, lambda u: u.c.id == actor_id, guarded=False))
        if job_id is not None and table.name == "job_records":
            parts.append(sel.c.id == job_id)
        return or_(*parts) if parts else None

    def removable(table, sel):
        conditions = [g.deletable(table, sel)]
        if excluded(table, sel) is not None:
            conditions.append(~excluded(table, sel))
        return and_(*conditions)

    def condition_for(table):
        if g.guard(table) is not None:
            return lambda sel: removable(table, sel)
        owners = [e for e in g.owners[table.name] if g.guard(e.parent) is not None]
        if not owners:
            return None

        def owned_by_test(sel):
            clauses = []
            for edge in owners:
                parent = edge.parent.alias()
                clauses.append(sel.c[edge.child_col].in_(
                    select(parent.c[edge.parent_col]).where(removable(edge.parent, parent))))
            return or_(*clauses)
        return owned_by_test

    plan = [(t, c) for t in g.children_first() if (c := condition_for(t)) is not None]
    with _exclusive(session):
        _mark_interrupted(session)
        run = _start(session, "all", trigger, actor, job_id)
        try:
            total = sum(_count(session, t, cond(t)) for t, cond in plan)
            runner = _Runner(session, run, cfg["pause"], progress, total)
            for table, cond in plan:
                _delete_table(session, g, runner, table, cond, batch_size)
            run.kept = sum(_count(session, t, and_(g.guard(t), g.keeps(t)))
                           for t in g.tables if g.guard(t) is not None and g.keeps(t) is not None)
        except Exception as error:
            _fail(session, run, actor, "testdata.delete_all", error)
            raise
        return _finish(session, run, actor, "testdata.delete_all")


def _delete_table(session, g: Graph, runner: _Runner, table, cond, batch_size: int) -> None:
    keys = g.key_columns(table)
    while True:
        if not keys:  # no primary key to batch on: one statement
            statement = delete(table).where(cond(table))
        else:
            inner = table.alias()
            picked = select(*g.key_columns(inner)).where(cond(inner)).limit(batch_size)
            target = keys[0] if len(keys) == 1 else tuple_(*keys)
            statement = delete(table).where(target.in_(picked))
            if g.guard(table) is not None:
                statement = statement.where(g.guard(table))

        def work(statement=statement):
            rows = session.execute(statement).rowcount
            _clear_references(session, g, {table.name} if rows else set())
            return {table.name: rows} if rows else {}

        rows = runner.batch(work, f"deleting test rows from {table.name}").get(table.name, 0)
        if not keys or rows < batch_size:
            return


# -- jobs started from the Test data screen ------------------------------------------------


def cleanup_job(session, job_id: str, kinds: tuple[str, ...]):
    """The job record of a staff-started cleanup (NotFound for any other job)."""
    from app.core.errors import NotFound
    from app.core.jobs import JobRecord

    record = session.get(JobRecord, job_id)
    if record is None or record.kind not in kinds:
        raise NotFound("cleanup job")
    return record


def active_cleanup_job(session, kinds: tuple[str, ...]):
    from app.core.jobs import JobRecord

    return session.scalar(select(JobRecord).where(JobRecord.kind.in_(kinds), JobRecord.status.in_(("queued", "running")))
                          .order_by(JobRecord.created_at.desc()).limit(1))
