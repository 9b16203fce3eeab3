"""Each project's output protection, set by its approver (NULL: the default rule set).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _schema() -> str | None:
    return context.config.attributes.get("schema")


def upgrade() -> None:
    for table in ("projects", "approvals"):
        op.add_column(table, sa.Column("protection", sa.JSON(), nullable=True), schema=_schema())


def downgrade() -> None:
    for table in ("approvals", "projects"):
        op.drop_column(table, "protection", schema=_schema())
