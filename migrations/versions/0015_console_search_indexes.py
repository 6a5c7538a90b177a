"""global search indexes: trigram indexes on customers' email and name (PostgreSQL), the Stripe charge id

The top bar's search matches a substring of an email or a name among 100,000 customers in a few
milliseconds only with a trigram index (pg_trgm, PostgreSQL's own contrib extension); SQLite scans.
License keys, coupon codes, invoice ids and the other Stripe ids already have unique indexes.

Revision ID: 0015_console
Revises: 0014_main
Create Date: 2026-12-06 17:50:00

"""
from alembic import op

revision = '0015_console'
down_revision = '0015_cust_3'
branch_labels = None
depends_on = None

NAME = "lower(first_name || ' ' || last_name)"


def upgrade():
    op.create_index(op.f('ix_payment_transactions_stripe_charge_id'), 'payment_transactions', ['stripe_charge_id'])
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    op.execute('CREATE INDEX ix_users_email_trgm ON users USING gin (email gin_trgm_ops)')
    op.execute(f'CREATE INDEX ix_users_name_trgm ON users USING gin (({NAME}) gin_trgm_ops)')


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP INDEX IF EXISTS ix_users_name_trgm')
        op.execute('DROP INDEX IF EXISTS ix_users_email_trgm')
    op.drop_index(op.f('ix_payment_transactions_stripe_charge_id'), table_name='payment_transactions')
