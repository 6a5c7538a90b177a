"""Statistics over production data, unless the viewer asks to include test data.

Production figures read the views the migrations create (app.core.views_sql), so the
filter lives in the database and no statistic can forget it. With "include test data" on,
the same queries run over the base tables (soft-deleted accounts still left out).

Later domains read their fact tables through `source(table, include_test)`:

    src = statistics.source("credit_usage", include_test_data())
    session.scalar(select(func.sum(src.c.credits)).select_from(src))
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Column, FromClause, Integer, MetaData, Table, and_, func, select, text

from app.api.traffic import requests_on
from app.core import clock
from app.core.views_sql import USER_STATS_COLUMNS, user_stats_sql, view_name
from app.extensions import db
from app.sandbox.cleanup_models import CleanupRun

# The views live outside the models' metadata, so Alembic and create_all never treat them as tables.
VIEWS = MetaData()

production_user_stats = Table("production_user_stats", VIEWS, *[Column(name, Integer) for name in USER_STATS_COLUMNS])

TEST_SHARE_TARGET = Decimal("1.0")  # seed 000: fewer than 1% of users are test users


def _models_table(name: str) -> Table:
    return db.metadata.tables[name]


def production_table(name: str) -> Table:
    """The read-only `production_<name>` view as a Table with the base table's columns."""
    view = view_name(name)
    if view not in VIEWS.tables:
        base = _models_table(name)
        Table(view, VIEWS, *[Column(c.name, c.type, key=c.key, primary_key=c.primary_key) for c in base.columns])
    return VIEWS.tables[view]


def source(name: str, include_test: bool = False) -> FromClause:
    """Where a statistic over `name` reads: its production view, or every live row."""
    if not include_test:
        return production_table(name)
    base = _models_table(name)
    if name == "users":
        return select(base).where(base.c.deleted_at.is_(None)).subquery("users_incl_test")
    return base


def user_stats(session, include_test: bool = False) -> dict[str, int]:
    """Total, active, suspended, banned, staff, customer, verified and MFA user counts."""
    if include_test:
        row = session.execute(text(user_stats_sql("deleted_at IS NULL"))).mappings().one()
    else:
        row = session.execute(select(production_user_stats)).mappings().one()
    return {name: int(row[name] or 0) for name in USER_STATS_COLUMNS}


@dataclass
class TestDataMetrics:
    """Seed 000's success metrics; they describe test data, so the toggle does not apply."""

    test_users: int
    all_users: int
    expired_pending: int
    soft_deleted_pending: int
    last_run: CleanupRun | None
    recent_runs: list[CleanupRun]

    @property
    def test_share(self) -> Decimal:
        if not self.all_users:
            return Decimal("0.00")
        return (Decimal(self.test_users) * 100 / Decimal(self.all_users)).quantize(Decimal("0.01"))

    @property
    def share_on_target(self) -> bool:
        return self.test_share < TEST_SHARE_TARGET


def test_data_metrics(session) -> TestDataMetrics:
    users = _models_table("users")
    now = clock.now()
    is_test_user = and_(users.c.is_test.is_(True), users.c.account_type == "test")
    expired = and_(is_test_user, users.c.test_expires_at.isnot(None), users.c.test_expires_at < now)
    counts = session.execute(select(
        func.count().label("all_users"),
        func.count().filter(is_test_user).label("test_users"),
        func.count().filter(and_(expired, users.c.deleted_at.is_(None))).label("expired_pending"),
        func.count().filter(and_(is_test_user, users.c.deleted_at.isnot(None))).label("soft_deleted_pending"),
    ).select_from(users)).mappings().one()
    recent = session.scalars(select(CleanupRun).order_by(CleanupRun.started_at.desc(), CleanupRun.id.desc())
                             .limit(10)).all()
    finished = [r for r in recent if r.status != "running"]
    return TestDataMetrics(test_users=counts["test_users"], all_users=counts["all_users"],
                           expired_pending=counts["expired_pending"],
                           soft_deleted_pending=counts["soft_deleted_pending"],
                           last_run=finished[0] if finished else None, recent_runs=list(recent))


# -- test vs production API requests today (counted by app.api.traffic) ---------------

def api_requests_today(session) -> dict:
    counts = requests_on(session, clock.now().date())
    test, production = int(counts.get("test", 0)), int(counts.get("production", 0))
    total = test + production
    share = (Decimal(test) * 100 / Decimal(total)).quantize(Decimal("0.1")) if total else Decimal("0.0")
    return {"test": test, "production": production, "total": total, "test_share": share}
