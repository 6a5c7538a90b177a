"""licenses and license_upgrades know the invoice that pays them

A perpetual license bought through the API, and a paid upgrade, are charged by a PaymentIntent
for an invoice of their own; settling that invoice (synchronously or by the webhook) issues the
license or completes the upgrade (billing/license_sales.py).

Revision ID: 0015_cust_3
Revises: 0015_cust_2
Create Date: 2026-12-06 18:10:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0015_cust_3'
down_revision = '0015_cust_2'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    for table in ('licenses', 'license_upgrades'):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('invoice_id', BigId, nullable=True))
            batch.create_foreign_key(op.f(f'fk_{table}_invoice_id_invoices'), 'invoices', ['invoice_id'], ['id'],
                                     ondelete='SET NULL')
            batch.create_index(batch.f(f'ix_{table}_invoice_id'), ['invoice_id'])


def downgrade():
    for table in ('license_upgrades', 'licenses'):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(batch.f(f'ix_{table}_invoice_id'))
            batch.drop_constraint(op.f(f'fk_{table}_invoice_id_invoices'), type_='foreignkey')
            batch.drop_column('invoice_id')
