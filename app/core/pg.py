"""Statements run straight on the session's psycopg connection: the API's hot path.

For a short indexed statement SQLAlchemy's per-execution work (cache-key generation, bind and
result processing, the CursorResult) costs more Python time than the server spends on it.
`run(session, stmt, params)` executes a module-level Core or text() statement, compiled once
for psycopg, on the DBAPI connection the session already holds: the statement belongs to the
session's transaction (and to the tests' rolled-back one) and commits with it. On other
databases it is an ordinary session.execute().

The statements passed here take every value as a named bindparam and need no type processing
beyond what psycopg does itself (dicts and lists are sent as JSON). Errors come back as
SQLAlchemy's exceptions (IntegrityError and the rest), as from session.execute().
"""
from __future__ import annotations

from functools import lru_cache

import psycopg
from psycopg.rows import namedtuple_row
from psycopg.types.json import Json
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.exc import DBAPIError

_DIALECT = psycopg_dialect.dialect()


@lru_cache(maxsize=256)
def _compiled(stmt) -> tuple[str, dict]:
    """SQL text and default parameters, once per statement object (module-level constants)."""
    compiled = stmt.compile(dialect=_DIALECT)
    return str(compiled), dict(compiled.params)


def driver(session) -> psycopg.Connection | None:
    """The psycopg connection of the session's current transaction, or None off PostgreSQL."""
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        return None
    return conn.connection.driver_connection


def run(session, stmt, params: dict):
    """Execute `stmt` in the session's transaction; the result has fetchone()/fetchall() and
    rows with attribute access either way."""
    session.flush()  # as for an ORM query: the statement sees the session's pending changes
    raw = driver(session)
    if raw is None:
        return session.execute(stmt, params)
    sql, defaults = _compiled(stmt)
    values = {**defaults, **{k: Json(v) if isinstance(v, (dict, list)) else v for k, v in params.items()}}
    cursor = raw.cursor(row_factory=namedtuple_row)
    try:
        cursor.execute(sql, values)
    except psycopg.Error as error:
        raise DBAPIError.instance(sql, values, error, psycopg.Error) from error
    return cursor
