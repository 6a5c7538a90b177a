"""Outages are not bugs (DESIGN.md §5): a database that is down, restarting or past a lock or
statement timeout, or a Redis that is unreachable, answers 503 `service_unavailable` with
Retry-After, so a client retries (with the same Idempotency-Key, which is safe: the request's
transaction was rolled back) instead of taking a 500 `internal_error` for a fault of ours.

The screens get a plain page that needs neither the database nor the session (base.html
would ask for the signed-in user and the navigation)."""
from __future__ import annotations

import logging

import psycopg
from flask import Flask, Response, render_template
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.core.api_paths import is_api_request
from app.core.web import json_errors
from app.extensions import db

log = logging.getLogger(__name__)
# OperationalError covers a refused or lost connection, lock_timeout (LockNotAvailable) and
# statement_timeout (QueryCanceled); PoolTimeout: no pooled connection came free in time;
# psycopg's own: a connection the hot path checks out (engine.raw_connection(), unwrapped).
OUTAGES = (OperationalError, DisconnectionError, PoolTimeout, psycopg.OperationalError, RedisConnectionError,
           RedisTimeoutError)
RETRY_AFTER_SECONDS = 2


def _which(error: Exception) -> str:
    return "redis" if isinstance(error, (RedisConnectionError, RedisTimeoutError)) else "database"


def outage_response(error: Exception) -> Response:
    try:
        db.session.rollback()  # a lost connection is invalidated here; the pool makes a new one
    except Exception:  # the database is the thing that is down
        pass
    # One line without the statement or its parameters (they may carry secrets, DESIGN.md §3).
    log.warning("service unavailable (%s): %s", _which(error), type(getattr(error, "orig", None) or error).__name__)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if is_api_request():
        return json_errors().status(503, "api_error", "service_unavailable",
                         "The service is briefly unavailable; retry after a moment (with the same "
                         "Idempotency-Key: it is safe).", None, headers)
    return Response(render_template("errors/503.html", retry_after=RETRY_AFTER_SECONDS), status=503,
                    mimetype="text/html", headers=headers)


def init_app(app: Flask) -> None:
    for kind in OUTAGES:
        app.register_error_handler(kind, outage_response)
