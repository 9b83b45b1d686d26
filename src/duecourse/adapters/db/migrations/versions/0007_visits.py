"""staff, certifications, visits, teams, evidence

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 13:15:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

Key = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'staff',
        sa.Column('staff_key', Key, nullable=False, autoincrement=True),
        sa.Column('staff_id', sa.String(length=32), nullable=False),
        sa.Column('name_enc', sa.LargeBinary(), nullable=False),
        sa.Column('badge', sa.String(length=32), nullable=False),
        sa.Column('region', sa.String(length=64), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('staff_key', name='pk_staff'),
        sa.UniqueConstraint('staff_id', name='uq_staff_staff_id'),
        sa.UniqueConstraint('badge', name='uq_staff_badge'),
    )
    op.create_table(
        'staff_certification',
        sa.Column('certification_key', Key, nullable=False, autoincrement=True),
        sa.Column('staff_key', Key, nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('issued_on', sa.Date(), nullable=False),
        sa.Column('expires_on', sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(['staff_key'], ['staff.staff_key'], name='fk_staff_certification_staff_key_staff'),
        sa.PrimaryKeyConstraint('certification_key', name='pk_staff_certification'),
        sa.UniqueConstraint('staff_key', 'kind', 'issued_on', name='uq_staff_certification_staff_key'),
    )
    op.create_index('ix_staff_certification_staff_key', 'staff_certification', ['staff_key'], unique=False)
    op.create_table(
        'visit_approval',
        sa.Column('approval_key', Key, nullable=False, autoincrement=True),
        sa.Column('borrower_key', Key, nullable=False),
        sa.Column('approved_by', sa.String(length=64), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('approved_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('valid_until', sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(['borrower_key'], ['borrower.borrower_key'], name='fk_visit_approval_borrower_key_borrower'),
        sa.PrimaryKeyConstraint('approval_key', name='pk_visit_approval'),
    )
    op.create_index('ix_visit_approval_borrower_key', 'visit_approval', ['borrower_key'], unique=False)
    op.create_table(
        'visit',
        sa.Column('visit_key', Key, nullable=False, autoincrement=True),
        sa.Column('visit_id', sa.String(length=32), nullable=False),
        sa.Column('action_key', Key, nullable=False),
        sa.Column('borrower_key', Key, nullable=False),
        sa.Column('loan_key', Key, nullable=False),
        sa.Column('contact_key', Key, nullable=False),
        sa.Column('status', sa.String(length=24), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('balance', sa.BigInteger(), nullable=False),
        sa.Column('expected_recovery', sa.BigInteger(), nullable=False),
        sa.Column('cost', sa.BigInteger(), nullable=False),
        sa.Column('office_id', sa.String(length=32), nullable=False),
        sa.Column('distance_m', sa.Integer(), nullable=False),
        sa.Column('eligibility', sa.JSON(), nullable=False),
        sa.Column('window_start', sa.Date(), nullable=False),
        sa.Column('window_end', sa.Date(), nullable=False),
        sa.Column('planned_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('notice_issued_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('notice_letter', sa.String(length=128), nullable=True),
        sa.Column('notice_delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('notice_delivery', sa.String(length=32), nullable=True),
        sa.Column('scheduled_start', sa.DateTime(timezone=True), nullable=True),
        sa.Column('scheduled_end', sa.DateTime(timezone=True), nullable=True),
        sa.Column('checked_in_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('check_in_latitude', sa.Float(), nullable=True),
        sa.Column('check_in_longitude', sa.Float(), nullable=True),
        sa.Column('checked_out_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('check_out_latitude', sa.Float(), nullable=True),
        sa.Column('check_out_longitude', sa.Float(), nullable=True),
        sa.Column('outcome', sa.JSON(), nullable=True),
        sa.Column('reported_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['action_key'], ['proposed_action.action_key'], name='fk_visit_action_key_proposed_action'),
        sa.ForeignKeyConstraint(['borrower_key'], ['borrower.borrower_key'], name='fk_visit_borrower_key_borrower'),
        sa.ForeignKeyConstraint(['loan_key'], ['loan.loan_key'], name='fk_visit_loan_key_loan'),
        sa.ForeignKeyConstraint(['contact_key'], ['contact_point.contact_key'], name='fk_visit_contact_key_contact_point'),
        sa.PrimaryKeyConstraint('visit_key', name='pk_visit'),
        sa.UniqueConstraint('visit_id', name='uq_visit_visit_id'),
        sa.UniqueConstraint('action_key', name='uq_visit_action_key'),
    )
    op.create_index('ix_visit_borrower_key', 'visit', ['borrower_key'], unique=False)
    op.create_table(
        'visit_team',
        sa.Column('visit_key', Key, nullable=False),
        sa.Column('staff_key', Key, nullable=False),
        sa.ForeignKeyConstraint(['visit_key'], ['visit.visit_key'], name='fk_visit_team_visit_key_visit'),
        sa.ForeignKeyConstraint(['staff_key'], ['staff.staff_key'], name='fk_visit_team_staff_key_staff'),
        sa.PrimaryKeyConstraint('visit_key', 'staff_key', name='pk_visit_team'),
    )
    op.create_table(
        'visit_evidence',
        sa.Column('visit_key', Key, nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('media_type', sa.String(length=128), nullable=False),
        sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['visit_key'], ['visit.visit_key'], name='fk_visit_evidence_visit_key_visit'),
        sa.PrimaryKeyConstraint('visit_key', 'sha256', name='pk_visit_evidence'),
    )


def downgrade() -> None:
    op.drop_table('visit_evidence')
    op.drop_table('visit_team')
    op.drop_index('ix_visit_borrower_key', table_name='visit')
    op.drop_table('visit')
    op.drop_index('ix_visit_approval_borrower_key', table_name='visit_approval')
    op.drop_table('visit_approval')
    op.drop_index('ix_staff_certification_staff_key', table_name='staff_certification')
    op.drop_table('staff_certification')
    op.drop_table('staff')
