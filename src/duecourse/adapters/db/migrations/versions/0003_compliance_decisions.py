"""compliance decisions on proposed actions: the blocking rules, the rulebook version, the scheduled moment

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-29 10:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('proposed_action', schema=None) as batch_op:
        batch_op.add_column(sa.Column('compliance_rules', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('rulebook_version', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('proposed_action', schema=None) as batch_op:
        batch_op.drop_column('scheduled_at')
        batch_op.drop_column('rulebook_version')
        batch_op.drop_column('compliance_rules')
