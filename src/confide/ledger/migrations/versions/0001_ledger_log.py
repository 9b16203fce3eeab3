"""The transparency log: entries, subtree hashes, tree state and checkpoints.

Revision ID: 0001
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "entries",
        sa.Column("leaf_index", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("leaf_input", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_index("ix_entries_leaf_hash", "entries", ["leaf_hash"])
    op.create_table(
        "nodes",
        # node_id = level * 2**40 + index of a complete perfect subtree above the leaves
        sa.Column("node_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    state = op.create_table(
        "tree_state",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("frontier", sa.LargeBinary(), nullable=False),
    )
    # The empty log: size 0, root SHA-256 of nothing (RFC 6962 section 2.1).
    op.bulk_insert(
        state, [{"id": 1, "size": 0, "root": hashlib.sha256(b"").digest(), "frontier": b""}]
    )
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_checkpoints_size", "checkpoints", ["size"])


def downgrade() -> None:
    op.drop_table("checkpoints")
    op.drop_table("tree_state")
    op.drop_table("nodes")
    op.drop_table("entries")
