"""Test-account screens under /admin/test-data/users: list and filter, create one (password shown
once), create N, extend, delete one, bulk delete. Thin: parse, call the service, render."""
from __future__ import annotations

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from app.auth.guards import permission_required
from app.core import nav
from app.core.pagination import keyset_page
from app.core.forms import back, form_errors, handle_form
from app.core.web import is_fragment_request, render
from app.extensions import db
from app.sandbox import service
from app.sandbox.forms import BatchForm, BulkDeleteForm, BulkExtendForm, ExtendForm, TestUserForm

bp = Blueprint("testdata", __name__, url_prefix="/admin/test-data")
nav.register("Test accounts", "testdata.users", "users.view", order=30)


def _filters() -> dict:
    creator = request.args.get("creator", "")
    return {"creator": int(creator) if creator.isdigit() else None, "tier": request.args.get("tier") or None,
            "expiry": request.args.get("expiry") if request.args.get("expiry") in service.EXPIRY_FILTERS else None,
            "q": (request.args.get("q") or "").strip() or None}


@bp.get("/users")
@permission_required("users.view")
def users():
    filters = _filters()
    stmt = service.test_users_stmt(creator_id=filters["creator"], tier=filters["tier"], expiry=filters["expiry"],
                                   q=filters["q"])
    page = keyset_page(db.session, stmt, service.User, 25, request.args.get("cursor") or None)
    creators = service.creators(db.session)
    return render("sandbox/users.html", block="results", page=page, filters=filters, creators=creators,
                  creator_emails={c.id: c.email for c in creators}, tiers=service.SUBSCRIPTION_TIERS,
                  expiries=service.EXPIRY_FILTERS, extend_form=ExtendForm(), bulk_form=BulkDeleteForm())


def _created(users, password):
    """Rendered in the POST answer, never stored: the password is shown this once."""
    return render("sandbox/user_created.html", users=users, password=password, status=201)


@bp.route("/users/new", methods=["GET", "POST"])
@permission_required("users.edit_profile")
def new_user():
    form = TestUserForm()
    if request.method == "GET":
        return render("sandbox/user_new.html", form=form)
    return handle_form(form, lambda: service.create_test_user(
        db.session, current_user, email=form.email.data or None, password=form.password.data or None,
        tier=form.tier.data or None, expires_in_days=form.expires_in_days.data),
        success=lambda created: _created([created.user], created.password),
        again=lambda form, status: render("sandbox/user_new.html", form=form, status=status))


@bp.route("/users/batch", methods=["GET", "POST"])
@permission_required("users.edit_profile")
def batch():
    form = BatchForm()
    if request.method == "GET":
        return render("sandbox/user_batch.html", form=form)
    return handle_form(form, lambda: service.create_test_users_batch(
        db.session, current_user, count=form.count.data, tier=form.tier.data or None,
        expires_in_days=form.expires_in_days.data, prefix=form.prefix.data),
        success=lambda made: _created(*made),
        again=lambda form, status: render("sandbox/user_batch.html", form=form, status=status))


def _row(user, error: str | None):
    """The account's row for htmx: 200 even on an error, so that htmx swaps it and the message
    shows next to the field."""
    db.session.refresh(user)
    creator = db.session.get(service.User, user.created_by_id) if user.created_by_id else None
    response = make_response(render_template(
        "sandbox/_user_row.html", user=user, extend_form=ExtendForm(), row_error=error,
        creator_emails={creator.id: creator.email} if creator else {},
        row_notice=None if error else "Expiry updated."))
    response.vary.add("HX-Request")
    return response


@bp.post("/users/<int:user_id>/extend")
@permission_required("users.edit_profile")
def extend(user_id: int):
    form = ExtendForm()
    user = service.get_test_user(db.session, user_id)

    def again(form, status):
        error = (form_errors(form) or ["Give a whole number of days from 1 to 30."])[-1]
        if is_fragment_request():
            return _row(user, error)
        flash(error, "error")
        return redirect(back(url_for("testdata.users")))

    return handle_form(form, lambda: service.set_test_user_expiry(db.session, current_user, user,
                                                                  days=form.expires_in_days.data),
                       success=back(url_for("testdata.users")), again=again,
                       message=lambda _: f"{user.email} now expires {user.test_expires_at:%Y-%m-%d %H:%M} UTC.",
                       fragment=lambda *_: _row(user, None))


@bp.post("/users/<int:user_id>/delete")
@permission_required("users.delete")
def delete(user_id: int):
    user = service.get_test_user(db.session, user_id)
    email = user.email
    page = url_for("testdata.users")
    return handle_form(None, lambda: service.delete_test_users(db.session, current_user, [user_id],
                                                               reason=request.form.get("reason") or None),
                       success=page, again=page, message=f"Deleted test account {email} and everything it owned.")


def _nothing(done: str):
    """A refused bulk action: every message flashed as "Nothing was <done>", back to the list."""

    def again(form, status):
        for message in form_errors(form):
            flash(f"Nothing was {done}: {message}", "error")
        return redirect(url_for("testdata.users"))

    return again


@bp.post("/users/bulk-extend")
@permission_required("users.edit_profile")
def bulk_extend():
    form = BulkExtendForm()
    return handle_form(form, lambda: service.extend_test_users(db.session, current_user, form.ids.data or [],
                                                               days=form.expires_in_days.data),
                       success=url_for("testdata.users"), again=_nothing("extended"),
                       message=lambda count: f"Extended {count} test account{'s' if count != 1 else ''} to "
                                             f"{form.expires_in_days.data} day{'s' if form.expires_in_days.data != 1 else ''} from now.")


@bp.post("/users/bulk-delete")
@permission_required("users.delete")
def bulk_delete():
    form = BulkDeleteForm()
    return handle_form(form, lambda: service.delete_test_users(db.session, current_user, form.ids.data or [],
                                                               reason=form.reason.data or None),
                       success=url_for("testdata.users"), again=_nothing("deleted"),
                       message=lambda count: f"Deleted {count} test account{'s' if count != 1 else ''}.")
