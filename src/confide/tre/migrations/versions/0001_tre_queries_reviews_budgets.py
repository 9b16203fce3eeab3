"""Queries and their outcomes, output checkers' votes, and each project's privacy budget.

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
        "queries",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("project_id", sa.String(80), nullable=False),
        sa.Column("project_slug", sa.String(80), nullable=False),
        sa.Column("organisation_id", sa.String(80), nullable=False),
        sa.Column("person_id", sa.String(80), nullable=False),
        sa.Column("sql_text", sa.Text(), nullable=False),
        sa.Column("sql_digest", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("preset", sa.String(32), nullable=False),
        sa.Column("epsilon", sa.Float(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("release_id", sa.String(32), nullable=True),
        sa.Column("release", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_queries_project_id", "queries", ["project_id"])
    op.create_index("ix_queries_status", "queries", ["status"])
    op.create_table(
        "votes",
        sa.Column("query_id", sa.String(32), sa.ForeignKey("queries.id"), primary_key=True),
        sa.Column("checker_id", sa.String(80), primary_key=True),
        sa.Column("approve", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "budgets",
        sa.Column("project_id", sa.String(80), primary_key=True),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("spent", sa.Float(), nullable=False),
        sa.Column("delta_spent", sa.Float(), nullable=False),
    )
    op.create_table(
        "spends",
        sa.Column("query_id", sa.String(32), primary_key=True),
        sa.Column("project_id", sa.String(80), nullable=False),
        sa.Column("epsilon", sa.Float(), nullable=False),
        sa.Column("delta", sa.Float(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_spends_project_id", "spends", ["project_id"])


def downgrade() -> None:
    op.drop_table("spends")
    op.drop_table("budgets")
    op.drop_table("votes")
    op.drop_table("queries")
