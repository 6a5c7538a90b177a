"""scheduler_leases: one embedded scheduler per database

Without Redis the app process runs the periodic jobs itself; this lease row makes sure two
processes on the same database never both do.

Revision ID: 0015_embed
Revises: 0014_main
Create Date: 2026-12-06 18:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0015_embed'
down_revision = '0015_sec2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'scheduler_leases',
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('holder', sa.String(length=160), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('renewed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_scheduler_leases')),
    )


def downgrade():
    op.drop_table('scheduler_leases')
