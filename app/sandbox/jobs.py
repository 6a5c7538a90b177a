"""Test-data jobs: the nightly cleanup (rq cron, or `flask jobs run cleanup-test-data`) and
the staff-started cleanups, all thin wrappers reporting progress on their job record."""
from __future__ import annotations

from app.core.jobs import JobContext, periodic
from app.extensions import db
from app.sandbox import cleanup
from app.users.models import User

DELETE_ALL_KIND = "testdata.delete_all"
CLEANUP_NOW_KIND = "testdata.cleanup_expired"
KINDS = (DELETE_ALL_KIND, CLEANUP_NOW_KIND)


def _progress(job: JobContext):
    return lambda done, total, message: job.progress(done, total, message)


@periodic("cleanup-test-data", cron="0 2 * * *",
          description="Delete expired test accounts and everything they own, in batches")
def cleanup_test_data(job: JobContext) -> dict:
    run = cleanup.cleanup_expired(db.session, trigger="schedule", job_id=job.record.id, progress=_progress(job))
    return cleanup.summary(run)


def cleanup_expired_now(job: JobContext, actor_id: int) -> dict:
    """The nightly cleanup, started by a staff member from the Test data screen."""
    actor = db.session.get(User, actor_id)
    run = cleanup.cleanup_expired(db.session, actor=actor, trigger="staff", job_id=job.record.id,
                                  progress=_progress(job))
    return cleanup.summary(run)


def delete_all_test_data(job: JobContext, actor_id: int) -> dict:
    actor = db.session.get(User, actor_id)
    run = cleanup.delete_all_test_data(db.session, actor=actor, trigger="staff", job_id=job.record.id,
                                       progress=_progress(job))
    return {**cleanup.summary(run), "kept_account": actor.email if actor else None}
