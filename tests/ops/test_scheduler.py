"""The embedded scheduler (ops/scheduler.py) and the worker thread (core/job_thread.py), in process.

The real process, started by scripts/run.sh, is driven in tests/e2e/test_embedded_default.py.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from app.core import clock
from app.core.jobs import PeriodicJob, JobRecord, enqueue
from app.ops import scheduler

AT = datetime(2026, 3, 4, 12, 0, 30, tzinfo=timezone.utc)


@pytest.fixture
def only_sample_jobs(monkeypatch):
    jobs = {"every-minute": PeriodicJob("every-minute", "tests.ops.sample_jobs:tick_tock", "* * * * *", "sample"),
            "nightly": PeriodicJob("nightly", "tests.ops.sample_jobs:tick_tock", "0 2 * * *", "sample")}
    monkeypatch.setattr("app.core.jobs.PERIODIC", jobs)
    monkeypatch.setattr("app.ops.scheduler.PERIODIC", jobs)
    return jobs


def test_one_lease_per_database(session):
    assert scheduler.take_lease(session, "a", AT)
    assert not scheduler.take_lease(session, "b", AT + timedelta(seconds=10))  # a holds it
    assert scheduler.take_lease(session, "a", AT + timedelta(seconds=10))  # a renews
    lapsed = AT + timedelta(seconds=10 + scheduler.LEASE_SECONDS + 1)
    assert scheduler.take_lease(session, "b", lapsed)  # a stopped renewing: b takes over
    assert not scheduler.take_lease(session, "a", lapsed)


def test_due_jobs_run_once_per_schedule_and_missed_ones_catch_up(session, only_sample_jobs):
    clock.freeze(AT)
    try:
        assert scheduler.due_jobs(session) == ["every-minute", "nightly"]  # never ran: the 02:00 run was missed
        assert scheduler.tick(session) == ["every-minute", "nightly"]
        rows = session.scalars(select(JobRecord).where(JobRecord.kind == "every-minute")).all()
        assert [(r.status, r.result) for r in rows] == [("finished", {"ticked": True})]
        clock.advance(timedelta(seconds=20))  # 12:00:50, same minute
        assert scheduler.tick(session) == []
        clock.advance(timedelta(seconds=15))  # 12:01:05: the every-minute job is due again, nightly is not
        assert scheduler.tick(session) == ["every-minute"]
    finally:
        clock.reset()


def test_the_serving_process_hands_due_jobs_to_its_worker_thread(session, only_sample_jobs):
    handed = []
    clock.freeze(AT)
    try:
        assert scheduler.tick(session, submit=lambda record_id, func: handed.append((record_id, func))) == [
            "every-minute", "nightly"]
        records = {r.id: r for r in session.scalars(select(JobRecord).where(JobRecord.kind.in_(only_sample_jobs)))}
        assert sorted(handed) == sorted((i, "tests.ops.sample_jobs:tick_tock") for i in records)
        assert {r.status for r in records.values()} == {"queued"}  # the thread runs them; recorded as started
        assert scheduler.tick(session, submit=lambda *_: handed.append("again")) == []
    finally:
        clock.reset()


def test_a_process_that_stops_releases_the_lease_at_once(session):
    assert scheduler.take_lease(session, "old-process")
    scheduler.release_lease(session, "old-process")
    assert scheduler.take_lease(session, "new-process", clock.now() + timedelta(seconds=1))


def test_a_process_without_the_lease_runs_nothing(session, only_sample_jobs):
    assert scheduler.take_lease(session, "another-process")
    assert scheduler.tick(session) == []
    assert session.scalar(select(JobRecord.id).where(JobRecord.kind == "every-minute")) is None


def test_a_job_asked_for_in_a_request_runs_on_the_worker_thread(app, real_db):
    from app.core import job_thread

    app.config["JOBS_THREAD"] = True
    try:
        with app.test_request_context():
            record_id = enqueue("sample", "tests.ops.sample_jobs:where_am_i").id
            real_db.session.remove()  # the request ends
        assert job_thread.wait_idle(30)
        with app.app_context():
            done = real_db.session.get(JobRecord, record_id)
            assert (done.status, done.progress, done.result) == ("finished", 100, {"thread": "rephlo-jobs"})
    finally:
        app.config["JOBS_THREAD"] = False
