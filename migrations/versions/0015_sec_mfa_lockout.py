"""mfa lockout: users.mfa_failures (wrong codes in a row) and users.mfa_locked_at

A known password must not buy unlimited TOTP guesses: after MFA_LOCKOUT_FAILURES wrong codes
in a row the second factor is locked until an admin unlocks it (app/auth/mfa_guard.py).

Revision ID: 0015_sec
Revises: 0014_main
Create Date: 2026-12-06 17:50:00

"""
from alembic import op
import sqlalchemy as sa

from app.core.views_sql import production_views_suspended


revision = '0015_sec'
down_revision = '0014_purge'
branch_labels = None
depends_on = None


def upgrade():
    with production_views_suspended(op, 'users'), op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('mfa_failures', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('mfa_locked_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with production_views_suspended(op, 'users'), op.batch_alter_table('users') as batch:
        batch.drop_column('mfa_locked_at')
        batch.drop_column('mfa_failures')
