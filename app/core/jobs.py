"""One way to run background work: enqueue() runs on RQ with Redis, else on the app's worker
thread (core/job_thread.py), or inline in the request when JOBS_INLINE is asked for (tests).

Every job gets a JobRecord row (kind, who asked, status, progress) so that screens can
show progress bars whichever way it ran. Job functions live in each domain's jobs.py,
take a JobContext first, and commit their own batches.
"""
from __future__ import annotations

import importlib
import logging
import traceback
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from flask import current_app, has_request_context
from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core import clock
from app.core.models import Base, IsTestMixin
from app.extensions import db

log = logging.getLogger(__name__)


class JobRecord(IsTestMixin, Base):
    __tablename__ = "job_records"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    kind: Mapped[str] = mapped_column(String(80), index=True)
    queue: Mapped[str] = mapped_column(String(40), default="default")
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(String(255))
    result: Mapped[Any | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


@dataclass
class PeriodicJob:
    name: str
    func: str
    cron: str
    description: str
    queue: str = "default"


PERIODIC: dict[str, PeriodicJob] = {}


def periodic(name: str, cron: str, description: str, queue: str = "default") -> Callable:
    """Declare a job for `rq cron` and `flask jobs run NAME` in one place."""

    def wrap(func):
        PERIODIC[name] = PeriodicJob(name, f"{func.__module__}:{func.__name__}", cron, description, queue)
        return func

    return wrap


class JobContext:
    """Handed to job functions so they can report progress on their record."""

    def __init__(self, record: JobRecord):
        self.record = record

    def progress(self, done: int, total: int, message: str | None = None) -> None:
        self.record.progress = 100 if total <= 0 else min(100, int(done * 100 / total))
        if message:
            self.record.message = message[:255]


def _resolve(path: str) -> Callable:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def _path(func: Callable | str) -> str:
    return func if isinstance(func, str) else f"{func.__module__}:{func.__name__}"


def _retry():
    from rq import Retry

    retries = current_app.config.get("JOB_RETRY_MAX", 3)
    return Retry(max=retries, interval=[5, 30, 120][:retries] or 0) if retries else None


def enqueue(kind: str, func: Callable | str, *args, requested_by=None, queue: str = "default", **kwargs) -> JobRecord:
    """Record the job and run it: inline on the embedded default, on RQ otherwise."""
    record = JobRecord(kind=kind, queue=queue, requested_by_id=getattr(requested_by, "id", None))
    db.session.add(record)
    db.session.commit()
    # Off a request (a CLI command, the scheduler's own thread) the caller is the background.
    if current_app.config["JOBS_INLINE"] and current_app.config.get("JOBS_THREAD") and has_request_context():
        from app.core import job_thread

        job_thread.submit(current_app._get_current_object(), record.id, _path(func), list(args), kwargs)
    elif current_app.config["JOBS_INLINE"]:
        execute(record.id, _path(func), list(args), kwargs)
    else:
        from app.core.redis import rq_queue

        # A work horse killed mid-run (SIGKILL, OOM) is retried; job functions are idempotent.
        rq_queue(queue).enqueue(
            "app.core.jobs.execute", record.id, _path(func), list(args), kwargs,
            job_id=record.id, job_timeout=3600, failure_ttl=7 * 86400, retry=_retry(),
        )
    return record


def execute(record_id: str, func_path: str, args: list, kwargs: dict):
    """Run a recorded job; inline, or in an RQ work horse under the Flask CLI's app context."""
    record = db.session.get(JobRecord, record_id)
    if record is None:
        raise LookupError(f"job record {record_id} is gone")
    record.status, record.started_at, record.error = "running", clock.now(), None
    db.session.commit()
    try:
        result = _resolve(func_path)(JobContext(record), *args, **kwargs)
    except Exception as exc:
        db.session.rollback()
        record = db.session.get(JobRecord, record_id)
        record.status, record.finished_at = "failed", clock.now()
        record.error = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:4000]
        db.session.commit()
        log.exception("job %s (%s) failed", record.kind, record_id)
        if current_app.config["JOBS_INLINE"]:
            return None
        raise
    record.status, record.progress, record.finished_at = "finished", 100, clock.now()
    record.result = result if isinstance(result, (dict, list)) else None
    db.session.commit()
    return result


def run_periodic(name: str) -> Any:
    """Entry point for `rq cron` and `flask jobs run NAME`."""
    job = PERIODIC[name]
    record = enqueue_now(name, job)
    return record


def enqueue_now(name: str, job: PeriodicJob) -> JobRecord:
    record = JobRecord(kind=name, queue=job.queue)
    db.session.add(record)
    db.session.commit()
    execute(record.id, job.func, [], {})
    return record
