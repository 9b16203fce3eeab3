"""The erasure register: tombstones that ingest consults, and each store's confirmation.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "erased_people",
        sa.Column("pseudonym", sa.String(64), primary_key=True),
        sa.Column("erasure_id", sa.String(32), nullable=False),
        sa.Column("requested_at", _TS, nullable=False),
    )
    op.create_index("ix_erased_people_erasure_id", "erased_people", ["erasure_id"])
    op.create_table(
        "erasure_steps",
        sa.Column("erasure_id", sa.String(32), primary_key=True),
        sa.Column("store", sa.String(40), primary_key=True),
        sa.Column("requested_at", _TS, nullable=False),
        sa.Column("confirmed_at", _TS, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("erasure_steps")
    op.drop_index("ix_erased_people_erasure_id", table_name="erased_people")
    op.drop_table("erased_people")
