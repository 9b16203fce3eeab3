"""Queries keep the definition they were read as, and operators' details of failures.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _schema() -> str | None:
    return context.config.attributes.get("schema")


def upgrade() -> None:
    op.add_column("queries", sa.Column("definition", sa.JSON(), nullable=True), schema=_schema())
    op.add_column("queries", sa.Column("detail", sa.Text(), nullable=True), schema=_schema())


def downgrade() -> None:
    op.drop_column("queries", "detail", schema=_schema())
    op.drop_column("queries", "definition", schema=_schema())
