"""Bearer authentication for /api/v1: API keys (rph_live_/rph_test_/rph_dev_) and OAuth tokens.

The steps app/api/pipeline.py runs for a route declared with scopes= and permission=:
- one indexed lookup by the SHA-256 of the presented secret;
- 401 `missing_api_key`, `invalid_api_key`, `api_key_revoked`, `api_key_expired`,
  `access_token_expired`, `oauth_client_revoked`, `account_inactive`, `test_account_expired`;
- sets g.api_key (the key's row; None for OAuth), g.api_client (None for keys), g.api_user_id,
  g.api_user (the owner, unless the route needs only the id), g.api_test_mode;
- sandbox/development keys, test clients and test owners run in test mode (rows is_test,
  X-Test-Mode header, log lines tagged);
- counts the request (test vs production) and applies the per-key rate limit (lower for test
  traffic), 429 with Retry-After: with Redis, mostly without a round trip (app/api/quota.py);
- a route's permission is the owner's RBAC permission (403 names it); every /admin/ route has one.
"""
from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from flask import g, request
from limits import RateLimitItem
from limits import parse as parse_limit
from sqlalchemy import bindparam, or_, select, update

from app.api import api_bp, quota, traffic
from app.api.errors import api_error
from app.api.models import OAUTH_TOKEN_PREFIX, ApiKey, OAuthToken, secret_hash
from app.core import clock, current, pg, testmode
from app.core.flask_app import add_fixed_headers
from app.core.port import Port
from app.core.redis import connection as redis_connection
from app.extensions import db, limiter
from app.rbac.service import has_permission
from app.users.models import User

KEY_PATTERN = re.compile(r"^rph_(live|test|dev)_[A-Za-z0-9_]{16,128}$")
TOKEN_PATTERN = re.compile(r"^" + OAUTH_TOKEN_PREFIX + r"[A-Za-z0-9_]{16,128}$")
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenRefused(Exception):
    """An OAuth access token refused, naming why (unknown, revoked, expired)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Providers:
    """What authentication asks of packages that build on app/api (importing them here would be
    a cycle); app/ports.py plugs them in. token_row: the row of a valid OAuth access token, from
    accounts' Authlib ResourceProtector (RFC 6750), else TokenRefused. twin_id / twin_for: a
    production customer's test twin (sandbox), found, or made on first use."""

    token_row: Callable[[str], OAuthToken]
    twin_id: Callable[..., int | None]  # (session, customer_id)
    twin_for: Callable[..., int]  # (session, customer_id), in test mode


providers: Port[Providers] = Port("authentication providers")
use_providers = providers.plug

# Scopes a key may carry; domains add theirs with register_scope(). "*" is full access.
SCOPES: dict[str, str] = {"*": "Full access (everything the owner may do)"}


def register_scope(name: str, description: str) -> str:
    SCOPES[name] = description
    return name


hash_secret = secret_hash  # the public name for API code


@dataclass
class Principal:
    user_id: int
    key: object | None  # the key's row (id, key_type, scopes...); None for OAuth
    token: OAuthToken | None
    is_test: bool
    scopes: list[str]
    touch_due: bool = False  # the key's last_used_at is older than LAST_USED_RESOLUTION
    # A production customer's test credential: the request acts as the customer's test twin
    # (sandbox/twins.py), whose id replaces user_id once resolved (resolve_twin()).
    twin_needed: bool = False

    @property
    def rate_key(self) -> str:
        """A key's own window; a customer's token (authorization code) has one per client and
        customer, so that one customer of a shared client cannot exhaust it for all; a
        client-credentials token (no user: the service account) one per client."""
        if self.key is not None:
            return f"key:{self.key.id}"
        token = self.token
        return f"oauth:{token.client_pk}" if token.user_id is None else f"oauth:{token.client_pk}:{token.user_id}"

    @property
    def user(self) -> User:
        """The owner as an ORM object, loaded on first use (a route with load_owner=False never needs it)."""
        return db.session.get(User, self.user_id)


class AuthFailure(Exception):
    def __init__(self, status: int, code: str, message: str, param: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param

    def response(self):
        type_ = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}[self.status]
        headers = {"WWW-Authenticate": _challenge(self.code)} if self.status == 401 else {}
        headers.update(getattr(self, "headers", {}))
        return api_error(self.status, type_, self.code, self.message, self.param, headers)


_TOKEN_FAILURES = {"invalid_api_key", "api_key_revoked", "api_key_expired", "access_token_expired",
                   "access_token_revoked", "oauth_client_revoked"}


def _challenge(code: str) -> str:
    """RFC 6750 3.1: a presented but unusable token is error="invalid_token"."""
    return 'Bearer realm="api", error="invalid_token"' if code in _TOKEN_FAILURES else 'Bearer realm="api"'


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


def _check_owner(active: bool, is_test: bool, test_expires_at, now) -> None:
    if not active:
        raise AuthFailure(401, "account_inactive", "The account this key belongs to is not active.")
    if is_test and test_expires_at is not None and test_expires_at <= now:
        raise AuthFailure(401, "test_account_expired", "The test account this key belongs to has expired.")


_K, _U = ApiKey.__table__, User.__table__
# One indexed lookup: the key and what of its owner authentication needs, as plain values.
KEY_LOOKUP = (
    select(_K.c.id, _K.c.user_id, _K.c.key_type, _K.c.is_test, _K.c.revoked_at, _K.c.expires_at, _K.c.last_used_at,
           _K.c.scopes, User.is_active.label("owner_active"), _U.c.is_test.label("owner_is_test"),
           _U.c.test_expires_at.label("owner_test_expires_at"), _U.c.is_staff.label("owner_is_staff"),
           # The key's world (DESIGN.md §3): a sandbox/development key, a test key or a test owner.
           or_(_K.c.is_test, _K.c.key_type != "production", _U.c.is_test).label("world_is_test"))
    .join(_U, _U.c.id == _K.c.user_id).where(_K.c.key_hash == bindparam("key_hash")))


def touch_statement(key_id):
    """last_used_at := now for the key when older than `stale`: coarse on purpose (one write a
    minute per key, not one per request), and concurrent requests write it once."""
    return (update(_K).where(_K.c.id == key_id, or_(_K.c.last_used_at.is_(None), _K.c.last_used_at < bindparam("stale")))
            .values(last_used_at=bindparam("now"), updated_at=_K.c.updated_at))


_TOUCH = touch_statement(bindparam("key_id"))


def principal_for_key(key, now) -> Principal:
    """Check a row of KEY_LOOKUP (None: no such key) and make it the request's principal."""
    if key is None:
        raise AuthFailure(401, "invalid_api_key", "Invalid API key provided.")
    if key.revoked_at is not None:
        raise AuthFailure(401, "api_key_revoked", "This API key was revoked.")
    if key.expires_at is not None and key.expires_at <= now:
        raise AuthFailure(401, "api_key_expired", "This API key has expired.")
    _check_owner(key.owner_active, key.owner_is_test, key.owner_test_expires_at, now)
    is_test = bool(key.world_is_test)
    touch_due = key.last_used_at is None or key.last_used_at < now - LAST_USED_RESOLUTION
    return Principal(key.user_id, key, None, is_test, list(key.scopes or []), touch_due=touch_due,
                     twin_needed=needs_twin(is_test, key.owner_is_test, key.owner_is_staff))


def needs_twin(is_test: bool, owner_is_test: bool, owner_is_staff: bool) -> bool:
    """A test credential of a production customer acts as the customer's test twin. Staff keys
    act as their owner (admin routes need the owner's permissions) and reach test accounts only."""
    return is_test and not owner_is_test and not owner_is_staff


def resolve_twin(session, principal: Principal) -> None:
    """Point the principal at the customer's twin, made (and committed) on first use."""
    if not principal.twin_needed:
        return
    known = providers().twin_id(session, principal.user_id)
    if known is None:
        with testmode.test_mode():
            known = providers().twin_for(session, principal.user_id)
        commit_now(session)
    principal.user_id, principal.twin_needed = known, False


def touch(session, principal: Principal, now) -> None:
    pg.run(session, _TOUCH, {"key_id": principal.key.id, "stale": now - LAST_USED_RESOLUTION, "now": now})


def _principal_from_key(session, secret: str, now) -> Principal:
    principal = principal_for_key(pg.run(session, KEY_LOOKUP, {"key_hash": hash_secret(secret)}).fetchone(), now)
    if principal.touch_due:
        touch(session, principal, now)
    resolve_twin(session, principal)
    return principal


def _principal_from_token(session, secret: str, now) -> Principal:
    try:
        token = providers().token_row(secret)
    except TokenRefused as refused:
        raise AuthFailure(401, refused.code, refused.message) from None
    client = token.client
    if client.revoked_at is not None:
        raise AuthFailure(401, "oauth_client_revoked", "The OAuth client of this token was revoked.")
    # A customer's token (authorization-code grant) acts as the customer; a client-credentials
    # token as the client's service account.
    user = token.user if token.user_id is not None else client.service_user
    _check_owner(user.is_active, user.is_test, user.test_expires_at, now)
    is_test = token.is_test or client.is_test or user.is_test
    principal = Principal(user.id, None, token, is_test, list(token.scopes or []),
                          twin_needed=needs_twin(is_test, user.is_test, user.is_staff))
    resolve_twin(session, principal)
    return principal


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
    if principal.touch_due:
        commit_now(db.session)
    return principal


def commit_now(session) -> None:
    """Commit bookkeeping writes (last_used_at, the request counter) at once so their row locks
    are short; without expiring the principal, whose reload would cost queries on every request."""
    session = session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True


def rate_limit_for(principal: Principal) -> str:
    cfg = current.app().config
    return cfg["API_RATE_LIMIT_TEST"] if principal.is_test else cfg["API_RATE_LIMIT_LIVE"]


@lru_cache(maxsize=32)
def parse_rate(text: str) -> RateLimitItem:
    return parse_limit(text)


def _shared_redis():
    """The app's Redis when the rate limits live in it too (the usual production setup)."""
    cfg = current.app().config
    return redis_connection() if cfg.get("REDIS_URL") and cfg.get("RATELIMIT_STORAGE_URI") == cfg["REDIS_URL"] else None


def hit_per_address(item: RateLimitItem, endpoint: str, address: str) -> tuple[bool, float]:
    """A route's limit per client address, for callers without a bearer secret: (allowed, reset
    time). In the app's Redis it is reserved in blocks like a key's limit (app/api/quota.py): a
    round trip per request was ~5% of a keyless license validation's CPU (py-spy). Otherwise
    Flask-Limiter's strategy, on the same window key ("ip", endpoint, address)."""
    redis = _shared_redis()
    if redis is not None:
        allowed, _, reset = quota.hit(redis, item, endpoint, address, scope="ip")
        return allowed, reset
    strategy = limiter.limiter
    if strategy.hit(item, "ip", endpoint, address):
        return True, 0.0
    return False, strategy.get_window_stats(item, "ip", endpoint, address).reset_time


def meter(principal: Principal, *, count: bool = True) -> None:
    """Count the request (test vs production, for the test-data statistics) and apply the key's
    rate limit (lower for test traffic): 429 with Retry-After past it. The window is per key in
    Flask-Limiter's storage: memory, or the app's Redis, where the count is sent within a second
    (traffic.count_later) and the window is reserved in blocks (app/api/quota.py), so most
    requests make no round trip.

    Without Redis the count is a database row, committed at once so that its lock is short.
    count=False leaves that to a caller whose transaction must not commit yet: it counts after
    it (see traffic.counts_in_database())."""
    item = parse_rate(rate_limit_for(principal))
    redis = _shared_redis()
    if redis is not None:
        traffic.count_later(redis, principal.is_test)
        allowed, remaining, reset = quota.hit(redis, item, principal.rate_key)
    else:
        if count and traffic.record_request(db.session, principal.is_test):
            commit_now(db.session)
        strategy = limiter.limiter
        allowed = strategy.hit(item, "api", principal.rate_key)
        stats = strategy.get_window_stats(item, "api", principal.rate_key)
        remaining, reset = max(0, stats.remaining), stats.reset_time
    current.g().api_rate = (item.amount, remaining, int(reset))
    if not allowed:
        retry = max(1, math.ceil(reset - time.time()))
        failure = AuthFailure(429, "rate_limited",
                              f"Too many requests: this key may make {item} requests. Retry in {retry} s.")
        failure.headers = {"Retry-After": str(retry)}
        raise failure


def has_scopes(granted: list[str], needed: tuple[str, ...]) -> bool:
    return "*" in granted or all(scope in granted for scope in needed)


def check_access(principal: Principal, permission: str | None, scopes: tuple[str, ...]) -> None:
    if scopes and not has_scopes(principal.scopes, scopes):
        raise AuthFailure(403, "insufficient_scope",
                          f"This key lacks the scope(s) {', '.join(scopes)}.", None)
    if permission is not None:
        if not has_permission(db.session, principal.user, permission):
            g.missing_permission = permission
            raise AuthFailure(403, "missing_permission",
                              f"The owner of this key needs the {permission} permission for this route.")


def enter(principal: Principal, load_owner: bool = True) -> None:
    """The request acts for the principal from here on: g, test mode, the log lines' user."""
    ctx_g = current.g()
    ctx_g.api_key, ctx_g.api_user_id = principal.key, principal.user_id
    if load_owner:
        ctx_g.api_user = principal.user
    ctx_g.api_client = principal.token.client if principal.token is not None else None
    ctx_g.api_test_mode = principal.is_test
    ctx_g.log_user_id = principal.user_id
    if principal.is_test:
        testmode.activate()


@api_bp.after_request
def _rate_headers(response):
    """Rate-limit headers on every authenticated API response."""
    rate = current.g().get("api_rate")
    if rate is not None:
        limit, remaining, reset = rate
        add_fixed_headers(response, (("X-RateLimit-Limit", str(limit)), ("X-RateLimit-Remaining", str(remaining)),
                                     ("X-RateLimit-Reset", str(reset))))  # numbers: sent as they are
    return response
