"""The OAuth 2.0 authorization server (Authlib): authorization code + PKCE, refresh, revocation.

Authlib carries the protocol (RFC 6749 errors and checks, RFC 7636, RFC 7009); this module
maps its questions onto our rows: clients (api/models.py OAuthClient, wrapped), codes
and consents (accounts/models.py), tokens (accounts/tokens.py). Our policies on top:
- PKCE is S256 only, and required for public clients (no secret: desktop and browser apps);
- `state` is required (the client's CSRF defence, RFC 6749 10.12);
- redirect URIs match a registered one exactly (Authlib's check_redirect_uri);
- a code is used once; a replayed code or a used refresh token revokes the family;
- revoked clients are unknown clients.
"""
from __future__ import annotations

import hmac
import logging
import secrets
import string
from datetime import timedelta

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin, grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import current_app
from sqlalchemy import select

from app.accounts import tokens
from app.accounts.models import AuthorizationCode
from app.core import clock
from app.extensions import db
from app.api.models import OAUTH_TOKEN_PREFIX, OAuthClient, secret_hash
from app.users.models import User

# What a customer may grant a client app: their own credits, plan and licenses.
CUSTOMER_SCOPES = ("credits:read", "credits:write", "billing:read", "billing:write", "licenses:read",
                   "licenses:write", "coupons:validate", "coupons:redeem")
CONFIDENTIAL_METHODS = ("client_secret_basic", "client_secret_post")
_ALPHANUM = string.ascii_letters + string.digits


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHANUM) for _ in range(n))


class Client(ClientMixin):
    """An OAuthClient row as Authlib asks of it."""

    def __init__(self, row: OAuthClient):
        self.row = row
        self.id, self.is_test = row.id, row.is_test

    def get_client_id(self):
        return self.row.client_id

    def get_default_redirect_uri(self):
        uris = self.row.redirect_uris or []
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope):
        if not scope:
            return " ".join(CUSTOMER_SCOPES)
        asked = scope.split()
        return " ".join(asked) if all(s in CUSTOMER_SCOPES for s in asked) else None

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in (self.row.redirect_uris or [])

    def check_client_secret(self, client_secret):
        return not self.row.is_public and hmac.compare_digest(self.row.secret_hash, secret_hash(client_secret or ""))

    def check_endpoint_auth_method(self, method, endpoint):
        return method == "none" if self.row.is_public else method in CONFIDENTIAL_METHODS

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type in ("authorization_code", "refresh_token")


class Token(TokenMixin):
    def __init__(self, row):
        self.row = row

    def check_client(self, client):
        return self.row.client_pk == client.id

    def get_scope(self):
        return " ".join(self.row.scopes or [])

    def get_expires_in(self):
        return int((self.row.expires_at - self.row.created_at).total_seconds())

    def is_expired(self):
        return self.row.expires_at <= clock.now()

    def is_revoked(self):
        return self.row.revoked_at is not None


def query_client(client_id):
    row = db.session.scalar(select(OAuthClient).where(OAuthClient.client_id == (client_id or "")))
    return Client(row) if row is not None and row.revoked_at is None else None


def save_token(token: dict, request) -> None:
    code, old = getattr(request, "authorization_code", None), getattr(request, "refresh_token", None)
    family = old.row.family if old is not None else tokens.new_family()
    tokens.save(db.session, client=request.client.row, user=request.user, scope=token.get("scope", ""),
                access_token=token["access_token"], refresh_token=token.get("refresh_token"),
                expires_in=token["expires_in"], family=family)
    if code is not None:
        code.family = family


class S256Challenge(CodeChallenge):
    """PKCE with S256 only; public clients must send a challenge (RFC 7636, RFC 9700 2.1.1)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if grant.request.client.row.is_public and not data.get("code_challenge"):
            raise InvalidRequestError("A public client must send a PKCE code_challenge (S256).",
                                      redirect_uri=redirect_uri)
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256.", redirect_uri=redirect_uri)
        super().validate_code_challenge(grant, redirect_uri)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def validate_authorization_request(self):
        redirect_uri = super().validate_authorization_request()
        if not self.request.payload.state:
            raise InvalidRequestError("The state parameter is required.", redirect_uri=redirect_uri)
        return redirect_uri

    def save_authorization_code(self, code, request):
        data, client, user = request.payload.data, request.client, request.user
        now = clock.now()
        row = AuthorizationCode(
            code_hash=secret_hash(code), client_pk=client.id, user_id=user.id,
            redirect_uri=request.payload.redirect_uri or client.get_default_redirect_uri(), scope=request.scope or "",
            code_challenge=data.get("code_challenge"), code_challenge_method=data.get("code_challenge_method"),
            created_at=now, expires_at=now + timedelta(seconds=current_app.config["AUTHORIZATION_CODE_TTL_SECONDS"]))
        row.is_test = bool(client.is_test or user.is_test)
        db.session.add(row)
        db.session.flush()
        return row

    def query_authorization_code(self, code, client):
        row = db.session.scalar(select(AuthorizationCode).where(AuthorizationCode.code_hash == secret_hash(code),
                                                                AuthorizationCode.client_pk == client.id))
        if row is None:
            return None
        if row.used_at is not None:  # replayed: end what the first exchange issued
            tokens.revoke_family(db.session, row.family)
            return None
        return row if row.expires_at > clock.now() else None

    def delete_authorization_code(self, authorization_code):
        authorization_code.used_at = clock.now()

    def authenticate_user(self, authorization_code):
        user = db.session.get(User, authorization_code.user_id)
        return user if user is not None and user.is_active else None


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        row = tokens.by_refresh(db.session, refresh_token)
        if row is not None and row.refresh_used_at is not None:  # reuse: the token leaked
            tokens.revoke_family(db.session, row.family)
            return None
        return Token(row) if tokens.usable_refresh(row) else None

    def authenticate_user(self, refresh_token):
        user = db.session.get(User, refresh_token.row.user_id)
        return user if user is not None and user.is_active else None

    def revoke_old_credential(self, refresh_token):
        refresh_token.row.refresh_used_at = clock.now()
        refresh_token.row.revoked_at = refresh_token.row.revoked_at or clock.now()


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def query_token(self, token_string, token_type_hint):
        finders = [tokens.by_access, tokens.by_refresh]
        if token_type_hint == "refresh_token":
            finders.reverse()
        for find in finders:
            row = find(db.session, token_string)
            if row is not None:
                return Token(row)
        return None

    def revoke_token(self, token, request):
        tokens.revoke(db.session, token.row)


def _expires_in(client, grant_type):
    return current_app.config["CUSTOMER_ACCESS_TOKEN_TTL_SECONDS"]


server = AuthorizationServer()


def init_app(app) -> None:
    # Authlib logs issued tokens and codes at DEBUG ("Issue token %r"): secrets never reach a log.
    logging.getLogger("authlib").setLevel(max(logging.INFO, logging.getLogger("authlib").level))
    server.init_app(app, query_client=query_client, save_token=save_token)
    server.register_token_generator("default", BearerTokenGenerator(
        access_token_generator=lambda **kw: OAUTH_TOKEN_PREFIX + _random(40),
        refresh_token_generator=lambda **kw: tokens.REFRESH_PREFIX + _random(48),
        expires_generator=_expires_in))
    server.register_grant(AuthorizationCodeGrant, [S256Challenge(required=True)])
    server.register_grant(RefreshTokenGrant)
    server.register_endpoint(Revocation)
