"""Queue health read from RQ's registries, plus the last run of every periodic job."""
from __future__ import annotations

from rq import Queue, Worker
from rq.job import Job
from rq.registry import FailedJobRegistry, StartedJobRegistry
from sqlalchemy import func, select

from app.core.errors import DomainError, NotFound
from app.core.jobs import PERIODIC, JobRecord
from app.core.redis import QUEUES, connection
from app.jobs_registry import load


def periodic_last_runs(session) -> list[dict]:
    """Each periodic job with its schedule and the outcome of its last run."""
    load()
    latest = dict(session.execute(
        select(JobRecord.kind, func.max(JobRecord.created_at)).where(JobRecord.kind.in_(list(PERIODIC)))
        .group_by(JobRecord.kind)).all())
    rows = []
    for job in sorted(PERIODIC.values(), key=lambda j: j.name):
        record = None
        if job.name in latest:
            record = session.scalar(select(JobRecord).where(JobRecord.kind == job.name,
                                                            JobRecord.created_at == latest[job.name]).limit(1))
        rows.append({"name": job.name, "cron": job.cron, "description": job.description,
                     "last_run_at": record.created_at.isoformat() if record else None,
                     "last_status": record.status if record else None,
                     "last_error": record.error if record else None})
    return rows


def queue_stats(conn) -> dict:
    queues, total = {}, {"pending": 0, "processing": 0, "dead_letter": 0}
    for name in QUEUES:
        queue = Queue(name, connection=conn)
        stats = {"pending": queue.count,
                 "processing": StartedJobRegistry(queue=queue).count,
                 "dead_letter": FailedJobRegistry(queue=queue).count}
        queues[name] = stats
        for key in total:
            total[key] += stats[key]
    workers = Worker.all(connection=conn)
    return {"queues": queues, "total": total,
            "workers": [{"name": w.name, "state": w.get_state(), "queues": w.queue_names()} for w in workers]}


def failed_jobs(conn, limit: int = 50) -> list[dict]:
    rows = []
    for name in QUEUES:
        registry = FailedJobRegistry(queue=Queue(name, connection=conn))
        for job_id in registry.get_job_ids(0, limit - 1):
            job = Job.fetch(job_id, connection=conn)
            result = job.latest_result()
            error = (result.exc_string if result else None) or ""
            rows.append({"id": job.id, "queue": name, "func": job.func_name, "ended_at": job.ended_at,
                         "error": error.strip().splitlines()[-1] if error.strip() else "unknown error"})
    return rows


def _require_conn():
    conn = connection()
    if conn is None:
        raise DomainError("redis_not_configured", "Jobs run inline here: there is no queue to act on.")
    return conn


def retry_failed(job_id: str) -> None:
    conn = _require_conn()
    for name in QUEUES:
        registry = FailedJobRegistry(queue=Queue(name, connection=conn))
        if job_id in registry.get_job_ids():
            registry.requeue(job_id)
            return
    raise NotFound("failed job")


def delete_failed(job_id: str) -> None:
    conn = _require_conn()
    for name in QUEUES:
        registry = FailedJobRegistry(queue=Queue(name, connection=conn))
        if job_id in registry.get_job_ids():
            registry.remove(job_id, delete_job=True)
            return
    raise NotFound("failed job")
