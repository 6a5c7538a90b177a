"""One transaction, few round trips, for a keyed idempotent POST on PostgreSQL (the metering API).

Stacked, the decorators @api_auth, @idempotent and @validate_body cost a round trip each for
the key lookup and the Idempotency-Key claim, plus a commit for bookkeeping. For the common
case (an API key, an Idempotency-Key, PostgreSQL) @hot_path runs the same checks, with the
same answers in the same order of precedence, as

    BEGIN; the key lookup and the claim of the Idempotency-Key, one statement;
    the request counter and the key's rate limit, one Redis round trip; the body validated;
    the view's work, whose statement also stores the answer on the claimed record; COMMIT

The transaction is pg.transaction()'s: a pooled connection of its own, without the Session's
transaction machinery. The claim (and the key's last_used_at, at most once a minute) is written before the key is
checked; a refused request rolls it back and records last_used_at after. Without Redis the
request counter row is written after the transaction, in a short one of its own. Anything
else (an OAuth token, a malformed key, no or a malformed Idempotency-Key, SQLite) runs the
decorated view unchanged.

@hot_path goes on top of those decorators and takes the scopes and the request model from
them. The view is called as view(body=..., claim=idempotency.Claim) and may use only
g.api_user_id (as under @api_auth(load_owner=False)); it hands the claim to the service, whose
statement stores the answer and sets claim.answer to its text, which the view sends;
otherwise the view's response is stored here, as @idempotent does.
"""
from __future__ import annotations

from functools import wraps

from flask import current_app, request
from sqlalchemy import String, bindparam, false, func, select, true
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app.api import auth, idempotency
from app.api.schemas import parse_body
from app.core import clock, pg, testmode
from app.extensions import db
from app.api import traffic

_T = idempotency.IdempotencyRecord.__table__
_KEY = auth.KEY_LOOKUP.cte("k")
_CLAIM = (pg_insert(_T).from_select(
    ["user_id", "key", "method", "path", "request_hash", "is_test", "created_at"],
    select(_KEY.c.user_id, bindparam("key", type_=String), bindparam("method", type_=String),
           bindparam("path", type_=String), bindparam("request_hash", type_=String), false(), bindparam("now")))
    .on_conflict_do_nothing(index_elements=["user_id", "key"]).returning(_T.c.id).cte("claim"))
_TOUCH = auth.touch_statement(select(_KEY.c.id).scalar_subquery()).returning(auth.ApiKey.id).cte("touched")
# The key's row (none: no such key) with the id of the record claimed for the request (null:
# the Idempotency-Key has a record already, committed by another request), last_used_at
# written when it was older than a minute (a once-a-minute row lock till the commit).
AUTHENTICATE_AND_CLAIM = select(
    _KEY, _CLAIM.c.id.label("record_id"), select(func.count()).select_from(_TOUCH).scalar_subquery().label("touched"),
).select_from(_KEY.outerjoin(_CLAIM, true()))


GENERAL_PATH = object()  # _run's answer when the request is better served by the decorated view


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


def hot_path(generic):
    """Run the decorated view in one transaction when the request allows it (module docstring)."""
    spec = getattr(generic, "_openapi", {})
    if not spec.get("idempotent") or "request_model" not in spec or spec.get("permission") is not None:
        raise TypeError("@hot_path goes on @api_auth(scopes=...), @idempotent and @validate_body(Model)")
    needed, model = tuple(spec.get("scopes") or ()), spec["request_model"]
    view = generic
    while hasattr(view, "__wrapped__"):  # the undecorated view, which takes body= and claim=
        view = view.__wrapped__

    @wraps(generic)
    def wrapped(*args, **kwargs):
        usable = _usable(request.headers.get("Authorization", ""))
        engine = db.engine
        if usable is None or engine.dialect.name != "postgresql":
            return generic(*args, **kwargs)
        tx = pg.transaction(db.session, engine)
        try:
            response = _run(tx, db.session, view, usable, model, needed)
        finally:
            tx.close()
        return generic(*args, **kwargs) if response is GENERAL_PATH else response

    wrapped.hot_path = True
    return wrapped


def _run(tx, session, view, usable: tuple[str, str], model, needed: tuple[str, ...]):
    secret, key = usable
    now = clock.now()
    fingerprint = idempotency.request_fingerprint()
    principal, committed = None, False
    count_after = traffic.counts_in_database()
    try:
        row = pg.run(session, AUTHENTICATE_AND_CLAIM, {
            "key_hash": auth.hash_secret(secret), "key": key, "method": request.method, "path": request.path[:255],
            "request_hash": fingerprint, "now": now, "stale": now - auth.LAST_USED_RESOLUTION}).fetchone()
        try:
            principal = auth.principal_for_key(row, now)
            if principal.twin_needed:  # a production customer's test key: its twin, on the general path
                tx.rollback()
                principal = None
                return GENERAL_PATH
            auth.enter(principal, load_owner=False)
            auth.meter(principal, count=not count_after)
            auth.check_access(principal, None, needed)
        except auth.AuthFailure as failure:
            tx.rollback()
            return failure.response()
        record_id = row.record_id
        if record_id is None:
            answer = idempotency.after_conflict(principal.user_id, key, fingerprint)
            if not isinstance(answer, int):
                # A replay (or a refusal of the key's reuse): this request claimed nothing, it wrote
                # at most the key's last_used_at, which may stay. A commit, not a rollback: psycopg
                # forgets the connection's prepared statements at every rollback (DEALLOCATE ALL,
                # then five executions planned afresh), which cost PostgreSQL ~40% more per request.
                tx.commit()
                committed = True
                return answer
            record_id = answer
        claim = idempotency.Claim(record_id, testmode.active())
        response = current_app.make_response(view(body=parse_body(model), claim=claim))
        committed = 200 <= response.status_code < 300
        if committed and claim.answer is None:
            idempotency.store(record_id, response)
        tx.commit() if committed else tx.rollback()
        return response
    except BaseException:
        committed = False
        tx.rollback()
        raise
    finally:
        _after(tx, session, principal, count_after, principal is not None and principal.touch_due and not committed,
               now)


def _after(tx, session, principal, count: bool, touch: bool, now) -> None:
    """What a refused request still records, and the database counter (not held for the request's
    transaction: every request would queue on its row), in a short transaction of their own."""
    if principal is None or not (count or touch):
        return
    if count:
        traffic.record_request(session, principal.is_test)
    if touch:
        auth.touch(session, principal, now)
    tx.commit()
