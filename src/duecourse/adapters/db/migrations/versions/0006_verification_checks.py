"""verification attempts and scam alerts

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 13:15:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

Key = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'verification_attempt',
        sa.Column('attempt_key', Key, nullable=False, autoincrement=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('client_key', sa.String(length=64), nullable=False),
        sa.Column('result', sa.String(length=24), nullable=False),
        sa.Column('failed', sa.Boolean(), nullable=False),
        sa.Column('code_prefix', sa.String(length=16), nullable=True),
        sa.Column('borrower_key', Key, nullable=True),
        sa.Column('named_hash', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(['borrower_key'], ['borrower.borrower_key'], name='fk_verification_attempt_borrower_key_borrower'),
        sa.PrimaryKeyConstraint('attempt_key', name='pk_verification_attempt'),
    )
    op.create_index('ix_verification_attempt_client_at', 'verification_attempt', ['client_key', 'at'], unique=False)
    op.create_index('ix_verification_attempt_failed_at', 'verification_attempt', ['failed', 'at'], unique=False)
    op.create_index('ix_verification_attempt_named_at', 'verification_attempt', ['named_hash', 'at'], unique=False)
    op.create_table(
        'verification_alert',
        sa.Column('alert_key', Key, nullable=False, autoincrement=True),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('named_hash', sa.String(length=64), nullable=False),
        sa.Column('masked', sa.String(length=32), nullable=False),
        sa.Column('borrower_key', Key, nullable=True),
        sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['borrower_key'], ['borrower.borrower_key'], name='fk_verification_alert_borrower_key_borrower'),
        sa.PrimaryKeyConstraint('alert_key', name='pk_verification_alert'),
    )
    op.create_index('ix_verification_alert_named_hash', 'verification_alert', ['named_hash'], unique=False)
    op.create_table(
        'identity_index',
        sa.Column('borrower_key', Key, nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['borrower_key'], ['borrower.borrower_key'], name='fk_identity_index_borrower_key_borrower'),
        sa.PrimaryKeyConstraint('borrower_key', 'kind', 'digest', name='pk_identity_index'),
    )
    op.create_index('ix_identity_index_digest', 'identity_index', ['digest'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_identity_index_digest', table_name='identity_index')
    op.drop_table('identity_index')
    op.drop_index('ix_verification_alert_named_hash', table_name='verification_alert')
    op.drop_table('verification_alert')
    op.drop_index('ix_verification_attempt_named_at', table_name='verification_attempt')
    op.drop_index('ix_verification_attempt_failed_at', table_name='verification_attempt')
    op.drop_index('ix_verification_attempt_client_at', table_name='verification_attempt')
    op.drop_table('verification_attempt')
