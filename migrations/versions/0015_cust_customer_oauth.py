"""customer OAuth: authorization codes, remembered consents, refresh tokens and public clients

The authorization-code grant with PKCE (issue 17): codes and consents get tables of their own;
oauth_tokens learns whose token it is (user_id), its refresh token, rotation and family, and
oauth_clients whether the client is public (no secret, PKCE required).

Revision ID: 0015_cust
Revises: 0014_main
Create Date: 2026-12-06 17:55:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0015_cust'
down_revision = '0015_embed'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table(
        'oauth_authorization_codes',
        sa.Column('id', BigId, nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('client_pk', BigId, nullable=False),
        sa.Column('user_id', BigId, nullable=False),
        sa.Column('redirect_uri', sa.Text(), nullable=False),
        sa.Column('scope', sa.Text(), nullable=False),
        sa.Column('code_challenge', sa.String(length=128), nullable=True),
        sa.Column('code_challenge_method', sa.String(length=10), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('family', sa.String(length=32), nullable=True),
        sa.Column('is_test', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['client_pk'], ['oauth_clients.id'],
                                name=op.f('fk_oauth_authorization_codes_client_pk_oauth_clients'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_oauth_authorization_codes_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_authorization_codes')),
        sa.UniqueConstraint('code_hash', name=op.f('uq_oauth_authorization_codes_code_hash')),
    )
    with op.batch_alter_table('oauth_authorization_codes') as batch:
        batch.create_index(batch.f('ix_oauth_authorization_codes_client_pk'), ['client_pk'])
        batch.create_index(batch.f('ix_oauth_authorization_codes_user_id'), ['user_id'])
        batch.create_index(batch.f('ix_oauth_authorization_codes_is_test'), ['is_test'])
    op.create_table(
        'oauth_consents',
        sa.Column('id', BigId, nullable=False),
        sa.Column('user_id', BigId, nullable=False),
        sa.Column('client_pk', BigId, nullable=False),
        sa.Column('scopes', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('is_test', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['client_pk'], ['oauth_clients.id'],
                                name=op.f('fk_oauth_consents_client_pk_oauth_clients'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_oauth_consents_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_consents')),
        sa.UniqueConstraint('user_id', 'client_pk', name='uq_oauth_consents_user_id'),
    )
    with op.batch_alter_table('oauth_consents') as batch:
        batch.create_index(batch.f('ix_oauth_consents_client_pk'), ['client_pk'])
        batch.create_index(batch.f('ix_oauth_consents_is_test'), ['is_test'])
    with op.batch_alter_table('oauth_clients') as batch:
        batch.add_column(sa.Column('is_public', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('oauth_tokens') as batch:
        batch.add_column(sa.Column('user_id', BigId, nullable=True))
        batch.add_column(sa.Column('refresh_hash', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('refresh_expires_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('refresh_used_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('family', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key(op.f('fk_oauth_tokens_user_id_users'), 'users', ['user_id'], ['id'],
                                 ondelete='CASCADE')
        batch.create_unique_constraint(op.f('uq_oauth_tokens_refresh_hash'), ['refresh_hash'])
        batch.create_index(batch.f('ix_oauth_tokens_user_id'), ['user_id'])
        batch.create_index(batch.f('ix_oauth_tokens_family'), ['family'])


def downgrade():
    with op.batch_alter_table('oauth_tokens') as batch:
        batch.drop_index(batch.f('ix_oauth_tokens_family'))
        batch.drop_index(batch.f('ix_oauth_tokens_user_id'))
        batch.drop_constraint(op.f('uq_oauth_tokens_refresh_hash'), type_='unique')
        batch.drop_constraint(op.f('fk_oauth_tokens_user_id_users'), type_='foreignkey')
        for column in ('revoked_at', 'family', 'refresh_used_at', 'refresh_expires_at', 'refresh_hash', 'user_id'):
            batch.drop_column(column)
    with op.batch_alter_table('oauth_clients') as batch:
        batch.drop_column('is_public')
    op.drop_table('oauth_consents')
    op.drop_table('oauth_authorization_codes')
