"""OAuth client registry screen: list, register (secret shown once), rotate the secret
(shown once), revoke with a reason. Production clients need sudo mode to register or rotate."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user

from app.api import clients as oauth
from app.api.forms import OAuthClientForm, ReasonForm
from app.api.models import OAuthClient
from app.auth.guards import permission_required, sudo_active
from app.core import nav
from app.core.forms import handle_form, refused_page
from app.core.web import render
from app.extensions import db

bp = Blueprint("oauth_clients", __name__, url_prefix="/admin/oauth-clients")
nav.register("OAuth clients", "oauth_clients.index", "users.view", order=32)


@bp.get("")
@permission_required("users.view")
def index():
    status_filter = request.args.get("status") if request.args.get("status") in ("active", "revoked") else None
    clients = db.session.scalars(oauth.clients_stmt(status=status_filter).order_by(OAuthClient.created_at.desc(),
                                                                            OAuthClient.id.desc())).all()
    return render("api/oauth_clients.html", block="results", clients=clients, status_filter=status_filter)


SUDO_FIRST = object()  # the answer of an action that needs a fresh authenticator code first


@bp.route("/new", methods=["GET", "POST"])
@permission_required("users.edit_profile")
def new():
    form = OAuthClientForm()
    if request.method == "GET":
        return render("api/oauth_client_new.html", form=form)

    def act():
        if not form.is_test.data and not sudo_active():
            return SUDO_FIRST
        return oauth.create_client(db.session, current_user, client_id=form.client_id.data, name=form.name.data,
                                   redirect_uris=form.redirect_uris.data or "", is_test=form.is_test.data,
                                   sudo=sudo_active())

    def registered(result):
        if result is SUDO_FIRST:
            flash("Registering a production client needs a fresh authenticator code; then submit again.", "info")
            return redirect(url_for("auth.sudo", next=url_for("oauth_clients.new")))
        client, secret = result
        return render("api/oauth_secret.html", client=client, secret=secret, rotated=False, status=201)

    return handle_form(form, act, success=registered,
                       again=lambda form, status: render("api/oauth_client_new.html", form=form, status=status))


@bp.post("/<int:pk>/rotate")
@permission_required("users.edit_profile")
def rotate(pk: int):
    client = oauth.get_client(db.session, pk)
    if not client.is_test and not sudo_active():
        return redirect(url_for("auth.sudo", next=url_for("oauth_clients.index")))
    return handle_form(None, lambda: oauth.rotate_secret(db.session, current_user, client, sudo=sudo_active()),
                       success=lambda secret: render("api/oauth_secret.html", client=client, secret=secret,
                                                     rotated=True),
                       again=url_for("oauth_clients.index"))


@bp.post("/<int:pk>/revoke")
@permission_required("users.edit_profile")
def revoke(pk: int):
    client = oauth.get_client(db.session, pk)
    form = ReasonForm()
    return handle_form(form, lambda: oauth.revoke_client(db.session, current_user, client, form.reason.data),
                       success=url_for("oauth_clients.index"), again=refused_page,
                       message=f"Revoked {client.client_id}; its tokens stopped working.")
