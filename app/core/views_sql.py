"""Production views: the database itself leaves test rows out of every statistic.

Each ledger/fact table gets one view `production_<table>` (its rows with is_test = false),
created by the migration that adds the table:

    from app.core.views_sql import create_production_view, drop_production_view

    def upgrade():
        op.create_table("credit_usage", ...)
        create_production_view(op, "credit_usage")

    def downgrade():
        drop_production_view(op, "credit_usage")
        op.drop_table("credit_usage")

Statistics read them through app.sandbox.statistics.source(table, include_test).

A view pins its table: SQLite's batch mode (which rebuilds the table) and PostgreSQL's
ALTER COLUMN TYPE / DROP COLUMN refuse to run under it, and `SELECT *` fixes the column list
when the view is created. A migration that alters such a table wraps the change:

    with production_views_suspended(op, "users"):
        with op.batch_alter_table("users") as batch_op: ...

The SQL is plain and portable (PostgreSQL and SQLite >= 3.23 both read `false`).
"""
from __future__ import annotations

from contextlib import contextmanager

# Users: test accounts and soft-deleted accounts are not production users.
PRODUCTION_USERS_WHERE = "is_test = false AND account_type <> 'test' AND deleted_at IS NULL"

USER_STATS_COLUMNS = (
    "total_users", "active_users", "suspended_users", "banned_users",
    "staff_users", "customer_users", "verified_users", "mfa_users",
)


def user_stats_sql(where: str) -> str:
    """The user statistics over the users matching `where` (one row, counts never NULL)."""
    return (
        "SELECT COUNT(*) AS total_users, "
        "COUNT(CASE WHEN status = 'active' THEN 1 END) AS active_users, "
        "COUNT(CASE WHEN status = 'suspended' THEN 1 END) AS suspended_users, "
        "COUNT(CASE WHEN status = 'banned' THEN 1 END) AS banned_users, "
        "COUNT(CASE WHEN is_staff THEN 1 END) AS staff_users, "
        "COUNT(CASE WHEN NOT is_staff THEN 1 END) AS customer_users, "
        "COUNT(CASE WHEN email_verified THEN 1 END) AS verified_users, "
        "COUNT(CASE WHEN totp_enabled THEN 1 END) AS mfa_users "
        f"FROM users WHERE {where}"
    )


# Tables whose production views are not the plain `is_test = false` filter.
_SPECIAL: dict[str, dict[str, str]] = {
    "users": {
        "production_users": f"SELECT * FROM users WHERE {PRODUCTION_USERS_WHERE}",
        "production_user_stats": user_stats_sql(PRODUCTION_USERS_WHERE),
    },
}


def view_name(table: str) -> str:
    return f"production_{table}"


def views_of(table: str) -> dict[str, str]:
    """The production views built on `table`, in creation order: {view name: SELECT}."""
    return _SPECIAL.get(table) or {view_name(table): f"SELECT * FROM {table} WHERE is_test = false"}


def create_production_view(op, table: str) -> None:
    for name, select in views_of(table).items():
        op.execute(f"CREATE VIEW {name} AS {select}")


def drop_production_view(op, table: str) -> None:
    for name in reversed(list(views_of(table))):
        op.execute(f"DROP VIEW IF EXISTS {name}")


@contextmanager
def production_views_suspended(op, *tables: str):
    """Drop the production views of `tables` around an ALTER, then recreate them."""
    for table in tables:
        drop_production_view(op, table)
    yield
    for table in tables:
        create_production_view(op, table)
