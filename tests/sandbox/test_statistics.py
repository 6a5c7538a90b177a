"""Production statistics: the views leave test data out; 'include test data' puts it back."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select, text

from app.core.views_sql import create_production_view, drop_production_view, production_views_suspended
from app.sandbox import statistics
from app.sandbox.cleanup_models import CleanupRun
from tests.sandbox.cleanup_factories import insert_owned_rows, insert_users, table

STATUS = ("active", "active", "suspended", "banned", "active")


def _expected(rows) -> dict[str, int]:
    """The statistics computed in Python, independently of the SQL under test."""
    return {
        "total_users": len(rows),
        "active_users": sum(r["status"] == "active" for r in rows),
        "suspended_users": sum(r["status"] == "suspended" for r in rows),
        "banned_users": sum(r["status"] == "banned" for r in rows),
        "staff_users": sum(bool(r["is_staff"]) for r in rows),
        "customer_users": sum(not r["is_staff"] for r in rows),
        "verified_users": sum(bool(r["email_verified"]) for r in rows),
        "mfa_users": sum(bool(r["totp_enabled"]) for r in rows),
    }


@pytest.fixture
def mixed(session, frozen_clock):
    """37 production users and 23 test users with every attribute varied, plus soft-deleted ones."""
    vary = {"staff": lambda n: n % 3 == 0, "status": lambda n: STATUS[n % 5], "verified": lambda n: n % 2 == 0,
            "mfa": lambda n: n % 4 == 0}
    insert_users(session, 37, test=False, **vary)
    insert_users(session, 23, test=True, expires_in=timedelta(days=2), **vary)
    insert_users(session, 5, test=False, deleted=True, **vary)
    insert_users(session, 4, test=True, deleted=True, expires_in=timedelta(days=-9), **vary)
    session.flush()


def test_every_user_statistic_counts_production_users_only(session, mixed):
    users = table("users")
    rows = session.execute(select(users)).mappings().all()
    production = [r for r in rows if not r["is_test"] and r["account_type"] != "test" and r["deleted_at"] is None]
    live = [r for r in rows if r["deleted_at"] is None]
    assert len(production) == 37 and len(live) == 60

    assert statistics.user_stats(session) == _expected(production)
    assert statistics.user_stats(session, include_test=True) == _expected(live)
    view = statistics.source("users")
    assert session.scalar(select(func.count()).select_from(view)) == 37
    assert set(session.scalars(select(view.c.email))) == {r["email"] for r in production}


def test_a_fact_table_view_added_by_a_later_migration(session, mixed):
    """What a later issue's migration does for its ledger, here with job_records as the fact table."""
    op = type("Op", (), {"execute": staticmethod(lambda sql: session.execute(text(sql)))})()
    ids = insert_users(session, 6, test=False)
    insert_owned_rows(session, ids[:3], is_test=False, per_user=3)
    insert_owned_rows(session, ids[3:], is_test=True, per_user=2)
    create_production_view(op, "job_records")
    try:
        production = statistics.source("job_records")
        everything = statistics.source("job_records", include_test=True)
        assert session.scalar(select(func.count()).select_from(production)) == 9
        assert session.scalar(select(func.count()).select_from(everything)) == 15
        assert production.name == "production_job_records"
    finally:
        drop_production_view(op, "job_records")


def test_the_success_metrics_of_the_test_data_plan(session, mixed, frozen_clock):
    insert_users(session, 3, test=True, expires_in=timedelta(hours=-2))
    run = CleanupRun(kind="expired", trigger="schedule", status="finished", deleted={"users": 5, "recovery_codes": 7},
                     started_at=frozen_clock.now() - timedelta(minutes=3), finished_at=frozen_clock.now())
    session.add(run)
    session.flush()
    metrics = statistics.test_data_metrics(session)
    assert metrics.all_users == 72 and metrics.test_users == 30
    assert metrics.expired_pending == 3  # the soft-deleted expired ones are counted apart
    assert metrics.soft_deleted_pending == 4
    assert str(metrics.test_share) == "41.67" and metrics.share_on_target is False
    assert metrics.last_run.id == run.id and metrics.last_run.total_deleted == 12
    assert metrics.last_run.duration_seconds == 180


def test_under_one_percent_is_on_target(session):
    insert_users(session, 199, test=False)
    insert_users(session, 1, test=True, expires_in=timedelta(days=1))
    metrics = statistics.test_data_metrics(session)
    assert str(metrics.test_share) == "0.50" and metrics.share_on_target


def test_api_requests_today_split_test_and_production(session, login_as):
    from app.api.traffic import record_request

    assert statistics.api_requests_today(session)["total"] == 0
    for is_test in [True] * 3 + [False] * 9:
        record_request(session, is_test)
    session.commit()
    assert statistics.api_requests_today(session) == {"test": 3, "production": 9, "total": 12,
                                                       "test_share": Decimal("25.0")}
    page = login_as("admin").get("/admin/test-data").get_data(as_text=True)
    assert "3 <small>test</small> · 9 <small>production</small>" in page


def test_views_are_not_mistaken_for_tables(app, session):
    from app.extensions import db

    inspector = sa.inspect(session.connection())
    assert {"production_users", "production_user_stats"} <= set(inspector.get_view_names())
    assert "production_users" not in inspector.get_table_names()
    assert "production_users" not in db.metadata.tables


def test_a_migration_altering_users_suspends_the_views(tmp_path):
    """SQLite rebuilds a table to alter it and PostgreSQL refuses ALTER TYPE under a view:
    production_views_suspended() drops and recreates them (and they pick up new columns)."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    from app.extensions import db

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'alter.db'}")
    with engine.begin() as conn:
        db.metadata.create_all(conn)
        create_production_view(Operations(MigrationContext.configure(conn)), "users")
    with engine.begin() as conn:
        op = Operations(MigrationContext.configure(conn))
        with production_views_suspended(op, "users"):
            with op.batch_alter_table("users", recreate="always") as batch:
                batch.add_column(sa.Column("nickname", sa.String(40)))
        columns = [c["name"] for c in sa.inspect(conn).get_columns("production_users")]
        assert "nickname" in columns
        assert conn.execute(text("SELECT total_users FROM production_user_stats")).scalar() == 0
    engine.dispose()
