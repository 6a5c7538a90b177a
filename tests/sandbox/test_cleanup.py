"""Nightly cleanup of expired test accounts: what goes, what stays, and the guard in the SQL."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, text, true

from app.core.audit import AuditEntry
from app.core.errors import Conflict
from app.extensions import db
from app.sandbox import cleanup
from app.sandbox.cleanup_models import CleanupRun
from tests.sandbox.cleanup_factories import count, insert_owned_rows, insert_users, role_id, table

OWNED = ("role_assignments", "permission_overrides", "recovery_codes")


@pytest.fixture
def world(session, frozen_clock):
    """Production users, expired test users, unexpired ones and a persona with no expiry."""
    w = {
        "production": insert_users(session, 3, test=False),
        "expired": insert_users(session, 4, test=True, expires_in=timedelta(hours=-1)),
        "current": insert_users(session, 2, test=True, expires_in=timedelta(days=3)),
        "persona": insert_users(session, 1, test=True),
    }
    insert_owned_rows(session, w["production"], is_test=False, per_user=2)
    for group in ("expired", "current", "persona"):
        insert_owned_rows(session, w[group], is_test=True, per_user=2)
    session.commit()
    return w


def test_expired_test_accounts_go_with_what_they_own_and_nothing_else(session, world):
    run = cleanup.cleanup_expired(session, batch_size=3)

    users = table("users")
    left = set(session.scalars(select(users.c.id)))
    assert not left & set(world["expired"])
    assert set(world["production"] + world["current"] + world["persona"]) <= left
    for name in OWNED:
        assert count(session, name, user_id=world["expired"]) == 0
        assert count(session, name, user_id=world["production"]) == 6
        assert count(session, name, user_id=world["current"]) == 4
    assert run.status == "finished" and run.batches == 2 and run.kept == 0
    assert run.deleted == {"users": 4, "role_assignments": 8, "permission_overrides": 8, "recovery_codes": 8}
    # References are not ownership: the expired users' test audit rows and job records stay, unlinked.
    assert count(session, "audit_log", actor_id=world["expired"]) == 0
    assert count(session, "audit_log", target_id=[str(i) for i in world["expired"]]) == 8

    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "testdata.cleanup_expired")).one()
    assert entry.actor_label == "system" and entry.actor_id is None and entry.is_test is False
    assert entry.after["deleted"] == run.deleted and entry.target_id == str(run.id)


def test_a_second_run_finds_nothing_and_says_so(session, world):
    first = cleanup.cleanup_expired(session)
    second = cleanup.cleanup_expired(session)
    assert first.total_deleted == 28
    assert second.status == "finished" and second.deleted == {} and second.total_deleted == 0
    assert count(session, "users") == 6
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("testdata.%"))).all()
    assert actions == ["testdata.cleanup_expired", "testdata.cleanup_expired"]


def test_a_test_account_that_owns_a_production_row_is_kept_whole(session, frozen_clock):
    [owner] = insert_users(session, 1, test=True, expires_in=timedelta(days=-2))
    insert_owned_rows(session, [owner], is_test=True)
    ra = table("role_assignments")
    session.execute(ra.insert().values(user_id=owner, role_id=role_id(session), is_test=False, reason="real"))
    run = cleanup.cleanup_expired(session)
    assert run.kept == 1 and run.total_deleted == 0
    assert count(session, "users", id=owner) == 1
    assert count(session, "role_assignments", user_id=owner) == 2
    assert count(session, "recovery_codes", user_id=owner) == 1


def test_a_production_id_handed_to_the_delete_statements_deletes_nothing(session, world):
    """Simulate the bug: a batch that contains production ids and a filter that matches everyone."""
    g = cleanup.graph()
    ids = world["production"] + world["current"] + world["expired"][:1]
    counts = cleanup.delete_user_batch(session, g, ids, lambda u: true())
    session.commit()
    assert count(session, "users", id=world["production"]) == 3
    assert count(session, "role_assignments", user_id=world["production"]) == 6
    # Only test accounts were reachable (unexpired ones too, as the filter was wrong on purpose).
    assert counts["users"] == 3


def test_every_delete_statement_carries_the_test_guard(app, session, world):
    statements = []

    def capture(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("DELETE"):
            statements.append(statement)

    engine = db.engine.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        cleanup.cleanup_expired(session, batch_size=2)
        cleanup.delete_all_test_data(session)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(statements) > 10
    truth = "true" if engine.dialect.name == "postgresql" else "1"
    data = [s for s in statements if not s.startswith("DELETE FROM cleanup_stage")]  # the ids scratch table
    assert len(data) > 10
    for statement in data:
        assert f"is_test = {truth}" in statement, statement
        if statement.startswith("DELETE FROM users"):
            assert "account_type = " in statement, statement


def test_tables_added_later_are_covered_in_dependency_order(session, frozen_clock):
    """A ledger and its items, declared the way a later issue would: no cleanup code changes."""
    from sqlalchemy import Boolean, Column, ForeignKey, Integer, Table

    metadata = db.metadata
    ledger = Table("zz_ledger", metadata, Column("id", Integer, primary_key=True),
                   Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
                   Column("is_test", Boolean, nullable=False, default=False))
    items = Table("zz_ledger_items", metadata, Column("id", Integer, primary_key=True),
                  Column("ledger_id", ForeignKey("zz_ledger.id", ondelete="RESTRICT"), nullable=False),
                  Column("is_test", Boolean, nullable=False, default=False))
    bind = session.connection()
    try:
        metadata.create_all(bind, tables=[ledger, items])
        [gone, blocked] = insert_users(session, 2, test=True, expires_in=timedelta(days=-1))
        [real] = insert_users(session, 1, test=False)
        session.execute(ledger.insert(), [{"id": 1, "user_id": gone, "is_test": True},
                                          {"id": 2, "user_id": blocked, "is_test": True},
                                          {"id": 3, "user_id": real, "is_test": False}])
        session.execute(items.insert(), [{"ledger_id": 1, "is_test": True}, {"ledger_id": 1, "is_test": True},
                                         {"ledger_id": 2, "is_test": False}, {"ledger_id": 3, "is_test": False}])
        run = cleanup.cleanup_expired(session)
        assert run.deleted == {"users": 1, "zz_ledger": 1, "zz_ledger_items": 2}
        assert run.kept == 1  # its ledger holds a production item three levels down
        assert sorted(session.scalars(select(ledger.c.id))) == [2, 3]
        assert len(session.execute(select(items)).all()) == 2
    finally:
        session.rollback()
        metadata.drop_all(bind, tables=[items, ledger], checkfirst=True)
        metadata.remove(items)
        metadata.remove(ledger)


def test_soft_delete_marks_first_and_purges_after_the_delay(session, world, frozen_clock):
    run = cleanup.cleanup_expired(session, soft_delete=True, purge_days=30)
    assert run.soft_deleted == 4 and run.total_deleted == 0
    users = table("users")
    marked = session.scalars(select(users.c.id).where(users.c.deleted_at.isnot(None))).all()
    assert sorted(marked) == sorted(world["expired"])
    assert cleanup.cleanup_expired(session, soft_delete=True, purge_days=30).total_deleted == 0

    frozen_clock.advance(timedelta(days=31))
    run = cleanup.cleanup_expired(session, soft_delete=True, purge_days=30)
    # The unexpired accounts have expired meanwhile: they are marked now, the old ones purged.
    assert run.deleted["users"] == 4 and run.soft_deleted == 2
    assert count(session, "users", id=world["expired"]) == 0


def test_a_time_boxed_run_stops_partial_and_the_next_one_finishes(session, frozen_clock):
    ids = insert_users(session, 25, test=True, expires_in=timedelta(minutes=-5))
    insert_owned_rows(session, ids, is_test=True)
    first = cleanup.cleanup_expired(session, batch_size=10, max_batches=1)
    assert first.status == "partial" and first.deleted["users"] == 10
    second = cleanup.cleanup_expired(session, batch_size=10)
    assert second.status == "finished" and second.deleted["users"] == 15 and second.batches == 2
    assert count(session, "users", id=ids) == 0 and count(session, "recovery_codes", user_id=ids) == 0


def test_a_run_that_died_midway_is_marked_interrupted_by_the_next(session, world):
    dead = CleanupRun(kind="expired", trigger="schedule", deleted={"users": 2}, batches=1)
    session.add(dead)
    session.commit()
    run = cleanup.cleanup_expired(session)
    session.refresh(dead)
    assert dead.status == "interrupted" and dead.finished_at is not None
    assert run.status == "finished" and run.deleted["users"] == 4
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "testdata.cleanup_interrupted")).one()
    assert entry.target_id == str(dead.id) and entry.after["deleted"] == {"users": 2}


def test_the_periodic_job_reports_progress_and_a_summary(app, session, world):
    from app.core.jobs import PERIODIC, run_periodic
    from app.jobs_registry import load

    load()
    assert PERIODIC["cleanup-test-data"].cron == "0 2 * * *"
    record = run_periodic("cleanup-test-data")
    assert record.status == "finished" and record.progress == 100
    assert record.result["deleted"]["users"] == 4 and record.result["status"] == "finished"
    run = session.get(CleanupRun, record.result["run_id"])
    assert run.job_id == record.id and run.trigger == "schedule"


@pytest.mark.postgres
def test_a_second_cleanup_cannot_run_while_one_holds_the_lock(session, world):
    with db.engine.engine.connect() as other:
        other.execute(text("SELECT pg_advisory_lock(:k)"), {"k": cleanup.LOCK_KEY})
        try:
            with pytest.raises(Conflict):
                cleanup.cleanup_expired(session)
        finally:
            other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": cleanup.LOCK_KEY})
            other.commit()
    assert count(session, "users", id=world["expired"]) == 4


def test_a_production_audit_row_outlives_the_test_actor_it_names(session, frozen_clock):
    """An expired test account that signed in has production audit rows: they stay, label intact."""
    [staff] = insert_users(session, 1, test=True, expires_in=timedelta(days=-1))
    audit_log = table("audit_log")
    session.execute(audit_log.insert().values(actor_id=staff, actor_label="qa@example.test",
                                              action="auth.login_succeeded", is_test=False, after={"k": 1}))
    before = session.execute(select(audit_log).where(audit_log.c.action == "auth.login_succeeded")).mappings().one()
    run = cleanup.cleanup_expired(session)
    assert run.deleted == {"users": 1}
    after = session.execute(select(audit_log).where(audit_log.c.id == before["id"])).mappings().one()
    assert after["actor_id"] is None
    assert {k: v for k, v in after.items() if k != "actor_id"} == {k: v for k, v in before.items() if k != "actor_id"}


def test_staff_accounts_are_never_cleaned_up_and_no_audit_row_is_deleted(session, frozen_clock):
    """Test personas are people who sign in (issue 14): expired or not, cleanup and delete-all
    keep them, and the audit trail of test actors stays."""
    [persona] = insert_users(session, 1, test=True, staff=True, expires_in=timedelta(days=-1))
    [customer] = insert_users(session, 1, test=True, expires_in=timedelta(days=-1))
    audit_log = table("audit_log")
    session.execute(audit_log.insert(), [{"actor_id": persona, "actor_label": "p", "action": "credits.grant",
                                          "is_test": True},
                                         {"actor_id": customer, "actor_label": "c", "action": "x", "is_test": True}])
    session.commit()
    mine = select(func.count()).select_from(audit_log).where(audit_log.c.actor_label.in_(["p", "c"]))
    assert session.scalar(mine) == 2
    assert cleanup.cleanup_expired(session).deleted == {"users": 1}
    cleanup.delete_all_test_data(session)
    session.commit()
    assert count(session, "users", id=persona) == 1 and count(session, "users", id=customer) == 0
    assert session.scalar(mine) == 2
    nested = session.begin_nested()
    with pytest.raises(Exception, match="append-only"):
        session.execute(audit_log.delete().where(audit_log.c.is_test.is_(True)))
    nested.rollback()


@pytest.mark.postgres
def test_the_audit_log_still_refuses_any_other_update(session):
    [user] = insert_users(session, 1, test=False)
    audit_log = table("audit_log")
    session.execute(audit_log.insert().values(actor_id=user, actor_label="a", action="x", is_test=False))
    session.commit()
    for values in ({"actor_id": None}, {"action": "y"}):
        nested = session.begin_nested()
        with pytest.raises(Exception, match="append-only"):
            session.execute(audit_log.update().where(audit_log.c.actor_id == user).values(**values))
        nested.rollback()


def test_every_foreign_key_the_cleanup_deletes_through_is_indexed():
    """Deleting a parent makes PostgreSQL look up its children (CASCADE, SET NULL, RESTRICT) on
    every foreign key pointing at it: without an index that is one table scan per deleted row
    (bench/cleanup.py went from 3,000 to far more rows/s with them). Later tables must index too."""
    g = cleanup.graph()
    deleted_from = {t.name for t in g.tables if "is_test" in t.c} | g.user_owned
    missing = []
    for t in g.tables:
        leading = {idx.columns[0].name for idx in t.indexes}
        leading |= {c.columns[0].name for c in t.constraints if hasattr(c, "columns") and len(c.columns)
                    and type(c).__name__ in ("PrimaryKeyConstraint", "UniqueConstraint")}
        for fk in t.foreign_keys:
            if fk.column.table.name in deleted_from and fk.parent.name not in leading:
                missing.append(f"{t.name}.{fk.parent.name}")
    assert missing == []


def test_soft_delete_and_batch_size_come_from_the_configuration(app, session, world, monkeypatch):
    monkeypatch.setitem(app.config, "TEST_DATA_SOFT_DELETE", True)
    monkeypatch.setitem(app.config, "TEST_DATA_CLEANUP_BATCH_SIZE", 1)
    run = cleanup.cleanup_expired(session)
    assert run.soft_deleted == 4 and run.total_deleted == 0 and run.batches == 4
