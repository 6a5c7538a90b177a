"""API-key screens: /admin/api-keys (list, filter, create with the key shown once, revoke) and
each user's keys (/admin/users/<id>/api-keys, also a partial the users page can include)."""
from __future__ import annotations

from datetime import datetime, time, timezone

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user
from markupsafe import Markup, escape
from wtforms import SelectChoice

from app.api import keys as key_service
from app.api.auth import SCOPES
from app.api.forms import ApiKeyForm, ReasonForm
from app.api.models import KEY_TYPES, ApiKey
from app.auth.guards import permission_required, sudo_active
from app.core import clock, nav
from app.core.errors import DomainError, NotFound
from app.core.pagination import keyset_page
from app.core.forms import Posted, back, form_errors, handle_form, refused_page
from app.core.web import render
from app.extensions import db
from app.users.models import User

bp = Blueprint("api_keys", __name__)
nav.register("API keys", "api_keys.index", "users.view", order=31)


def _scope_choices() -> list[SelectChoice]:
    return [SelectChoice(name, Markup(f"<code>{escape(name)}</code> {escape(text)}")) for name, text in sorted(SCOPES.items())]


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


def _list_refused(form, status):
    for message in form_errors(form):
        flash(message, "error")
    return index(status=status)


@bp.post("/admin/api-keys/bulk-revoke")
@permission_required("users.edit_profile")
def bulk_revoke():
    """Revoke the ticked keys with one reason (same permission as one revocation, which needs no sudo)."""
    ids = [int(i) for i in request.form.getlist("ids") if i.isdigit() and len(i) < 19]  # a BIGINT id
    return handle_form(Posted(), lambda: key_service.revoke_many(db.session, current_user, ids,
                                                                 request.form.get("reason")),
                       success=url_for("api_keys.index", status="revoked"), again=_list_refused,
                       message=lambda done: f"{done} key(s) revoked.")


def _expiry(form: ApiKeyForm) -> datetime | None:
    day = form.expires_on.data
    return datetime.combine(day, time.min, tzinfo=timezone.utc) if day else None


SUDO_FIRST = object()  # the answer of an action that needs a fresh authenticator code first


@bp.route("/admin/api-keys/new", methods=["GET", "POST"])
@permission_required("users.edit_profile")
def new():
    form = ApiKeyForm(data=None if request.method == "POST" else {
        "name": request.args.get("name", ""), "owner": request.args.get("owner", ""),
        "key_type": request.args.get("key_type", "sandbox"), "scopes": request.args.getlist("scopes") or ["*"]})
    form.scopes.choices = _scope_choices()
    if request.method == "GET":
        return render("api/api_key_new.html", form=form)

    def act():
        if form.key_type.data == "production" and not sudo_active():
            return SUDO_FIRST
        try:
            return key_service.create_api_key(
                db.session, current_user, owner=key_service.find_owner(db.session, form.owner.data),
                name=form.name.data, key_type=form.key_type.data, scopes=form.scopes.data,
                expires_at=_expiry(form), sudo=sudo_active())
        except DomainError as error:
            if error.field == "expires_at":
                error.field = "expires_on"
            raise

    def created(result):
        if result is SUDO_FIRST:
            flash("Creating a production key needs a fresh authenticator code.", "info")
            return redirect(url_for("auth.sudo", next=url_for(
                "api_keys.new", name=form.name.data, owner=form.owner.data, key_type="production",
                scopes=form.scopes.data)))
        key, plain = result
        # Rendered in the POST answer only: the key is never stored in plain text nor shown again.
        return render("api/api_key_created.html", key=key, plain=plain, status=201)

    return handle_form(form, act, success=created,
                       again=lambda form, status: render("api/api_key_new.html", form=form, status=status))


@bp.post("/admin/api-keys/<int:key_id>/revoke")
@permission_required("users.edit_profile")
def revoke(key_id: int):
    key = key_service.get_key(db.session, key_id)
    form = ReasonForm()
    # Bad input (no reason, already revoked): the error page answers 422 (409) with the message.
    return handle_form(form, lambda: key_service.revoke_api_key(db.session, current_user, key, form.reason.data),
                       success=back(url_for("api_keys.index")), again=refused_page,
                       message=f"Revoked {key.name} ({key.masked}).")


@bp.get("/admin/users/<int:user_id>/api-keys")
@permission_required("users.view")
def for_user(user_id: int):
    owner = db.session.get(User, user_id)
    if owner is None:
        raise NotFound("user")
    return render("api/user_api_keys.html", block="keys", owner=owner, now=clock.now())
