"""OAuth endpoints: /oauth/authorize (customer sign-in and consent), /oauth/token, /oauth/revoke,
and the authorization-server metadata (RFC 8414).

Errors before the redirect URI is known to be the client's (unknown client, URI mismatch) are
shown on our page and never redirected (RFC 6749 4.1.2.1); later ones go back to the client.
A consent is remembered per client: the page is shown again only when the client asks for a
scope the customer has not granted.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from authlib.oauth2.rfc6749.errors import OAuth2Error
from flask import Blueprint, current_app, g, jsonify, redirect, request, url_for
from sqlalchemy import select

from app.accounts.forms import ConfirmForm
from app.accounts.guards import current_customer
from app.accounts.models import Consent
from app.accounts.oauth_server import CUSTOMER_SCOPES, server
from app.api.auth import SCOPES
from app.core.forms import handle_form
from app.core.web import render
from app.extensions import csrf, db, limiter

bp = Blueprint("oauth", __name__)


def _consented(user, client, scope: str) -> Consent | None:
    row = db.session.scalar(select(Consent).where(Consent.user_id == user.id, Consent.client_pk == client.id))
    return row if row is not None and set(scope.split()) <= set(row.scopes or []) else None


def _remember(user, client, scope: str) -> None:
    row = db.session.scalar(select(Consent).where(Consent.user_id == user.id, Consent.client_pk == client.id))
    if row is None:
        row = Consent(user_id=user.id, client_pk=client.id, scopes=[])
        row.is_test = bool(user.is_test or client.is_test)
        db.session.add(row)
    row.scopes = sorted(set(row.scopes or []) | set(scope.split()))


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def _error_page(error: OAuth2Error):
    if error.redirect_uri:  # the client's own URI: tell the client (with its state)
        return server.handle_error_response(None, error)
    return render("accounts/oauth_error.html", error=error.error, description=error.description, status=400)


@bp.route("/oauth/authorize", methods=["GET", "POST"])
def authorize():
    user = current_customer()
    try:
        grant = server.get_consent_grant(end_user=user)
    except OAuth2Error as error:
        return _error_page(error)
    if user is None:
        return redirect(url_for("accounts.sign_in", next=request.full_path))
    client, scope = grant.client, grant.request.scope or ""
    if request.method == "GET" and _consented(user, client, scope):
        response = server.create_authorization_response(grant_user=user, grant=grant)
        db.session.commit()
        return response
    form = ConfirmForm()
    g.form_action_extra = [_origin(uri) for uri in client.row.redirect_uris or []]

    def consent_page(form, status: int = 200):
        scopes = [(name, SCOPES.get(name, name)) for name in scope.split()]
        return render("accounts/consent.html", form=form, client=client.row, scopes=scopes, user=user, status=status)

    if request.method != "POST":
        return consent_page(form)

    def decide():
        """Allow (and remember the consent) or deny: the client's redirect either way."""
        allowed = request.form.get("decision") == "allow"
        if allowed:
            _remember(user, client, scope)
        return server.create_authorization_response(grant_user=user if allowed else None, grant=grant)

    return handle_form(form, decide, success=lambda response: response, again=consent_page)


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.post("/oauth/token")
@csrf.exempt
@limiter.limit(lambda: current_app.config["OAUTH_TOKEN_RATE_LIMIT"])
def token():
    response = server.create_token_response()
    db.session.commit()  # a refused reuse has revoked its family: keep that
    return _no_store(response)


@bp.post("/oauth/revoke")
@csrf.exempt
@limiter.limit(lambda: current_app.config["OAUTH_TOKEN_RATE_LIMIT"])
def revoke():
    response = server.create_endpoint_response("revocation")
    db.session.commit()
    return _no_store(response)


@bp.get("/.well-known/oauth-authorization-server")
def metadata():
    issuer = request.host_url.rstrip("/")
    return jsonify({
        "issuer": issuer,
        "authorization_endpoint": url_for("oauth.authorize", _external=True),
        "token_endpoint": url_for("oauth.token", _external=True),
        "revocation_endpoint": url_for("oauth.revoke", _external=True),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": list(CUSTOMER_SCOPES),
        "service_documentation": url_for("accounts.sign_in", _external=True),
    })
