"""The choices party's outbox: events for other parties, written with the change they describe.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from confide.events.outbox import create_outbox

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox(op)


def downgrade() -> None:
    op.drop_table("outbox")
