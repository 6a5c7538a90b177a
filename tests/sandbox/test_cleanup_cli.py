"""The cleanup from the command line: `flask reset-test-data`, and `flask jobs run
cleanup-test-data` killed midway, then resumed by the next run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from app.core.errors import Conflict
from app.seed import PERSONAS
from app.sandbox import cleanup
from app.sandbox.cleanup_models import CleanupRun
from tests.sandbox.cleanup_factories import (assert_production_unchanged, count, insert_owned_rows, insert_users, production_snapshot,
                                              remaining_test_rows, table)

ROOT = Path(__file__).resolve().parents[2]
PERSONA_EMAILS = {p[0] for p in PERSONAS}


def test_reset_test_data_deletes_test_rows_and_reseeds_the_personas(app, session):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed"]).exit_code == 0
    users = table("users")
    seeded = set(session.scalars(select(users.c.email).where(users.c.is_test.is_(True))))
    assert PERSONA_EMAILS <= seeded  # personas, plus what other domains' seeders add
    production = insert_users(session, 4, test=False)
    insert_owned_rows(session, production, is_test=False)
    extra = insert_users(session, 3, test=True, expires_in=timedelta(days=3))
    insert_owned_rows(session, extra, is_test=True)
    extra_emails = set(session.scalars(select(users.c.email).where(users.c.id.in_(extra))))
    session.commit()
    # Seeded production configuration (prices, margins) was created by test personas: its
    # "created by" link is cleared with them, the rows themselves must not change.
    before = production_snapshot(session, ignore_links_to_test_users=True)

    result = runner.invoke(args=["reset-test-data", "--yes"])
    assert result.exit_code == 0, result.output
    assert "Seeded." in result.output
    deleted = {line.split()[2]: int(line.split()[1]) for line in result.output.splitlines() if line.startswith("  deleted")}
    staff = set(session.scalars(select(users.c.email).where(users.c.is_test.is_(True), users.c.is_staff.is_(True))))
    assert staff and deleted["users"] == len(seeded - staff) + 3  # test customers went, then came back; staff stayed
    assert set(session.scalars(select(users.c.email).where(users.c.is_test.is_(True)))) == seeded
    assert count(session, "users", email=list(extra_emails)) == 0
    left = remaining_test_rows(session)
    assert left["users"] == len(seeded) and left["role_assignments"] == 7 and left["permission_overrides"] == 4
    assert_production_unchanged(before, production_snapshot(session, ignore_links_to_test_users=True),
                                audit_log=1)  # the reset's own entry


def test_reset_test_data_asks_first(app, session):
    insert_users(session, 2, test=True)
    result = app.test_cli_runner().invoke(args=["reset-test-data"], input="n\n")
    assert result.exit_code == 1 and "Aborted" in result.output
    assert remaining_test_rows(session)["users"] == 2


def _cleanup_process(database_url: str, pause_ms: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url, "FLASK_APP": "wsgi", "SECRET_KEY": "kill-test",
           "JOBS_INLINE": "1", "REDIS_URL": "", "TEST_DATA_CLEANUP_BATCH_SIZE": "20",
           "TEST_DATA_CLEANUP_PAUSE_MS": str(pause_ms)}
    return subprocess.Popen([sys.executable, "-m", "flask", "jobs", "run", "cleanup-test-data"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_a_cleanup_killed_between_batches_resumes_cleanly(real_db, database_url):
    session = real_db.session
    expired = insert_users(session, 200, test=True, expires_in=timedelta(days=-1))
    insert_owned_rows(session, expired, is_test=True)
    production = insert_users(session, 50, test=False)
    insert_owned_rows(session, production, is_test=False)
    session.commit()
    before = production_snapshot(session)

    proc = _cleanup_process(database_url, pause_ms=400)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            run = session.scalars(select(CleanupRun)).first()
            batches = run.batches if run is not None else 0
            session.rollback()  # no transaction held while we wait (a SQLite one holds the write lock)
            if batches >= 2:
                break
            assert proc.poll() is None, proc.stdout.read().decode()
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()

    session.rollback()
    run = session.scalars(select(CleanupRun)).one()
    users = table("users")
    gone = 200 - session.scalar(select(func.count()).where(users.c.id.in_(expired)))
    assert run.status == "running" and 0 < gone < 200
    assert run.deleted["users"] == gone  # the record is exact: counts commit with their batch
    assert count(session, "recovery_codes", user_id=expired) == 200 - gone  # no orphans, no half batches
    assert count(session, "role_assignments", user_id=expired) == 200 - gone

    for _ in range(50):  # the killed backend may take a moment to drop its advisory lock
        try:
            resumed = cleanup.cleanup_expired(session)
            break
        except Conflict:
            time.sleep(0.1)
    session.refresh(run)
    assert run.status == "interrupted"
    assert resumed.status == "finished" and resumed.deleted["users"] == 200 - gone
    assert count(session, "users", id=expired) == 0
    # New: 'interrupted' for the killed run and the resumed run's entry; the killed job's record.
    assert_production_unchanged(before, production_snapshot(session), audit_log=2, job_records=1)
