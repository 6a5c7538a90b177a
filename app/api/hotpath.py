"""One transaction, few round trips, for a keyed idempotent POST on PostgreSQL (the metering API).

Stacked, @api_auth, @idempotent and @validate_body cost a round trip each for the key lookup
and the Idempotency-Key claim, plus a commit for bookkeeping. For the common case (an API key,
an Idempotency-Key, PostgreSQL) @hot_path runs the same checks, with the same answers in the
same order of precedence, as

    BEGIN; the key lookup and the claim of the Idempotency-Key, one statement;
    the request counter and the key's rate limit, one Redis round trip; the body validated;
    the view's work, whose statement also stores the answer on the claimed record; COMMIT

The claim is inserted before the key is checked; a refused request rolls it back. The key's
last_used_at (at most once a minute) and, without Redis, the request counter row are written
after the transaction, in their own short one. Anything else (an OAuth token, a malformed key,
no or a malformed Idempotency-Key, SQLite) runs the decorated view unchanged.

The view is called as view(body=..., claim=idempotency.Claim): it hands the claim to the
service, which sets claim.stored when its statement stored the answer; otherwise it is
stored here, as @idempotent does.
"""
from __future__ import annotations

from functools import wraps

from flask import current_app, request
from sqlalchemy import String, bindparam, false, select, true
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app.api import auth, idempotency
from app.api.schemas import parse_body
from app.core import clock, pg, testmode
from app.extensions import db
from app.testdata import traffic

_T = idempotency.IdempotencyRecord.__table__
_KEY = auth.KEY_LOOKUP.cte("k")
_CLAIM = (pg_insert(_T).from_select(
    ["user_id", "key", "method", "path", "request_hash", "is_test", "created_at"],
    select(_KEY.c.user_id, bindparam("key", type_=String), bindparam("method", type_=String),
           bindparam("path", type_=String), bindparam("request_hash", type_=String), false(), bindparam("now")))
    .on_conflict_do_nothing(index_elements=["user_id", "key"]).returning(_T.c.id).cte("claim"))
# The key's row (none: no such key) with the id of the record claimed for the request (null:
# the Idempotency-Key has a record already, committed by another request).
AUTHENTICATE_AND_CLAIM = select(_KEY, _CLAIM.c.id.label("record_id")).select_from(
    _KEY.outerjoin(_CLAIM, true()))


def _usable(secret_header: str) -> tuple[str, str] | None:
    """(secret, Idempotency-Key) when this request is the common case; None otherwise."""
    scheme, _, secret = secret_header.strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not auth.KEY_PATTERN.match(secret):
        return None
    try:
        key = idempotency.header_key()
    except ValueError:
        return None
    return None if key is None else (secret, key)


def hot_path(*, scopes: str, model):
    """Run the decorated view (under @api_auth(scopes=...), @idempotent, @validate_body(model))
    in one transaction when the request allows it (see the module's docstring)."""
    needed = (scopes,)

    def decorator(generic):
        view = generic
        while hasattr(view, "__wrapped__"):  # the undecorated view, which takes body= and claim=
            view = view.__wrapped__

        @wraps(generic)
        def wrapped(*args, **kwargs):
            usable = _usable(request.headers.get("Authorization", ""))
            session = db.session
            if usable is None or pg.driver(session) is None:
                return generic(*args, **kwargs)
            return _run(session, view, usable, model, needed)

        return wrapped

    return decorator


def _run(session, view, usable: tuple[str, str], model, needed: tuple[str, ...]):
    secret, key = usable
    now = clock.now()
    fingerprint = idempotency.request_fingerprint()
    principal = None
    count_after = traffic.counts_in_database()
    try:
        row = pg.run(session, AUTHENTICATE_AND_CLAIM, {
            "key_hash": auth.hash_secret(secret), "key": key, "method": request.method, "path": request.path[:255],
            "request_hash": fingerprint, "now": now}).fetchone()
        try:
            principal = auth.principal_for_key(row, now)
            auth.enter(principal, load_owner=False)
            auth.meter(principal, count=not count_after)
            auth.check_access(principal, None, needed)
        except auth.AuthFailure as failure:
            session.rollback()
            return failure.response()
        record_id = row.record_id
        if record_id is None:
            answer = idempotency.after_conflict(principal.user_id, key, fingerprint)
            if not isinstance(answer, int):
                session.rollback()
                return answer
            record_id = answer
        claim = idempotency.Claim(record_id, testmode.active())
        response = current_app.make_response(view(body=parse_body(model), claim=claim))
        if 200 <= response.status_code < 300 and not claim.stored:
            idempotency.store(record_id, response)
        return idempotency.commit_if_ok(response)
    except BaseException:
        session.rollback()
        raise
    finally:
        _after(session, principal, count_after, now)


def _after(session, principal, count_after: bool, now) -> None:
    """Bookkeeping that must not hold locks for the request's transaction, in a short one after it."""
    if principal is None or not (count_after or principal.touch_due):
        return
    if count_after:
        traffic.record_request(session, principal.is_test)
    if principal.touch_due:
        auth.touch(session, principal, now)
    auth.commit_now(session)
