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
    pass  # placeholder: its owner adds the tables (issue 4)


def downgrade() -> None:
    pass
