"""OAuth client registry and the client-credentials grant.

A client has an id, a hashed secret (shown once at creation and at each rotation),
redirect URIs, a test flag and a service account it acts as. Test clients, and the tokens
they get, are test traffic. Rotating or revoking a client ends its live tokens.
"""
from __future__ import annotations

import hmac
import re
import secrets
import string
from datetime import timedelta
from urllib.parse import urlparse

from flask import current_app
from sqlalchemy import Select, delete, select

from app.api.models import OAUTH_TOKEN_PREFIX, OAuthClient, OAuthToken, secret_hash
from app.core import audit, clock, testmode
from app.core.audit import require_reason
from app.core.errors import DomainError, NotFound
from app.users.models import SERVICE_PROVIDER, User

CLIENT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{2,79}$")
SERVICE_DOMAIN = "oauth-clients.invalid"  # reserved (RFC 2606): service accounts get no mail
_ALPHANUM = string.ascii_letters + string.digits
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}


def generate_secret() -> str:
    return "rph_cs_" + "".join(secrets.choice(_ALPHANUM) for _ in range(40))


def parse_redirect_uris(raw) -> list[str]:
    """One URI per line (or a list); https, or http on localhost only; no fragments."""
    items = raw.splitlines() if isinstance(raw, str) else list(raw or [])
    uris = [u.strip() for u in items if u and u.strip()]
    for uri in uris:
        parts = urlparse(uri)
        local = parts.hostname in _LOCAL_HOSTS
        if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment or \
                (parts.scheme == "http" and not local):
            raise DomainError("invalid_redirect_uri",
                              f"{uri!r} is not allowed: use https (http only for localhost), without a #fragment.",
                              "redirect_uris")
    return uris


def _service_user(session, client_id: str, name: str, is_test: bool) -> User:
    email = f"{client_id}@{SERVICE_DOMAIN}"
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, first_name=name[:80], last_name="(OAuth client)", auth_provider=SERVICE_PROVIDER,
                    account_type="test" if is_test else "standard", email_verified=True)
        session.add(user)
        session.flush()
    return user


def create_client(session, actor, *, client_id: str, name: str, redirect_uris, is_test: bool,
                  sudo: bool = False, secret: str | None = None) -> tuple[OAuthClient, str]:
    client_id = (client_id or "").strip().lower()
    if not CLIENT_ID.match(client_id):
        raise DomainError("invalid_client_id", "Client ids are 3 to 80 lower-case letters, digits and dashes.",
                          "client_id")
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise DomainError("invalid_name", "Give the client a name (120 characters at most).", "name")
    uris = parse_redirect_uris(redirect_uris)
    if not is_test and actor is not None and not sudo:
        raise DomainError("sudo_required", "Registering a production client needs sudo mode.", "is_test", status=403)
    if session.scalar(select(OAuthClient.id).where(OAuthClient.client_id == client_id)) is not None:
        raise DomainError("client_id_taken", "A client with this id exists already.", "client_id", status=409)
    secret = secret or generate_secret()
    with testmode.test_mode(is_test):
        user = _service_user(session, client_id, name, is_test)
        client = OAuthClient(client_id=client_id, name=name, redirect_uris=uris, secret_hash=secret_hash(secret),
                             secret_last4=secret[-4:], user_id=user.id, created_by_id=getattr(actor, "id", None))
        client.is_test = is_test
        session.add(client)
        session.flush()
        audit.record(session, "oauth_clients.created", actor=actor, target=client, after=client.describe())
    return client, secret


def get_client(session, pk: int) -> OAuthClient:
    client = session.get(OAuthClient, pk)
    if client is None:
        raise NotFound("OAuth client")
    return client


def _end_tokens(session, client: OAuthClient) -> int:
    return session.execute(delete(OAuthToken).where(OAuthToken.client_pk == client.id)).rowcount or 0


def rotate_secret(session, actor, client: OAuthClient, *, sudo: bool = False) -> str:
    if client.revoked_at is not None:
        raise DomainError("client_revoked", "This client is revoked.", None, status=409)
    if not client.is_test and actor is not None and not sudo:
        raise DomainError("sudo_required", "Rotating a production client's secret needs sudo mode.", None,
                          status=403)
    secret = generate_secret()
    before = client.secret_last4
    client.secret_hash, client.secret_last4, client.secret_rotated_at = secret_hash(secret), secret[-4:], clock.now()
    ended = _end_tokens(session, client)
    audit.record(session, "oauth_clients.secret_rotated", actor=actor, target=client,
                 before={"secret_last4": before}, after={"secret_last4": client.secret_last4, "tokens_ended": ended})
    return secret


def revoke_client(session, actor, client: OAuthClient, reason: str | None) -> OAuthClient:
    reason = require_reason(reason)
    if client.revoked_at is not None:
        raise DomainError("client_revoked", "This client is revoked already.", None, status=409)
    client.revoked_at, client.revoked_reason = clock.now(), reason
    ended = _end_tokens(session, client)
    audit.record(session, "oauth_clients.revoked", actor=actor, target=client, before={"status": "active"},
                 after={"status": "revoked", "tokens_ended": ended}, reason=reason)
    return client


def clients_stmt(*, status: str | None = None) -> Select:
    stmt = select(OAuthClient)
    if status == "active":
        stmt = stmt.where(OAuthClient.revoked_at.is_(None))
    elif status == "revoked":
        stmt = stmt.where(OAuthClient.revoked_at.is_not(None))
    return stmt


def issue_token(session, client_id: str | None, client_secret: str | None) -> tuple[str, OAuthToken]:
    """Client-credentials grant: a short-lived bearer token for the client's service account."""
    client = session.scalar(select(OAuthClient).where(OAuthClient.client_id == (client_id or "").strip()))
    presented = secret_hash(client_secret or "")
    if client is None or not hmac.compare_digest(client.secret_hash, presented):
        raise DomainError("invalid_client", "Unknown client or wrong client secret.", "client_secret", status=401)
    if client.revoked_at is not None:
        raise DomainError("invalid_client", "This client was revoked.", "client_id", status=401)
    plain = OAUTH_TOKEN_PREFIX + "".join(secrets.choice(_ALPHANUM) for _ in range(40))
    ttl = current_app.config["OAUTH_TOKEN_TTL_SECONDS"]
    now = clock.now()
    token = OAuthToken(token_hash=secret_hash(plain), client_pk=client.id, scopes=["*"], created_at=now,
                       expires_at=now + timedelta(seconds=ttl))
    token.is_test = client.is_test or client.service_user.is_test
    session.add(token)
    session.flush()
    return plain, token
