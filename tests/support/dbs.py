"""Test databases: PostgreSQL when reachable (required under CI=true), SQLite on request."""
from __future__ import annotations

import os
import tempfile

import pytest
from sqlalchemy import create_engine, inspect, text

PG_ADMIN_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"


def backend() -> str:
    return "sqlite" if os.environ.get("TEST_DB", "").lower() == "sqlite" else "postgresql"


def _pg_reachable() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def prepare_database(name: str) -> str:
    """Create an empty database called `name` and return its URL."""
    if backend() == "sqlite":
        path = os.path.join(tempfile.mkdtemp(prefix="rephlo-"), f"{name}.db")
        return f"sqlite:///{path}"
    if not _pg_reachable():
        message = f"PostgreSQL is not reachable at {PG_ADMIN_URL} (start it, or set TEST_DB=sqlite)"
        if IN_CI:
            raise RuntimeError(message)
        pytest.exit(message, returncode=3)
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def clone_database(name: str, template: str) -> str:
    """Create `name` as a copy of the PostgreSQL database `template` and return its URL: a file copy,
    far cheaper than migrating and seeding again. Nobody may be connected to `template` meanwhile."""
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    engine.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def truncate_all(engine, keep: set[str]) -> None:
    tables = [t for t in inspect(engine).get_table_names() if t not in keep]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            if tables:
                conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            # Like TRUNCATE on PostgreSQL, emptying bypasses the append-only triggers.
            triggers = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")).all()
            for name, _ in triggers:
                conn.execute(text(f'DROP TRIGGER "{name}"'))
            conn.execute(text("PRAGMA foreign_keys=OFF"))
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))
            for _, sql in triggers:
                conn.execute(text(sql))


def drop_database(name: str) -> None:
    if backend() == "sqlite":
        return
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()
