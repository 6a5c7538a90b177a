"""The one way an /api/v1 request is served, for every route: read serve() top to bottom.

    1. authenticate   the bearer secret (API key or OAuth token, app/api/auth.py); on PostgreSQL
                      an API key is looked up, its last_used_at touched and, for an idempotent
                      route, the Idempotency-Key claimed, all in ONE statement
    2. rate-limit     count the request and apply the key's limit (or the route's per-IP limit
                      for a caller without a bearer secret); scopes and permission checked
    3. act for        a route's own caller resolution (a licence key in the body)
    4. claim          the Idempotency-Key record (app/api/idempotency.py), or replay its answer
    5. parse          the JSON body and the query string (app/api/schemas.py): 400 / 422
    6. call           the route's view with body= and query=: the service does the work
    7. store, commit  a 2xx answer is stored on the claimed record and committed with the work;
                      anything else rolls back (and frees the key)
    8. respond

A route is declared once, with everything the steps and the OpenAPI document need:

    @route("POST", "/credits/calculate-and-deduct", scopes=WRITE, body=CalculateAndDeductRequest,
           idempotent=True, summary="...", responses={201: Charged})
    def calculate_and_deduct(body): ...

The view is a plain function: no decorator wraps it, so there is nothing a faster lane could
skip. Why this is fast on PostgreSQL (it was app/api/hotpath.py's lane for one route):
- one transaction (app/core/pg.py transaction(): a pooled connection of its own, no Session
  unless the view uses the ORM); the key lookup and the claim are one round trip;
- the request counter (without Redis) and a refused request's last_used_at are written after
  the transaction, in a short one of their own: every request would queue on the counter row;
- a request that wrote nothing worth keeping (a replay) ends in a commit, not a rollback:
  psycopg forgets the connection's prepared statements at every rollback;
- the answer's store and the COMMIT are one round trip (one simple query, core/pg.py
  commit_with): row locks the work took (a hot coupon's) are held one round trip less.
On SQLite, with an OAuth token, or for a streamed answer, the same steps run on db.session.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

from flask import Response, has_request_context
from pydantic import BaseModel
from sqlalchemy import String, bindparam, case, event, false, func, select, true
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.api import api_bp, auth, idempotency, traffic
from app.api.auth import AuthFailure, Principal
from app.api.errors import api_error
from app.api.schemas import ErrorBody, parse_body, query_params, validate_data
from app.core import clock, current, pg, testmode
from app.extensions import db

# --- the statements of step 1 on PostgreSQL ------------------------------------------------------
_KEY = auth.KEY_LOOKUP.cte("k")
_TOUCH = auth.touch_statement(select(_KEY.c.id).scalar_subquery()).returning(auth.ApiKey.id).cte("touched")
_TOUCHED = select(func.count()).select_from(_TOUCH).scalar_subquery().label("touched")
_R = idempotency.IdempotencyRecord.__table__
_CLAIM = (pg_insert(_R).from_select(
    ["user_id", "key", "method", "path", "request_hash", "is_test", "created_at"],
    select(_KEY.c.user_id, bindparam("key", type_=String), bindparam("method", type_=String),
           bindparam("path", type_=String),
           case((_KEY.c.world_is_test, bindparam("test_hash", type_=String)),
                else_=bindparam("request_hash", type_=String)), false(), bindparam("now")))
    .on_conflict_do_nothing(index_elements=["user_id", "key"]).returning(_R.c.id).cte("claim"))
# The key's row (none: no such key) and last_used_at written when older than a minute.
AUTHENTICATE = select(_KEY, _TOUCHED)
# The same, with the id of the Idempotency-Key record claimed for the request (null: the key has
# a record already, committed by another request, whose answer is replayed).
AUTHENTICATE_AND_CLAIM = select(_KEY, _CLAIM.c.id.label("record_id"), _TOUCHED).select_from(
    _KEY.outerjoin(_CLAIM, true()))

BEARER, OPTIONAL, PUBLIC = "bearer", "optional", "public"  # what a route asks of the caller


@dataclass(frozen=True)
class Route:
    """One /api/v1 route: what serve() does for it and what the OpenAPI document says of it."""

    method: str
    rule: str
    view: Callable
    auth: str = BEARER  # BEARER: a key or token; OPTIONAL: one if sent (see `caller`); PUBLIC: none
    scopes: tuple[str, ...] = ()
    permission: str | None = None  # the owner's RBAC permission (every /admin/ route names one)
    load_owner: bool = True  # g.api_user loaded (False: the view needs only g.api_user_id)
    caller: Callable[[], None] | None = None  # resolves who acts when no bearer secret was sent
    per_ip: Callable[[], str] | None = None  # a limit for callers without a bearer secret
    body: type[BaseModel] | None = None
    form_body: bool = False  # a form body is accepted too (the OAuth token endpoint)
    query: type[BaseModel] | None = None
    idempotent: bool = False
    redact: tuple[str, ...] = ()  # answer fields stored (and replayed) as null: secrets shown once
    streams: bool = False  # the answer is streamed after the view returns: db.session's transaction
    doc: dict = field(default_factory=dict, compare=False)

    @property
    def endpoint(self) -> str:
        return self.view.__name__


def route(method: str, rule: str, *, summary: str | None = None, description: str | None = None,
          responses: dict | None = None, list_of=None, tags: list[str] | None = None, errors=(),
          query_skip: tuple[str, ...] = (), documented_body: type[BaseModel] | None = None, **steps):
    """Declare an /api/v1 route served by the pipeline (Route's fields are the steps' options).
    documented_body: the body's model for the document only, when the view reads a body of
    several formats itself (JSON or CSV)."""
    scopes = steps.pop("scopes", ())
    steps["scopes"] = tuple([scopes] if isinstance(scopes, str) else scopes or ())

    def declare(view):
        spec = Route(method, rule, view, **steps)
        if rule.startswith("/admin/") and spec.permission is None:
            raise TypeError(f"{rule}: an admin route names the RBAC permission its caller's owner needs")
        doc = {"summary": summary, "description": description or (view.__doc__ or "").strip() or None,
               "responses": dict(responses or {}), "list_of": list_of, "tags": tags,
               "errors": list(errors) or None, "idempotent": spec.idempotent, "request_model": spec.body or documented_body}
        if spec.auth != PUBLIC:
            doc.update(security=True, permission=spec.permission, scopes=list(spec.scopes))
        if spec.query is not None:
            doc["query_params"] = query_params(spec.query, query_skip)
            doc["responses"].setdefault(422, ErrorBody)
        spec.doc.update(doc)

        def endpoint(**path):
            return serve(spec, path)

        endpoint.__name__, endpoint.__doc__, endpoint.route = view.__name__, view.__doc__, spec
        api_bp.add_url_rule(rule, view.__name__, endpoint, methods=[method])
        return view

    return declare


def serve(spec: Route, path: dict) -> Response:
    """Run the steps of the module docstring for one request."""
    anonymous, key = _credential(spec)
    try:
        idem_key = idempotency.header_key() if spec.idempotent else None
        idem_malformed = False
    except ValueError:
        idem_key, idem_malformed = None, True
    fast = key is not None and db.engine.dialect.name == "postgresql"
    tx = pg.transaction(db.session, db.engine) if fast and not spec.streams else pg.SessionTransaction(db.session)
    run = _Run(now=clock.now(), count_after=traffic.counts_in_database())
    try:
        return _steps(spec, path, tx, run, anonymous, key if fast else None, idem_key, idem_malformed)
    except BaseException:
        run.committed = False
        _undo(tx, run)
        raise
    finally:
        try:
            _after(tx, run)
        finally:
            tx.close()


@dataclass
class _Run:
    now: object
    count_after: bool
    principal: Principal | None = None
    record_id: int | None = None
    committed: bool = False
    commits_before_view: int | None = None


def _steps(spec: Route, path: dict, tx, run: _Run, anonymous: bool, fast_key, idem_key, idem_malformed) -> Response:
    # 1-2. authenticate, rate-limit, check scopes and permission
    try:
        claimed = _NOT_CLAIMED if anonymous else _authenticate(tx, run, fast_key, idem_key)
        if run.principal is not None:
            auth.enter(run.principal, spec.load_owner)
            auth.meter(run.principal, count=not run.count_after)
            auth.check_access(run.principal, spec.permission, spec.scopes)
        else:
            ctx_g = current.g()
            ctx_g.api_user = ctx_g.api_user_id = None
            if spec.per_ip is not None:
                _limit_per_ip(spec)
    except AuthFailure as failure:
        tx.rollback()
        return failure.response()
    # 3. who the request acts for, when the route resolves it from the request (a licence key)
    if spec.caller is not None:
        spec.caller()
    # 4. the Idempotency-Key: claimed (in step 1, or now) or answered from its record
    if idem_malformed:
        tx.rollback()
        return api_error(400, "invalid_request_error", "invalid_idempotency_key",
                         f"{idempotency.HEADER} must be 1 to {idempotency.MAX_KEY_LENGTH} printable characters.")
    if idem_key is not None:
        if claimed is _NOT_CLAIMED or claimed is None:
            # the credential's world: the key's or token's, or (no bearer secret) the licence's
            fingerprint = idempotency.request_fingerprint(
                run.principal.is_test if run.principal is not None else testmode.active())
            user_id = current.g().api_user_id
            if claimed is _NOT_CLAIMED:
                answer = idempotency.claim(user_id, idem_key, fingerprint)
            else:  # the key's record was there already
                answer = idempotency.after_conflict(user_id, idem_key, fingerprint)
        else:  # claimed in step 1
            answer = claimed
        if not isinstance(answer, int):  # a replay, or a refusal of the key's reuse
            _finish(tx, run, ok=True)  # keeps at most last_used_at; a commit keeps prepared statements
            return answer
        run.record_id = answer
    # 5. parse and validate the body and the query string
    kwargs = dict(path)
    if spec.body is not None:
        kwargs["body"] = _parse_body(spec)
    if spec.query is not None:
        kwargs["query"] = validate_data(spec.query, current.request().args.to_dict())
    # 6. call the service
    run.commits_before_view = _commits()
    response = current.app().make_response(spec.view(**kwargs))
    # 7. store the answer with the work, or undo both
    ok = 200 <= response.status_code < 300
    if ok and run.record_id is not None:
        tx.commit_with(*idempotency.store_statement(run.record_id, response, spec.redact))
        run.committed = True
    elif ok:
        _finish(tx, run, ok=True)
    else:
        _undo(tx, run)
    # 8. respond
    return response


_NOT_CLAIMED = object()  # step 1 did not try to claim the Idempotency-Key


def _credential(spec: Route) -> tuple[bool, str | None]:
    """(anonymous: no bearer secret on a route that needs none, the API key sent, if one was)."""
    if spec.auth == PUBLIC:
        return True, None
    header = current.request().headers.get("Authorization", "").strip()
    if spec.auth == OPTIONAL and not header:
        return True, None
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    return False, secret if scheme.lower() == "bearer" and auth.KEY_PATTERN.match(secret) else None


def _authenticate(tx, run: _Run, fast_key: str | None, idem_key: str | None):
    """Step 1: run.principal. Returns the claimed record's id, None when the Idempotency-Key had
    a record already, or _NOT_CLAIMED. fast_key: an API key on PostgreSQL, looked up (with the
    claim) in one statement; otherwise auth.authenticate() (a token, SQLite, a malformed header)."""
    if fast_key is None:
        run.principal = auth.authenticate()
        return _NOT_CLAIMED
    params = {"key_hash": auth.hash_secret(fast_key), "stale": run.now - auth.LAST_USED_RESOLUTION, "now": run.now}
    if idem_key is not None:
        req = current.request()
        params.update(key=idem_key, method=req.method, path=req.path[:255],
                      request_hash=idempotency.request_fingerprint(), test_hash=idempotency.request_fingerprint(True))
        row = pg.run(db.session, AUTHENTICATE_AND_CLAIM, params).fetchone()
    else:
        row = pg.run(db.session, AUTHENTICATE, params).fetchone()
    principal = run.principal = auth.principal_for_key(row, run.now)
    if principal.twin_needed:  # a production customer's test key acts as the customer's test twin
        tx.rollback()  # a claim was the customer's: step 4 claims again, for the twin
        if principal.touch_due:
            auth.touch(db.session, principal, run.now)
        auth.resolve_twin(db.session, principal)
        return _NOT_CLAIMED
    return row.record_id if idem_key is not None else _NOT_CLAIMED


def _limit_per_ip(spec: Route) -> None:
    """The route's limit per client address, for callers without a key (whose own limit applies)."""
    item = auth.parse_rate(spec.per_ip())
    allowed, reset = auth.hit_per_address(item, spec.endpoint, current.request().remote_addr or "unknown")
    if allowed:
        return
    retry = max(1, math.ceil(reset - time.time()))
    failure = AuthFailure(429, "rate_limited", f"Too many requests: {item} from one address. Retry in {retry} s.")
    failure.headers = {"Retry-After": str(retry)}
    raise failure


def _parse_body(spec: Route) -> BaseModel:
    req = current.request()
    if spec.form_body and req.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return validate_data(spec.body, req.form.to_dict())
    return parse_body(spec.body)


def _finish(tx, run: _Run, ok: bool) -> None:
    tx.commit()
    run.committed = ok


def _undo(tx, run: _Run) -> None:
    """Roll the request back; free its Idempotency-Key also when the view committed it early (a
    payment step made durable before the provider is called)."""
    tx.rollback()
    if run.record_id is not None and run.commits_before_view is not None and _commits() > run.commits_before_view:
        idempotency.release(run.record_id)


def _after(tx, run: _Run) -> None:
    """What a refused request still records, and the database request counter (not held for the
    request's transaction: every request would queue on its row), in a short transaction."""
    principal = run.principal
    if principal is None:
        return
    touch = principal.key is not None and principal.touch_due and not run.committed
    if not (run.count_after or touch):
        return
    with testmode.paused():  # the key's row and the counter: bookkeeping, in no request's world
        if run.count_after:
            traffic.record_request(db.session, principal.is_test)
        if touch:
            auth.touch(db.session, principal, run.now)
        tx.commit()


def _commits() -> int:
    return current.g().get("api_commits", 0)


@event.listens_for(Session, "after_commit")
def _count_commit(session) -> None:
    """Tells step 7 whether the view committed (its claim is then durable: freed by a DELETE)."""
    if has_request_context() and current.request().blueprint == api_bp.name:
        ctx_g = current.g()
        ctx_g.api_commits = ctx_g.get("api_commits", 0) + 1


def api_routes(app) -> list[tuple[str, object]]:
    """(rule, view function) of every /api/v1 rule: each must be served by the pipeline."""
    return [(rule.rule, app.view_functions[rule.endpoint]) for rule in app.url_map.iter_rules()
            if rule.endpoint.startswith(api_bp.name + ".")]
