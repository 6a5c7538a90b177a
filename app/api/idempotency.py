"""`Idempotency-Key` for creating POSTs (DESIGN.md §5), as Stripe has it.

- Same key, same method, path and body: the first response is replayed (a 201 replays as
  200, with `Idempotent-Replayed: true`); the work is not done again.
- Same key with another body or route: 409 `idempotency_key_reused`.
- Concurrency: the record is inserted *before* the domain work, inside the same transaction,
  by one INSERT ... ON CONFLICT DO NOTHING. On PostgreSQL a second request with the key
  blocks on the unique index (user_id, key) until the first commits, then inserts nothing and
  replays the stored response; if the first rolled back, the second executes instead. So 20 concurrent requests execute once.
- Only successful (2xx) responses are stored; a failure rolls back the record with the work,
  so the client may retry with the same key.
- Secrets shown once in the first answer (`redact=("password",)`) are stored, and replayed, as null.
- Records are kept at least IDEMPOTENCY_TTL_HOURS (24 h) and purged by a periodic job.

Routes declared `idempotent=True` (app/api/pipeline.py) get this; their views do the domain
work and return the response, and do not commit: the pipeline commits the work and the stored
response together (also when no key was sent), or rolls both back.
"""
from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta

from flask import Response, current_app, request
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.api.errors import api_error
from app.core import bounds, clock, current, pg, testmode
from app.extensions import db
from app.api.models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
IN_PROGRESS_WAIT_SECONDS = 10.0


# json.dumps(value, sort_keys=True, separators=(",", ":")), without a new encoder per request
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def request_fingerprint(test: bool = False) -> str:
    """SHA-256 of the body, canonical when it is JSON (key order and spacing do not matter), and
    of the credential's world (`test`): a key is scoped per user and mode, as Stripe scopes it, so
    a staff owner's sandbox key (never twinned: same user) is refused (409) the answer its
    production key stored, and the reverse."""
    ctx_g = current.g()
    canonical = ctx_g.get("idempotency_canonical_body")
    if canonical is None:  # parsed once a request (the fast path asks for both worlds' hashes)
        raw = current.request().get_data(cache=True) or b""
        try:
            canonical = _CANONICAL.encode(bounds.loads_json(raw)).encode()
        except (ValueError, UnicodeDecodeError):  # too deep included: parse_body answers 400 later
            canonical = raw
        ctx_g.idempotency_canonical_body = canonical
    return hashlib.sha256((b"test:" if test else b"") + canonical).hexdigest()


def _replay(record: IdempotencyRecord) -> Response:
    status = 200 if record.response_status == 201 else record.response_status
    response = current_app.response_class(json.dumps(record.response_body), status=status,
                                          mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _mismatch() -> Response:
    return api_error(409, "idempotency_error", "idempotency_key_reused",
                     "This Idempotency-Key was already used with a different request; use a new key.",
                     None)


def _find(user_id: int, key: str) -> IdempotencyRecord | None:
    return db.session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.user_id == user_id,
                                                             IdempotencyRecord.key == key))


def _answer_existing(record: IdempotencyRecord, fingerprint: str) -> Response:
    if (record.request_hash, record.method, record.path) != (fingerprint, request.method, request.path):
        return _mismatch()
    return _replay(record)


def _wait_for_response(user_id: int, key: str) -> IdempotencyRecord | None:
    """A record committed without its response (a view that committed early): poll briefly."""
    deadline = time.monotonic() + IN_PROGRESS_WAIT_SECONDS
    while time.monotonic() < deadline:
        db.session.rollback()
        record = _find(user_id, key)
        if record is None or record.response_status is not None:
            return record
        time.sleep(0.05)
    return _find(user_id, key)


_T = IdempotencyRecord.__table__


def _claim_stmt(dialect_insert):
    return dialect_insert(_T).values(
        {c: bindparam(c) for c in ("user_id", "key", "method", "path", "request_hash", "is_test", "created_at")}
    ).on_conflict_do_nothing(index_elements=["user_id", "key"]).returning(_T.c.id)


_CLAIM = {"postgresql": _claim_stmt(pg_insert), "sqlite": _claim_stmt(sqlite_insert)}
_STORE = (update(_T).where(_T.c.id == bindparam("record_id"))
          .values(response_status=bindparam("status"), response_body=bindparam("body"), is_test=bindparam("is_test")))


def header_key() -> str | None:
    """The request's Idempotency-Key, stripped; None when absent. Raises ValueError when malformed."""
    key = current.request().headers.get(HEADER)
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValueError(key)
    return key


def store_statement(record_id: int, response: Response, redact: tuple[str, ...] = ()) -> tuple:
    """The statement and parameters keeping a successful response on its record, for replays
    (the pipeline runs it with the commit: app/api/pipeline.py). On PostgreSQL a JSON answer
    is stored as the text sent (cast to JSON by the statement), not parsed back first."""
    if response.is_json and not redact and pg.bind_of(db.session).dialect.name == "postgresql":
        return _STORE, {"record_id": record_id, "status": response.status_code,
                        "body": response.get_data(as_text=True), "is_test": testmode.is_test_row()}
    body = response.get_json(silent=True)
    if isinstance(body, dict) and redact:
        body = {k: (None if k in redact else v) for k, v in body.items()}
    return _STORE, {"record_id": record_id, "status": response.status_code, "body": body,
                    "is_test": testmode.is_test_row()}


def _insert_if_absent(user_id: int, key: str, fingerprint: str) -> int | None:
    """One statement, no savepoint: INSERT ... ON CONFLICT DO NOTHING RETURNING id. On PostgreSQL
    an insert of the same key by a transaction still in progress makes this one wait for it:
    if it commits, nothing comes back (and its answer is replayed); if it rolls back, ours goes in."""
    row = pg.run(db.session, _CLAIM[pg.bind_of(db.session).dialect.name], {
        "user_id": user_id, "key": key, "method": request.method, "path": request.path[:255],
        "request_hash": fingerprint, "is_test": testmode.is_test_row(), "created_at": clock.now()}).fetchone()
    return None if row is None else row.id


def _claim(user_id: int, key: str, fingerprint: str) -> int | Response:
    """Insert the record (ours to fill: its id) or answer from the one another request stored."""
    record_id = _insert_if_absent(user_id, key, fingerprint)
    if record_id is not None:
        return record_id
    return after_conflict(user_id, key, fingerprint)


claim = _claim


def after_conflict(user_id: int, key: str, fingerprint: str) -> int | Response:
    """The key's record was there (or being written): replay its answer, refuse a different
    request, or, when the other request rolled back meanwhile, claim it after all."""
    existing = _find(user_id, key)
    if existing is None:  # the other request rolled back meanwhile: try once more
        return _claim(user_id, key, fingerprint)
    if existing.response_status is None:
        existing = _wait_for_response(user_id, key)
        if existing is None:
            return _claim(user_id, key, fingerprint)
        if existing.response_status is None:
            return api_error(409, "idempotency_error", "idempotency_request_in_progress",
                             "A request with this Idempotency-Key is still being processed; retry shortly.", None)
    return _answer_existing(existing, fingerprint)


def release(record_id: int) -> None:
    """A failed request frees its key, also when the view committed early (a payment step
    that must be durable before Stripe is called): the rollback alone would leave that
    committed record "in progress" for good."""
    db.session.rollback()
    table = IdempotencyRecord.__table__
    gone = db.session.execute(delete(table).where(table.c.id == record_id, table.c.response_status.is_(None)))
    if gone.rowcount:
        db.session.commit()


def purge_expired(session, older_than_hours: int | None = None) -> int:
    """Delete records past the retention window; returns how many went."""
    hours = older_than_hours or current_app.config["IDEMPOTENCY_TTL_HOURS"]
    cutoff = clock.now() - timedelta(hours=hours)
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff))
    return result.rowcount or 0
