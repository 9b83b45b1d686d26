"""contact events (what happened) and verification codes (how a debtor tells a real contact from a scam)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 13:05:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

Key = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'contact_event',
        sa.Column('event_key', Key, nullable=False, autoincrement=True),
        sa.Column('event_id', sa.String(length=160), nullable=False),
        sa.Column('borrower_key', Key, nullable=False),
        sa.Column('loan_key', Key, nullable=True),
        sa.Column('action_key', Key, nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('counterpart', sa.String(length=24), nullable=False),
        sa.Column('address', sa.String(length=64), nullable=True),
        sa.Column('outcome', sa.String(length=24), nullable=False),
        sa.Column('initiated_by', sa.String(length=16), nullable=False),
        sa.Column('actor_kind', sa.String(length=24), nullable=False),
        sa.Column('agent', sa.String(length=64), nullable=True),
        sa.Column('provider_message_id', sa.String(length=128), nullable=True),
        sa.Column('details', sa.JSON(), nullable=False),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['borrower_key'], ['borrower.borrower_key'], name='fk_contact_event_borrower_key_borrower'),
        sa.ForeignKeyConstraint(['loan_key'], ['loan.loan_key'], name='fk_contact_event_loan_key_loan'),
        sa.ForeignKeyConstraint(['action_key'], ['proposed_action.action_key'], name='fk_contact_event_action_key_proposed_action'),
        sa.PrimaryKeyConstraint('event_key', name='pk_contact_event'),
        sa.UniqueConstraint('event_id', name='uq_contact_event_event_id'),
    )
    op.create_index('ix_contact_event_borrower_at', 'contact_event', ['borrower_key', 'at'], unique=False)
    op.create_table(
        'verification_code',
        sa.Column('code_key', Key, nullable=False, autoincrement=True),
        sa.Column('code_digest', sa.String(length=64), nullable=False),
        sa.Column('purpose', sa.String(length=16), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('borrower_key', Key, nullable=False),
        sa.Column('loan_key', Key, nullable=True),
        sa.Column('action_key', Key, nullable=True),
        sa.Column('reference', sa.String(length=64), nullable=True),
        sa.Column('lender', sa.String(length=128), nullable=False),
        sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['borrower_key'], ['borrower.borrower_key'], name='fk_verification_code_borrower_key_borrower'),
        sa.ForeignKeyConstraint(['loan_key'], ['loan.loan_key'], name='fk_verification_code_loan_key_loan'),
        sa.ForeignKeyConstraint(['action_key'], ['proposed_action.action_key'], name='fk_verification_code_action_key_proposed_action'),
        sa.PrimaryKeyConstraint('code_key', name='pk_verification_code'),
        sa.UniqueConstraint('code_digest', name='uq_verification_code_code_digest'),
    )
    op.create_index('ix_verification_code_borrower_key', 'verification_code', ['borrower_key'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_verification_code_borrower_key', table_name='verification_code')
    op.drop_table('verification_code')
    op.drop_index('ix_contact_event_borrower_at', table_name='contact_event')
    op.drop_table('contact_event')
