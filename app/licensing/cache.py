"""Short-lived Redis cache of license validation state, only when REDIS_URL is set.

One Redis hash per license key (name derived from a SHA-256 of the key, so keys never
sit in Redis in clear), one field per fingerprint: a lookup is one HGET, and dropping
the hash invalidates every fingerprint of that license at once. Any change that can
alter a validation answer calls `invalidate()`: the hash is dropped at once and again
after the transaction commits, so a validation that read the old row just before the
commit can re-cache it for at most the TTL (LICENSE_CACHE_SECONDS, default 15).
"""
from __future__ import annotations

import hashlib
import json
import logging

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.core.redis import connection

log = logging.getLogger(__name__)
_PENDING = "licensing_cache_invalidate"
DEFAULT_TTL = 15


def _name(license_key: str) -> str:
    return "rephlo:licval:" + hashlib.sha256(license_key.encode()).hexdigest()[:40]


def _ttl() -> int:
    return int(current_app.config.get("LICENSE_CACHE_SECONDS", DEFAULT_TTL))


def _redis():
    if not has_app_context() or _ttl() <= 0:
        return None
    return connection()


def get(license_key: str, fingerprint: str) -> dict | None:
    conn = _redis()
    if conn is None:
        return None
    try:
        raw = conn.hget(_name(license_key), fingerprint)
    except Exception:  # the cache is an optimisation: a Redis hiccup falls back to the database
        log.warning("license cache read failed", exc_info=True)
        return None
    return json.loads(raw) if raw else None


def put(license_key: str, fingerprint: str, state: dict) -> None:
    conn = _redis()
    if conn is None:
        return
    name = _name(license_key)
    try:
        pipe = conn.pipeline(transaction=False)
        pipe.hset(name, fingerprint, json.dumps(state))
        pipe.expire(name, _ttl(), nx=True)
        pipe.execute()
    except Exception:
        log.warning("license cache write failed", exc_info=True)


def _drop(keys) -> None:
    conn = _redis()
    if conn is None or not keys:
        return
    try:
        conn.delete(*[_name(k) for k in keys])
    except Exception:
        log.warning("license cache invalidation failed", exc_info=True)


def invalidate(session, license_key: str) -> None:
    """Drop the cached state now and once more when the session commits."""
    _drop([license_key])
    session.info.setdefault(_PENDING, set()).add(license_key)


@event.listens_for(Session, "after_commit")
def _after_commit(session) -> None:
    keys = session.info.pop(_PENDING, None)
    if keys:
        _drop(keys)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session, previous_transaction) -> None:
    if not previous_transaction.nested:  # a savepoint rollback leaves the outer work pending
        session.info.pop(_PENDING, None)
