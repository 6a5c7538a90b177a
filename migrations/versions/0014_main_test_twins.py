"""test twins: users.twin_of_id links a production customer's test twin to the customer

A production customer's sandbox or development key acts as the customer's test twin (a test
account of its own with a test subscription and balance), never as the customer.

Revision ID: 0014_main
Revises: 0013_dashboard
Create Date: 2026-12-06 05:40:00

"""
from alembic import op
import sqlalchemy as sa

from app.core.views_sql import production_views_suspended


revision = '0014_main'
down_revision = '0013_dashboard'
branch_labels = None
depends_on = None


def upgrade():
    with production_views_suspended(op, 'users'), op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('twin_of_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch.create_foreign_key(op.f('fk_users_twin_of_id_users'), 'users', ['twin_of_id'], ['id'],
                                 ondelete='CASCADE')
        batch.create_unique_constraint(op.f('uq_users_twin_of_id'), ['twin_of_id'])


def downgrade():
    with production_views_suspended(op, 'users'), op.batch_alter_table('users') as batch:
        batch.drop_constraint(op.f('uq_users_twin_of_id'), type_='unique')
        batch.drop_constraint(op.f('fk_users_twin_of_id_users'), type_='foreignkey')
        batch.drop_column('twin_of_id')
