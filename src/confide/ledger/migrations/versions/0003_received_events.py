"""Events the ledger has already turned into entries, so a redelivered event adds nothing.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "received_events",
        sa.Column("event_key", sa.String(200), primary_key=True),
        sa.Column("leaf_index", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("received_events")
