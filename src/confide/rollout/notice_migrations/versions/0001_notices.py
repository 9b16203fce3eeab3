"""The practice's notice register: one row per person told, kept at the practice.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("practice", sa.String(8), primary_key=True),
        sa.Column("nhs_number", sa.String(10), primary_key=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("sent_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_on", sa.Date(), nullable=False),
        sa.Column("resolution", sa.String(24)),
        sa.Column("resolved_on", sa.Date()),
    )


def downgrade() -> None:
    op.drop_table("notices")
