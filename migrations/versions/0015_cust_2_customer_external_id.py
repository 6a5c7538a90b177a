"""customers: users.external_id (the company's own id, unique) and users.customer_metadata

The provisioning API (POST /api/v1/customers) and the CSV import look customers up by the id
the company's other systems use.

Revision ID: 0015_cust_2
Revises: 0015_cust
Create Date: 2026-12-06 18:00:00

"""
from alembic import op
import sqlalchemy as sa

from app.core.views_sql import production_views_suspended

revision = '0015_cust_2'
down_revision = '0015_cust'
branch_labels = None
depends_on = None


def upgrade():
    with production_views_suspended(op, 'users'), op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('external_id', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('customer_metadata', sa.JSON(), nullable=True))
        batch.create_unique_constraint(op.f('uq_users_external_id'), ['external_id'])


def downgrade():
    with production_views_suspended(op, 'users'), op.batch_alter_table('users') as batch:
        batch.drop_constraint(op.f('uq_users_external_id'), type_='unique')
        batch.drop_column('customer_metadata')
        batch.drop_column('external_id')
