"""audit via api key: audit_log.api_key_id, key_creator_id, key_creator_label

An admin API call is audited under the key's owner; the row now also names the key and who
created it, so a key minted for someone else cannot hide who acted (issue 15 item 5). No
foreign keys: audit rows are append-only and outlive keys and people.

Revision ID: 0015_sec_2
Revises: 0015_sec
Create Date: 2026-12-06 18:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0015_sec_2'
down_revision = '0015_sec'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('audit_log') as batch:
        batch.add_column(sa.Column('api_key_id', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('key_creator_id', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('key_creator_label', sa.String(length=255), nullable=True))


def downgrade():
    with op.batch_alter_table('audit_log') as batch:
        batch.drop_column('key_creator_label')
        batch.drop_column('key_creator_id')
        batch.drop_column('api_key_id')
