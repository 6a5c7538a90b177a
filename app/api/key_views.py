"""API-key screens: /admin/api-keys (list, filter, create with the key shown once, revoke) and
each user's keys (/admin/users/<id>/api-keys, also a partial the users page can include)."""
from __future__ import annotations

from datetime import datetime, time, timezone

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user
from wtforms import SelectChoice

from app.api import keys as key_service
from app.api.auth import SCOPES
from app.api.forms import ApiKeyForm, ReasonForm
from app.api.models import KEY_TYPES, ApiKey
from app.auth.guards import permission_required, sudo_active
from app.core import clock, nav
from app.core.errors import DomainError, NotFound
from app.core.pagination import keyset_page
from app.core.web import apply_domain_error, render
from app.extensions import db
from app.users.models import User

bp = Blueprint("api_keys", __name__)
nav.register("API keys", "api_keys.index", "users.view", order=31)


def _scope_choices() -> list[SelectChoice]:
    return [SelectChoice(name, f"{name}: {text}") for name, text in sorted(SCOPES.items())]


@bp.app_template_global()
def utc_now() -> datetime:
    return clock.now()


@bp.app_template_global()
def user_api_keys(user_id: int) -> list[ApiKey]:
    """For templates/api/_user_api_keys.html included from a user's page."""
    return key_service.keys_of(db.session, user_id)


@bp.get("/admin/api-keys")
@permission_required("users.view")
def index(status: int = 200):
    filters = {"owner": (request.args.get("owner") or "").strip() or None,
               "key_type": request.args.get("key_type") if request.args.get("key_type") in KEY_TYPES else None,
               "status": request.args.get("status") if request.args.get("status") in key_service.KEY_STATUSES
               else None}
    stmt = key_service.keys_stmt(owner_email=filters["owner"], key_type=filters["key_type"], status=filters["status"])
    page = keyset_page(db.session, stmt, ApiKey, 25, request.args.get("cursor") or None)
    return render("api/api_keys.html", block="results", page=page, filters=filters, key_types=KEY_TYPES,
                  statuses=key_service.KEY_STATUSES, now=clock.now(), revoke_form=ReasonForm(), bulk=True,
                  status=status)


@bp.post("/admin/api-keys/bulk-revoke")
@permission_required("users.edit_profile")
def bulk_revoke():
    """Revoke the ticked keys with one reason (same permission as one revocation, which needs no sudo)."""
    ids = [int(i) for i in request.form.getlist("ids") if i.isdigit()]
    try:
        done = key_service.revoke_many(db.session, current_user, ids, request.form.get("reason"))
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return index(status=422)
    db.session.commit()
    flash(f"{done} key(s) revoked.", "info")
    return redirect(url_for("api_keys.index", status="revoked"))


def _expiry(form: ApiKeyForm) -> datetime | None:
    day = form.expires_on.data
    return datetime.combine(day, time.min, tzinfo=timezone.utc) if day else None


@bp.route("/admin/api-keys/new", methods=["GET", "POST"])
@permission_required("users.edit_profile")
def new():
    form = ApiKeyForm(data=None if request.method == "POST" else {
        "name": request.args.get("name", ""), "owner": request.args.get("owner", ""),
        "key_type": request.args.get("key_type", "sandbox"), "scopes": request.args.getlist("scopes") or ["*"]})
    form.scopes.choices = _scope_choices()
    if form.validate_on_submit():
        if form.key_type.data == "production" and not sudo_active():
            back = url_for("api_keys.new", name=form.name.data, owner=form.owner.data, key_type="production",
                           scopes=form.scopes.data)
            flash("Creating a production key needs a fresh authenticator code.", "info")
            return redirect(url_for("auth.sudo", next=back))
        try:
            key, plain = key_service.create_api_key(
                db.session, current_user, owner=key_service.find_owner(db.session, form.owner.data),
                name=form.name.data, key_type=form.key_type.data, scopes=form.scopes.data,
                expires_at=_expiry(form), sudo=sudo_active())
        except DomainError as error:
            db.session.rollback()
            if error.field == "expires_at":
                error.field = "expires_on"
            apply_domain_error(form, error)
        else:
            db.session.commit()
            # Rendered in the POST answer only: the key is never stored in plain text nor shown again.
            return render("api/api_key_created.html", key=key, plain=plain, status=201)
    return render("api/api_key_new.html", form=form, status=422 if form.errors or form.form_errors else 200)


@bp.post("/admin/api-keys/<int:key_id>/revoke")
@permission_required("users.edit_profile")
def revoke(key_id: int):
    key = key_service.get_key(db.session, key_id)
    form = ReasonForm()
    # Bad input (no reason, already revoked) raises: the error page answers 422 with the message.
    key_service.revoke_api_key(db.session, current_user, key, form.reason.data)
    db.session.commit()
    flash(f"Revoked {key.name} ({key.masked}).", "info")
    return redirect(request.referrer or url_for("api_keys.index"))


@bp.get("/admin/users/<int:user_id>/api-keys")
@permission_required("users.view")
def for_user(user_id: int):
    owner = db.session.get(User, user_id)
    if owner is None:
        raise NotFound("user")
    return render("api/user_api_keys.html", block="keys", owner=owner, now=clock.now())
