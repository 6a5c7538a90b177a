"""The Test data screen: seed 000's success metrics, production statistics and the cleanups."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user

from app.auth.guards import permission_required, sudo_required, user_can
from app.core import audit, nav
from app.core.errors import Conflict
from app.core.forms import form_errors, handle_form
from app.core.jobs import enqueue
from app.core.web import include_test_data, render
from app.extensions import db
from app.sandbox import cleanup, cleanup_labels, jobs, statistics, clocks as test_clocks
from app.sandbox.cleanup_forms import ClockAdvanceForm, ClockCreateForm, CleanupNowForm, DeleteAllForm

bp = Blueprint("testdata_overview", __name__)
nav.register("Test data", "testdata_overview.overview", "users.view", order=60)


@bp.app_template_global()
def deleted_rows(counts: dict | None) -> list[tuple[str, str, int]]:
    return cleanup_labels.rows(counts or {})


def _refuse_if_busy() -> None:
    running = cleanup.active_cleanup_job(db.session, jobs.KINDS)
    if running is not None:
        raise Conflict("cleanup_running", "A cleanup is already running: wait for it to finish.")


@bp.route("/admin/test-data")
@permission_required("users.view")
def overview():
    include_test = include_test_data()
    return render("sandbox/overview.html",
                  metrics=statistics.test_data_metrics(db.session),
                  user_stats=statistics.user_stats(db.session, include_test),
                  include_test=include_test,
                  api_requests=statistics.api_requests_today(db.session),
                  running=cleanup.active_cleanup_job(db.session, jobs.KINDS),
                  share_target=statistics.TEST_SHARE_TARGET,
                  cleanup_form=CleanupNowForm(),
                  can_cleanup=user_can("users.delete"))


def _requested(action: str, reason: str | None = None):
    """Refused while a cleanup runs; the request is audited (and committed) before the job is queued."""
    def act():
        _refuse_if_busy()
        audit.record(db.session, action, actor=current_user, reason=reason, is_test=False)
    return act


def _queued(kind: str, job):
    def queued(_):
        record = enqueue(kind, job, current_user.id, requested_by=current_user)
        return url_for(".job", job_id=record.id)
    return queued


def _busy_or_expired(form, status):
    if status == 409:  # another cleanup runs: say so on its own page
        return render("errors/error.html", message=form_errors(form)[0], status=409)
    flash("Your form expired; please try again.", "error")
    return redirect(url_for(".overview"))


@bp.route("/admin/test-data/cleanup", methods=["POST"])
@permission_required("users.delete")
def cleanup_now():
    return handle_form(CleanupNowForm(), _requested("testdata.cleanup_requested"),
                       success=_queued(jobs.CLEANUP_NOW_KIND, jobs.cleanup_expired_now), again=_busy_or_expired)


@bp.route("/admin/test-data/delete-all", methods=["GET", "POST"])
@permission_required("users.delete")
@sudo_required
def delete_all():
    form = DeleteAllForm()

    def page(form, status=200):
        if status == 409:
            return render("errors/error.html", message=form_errors(form)[0], status=409)
        return render("sandbox/delete_all.html", form=form,
                      preview=cleanup.delete_all_preview(db.session, actor=current_user), status=status)

    if request.method == "GET":
        return page(form)
    return handle_form(form, _requested("testdata.delete_all_requested", form.reason.data or None),
                       success=_queued(jobs.DELETE_ALL_KIND, jobs.delete_all_test_data), again=page)


@bp.route("/admin/test-data/jobs/<job_id>")
@permission_required("users.view")
def job(job_id: str):
    record = cleanup.cleanup_job(db.session, job_id, jobs.KINDS)
    return render("sandbox/cleanup_job.html", block="progress", job=record,
                  title="Delete all test data" if record.kind == jobs.DELETE_ALL_KIND else "Cleanup of expired test accounts")


# -- test clocks ------------------------------------------------------------------------------


def _clocks_page(create_form=None, advance_form=None, advancing=None, status=200):
    return render("sandbox/clocks.html", clocks=test_clocks.list_clocks(db.session),
                  create_form=create_form or ClockCreateForm(formdata=None),
                  advance_form=advance_form, blank_advance=ClockAdvanceForm(formdata=None), advancing=advancing,
                  can_edit=user_can("users.edit_profile"), status=status)


@bp.route("/admin/test-data/clocks")
@permission_required("users.view")
def clocks():
    return _clocks_page()


@bp.route("/admin/test-data/clocks", methods=["POST"])
@permission_required("users.edit_profile")
def create_clock():
    form = ClockCreateForm()
    return handle_form(form, lambda: test_clocks.create_clock(db.session, form.email.data, actor=current_user),
                       success=url_for(".clocks"),
                       message=lambda test_clock: f"{test_clock.user.email} now lives on its own test clock.",
                       again=lambda form, status: _clocks_page(create_form=form, status=status))


@bp.route("/admin/test-data/clocks/<int:clock_id>/advance", methods=["POST"])
@permission_required("users.edit_profile")
def advance_clock(clock_id: int):
    test_clock = test_clocks.get_clock(db.session, clock_id)
    form = ClockAdvanceForm()
    return handle_form(form, lambda: test_clocks.advance(db.session, test_clock, actor=current_user,
                                                         by=timedelta(days=form.days.data, hours=form.hours.data)),
                       success=url_for(".clocks"),
                       message=lambda results: f"The clock of {test_clock.user.email} moved to "
                       f"{test_clock.frozen_time:%Y-%m-%d %H:%M} UTC"
                       + (f"; {', '.join(sorted(results))} ran." if results else "."),
                       again=lambda form, status: _clocks_page(advance_form=form, advancing=clock_id, status=status))


@bp.route("/admin/test-data/clocks/<int:clock_id>/delete", methods=["POST"])
@permission_required("users.edit_profile")
def delete_clock(clock_id: int):
    test_clock = test_clocks.get_clock(db.session, clock_id)
    email = test_clock.user.email
    return handle_form(None, lambda: test_clocks.delete_clock(db.session, test_clock, actor=current_user),
                       success=url_for(".clocks"), again=url_for(".clocks"), message=f"{email} is back on real time.")
