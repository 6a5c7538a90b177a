"""'Delete all test data': every is_test row of every table goes, except staff accounts (test
personas included) with what they own and the append-only logs; production rows stay as they were."""
from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from app.core.audit import AuditEntry
from app.core.jobs import JobRecord
from app.sandbox import cleanup
from tests.sandbox.cleanup_factories import (assert_production_unchanged, count, insert_owned_rows, insert_users, production_snapshot,
                                              remaining_test_rows, role_id, table)


def _world(session):
    production = insert_users(session, 5, test=False)
    insert_owned_rows(session, production, is_test=False, per_user=2, actor_id=production[0])
    expired = insert_users(session, 3, test=True, expires_in=timedelta(days=-1))
    current = insert_users(session, 3, test=True, expires_in=timedelta(days=5))
    personas = insert_users(session, 2, test=True, staff=True)
    insert_owned_rows(session, expired + current + personas, is_test=True, per_user=2, actor_id=personas[0])
    return production, expired + current + personas


def test_every_test_row_goes_and_every_production_row_stays(session, frozen_clock):
    production, test_users = _world(session)
    session.commit()
    before = production_snapshot(session)
    assert remaining_test_rows(session)["users"] == 8

    calls = []
    preview = cleanup.delete_all_preview(session)
    run = cleanup.delete_all_test_data(session, batch_size=4, progress=lambda d, t, m: calls.append((d, t)))
    assert preview == run.deleted  # what the confirmation page showed is what went

    personas = test_users[-2:]
    assert remaining_test_rows(session) == {"users": 2, "role_assignments": 4, "permission_overrides": 4}
    assert count(session, "users", id=personas) == 2
    assert count(session, "recovery_codes", user_id=test_users[:-2]) == 0
    assert count(session, "audit_log", is_test=True) == 16  # the trail of test actors is kept
    assert run.status == "finished" and run.kind == "all" and run.kept == 0
    assert run.deleted == {"users": 6, "role_assignments": 12, "permission_overrides": 12, "recovery_codes": 12,
                           "job_records": 16}
    assert calls[-1][0] == calls[-1][1] == run.total_deleted
    assert_production_unchanged(before, production_snapshot(session), audit_log=1)  # the cleanup's own entry
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "testdata.delete_all")).one()
    assert entry.after["deleted"] == run.deleted and entry.is_test is False


def test_the_staff_member_who_asked_and_the_running_job_are_kept(session, frozen_clock):
    production, test_users = _world(session)
    [actor] = insert_users(session, 1, test=True, staff=True, label="super")
    ra = table("role_assignments")
    session.execute(ra.insert().values(user_id=actor, role_id=role_id(session, "super_admin"), is_test=True,
                                       reason="persona"))
    insert_owned_rows(session, [actor], is_test=True)
    job = JobRecord(id=str(uuid.uuid4()), kind="testdata.delete_all", status="running", is_test=True)
    session.add(job)
    session.commit()
    from app.users.models import User

    preview = cleanup.delete_all_preview(session, actor=session.get(User, actor))
    run = cleanup.delete_all_test_data(session, actor=session.get(User, actor), job_id=job.id)
    assert {**preview, "job_records": preview["job_records"] - 1} == run.deleted  # less the running job
    left = remaining_test_rows(session)
    # The actor and the two other personas stay with their roles; the running job stays.
    assert left == {"users": 3, "role_assignments": 6, "permission_overrides": 5, "job_records": 1}
    assert count(session, "users", id=actor) == 1 and session.get(JobRecord, job.id) is not None
    # Its old job records merely name it: gone. Its audit rows stay (the audit log is append-only).
    assert count(session, "audit_log", actor_id=actor, is_test=True) == 1
    assert count(session, "audit_log", actor_id=actor, action="testdata.delete_all") == 1
    assert run.actor_id == actor and run.deleted["users"] == 6


def test_a_test_row_owning_a_production_row_is_kept(session, frozen_clock):
    [owner] = insert_users(session, 1, test=True)
    ra = table("role_assignments")
    session.execute(ra.insert().values(user_id=owner, role_id=role_id(session), is_test=False, reason="real"))
    insert_owned_rows(session, [owner], is_test=True)
    run = cleanup.delete_all_test_data(session)
    assert count(session, "users", id=owner) == 1
    assert count(session, "role_assignments", user_id=owner, is_test=False) == 1
    # Its own test rows went; the account itself stays because a production row hangs from it.
    assert count(session, "role_assignments", user_id=owner, is_test=True) == 0
    assert run.kept == 1 and "users" not in run.deleted


def test_nothing_to_delete_is_a_clean_finished_run(session):
    run = cleanup.delete_all_test_data(session)
    assert run.status == "finished" and run.deleted == {} and run.batches >= 0


def test_a_failure_is_recorded_and_audited(session, monkeypatch):
    insert_users(session, 2, test=True)

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(cleanup, "_delete_leaf", explode)
    try:
        cleanup.delete_all_test_data(session)
    except RuntimeError:
        pass
    else:
        raise AssertionError("the error should propagate to the job")
    from app.sandbox.cleanup_models import CleanupRun

    run = session.scalars(select(CleanupRun)).one()
    assert run.status == "failed" and "disk full" in run.error
    assert session.scalars(select(AuditEntry.action).where(AuditEntry.target_id == str(run.id))).all() == [
        "testdata.delete_all"]
