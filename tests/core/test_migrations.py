"""Every migration upgrades and downgrades: head, back to an empty database, head again, and the
schema it gives is the models' (on PostgreSQL and SQLite, whichever this run uses)."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, inspect

from tests.support import dbs


@pytest.fixture
def empty_database():
    name = f"rephlo_migrations_{os.getpid()}"
    url = dbs.prepare_database(name)
    yield url
    dbs.drop_database(name)


def test_upgrade_downgrade_upgrade_gives_the_models_schema(empty_database):
    from flask_migrate import downgrade, upgrade

    from app import create_app
    from app.core.models import Base

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": empty_database, "JOBS_INLINE": True,
                      "REDIS_URL": None, "RATELIMIT_STORAGE_URI": "memory://", "SECRET_KEY": "x"})
    with app.app_context():
        upgrade()
        downgrade(revision="base")
        engine = create_engine(empty_database)
        left = set(inspect(engine).get_table_names()) - {"alembic_version"}
        assert left == set()
        upgrade()
        inspector = inspect(engine)
        tables = set(inspector.get_table_names()) - {"alembic_version"}
        assert tables == set(Base.metadata.tables)
        for name, table in Base.metadata.tables.items():
            assert {c["name"] for c in inspector.get_columns(name)} == set(table.c.keys()), name
        engine.dispose()
        from app.extensions import db

        db.engine.dispose()
