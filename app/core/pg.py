"""Statements run straight on the session's psycopg connection: the API request pipeline's.

For a short indexed statement SQLAlchemy's per-execution work (cache-key generation, bind and
result processing, the CursorResult) costs more Python time than the server spends on it.
`run(session, stmt, params)` executes a module-level Core or text() statement, compiled once
for psycopg, on the DBAPI connection the session already holds: the statement belongs to the
session's transaction (and to the tests' rolled-back one) and commits with it. On other
databases it is an ordinary session.execute().

The statements passed here take every value as a named bindparam and need no type processing
beyond what psycopg does itself (dicts and lists are sent as JSON). Errors come back as
SQLAlchemy's exceptions (IntegrityError and the rest), as from session.execute().

`transaction(db.session, db.engine)` gives an API request (app/api/pipeline.py) a transaction
on a pooled connection of its own without the Session's transaction machinery (~0.15 ms):
run() executes on that connection directly; db.session, if code of the request asks for it,
is made bound to that connection, so the ORM code of a rarer branch (a replay, a re-priced
charge) joins the same transaction, and a common charge makes no Session at all. Where
db.session is bound to a connection already (the tests' outer transaction), or some code of
the request has used db.session before, it is the ordinary session transaction.

psycopg drops a connection's prepared statements at every rollback (the next five executions
of each statement are planned afresh): the pipeline ends requests that wrote nothing to keep
with a commit.

SQLAlchemy offers no public way to ask a scoped session whether it has made its session or to
bind the one it makes lazily: scoped_session.registry (.has(), .createfunc) and sessionmaker.kw
are pinned (sqlalchemy < 2.1) and checked by tests/core/test_library_internals.py.
"""
from __future__ import annotations

from contextlib import nullcontext
from contextvars import ContextVar
from functools import lru_cache

import psycopg
from flask_sqlalchemy.session import Session as FlaskSession
from psycopg.rows import namedtuple_row, no_result
from psycopg.types.json import Json
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import UpdateBase

from app.core import green, testmode

_DIALECT = psycopg_dialect.dialect()
# The psycopg connection of the request's transaction(), when it has one of its own.
_own: ContextVar[_OwnConnection | None] = ContextVar("rephlo_pg_connection", default=None)


@lru_cache(maxsize=256)
def _compiled(stmt) -> tuple[str, dict]:
    """SQL text and default parameters, once per statement object (module-level constants)."""
    compiled = stmt.compile(dialect=_DIALECT)
    return str(compiled), dict(compiled.params)


class _StatementRows:
    """psycopg's namedtuple_row for the results of one statement, its row class taken from the
    statement's first result and kept: namedtuple_row reads every column's name and hashes them
    to find the class at every execution (~20,000 instructions a statement, callgrind), while a
    module-level statement's columns never change."""

    __slots__ = ("make",)

    def __init__(self) -> None:
        self.make = None

    def __call__(self, cursor):
        make = self.make
        if make is None:
            make = namedtuple_row(cursor)
            if make is not no_result:  # a result with rows: the statement's shape
                self.make = make
        return make


@lru_cache(maxsize=256)
def rows_for(stmt) -> _StatementRows:
    """The row factory of `stmt`'s results (rows with attribute access, as namedtuple_row's)."""
    return _StatementRows()


def driver(session) -> psycopg.Connection | None:
    """The psycopg connection of the session's current transaction, or None off PostgreSQL."""
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        return None
    return conn.connection.driver_connection


def bind_of(session):
    """session.get_bind(), without making db.session's session for a request on its own
    connection (transaction()): that connection's engine."""
    own = _own.get()
    return own.engine if own is not None else session.get_bind()


def session_made(scoped) -> bool:
    """Whether code of this request has made db.session's Session (without making it); a plain
    Session is made."""
    registry = getattr(scoped, "registry", None)
    return registry is None or registry.has()


def has_own_connection() -> bool:
    """Whether the request runs in a transaction() on a connection of its own."""
    return _own.get() is not None


def run(session, stmt, params: dict):
    """Execute `stmt` in the session's transaction; the result has fetchone()/fetchall() and
    rows with attribute access either way."""
    return _run(session, stmt, params)


def _run(session, stmt, params: dict, commit: bool = False):
    """run(); with commit (a request on its own connection), COMMIT sent in the same round trip."""
    own = _own.get()
    if own is None or own.session() is not None:
        session.flush()  # as for an ORM query: the statement sees the session's pending changes
    if isinstance(stmt, UpdateBase) and testmode.active():
        from app.core.world_guard import check_statement

        check_statement(session, stmt, params)  # test mode writes only test rows (DESIGN.md §3)
    raw = driver(session) if own is None else own.raw
    if raw is None:
        return session.execute(stmt, params)
    sql, defaults = _compiled(stmt)
    values = {**defaults, **{k: Json(v) if isinstance(v, (dict, list)) else v for k, v in params.items()}}
    if commit:  # one simple query, so its values are bound client-side
        cursor, sql = psycopg.ClientCursor(raw), sql + "; COMMIT"
    else:
        cursor = raw.cursor(row_factory=rows_for(stmt))
    try:
        cursor.execute(sql, values)
    except psycopg.Error as error:
        raise DBAPIError.instance(sql, values, error, psycopg.Error) from error
    return cursor


def read_alone(engine, stmt, params: dict):
    """One row of a lone read on a pooled psycopg connection in autocommit, without a SQLAlchemy
    Connection: its execution machinery (cache key, execution options, result processing, the
    isolation level set and reset) was ~10% of a keyless licence validation's CPU (py-spy), and
    autocommit spares the BEGIN and ROLLBACK round trips. Errors come back as SQLAlchemy's."""
    sql, defaults = _compiled(stmt)
    values = {**defaults, **params}
    pooled = engine.raw_connection()
    raw = pooled.driver_connection
    try:
        raw.autocommit = True  # client-side only: the connection is idle, no round trip
        try:
            return raw.cursor(row_factory=rows_for(stmt)).execute(sql, values).fetchone()
        finally:
            if not raw.closed:
                raw.autocommit = False
    except psycopg.Error as error:
        if raw.closed or raw.broken:
            pooled.invalidate(error)
        raise DBAPIError.instance(sql, values, error, psycopg.Error) from error
    finally:
        pooled.close()


class BoundSession(FlaskSession):
    """A session on the Connection it is given: Flask-SQLAlchemy's get_bind() picks the engine
    by bind key and ignores Session(bind=...), which would take a second pooled connection."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        return bind if bind is not None else self.bind


class SessionTransaction:
    """db.session's own transaction (the general case)."""

    def __init__(self, scoped) -> None:
        self.scoped = scoped

    def commit(self) -> None:
        # A request whose session never began a transaction (none made, or a keyless read on a
        # connection of its own) has nothing to commit: Session.commit() would begin one only to
        # end it, ~10% of a keyless request's CPU (cProfile). Adding an object begins one.
        if session_made(self.scoped) and self.scoped().in_transaction():
            self.scoped.commit()

    def commit_with(self, stmt, params: dict) -> None:
        """Run a last statement (the stored answer), then commit."""
        run(self.scoped, stmt, params)
        self.scoped.commit()

    def rollback(self) -> None:
        self.scoped.rollback()

    def close(self) -> None:
        pass


class _OwnConnection:
    """A pooled connection for the request, checked out without a Connection object around it.
    db.session, if some code of the request asks for it, is a BoundSession on this connection
    (made then: most requests never need one, and making and closing it costs ~3% of a request)."""

    def __init__(self, scoped, engine) -> None:
        self.scoped, self.engine = scoped, engine
        self.pooled = engine.raw_connection()
        self.raw = self.pooled.driver_connection
        self.conn = None  # the Connection a BoundSession is bound to, made on first use
        self.holds_hot_lock = False  # hot_lock_taken(): the COMMIT's round trip does not yield
        _bind_sessions_lazily(scoped)
        self.token = _own.set(self)

    def connection(self) -> Connection:
        if self.conn is None:
            self.conn = Connection(self.engine, connection=self.pooled)
        return self.conn

    def session(self):
        """db.session's session when the request has made one, else None."""
        return self.scoped() if session_made(self.scoped) else None

    def commit(self) -> None:
        session = self.session()
        if session is not None and session.in_transaction():  # the ORM joined: commit through it
            session.commit()
        self.raw.commit()  # a no-op when the session committed it already

    def commit_with(self, stmt, params: dict) -> None:
        """Run a last statement (the stored answer) and commit, in ONE round trip: the statement
        and COMMIT sent as one simple query, its values bound client-side (psycopg's
        ClientCursor). Locks the request took (a hot coupon's row) are then held for one round
        trip less. (psycopg's pipeline mode, tried first, cost more CPU and more wall time than
        two plain round trips: psycopg 3.3, PostgreSQL 15 on localhost.)"""
        with green.not_yielding() if self.holds_hot_lock else nullcontext():
            _run(self.scoped, stmt, params, commit=True)
        self.commit()  # the session's bookkeeping; the connection has committed (no round trip)

    def rollback(self) -> None:
        self.raw.rollback()
        session = self.session()
        if session is not None and session.in_transaction():
            session.rollback()

    def close(self) -> None:
        _own.reset(self.token)
        try:
            if self.session() is not None:
                self.scoped.remove()
        finally:
            (self.conn if self.conn is not None else self.pooled).close()  # back to the pool


def _bind_sessions_lazily(scoped) -> None:
    """Once per scoped session: a session it makes while a request holds an _OwnConnection is
    bound to that connection (the contextvar tells, so greenlets and threads never mix)."""
    registry = scoped.registry
    make = registry.createfunc
    if getattr(make, "binds_lazily", False):
        return

    def create():
        own = _own.get()
        if own is None:
            return make()
        return BoundSession(**{**scoped.session_factory.kw, "bind": own.connection()})

    create.binds_lazily = True
    registry.createfunc = create


def hot_lock_taken() -> None:
    """The request now holds a row lock that every other request of its kind queues on (a hot
    coupon's): on a connection of its own, its answer's store and COMMIT are sent without
    yielding the worker to other greenlets (green.not_yielding)."""
    own = _own.get()
    if own is not None:
        own.holds_hot_lock = True


def transaction(scoped, engine):
    """The API request's transaction (module docstring): commit(), commit_with(), rollback(), close()."""
    if (engine.dialect.name != "postgresql" or scoped.session_factory.kw.get("bind") is not None
            or session_made(scoped) or has_own_connection()):
        return SessionTransaction(scoped)
    return _OwnConnection(scoped, engine)
