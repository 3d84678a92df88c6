"""delivery policies: consent, suppression, typology rules, quiet hours; ledger columns

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 09:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

TEXT = sqlmodel.sql.sqltypes.AutoString
NOW = sa.text('now()')


def upgrade() -> None:
    op.create_table('subscriptions',
    sa.Column('profile_id', TEXT(), nullable=False),
    sa.Column('channel', TEXT(), nullable=False),
    sa.Column('topic', TEXT(), nullable=False),
    sa.Column('status', TEXT(), nullable=False),
    sa.Column('source', TEXT(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=NOW, nullable=False),
    sa.CheckConstraint("status IN ('opted_in', 'opted_out')", name='subscriptions_status'),
    sa.PrimaryKeyConstraint('profile_id', 'channel', 'topic')
    )
    op.create_table('topics',
    sa.Column('key', TEXT(), nullable=False),
    sa.Column('policy', TEXT(), nullable=False),
    sa.Column('description', TEXT(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=NOW, nullable=False),
    sa.CheckConstraint("policy IN ('opt_in', 'opt_out')", name='topics_policy'),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('suppressions',
    sa.Column('channel', TEXT(), nullable=False),
    sa.Column('address', TEXT(), nullable=False),
    sa.Column('reason', TEXT(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=NOW, nullable=False),
    sa.PrimaryKeyConstraint('channel', 'address')
    )
    op.create_table('typology_rules',
    sa.Column('name', TEXT(), nullable=False),
    sa.Column('channel', TEXT(), nullable=False),
    sa.Column('category', TEXT(), nullable=False),
    sa.Column('max_count', sa.Float(), nullable=False),
    sa.Column('window', TEXT(), nullable=False),
    sa.Column('window_seconds', sa.Integer(), nullable=False),
    sa.Column('weights', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=NOW, nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('quiet_hours',
    sa.Column('channel', TEXT(), nullable=False),
    sa.Column('start', TEXT(), nullable=False),
    sa.Column('end', TEXT(), nullable=False),
    sa.Column('mode', TEXT(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=NOW, nullable=False),
    sa.CheckConstraint("mode IN ('queue', 'discard')", name='quiet_hours_mode'),
    sa.PrimaryKeyConstraint('channel')
    )

    for column in (
        sa.Column('html', TEXT(), nullable=True),
        sa.Column('kind', TEXT(), server_default='marketing', nullable=False),
        sa.Column('category', TEXT(), nullable=True),
        sa.Column('topic', TEXT(), nullable=True),
        sa.Column('from_address', TEXT(), nullable=True),
        sa.Column('reply_to', TEXT(), nullable=True),
    ):
        op.add_column('templates', column)

    for column in (
        sa.Column('kind', TEXT(), server_default='marketing', nullable=False),
        sa.Column('category', TEXT(), nullable=True),
        sa.Column('topic', TEXT(), nullable=True),
        sa.Column('retry_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('delivery_status', TEXT(), nullable=True),
        sa.Column('delivery_updated_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    ):
        op.add_column('messages', column)
    # (profile_id, created_at) serves the typology rules' sliding windows and the per-profile
    # listings alike, so it replaces (profile_id, id): one index less to maintain per send.
    op.drop_index('messages_profile', table_name='messages')
    op.create_index('messages_profile_recent', 'messages', ['profile_id', 'created_at'], unique=False)
    op.create_index('messages_provider_id', 'messages', ['provider', 'provider_message_id'], unique=False,
                    postgresql_where=sa.text('provider_message_id IS NOT NULL'))
    op.create_index('messages_pending', 'messages', ['source_kind', 'source_key', 'retry_at'], unique=False,
                    postgresql_where=sa.text("status IN ('queued', 'deferred')"))


def downgrade() -> None:
    op.drop_index('messages_pending', table_name='messages', postgresql_where=sa.text("status IN ('queued', 'deferred')"))
    op.drop_index('messages_provider_id', table_name='messages', postgresql_where=sa.text('provider_message_id IS NOT NULL'))
    op.drop_index('messages_profile_recent', table_name='messages')
    op.create_index('messages_profile', 'messages', ['profile_id', 'id'], unique=False)
    for name in ('read_at', 'delivery_updated_at', 'delivery_status', 'retry_at', 'topic', 'category', 'kind'):
        op.drop_column('messages', name)
    for name in ('reply_to', 'from_address', 'topic', 'category', 'kind', 'html'):
        op.drop_column('templates', name)
    op.drop_table('quiet_hours')
    op.drop_table('typology_rules')
    op.drop_table('suppressions')
    op.drop_table('topics')
    op.drop_table('subscriptions')
