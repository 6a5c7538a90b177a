"""The embedded scheduler: without Redis the app process runs the periodic jobs itself.

`rq cron` does this in production. On the embedded default (`make run`) nobody starts it, so
expired test accounts were never cleaned up and renewals, dunning and outbox delivery never
happened. Here one daemon thread of the serving process looks every few seconds for jobs
that are due and runs them, one after another, in an app context of its own.

Due: the job's last run (its newest JobRecord, whoever ran it: this thread, `flask jobs run`)
is older than the job's latest scheduled time. A job that never ran is due at once, so a
daily job missed while the laptop was off runs at the next start instead of never.

One scheduler per database: the `scheduler_leases` row is taken with one conditional UPDATE
(or the first INSERT) and renewed before every job; a second process (a second `make run`,
gunicorn workers) finds it held and waits until it lapses (LEASE_SECONDS after its holder
stopped renewing). Started on the first request a serving process answers, never by CLI
commands (`flask seed`, `flask db upgrade`) nor under tests.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import datetime, timedelta

from croniter import croniter
from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.core import clock
from app.core.jobs import PERIODIC, JobRecord, run_periodic
from app.ops.models import SchedulerLease

log = logging.getLogger(__name__)

LEASE_NAME = "embedded-scheduler"
LEASE_SECONDS = 300  # longer than a periodic job takes on the embedded default
TICK_SECONDS = 5.0

HOLDER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
_started = threading.Event()
_start_lock = threading.Lock()


def take_lease(session, holder: str = HOLDER, now: datetime | None = None) -> bool:
    """Take or renew the lease; False while another holder's lease is still running."""
    now = now or clock.now()
    values = {"holder": holder, "expires_at": now + timedelta(seconds=LEASE_SECONDS), "renewed_at": now}
    table = SchedulerLease.__table__
    taken = session.execute(update(table).where(
        table.c.name == LEASE_NAME, or_(table.c.holder == holder, table.c.expires_at < now)).values(**values))
    if taken.rowcount:
        session.commit()
        return True
    try:
        session.execute(insert(table).values(name=LEASE_NAME, **values))
        session.commit()
        return True
    except IntegrityError:  # someone holds it
        session.rollback()
        return False


def release_lease(session, holder: str = HOLDER) -> None:
    table = SchedulerLease.__table__
    session.execute(update(table).where(table.c.name == LEASE_NAME, table.c.holder == holder)
                    .values(expires_at=clock.now()))
    session.commit()


def due_jobs(session, now: datetime | None = None) -> list[str]:
    """Names of the periodic jobs whose latest scheduled time has passed since their last run."""
    now = now or clock.now()
    last = dict(session.execute(select(JobRecord.kind, func.max(JobRecord.created_at))
                                .where(JobRecord.kind.in_(list(PERIODIC))).group_by(JobRecord.kind)).all())
    due = []
    for name, job in sorted(PERIODIC.items()):
        ran = clock.as_utc(last.get(name))
        if ran is None or croniter(job.cron, now).get_prev(datetime) > ran:
            due.append(name)
    return due


def tick(session) -> list[str]:
    """One look: if this process holds the lease, run every due job. Returns what it ran."""
    ran = []
    if not take_lease(session):
        return ran
    for name in due_jobs(session):
        if not take_lease(session):  # renewed before each job; lost only if a job outlived the lease
            break
        try:
            run_periodic(name)
        except Exception:  # recorded on the job's row; the next jobs still run
            session.rollback()
            log.exception("periodic job %s failed", name)
        ran.append(name)
    return ran


def _loop(app) -> None:
    from app.extensions import db
    from app.jobs_registry import load

    load()
    while True:
        try:
            with app.app_context():
                try:
                    ran = tick(db.session)
                    if ran:
                        log.info("scheduler ran %s", ", ".join(ran))
                finally:
                    db.session.remove()
        except Exception:  # a database hiccup: try again at the next tick
            log.exception("embedded scheduler tick failed")
        threading.Event().wait(TICK_SECONDS)


def start(app) -> bool:
    """Start the scheduler thread once per process; False if it was running already."""
    with _start_lock:
        if _started.is_set():
            return False
        _started.set()
    threading.Thread(target=_loop, args=(app,), name="rephlo-scheduler", daemon=True).start()
    log.info("embedded scheduler started (%s)", HOLDER)
    return True


def init_app(app) -> None:
    """Start on the first request, so only a serving process runs it (not `flask seed`)."""
    if not app.config.get("EMBEDDED_SCHEDULER"):
        return

    @app.before_request
    def _start_scheduler():
        if not _started.is_set():
            start(app)
