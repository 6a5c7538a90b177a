"""dashboard: production daily totals of credits, model usage and money collected; window indexes

The admin dashboard reads 30 days of figures. Credits issued/spent and usage per model come
from two small system-wide tables built with each day's summaries, money collected from one
built nightly by billing (production only; backfilled here from what is already there); the counts over a window of days get an index
on their timestamp, covering (index-only scans) where they read many rows: new users, money
collected, subscriptions by tier and status; "include test data" adds the summaries' test rows
through a partial index.

Revision ID: 0013_dashboard
Revises: 0012
Create Date: 2026-12-01 19:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013_dashboard'
down_revision = '0012'
branch_labels = None
depends_on = None

WINDOW_INDEXES = [
    ("ix_users_created_at_flags", "users", ["created_at", "is_test", "account_type", "deleted_at"]),
    ("ix_subscriptions_counts", "subscriptions", ["status", "tier_id", "billing_cycle", "is_test"]),
    ("ix_payment_transactions_status_created", "payment_transactions", ["status", "created_at", "kind", "is_test",
                                                                         "amount"]),
    ("ix_license_activation_events_kind_at", "license_activation_events", ["kind", "created_at"]),
    ("ix_coupon_redemptions_status_at", "coupon_redemptions", ["status", "created_at"]),
]
TEST_DAY_INDEXES = [
    ("ix_token_usage_daily_test_day", "token_usage_daily"),
    ("ix_credit_usage_daily_test_day", "credit_usage_daily"),
]


def upgrade():
    op.create_table('credit_daily_totals',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('credits_allocated', sa.BigInteger(), nullable=False),
    sa.Column('credits_deducted', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_credit_daily_totals'))
    )
    op.create_table('model_daily_totals',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('model_name', sa.String(length=120), nullable=False),
    sa.Column('request_count', sa.BigInteger(), nullable=False),
    sa.Column('input_tokens', sa.BigInteger(), nullable=False),
    sa.Column('output_tokens', sa.BigInteger(), nullable=False),
    sa.Column('vendor_cost_usd', sa.Numeric(precision=24, scale=12), nullable=False),
    sa.Column('customer_cost_usd', sa.Numeric(precision=24, scale=12), nullable=False),
    sa.Column('credits', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'model_name', name=op.f('pk_model_daily_totals'))
    )
    # Days already summarised get their totals now (the nightly build keeps them from here on).
    op.execute("INSERT INTO credit_daily_totals (day, credits_allocated, credits_deducted) "
               "SELECT day, SUM(credits_allocated), SUM(credits_deducted) FROM credit_usage_daily "
               "WHERE is_test = false GROUP BY day")
    op.execute("INSERT INTO model_daily_totals (day, model_name, request_count, input_tokens, output_tokens, "
               "vendor_cost_usd, customer_cost_usd, credits) "
               "SELECT day, model_name, SUM(request_count), SUM(input_tokens), SUM(output_tokens), "
               "SUM(vendor_cost_usd), SUM(customer_cost_usd), SUM(credits) FROM token_usage_daily "
               "WHERE is_test = false GROUP BY day, model_name")
    op.create_table('revenue_daily_totals',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('charges', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('refunds', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('built_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_revenue_daily_totals'))
    )
    day = ("date(timezone('UTC', created_at))" if op.get_bind().dialect.name == "postgresql"
           else "date(created_at)")
    op.execute("INSERT INTO revenue_daily_totals (day, charges, refunds, built_at) "
               f"SELECT {day}, SUM(CASE WHEN kind = 'charge' THEN amount ELSE 0 END), "
               "SUM(CASE WHEN kind = 'refund' THEN amount ELSE 0 END), CURRENT_TIMESTAMP FROM payment_transactions "
               f"WHERE is_test = false AND status = 'succeeded' AND {day} < CURRENT_DATE GROUP BY {day}")
    # Plain CREATE INDEX (no batch): on SQLite a batch would rebuild `users`, which its views pin.
    for name, table, columns in WINDOW_INDEXES:
        op.create_index(name, table, columns, unique=False)
    for name, table in TEST_DAY_INDEXES:
        op.create_index(name, table, ['day'], unique=False, postgresql_where=sa.text('is_test'),
                        sqlite_where=sa.text('is_test'))


def downgrade():
    for name, table in reversed(TEST_DAY_INDEXES):
        op.drop_index(name, table_name=table)
    for name, table, _ in reversed(WINDOW_INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_table('revenue_daily_totals')
    op.drop_table('model_daily_totals')
    op.drop_table('credit_daily_totals')
