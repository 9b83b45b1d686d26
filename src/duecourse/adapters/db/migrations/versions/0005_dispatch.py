"""the dispatch outbox: delivery state, attempts, dead letters

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 13:15:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

Key = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'dispatch_outbox',
        sa.Column('outbox_key', Key, nullable=False, autoincrement=True),
        sa.Column('action_key', Key, nullable=False),
        sa.Column('idempotency_key', sa.String(length=160), nullable=False),
        sa.Column('loan_key', Key, nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('lease_owner', sa.String(length=64), nullable=True),
        sa.Column('provider', sa.String(length=32), nullable=True),
        sa.Column('provider_message_id', sa.String(length=128), nullable=True),
        sa.Column('address', sa.String(length=64), nullable=True),
        sa.Column('code_digest', sa.String(length=64), nullable=True),
        sa.Column('code_enc', sa.LargeBinary(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('rules', sa.Text(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['action_key'], ['proposed_action.action_key'], name='fk_dispatch_outbox_action_key_proposed_action'),
        sa.ForeignKeyConstraint(['loan_key'], ['loan.loan_key'], name='fk_dispatch_outbox_loan_key_loan'),
        sa.PrimaryKeyConstraint('outbox_key', name='pk_dispatch_outbox'),
        sa.UniqueConstraint('action_key', name='uq_dispatch_outbox_action_key'),
        sa.UniqueConstraint('idempotency_key', name='uq_dispatch_outbox_idempotency_key'),
    )
    op.create_index('ix_dispatch_outbox_state_next', 'dispatch_outbox', ['state', 'next_attempt_at'], unique=False)
    op.create_index('ix_dispatch_outbox_provider_message_id', 'dispatch_outbox', ['provider_message_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_dispatch_outbox_provider_message_id', table_name='dispatch_outbox')
    op.drop_index('ix_dispatch_outbox_state_next', table_name='dispatch_outbox')
    op.drop_table('dispatch_outbox')
