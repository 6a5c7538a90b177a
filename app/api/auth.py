"""Bearer authentication for /api/v1: API keys (rph_live_/rph_test_/rph_dev_) and OAuth tokens.

`@api_auth(permission=None, scopes=None)` on a route:
- one indexed lookup by the SHA-256 of the presented secret;
- 401 `missing_api_key`, `invalid_api_key`, `api_key_revoked`, `api_key_expired`,
  `access_token_expired`, `oauth_client_revoked`, `account_inactive`, `test_account_expired`;
- sets g.api_key (None for OAuth), g.api_client (None for keys), g.api_user, g.api_test_mode;
- sandbox/development keys, test clients and test owners run in test mode (rows is_test,
  X-Test-Mode header, log lines tagged);
- per-key rate limit (lower for test traffic), 429 with Retry-After;
- `/api/v1/admin/...` routes also need the owner's RBAC permission (403 names it).
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps

from flask import current_app, g, request
from limits import parse as parse_limit
from sqlalchemy import or_, select, update

from app.api import api_bp
from app.api.errors import api_error
from app.core import clock, testmode
from app.extensions import db, limiter
from app.testdata import traffic
from app.testdata.models import OAUTH_TOKEN_PREFIX, ApiKey, OAuthToken, secret_hash

KEY_PATTERN = re.compile(r"^rph_(live|test|dev)_[A-Za-z0-9_]{16,128}$")
TOKEN_PATTERN = re.compile(r"^" + OAUTH_TOKEN_PREFIX + r"[A-Za-z0-9_]{16,128}$")
LAST_USED_RESOLUTION = timedelta(minutes=1)

# Scopes a key may carry; domains add theirs with register_scope(). "*" is full access.
SCOPES: dict[str, str] = {"*": "Full access (everything the owner may do)"}


def register_scope(name: str, description: str) -> str:
    SCOPES[name] = description
    return name


hash_secret = secret_hash  # the public name for API code


@dataclass
class Principal:
    user: object
    key: ApiKey | None
    token: OAuthToken | None
    is_test: bool
    scopes: list[str]
    wrote: bool = False  # authentication itself wrote something (last_used_at)

    @property
    def rate_key(self) -> str:
        return f"key:{self.key.id}" if self.key is not None else f"oauth:{self.token.client_pk}"


class AuthFailure(Exception):
    def __init__(self, status: int, code: str, message: str, param: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param

    def response(self):
        type_ = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}[self.status]
        headers = {"WWW-Authenticate": 'Bearer realm="api"'} if self.status == 401 else {}
        headers.update(getattr(self, "headers", {}))
        return api_error(self.status, type_, self.code, self.message, self.param, headers)


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    if not header.strip():
        raise AuthFailure(401, "missing_api_key",
                          "No API key provided. Send it as 'Authorization: Bearer rph_live_...'.")
    scheme, _, secret = header.strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise AuthFailure(401, "invalid_api_key", "The Authorization header must be 'Bearer <key>'.")
    return secret


def _check_owner(user, now) -> None:
    if user is None or not user.is_active:
        raise AuthFailure(401, "account_inactive", "The account this key belongs to is not active.")
    if user.is_test and user.test_expires_at is not None and user.test_expires_at <= now:
        raise AuthFailure(401, "test_account_expired", "The test account this key belongs to has expired.")


def _principal_from_key(session, secret: str, now) -> Principal:
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_secret(secret)))
    if key is None:
        raise AuthFailure(401, "invalid_api_key", "Invalid API key provided.")
    if key.revoked_at is not None:
        raise AuthFailure(401, "api_key_revoked", "This API key was revoked.")
    if key.expires_at is not None and key.expires_at <= now:
        raise AuthFailure(401, "api_key_expired", "This API key has expired.")
    _check_owner(key.owner, now)
    touched = key.last_used_at is None or key.last_used_at < now - LAST_USED_RESOLUTION
    if touched:
        session.execute(
            update(ApiKey)
            .where(ApiKey.id == key.id,
                   or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - LAST_USED_RESOLUTION))
            .values(last_used_at=now, updated_at=ApiKey.updated_at)
            .execution_options(synchronize_session=False))
    is_test = key.is_test or key.key_type != "production" or key.owner.is_test
    return Principal(key.owner, key, None, is_test, list(key.scopes or []), wrote=touched)


def _principal_from_token(session, secret: str, now) -> Principal:
    token = session.scalar(select(OAuthToken).where(OAuthToken.token_hash == hash_secret(secret)))
    if token is None:
        raise AuthFailure(401, "invalid_api_key", "Invalid access token provided.")
    if token.expires_at <= now:
        raise AuthFailure(401, "access_token_expired", "This access token has expired; request a new one.")
    client = token.client
    if client.revoked_at is not None:
        raise AuthFailure(401, "oauth_client_revoked", "The OAuth client of this token was revoked.")
    user = client.service_user
    _check_owner(user, now)
    is_test = token.is_test or client.is_test or user.is_test
    return Principal(user, None, token, is_test, list(token.scopes or []))


def authenticate() -> Principal:
    """Resolve the request's bearer secret to a principal, or raise AuthFailure."""
    secret = _bearer()
    now = clock.now()
    if KEY_PATTERN.match(secret):
        principal = _principal_from_key(db.session, secret, now)
    elif TOKEN_PATTERN.match(secret):
        principal = _principal_from_token(db.session, secret, now)
    else:
        raise AuthFailure(401, "invalid_api_key",
                          "Malformed API key: keys start with rph_live_, rph_test_ or rph_dev_.")
    if traffic.record_request(db.session, principal.is_test) or principal.wrote:
        # last_used_at / the request counter, committed at once so their row locks are short; without
        # expiring the principal, whose reload would cost two more queries on every request.
        session = db.session()
        session.expire_on_commit = False
        try:
            session.commit()
        finally:
            session.expire_on_commit = True
    return principal


def rate_limit_for(principal: Principal) -> str:
    cfg = current_app.config
    return cfg["API_RATE_LIMIT_TEST"] if principal.is_test else cfg["API_RATE_LIMIT_LIVE"]


def check_rate_limit(principal: Principal) -> None:
    """Fixed/moving window per key in Flask-Limiter's storage (memory, or Redis when configured)."""
    item = parse_limit(rate_limit_for(principal))
    strategy = limiter.limiter
    allowed = strategy.hit(item, "api", principal.rate_key)
    stats = strategy.get_window_stats(item, "api", principal.rate_key)
    g.api_rate = (item.amount, max(0, stats.remaining), int(stats.reset_time))
    if not allowed:
        retry = max(1, math.ceil(stats.reset_time - time.time()))
        failure = AuthFailure(429, "rate_limited",
                              f"Too many requests: this key may make {item} requests. Retry in {retry} s.")
        failure.headers = {"Retry-After": str(retry)}
        raise failure


def has_scopes(granted: list[str], needed: tuple[str, ...]) -> bool:
    return "*" in granted or all(scope in granted for scope in needed)


def _check_access(principal: Principal, permission: str | None, scopes: tuple[str, ...]) -> None:
    if scopes and not has_scopes(principal.scopes, scopes):
        raise AuthFailure(403, "insufficient_scope",
                          f"This key lacks the scope(s) {', '.join(scopes)}.", None)
    admin_prefix = "/api/v1/admin/"
    if request.path.startswith(admin_prefix) and permission is None:
        raise AuthFailure(403, "permission_required", "Admin routes need a permission; none is declared.")
    if permission is not None:
        from app.rbac.service import has_permission

        if not has_permission(db.session, principal.user, permission):
            g.missing_permission = permission
            raise AuthFailure(403, "missing_permission",
                              f"The owner of this key needs the {permission} permission for this route.")


def api_auth(permission: str | None = None, scopes=None):
    """Decorator for /api/v1 routes: authenticate, set test mode, rate-limit, check permission."""
    needed = tuple([scopes] if isinstance(scopes, str) else (scopes or ()))

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            try:
                principal = authenticate()
                g.api_user, g.api_key = principal.user, principal.key
                g.api_client = principal.token.client if principal.token is not None else None
                g.api_test_mode = principal.is_test
                g.log_user_id = principal.user.id
                if principal.is_test:
                    testmode.activate()
                check_rate_limit(principal)
                _check_access(principal, permission, needed)
            except AuthFailure as failure:
                return failure.response()
            return view(*args, **kwargs)

        from app.api.schemas import annotate

        annotate(wrapped, security=True, permission=permission, scopes=list(needed))
        return wrapped

    return decorator


@api_bp.after_request
def _rate_headers(response):
    """Rate-limit headers on every authenticated API response."""
    rate = g.get("api_rate")
    if rate is not None:
        limit, remaining, reset = rate
        response.headers["X-RateLimit-Limit"] = str(limit)
        response.headers["X-RateLimit-Remaining"] = str(remaining)
        response.headers["X-RateLimit-Reset"] = str(reset)
    return response
