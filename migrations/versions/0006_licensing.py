"""licensing: licenses, activations, events, versions, upgrades

Version sort keys use the binary "C" collation on PostgreSQL so that they compare byte by
byte; partial indexes (active seats, one pending upgrade) work on PostgreSQL and SQLite.

Revision ID: 0006
Revises: 0008
Create Date: 2026-11-23 14:07:13.209387

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('app_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('version_key', sa.String(length=80).with_variant(sa.String(length=80, collation='C'), 'postgresql'), nullable=False),
    sa.Column('release_date', sa.Date(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_versions')),
    sa.UniqueConstraint('version', name=op.f('uq_app_versions_version'))
    )
    with op.batch_alter_table('app_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_app_versions_version_key'), ['version_key'], unique=False)

    op.create_table('licenses',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('license_key', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('purchase_price', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('purchased_version', sa.String(length=64), nullable=False),
    sa.Column('purchased_version_key', sa.String(length=80).with_variant(sa.String(length=80, collation='C'), 'postgresql'), nullable=False),
    sa.Column('eligible_until_version', sa.String(length=64), nullable=False),
    sa.Column('eligible_until_key', sa.String(length=80).with_variant(sa.String(length=80, collation='C'), 'postgresql'), nullable=False),
    sa.Column('max_activations', sa.Integer(), nullable=False),
    sa.Column('purchased_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('payment_reference', sa.String(length=255), nullable=True),
    sa.Column('created_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('is_test', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_licenses_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_licenses_user_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_licenses')),
    sa.UniqueConstraint('license_key', name=op.f('uq_licenses_license_key'))
    )
    with op.batch_alter_table('licenses', schema=None) as batch_op:
        batch_op.create_index('ix_licenses_created_at_id', ['created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_licenses_is_test'), ['is_test'], unique=False)
        batch_op.create_index(batch_op.f('ix_licenses_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_licenses_user_id'), ['user_id'], unique=False)

    op.create_table('license_activations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('license_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('device_name', sa.String(length=120), nullable=False),
    sa.Column('os_type', sa.String(length=40), nullable=False),
    sa.Column('os_version', sa.String(length=80), nullable=False),
    sa.Column('cpu_info', sa.String(length=160), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('activated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deactivated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('replaced_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('is_test', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['license_id'], ['licenses.id'], name=op.f('fk_license_activations_license_id_licenses'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['replaced_by_id'], ['license_activations.id'], name=op.f('fk_license_activations_replaced_by_id_license_activations'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_license_activations')),
    sa.UniqueConstraint('license_id', 'fingerprint', name='uq_license_activations_license_fingerprint')
    )
    with op.batch_alter_table('license_activations', schema=None) as batch_op:
        batch_op.create_index('ix_license_activations_active_license', ['license_id'], unique=False, postgresql_where=sa.text("status = 'active'"), sqlite_where=sa.text("status = 'active'"))
        batch_op.create_index(batch_op.f('ix_license_activations_is_test'), ['is_test'], unique=False)
        batch_op.create_index('ix_license_activations_status_last_seen', ['status', 'last_seen_at'], unique=False)

    op.create_table('license_upgrades',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('license_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('from_version', sa.String(length=64), nullable=False),
    sa.Column('to_version', sa.String(length=64), nullable=False),
    sa.Column('price', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('pricing_rule', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('purchased_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('refunded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('payment_reference', sa.String(length=255), nullable=True),
    sa.Column('previous_eligible_until', sa.String(length=64), nullable=True),
    sa.Column('new_eligible_until', sa.String(length=64), nullable=False),
    sa.Column('is_test', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['license_id'], ['licenses.id'], name=op.f('fk_license_upgrades_license_id_licenses'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_license_upgrades_user_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_license_upgrades'))
    )
    with op.batch_alter_table('license_upgrades', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_license_upgrades_is_test'), ['is_test'], unique=False)
        batch_op.create_index(batch_op.f('ix_license_upgrades_license_id'), ['license_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_license_upgrades_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_license_upgrades_user_id'), ['user_id'], unique=False)
        batch_op.create_index('uq_license_upgrades_one_pending', ['license_id'], unique=True, postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))

    op.create_table('license_activation_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('license_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('activation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('actor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('is_test', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['activation_id'], ['license_activations.id'], name=op.f('fk_license_activation_events_activation_id_license_activations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_license_activation_events_actor_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['license_id'], ['licenses.id'], name=op.f('fk_license_activation_events_license_id_licenses'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_license_activation_events'))
    )
    with op.batch_alter_table('license_activation_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_license_activation_events_is_test'), ['is_test'], unique=False)
        batch_op.create_index('ix_license_activation_events_license_at', ['license_id', 'created_at'], unique=False)



def downgrade():
    with op.batch_alter_table('license_activation_events', schema=None) as batch_op:
        batch_op.drop_index('ix_license_activation_events_license_at')
        batch_op.drop_index(batch_op.f('ix_license_activation_events_is_test'))

    op.drop_table('license_activation_events')
    with op.batch_alter_table('license_upgrades', schema=None) as batch_op:
        batch_op.drop_index('uq_license_upgrades_one_pending', postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))
        batch_op.drop_index(batch_op.f('ix_license_upgrades_user_id'))
        batch_op.drop_index(batch_op.f('ix_license_upgrades_status'))
        batch_op.drop_index(batch_op.f('ix_license_upgrades_license_id'))
        batch_op.drop_index(batch_op.f('ix_license_upgrades_is_test'))

    op.drop_table('license_upgrades')
    with op.batch_alter_table('license_activations', schema=None) as batch_op:
        batch_op.drop_index('ix_license_activations_status_last_seen')
        batch_op.drop_index(batch_op.f('ix_license_activations_is_test'))
        batch_op.drop_index('ix_license_activations_active_license', postgresql_where=sa.text("status = 'active'"), sqlite_where=sa.text("status = 'active'"))

    op.drop_table('license_activations')
    with op.batch_alter_table('licenses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_licenses_user_id'))
        batch_op.drop_index(batch_op.f('ix_licenses_status'))
        batch_op.drop_index(batch_op.f('ix_licenses_is_test'))
        batch_op.drop_index('ix_licenses_created_at_id')

    op.drop_table('licenses')
    with op.batch_alter_table('app_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_app_versions_version_key'))

    op.drop_table('app_versions')
