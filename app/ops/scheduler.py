"""The embedded scheduler: without Redis the app process runs the periodic jobs itself.

`rq cron` does this in production. On the embedded default (`make run`) nobody starts it, so
expired test accounts were never cleaned up and renewals, dunning and outbox delivery never
happened. Here one daemon thread of the serving process looks every few seconds for jobs
that are due and hands them to the app's worker thread (core/job_thread.py), which runs them
one after another, as it runs the jobs staff start from the screens.

Due: the job's last run (its newest JobRecord, whoever made it: this scheduler, `flask jobs
run`) is older than the job's latest scheduled time. A job that never ran is due at once, so a
daily job missed while the laptop was off runs at the next start instead of never.

One scheduler per database: the `scheduler_leases` row is taken with one conditional UPDATE
(or the first INSERT) and renewed at every look; a second process (a second `make run`,
gunicorn workers) finds it held and takes over once it lapses (LEASE_SECONDS after its holder
stopped renewing; a holder that exits normally releases it at once). Started on the first
request a serving process answers, never by CLI commands (`flask seed`, `flask db upgrade`)
nor under tests.
"""
from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import uuid
from datetime import datetime, timedelta
from typing import Callable

from croniter import croniter
from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.core import clock, job_thread
from app.core.jobs import PERIODIC, JobRecord, run_periodic
from app.extensions import db
from app.jobs_registry import load
from app.ops.models import SchedulerLease

log = logging.getLogger(__name__)

LEASE_NAME = "embedded-scheduler"
LEASE_SECONDS = 30  # renewed every TICK_SECONDS while the process lives
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


def tick(session, submit: Callable[[str, str], None] | None = None) -> list[str]:
    """One look: if this process holds the lease, start every due job. Returns their names.

    submit(record_id, func_path) hands a recorded job to the worker thread; without it the
    jobs run here, one after another (tests, and a caller that is itself the background)."""
    started = []
    if not take_lease(session):
        return started
    for name in due_jobs(session):
        job = PERIODIC[name]
        if submit is None:
            try:
                run_periodic(name)
            except Exception:  # recorded on the job's row; the next jobs still run
                session.rollback()
                log.exception("periodic job %s failed", name)
        else:
            record = JobRecord(kind=name, queue=job.queue)  # counts as its run: not due again
            session.add(record)
            session.commit()
            submit(record.id, job.func)
        started.append(name)
    return started


def _loop(app) -> None:
    load()

    def submit(record_id: str, func_path: str) -> None:
        job_thread.submit(app, record_id, func_path, [], {})

    while True:
        try:
            with app.app_context():
                try:
                    started = tick(db.session, submit)
                    if started:
                        log.info("scheduler started %s", ", ".join(started))
                finally:
                    db.session.remove()
        except Exception:  # a database hiccup: try again at the next look
            log.exception("embedded scheduler tick failed")
        threading.Event().wait(TICK_SECONDS)


def _release_at_exit(app) -> None:
    """A process that stops normally (Ctrl-C) lets the next one take over at once."""
    try:
        with app.app_context():
            release_lease(db.session)
            db.session.remove()
    except Exception:  # best effort: otherwise the lease lapses by itself
        pass


def start(app) -> bool:
    """Start the scheduler thread once per process; False if it was running already."""
    with _start_lock:
        if _started.is_set():
            return False
        _started.set()
    threading.Thread(target=_loop, args=(app,), name="rephlo-scheduler", daemon=True).start()
    atexit.register(_release_at_exit, app)
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
