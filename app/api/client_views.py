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
from app.core.errors import DomainError
from app.core.web import apply_domain_error, render
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


@bp.route("/new", methods=["GET", "POST"])
@permission_required("users.edit_profile")
def new():
    form = OAuthClientForm()
    if form.validate_on_submit():
        if not form.is_test.data and not sudo_active():
            flash("Registering a production client needs a fresh authenticator code; then submit again.", "info")
            return redirect(url_for("auth.sudo", next=url_for("oauth_clients.new")))
        try:
            client, secret = oauth.create_client(db.session, current_user, client_id=form.client_id.data,
                                                 name=form.name.data, redirect_uris=form.redirect_uris.data or "",
                                                 is_test=form.is_test.data, sudo=sudo_active())
        except DomainError as error:
            db.session.rollback()
            apply_domain_error(form, error)
        else:
            db.session.commit()
            return render("api/oauth_secret.html", client=client, secret=secret, rotated=False, status=201)
    return render("api/oauth_client_new.html", form=form, status=422 if form.errors or form.form_errors else 200)


@bp.post("/<int:pk>/rotate")
@permission_required("users.edit_profile")
def rotate(pk: int):
    client = oauth.get_client(db.session, pk)
    if not client.is_test and not sudo_active():
        return redirect(url_for("auth.sudo", next=url_for("oauth_clients.index")))
    secret = oauth.rotate_secret(db.session, current_user, client, sudo=sudo_active())
    db.session.commit()
    return render("api/oauth_secret.html", client=client, secret=secret, rotated=True)


@bp.post("/<int:pk>/revoke")
@permission_required("users.edit_profile")
def revoke(pk: int):
    client = oauth.get_client(db.session, pk)
    oauth.revoke_client(db.session, current_user, client, ReasonForm().reason.data)  # 422 page on bad input
    db.session.commit()
    flash(f"Revoked {client.client_id}; its tokens stopped working.", "info")
    return redirect(url_for("oauth_clients.index"))
