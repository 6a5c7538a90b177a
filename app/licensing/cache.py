"""Short-lived Redis cache of license validation state: only with REDIS_URL and LICENSE_CACHE_SECONDS.

Off by default. A validation is one indexed lookup; a cached one is a Redis HGET instead, and a
miss costs the HGET plus an HSET and EXPIRE besides the lookup. Measured in-process on a web
worker (bench/vs_bare.py's database, 100,000 licenses): a miss cost ~0.17 ms more CPU than no
cache, a hit saved ~0.06 ms; a desktop app validates a (license, device) pair at start-up and
now and then, rarely twice within a TTL, so for real traffic it is nearly all misses. Turn it on
(LICENSE_CACHE_SECONDS=15, say) where the database is remote or busy and clients retry in bursts.

One Redis hash per license key (name derived from a SHA-256 of the key, so keys never
sit in Redis in clear), one field per fingerprint: a lookup is one HGET, and dropping
the hash invalidates every fingerprint of that license at once. Any change that can
alter a validation answer calls `invalidate()`: the hash is dropped at once and again
after the transaction commits, so a validation that read the old row just before the
commit can re-cache it for at most the TTL (LICENSE_CACHE_SECONDS).
"""
from __future__ import annotations

import hashlib
import json
import logging

from flask import has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.core import current
from app.core.redis import connection

log = logging.getLogger(__name__)
_PENDING = "licensing_cache_invalidate"
DEFAULT_TTL = 0


def _name(license_key: str) -> str:
    return "rephlo:licval:" + hashlib.sha256(license_key.encode()).hexdigest()[:40]


def _ttl() -> int:
    return int(current.app().config.get("LICENSE_CACHE_SECONDS", DEFAULT_TTL))


def _redis():
    if not enabled():
        return None
    return connection()


def enabled() -> bool:
    return has_app_context() and _ttl() > 0


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
