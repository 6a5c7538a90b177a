"""The Jobs screen: queues, workers, recent and failed jobs, periodic schedule."""
from __future__ import annotations

from flask import Blueprint, url_for
from flask_login import current_user
from sqlalchemy import select

from app.auth.guards import permission_required
from app.core import audit, nav
from app.core.jobs import JobRecord
from app.core.redis import connection
from app.core.forms import handle_form
from app.core.web import render
from app.extensions import db
from app.ops import queues

bp = Blueprint("ops", __name__, url_prefix="/admin/jobs")
nav.register("Jobs", "ops.jobs", "roles.view_audit_log", order=90)


@bp.get("")
@permission_required("roles.view_audit_log")
def jobs():
    conn, stats, failed, redis_error = connection(), None, [], None
    if conn is not None:
        try:
            stats, failed = queues.queue_stats(conn), queues.failed_jobs(conn)
        except Exception as exc:  # shown plainly on the screen
            redis_error = f"Redis is unreachable ({type(exc).__name__}): jobs cannot be queued or run."
    recent = db.session.scalars(select(JobRecord).order_by(JobRecord.created_at.desc()).limit(30)).all()
    return render("ops/jobs.html", block="panels", stats=stats, failed=failed, recent=recent,
                  periodic=queues.periodic_last_runs(db.session), inline=conn is None, redis_error=redis_error)


def _act(job_id: str, action: str):
    def act():
        if action == "retry":
            queues.retry_failed(job_id)
        else:
            queues.delete_failed(job_id)
        audit.record(db.session, f"jobs.{action}", actor=current_user, target_type="rq_job", target_id=job_id)

    page = url_for("ops.jobs")
    return handle_form(None, act, success=page, again=page,
                       message=f"Job {job_id} {'requeued' if action == 'retry' else 'deleted'}.")


@bp.post("/<job_id>/retry")
@permission_required("roles.assign")
def retry(job_id: str):
    return _act(job_id, "retry")


@bp.post("/<job_id>/delete")
@permission_required("roles.assign")
def delete(job_id: str):
    return _act(job_id, "delete")
