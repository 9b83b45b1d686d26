"""the agent work queue and promises to pay

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 13:15:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

Key = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'call_task',
        sa.Column('task_key', Key, nullable=False, autoincrement=True),
        sa.Column('action_key', Key, nullable=False),
        sa.Column('borrower_key', Key, nullable=False),
        sa.Column('loan_key', Key, nullable=False),
        sa.Column('priority', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('agent', sa.String(length=64), nullable=True),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('contact_key', Key, nullable=True),
        sa.Column('deferred_rules', sa.Text(), nullable=True),
        sa.Column('deferred_reason', sa.Text(), nullable=True),
        sa.Column('result', sa.String(length=24), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['action_key'], ['proposed_action.action_key'], name='fk_call_task_action_key_proposed_action'),
        sa.ForeignKeyConstraint(['borrower_key'], ['borrower.borrower_key'], name='fk_call_task_borrower_key_borrower'),
        sa.ForeignKeyConstraint(['loan_key'], ['loan.loan_key'], name='fk_call_task_loan_key_loan'),
        sa.ForeignKeyConstraint(['contact_key'], ['contact_point.contact_key'], name='fk_call_task_contact_key_contact_point'),
        sa.PrimaryKeyConstraint('task_key', name='pk_call_task'),
        sa.UniqueConstraint('action_key', name='uq_call_task_action_key'),
    )
    op.create_index('ix_call_task_queue', 'call_task', ['state', 'priority', 'scheduled_at'], unique=False)
    op.create_table(
        'promise_to_pay',
        sa.Column('promise_key', Key, nullable=False, autoincrement=True),
        sa.Column('promise_id', sa.String(length=64), nullable=False),
        sa.Column('borrower_key', Key, nullable=False),
        sa.Column('loan_key', Key, nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('due_date', sa.Date(), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('taken_by', sa.String(length=64), nullable=False),
        sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('event_id', sa.String(length=160), nullable=False),
        sa.ForeignKeyConstraint(['borrower_key'], ['borrower.borrower_key'], name='fk_promise_to_pay_borrower_key_borrower'),
        sa.ForeignKeyConstraint(['loan_key'], ['loan.loan_key'], name='fk_promise_to_pay_loan_key_loan'),
        sa.PrimaryKeyConstraint('promise_key', name='pk_promise_to_pay'),
        sa.UniqueConstraint('promise_id', name='uq_promise_to_pay_promise_id'),
    )
    op.create_index('ix_promise_to_pay_borrower_key', 'promise_to_pay', ['borrower_key'], unique=False)
    op.create_index('ix_promise_to_pay_loan_key', 'promise_to_pay', ['loan_key'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_promise_to_pay_loan_key', table_name='promise_to_pay')
    op.drop_index('ix_promise_to_pay_borrower_key', table_name='promise_to_pay')
    op.drop_table('promise_to_pay')
    op.drop_index('ix_call_task_queue', table_name='call_task')
    op.drop_table('call_task')
