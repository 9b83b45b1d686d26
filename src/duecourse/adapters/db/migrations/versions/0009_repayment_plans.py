"""repayment plans: debtor finances, plans offered and accepted, plan instalments

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 13:05:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

Key = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'debtor_finances',
        sa.Column('finances_key', Key, nullable=False, autoincrement=True),
        sa.Column('borrower_key', Key, nullable=False),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('recorded_by', sa.String(length=64), nullable=False),
        sa.Column('finances_enc', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['borrower_key'], ['borrower.borrower_key'], name='fk_debtor_finances_borrower_key_borrower'),
        sa.PrimaryKeyConstraint('finances_key', name='pk_debtor_finances'),
    )
    op.create_index('ix_debtor_finances_borrower_key', 'debtor_finances', ['borrower_key'], unique=False)
    op.create_table(
        'repayment_plan',
        sa.Column('plan_key', Key, nullable=False, autoincrement=True),
        sa.Column('plan_id', sa.String(length=64), nullable=False),
        sa.Column('loan_key', Key, nullable=False),
        sa.Column('borrower_key', Key, nullable=False),
        sa.Column('finances_key', Key, nullable=True),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('offered_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('offered_by', sa.String(length=64), nullable=False),
        sa.Column('offered_role', sa.String(length=16), nullable=False),
        sa.Column('decided_by', sa.String(length=64), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decision_reason', sa.Text(), nullable=True),
        sa.Column('effective_date', sa.Date(), nullable=True),
        sa.Column('credit_amount', sa.BigInteger(), nullable=True),
        sa.Column('restructured', sa.BigInteger(), nullable=False),
        sa.Column('plan_interest', sa.BigInteger(), nullable=False),
        sa.Column('waived', sa.JSON(), nullable=False),
        sa.Column('watch_until', sa.Date(), nullable=True),
        sa.Column('ended_on', sa.Date(), nullable=True),
        sa.Column('option', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['loan_key'], ['loan.loan_key'], name='fk_repayment_plan_loan_key_loan'),
        sa.ForeignKeyConstraint(['borrower_key'], ['borrower.borrower_key'], name='fk_repayment_plan_borrower_key_borrower'),
        sa.ForeignKeyConstraint(['finances_key'], ['debtor_finances.finances_key'], name='fk_repayment_plan_finances_key_debtor_finances'),
        sa.PrimaryKeyConstraint('plan_key', name='pk_repayment_plan'),
        sa.UniqueConstraint('plan_id', name='uq_repayment_plan_plan_id'),
    )
    op.create_index('ix_repayment_plan_loan_key', 'repayment_plan', ['loan_key'], unique=False)
    op.create_table(
        'plan_instalment',
        sa.Column('plan_key', Key, nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('due_date', sa.Date(), nullable=False),
        sa.Column('principal', sa.BigInteger(), nullable=False),
        sa.Column('interest', sa.BigInteger(), nullable=False),
        sa.Column('fee', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['plan_key'], ['repayment_plan.plan_key'], name='fk_plan_instalment_plan_key_repayment_plan'),
        sa.PrimaryKeyConstraint('plan_key', 'seq', name='pk_plan_instalment'),
    )


def downgrade() -> None:
    op.drop_table('plan_instalment')
    op.drop_index('ix_repayment_plan_loan_key', table_name='repayment_plan')
    op.drop_table('repayment_plan')
    op.drop_index('ix_debtor_finances_borrower_key', table_name='debtor_finances')
    op.drop_table('debtor_finances')
