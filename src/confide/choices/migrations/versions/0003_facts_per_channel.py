"""Each channel keeps its own fact: ``choice_state`` is keyed by person, choice and channel.

Before, one row per person and choice held the latest change from any channel, so a GP's type 1
withdrawal could switch off a share-nothing chosen online. The index is rebuilt from the full
history (``choice_events``, unchanged), latest fact per channel.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def _rebuild(per_channel: bool) -> None:
    """Fill ``choice_state`` with the latest event per person and choice (and channel).

    Built from Table objects, so PostgreSQL's per-party schema is applied as for any query."""
    meta = sa.MetaData()
    cols = ("person_id", "choice", "channel", "value", "effective_at", "seq")
    events = sa.Table("choice_events", meta, *(sa.Column(c) for c in cols))
    kept = cols if per_channel else tuple(c for c in cols if c != "channel")
    state = sa.Table("choice_state", meta, *(sa.Column(c) for c in kept))
    key = [events.c.person_id, events.c.choice] + ([events.c.channel] if per_channel else [])
    rank = (
        sa.func.row_number()
        .over(partition_by=key, order_by=[events.c.effective_at.desc(), events.c.seq.desc()])
        .label("n")
    )
    ranked = sa.select(*(events.c[c] for c in kept), rank).subquery("ranked")
    latest = sa.select(*(ranked.c[c] for c in kept)).where(ranked.c.n == 1)
    op.get_bind().execute(sa.insert(state).from_select(list(kept), latest))


def upgrade() -> None:
    op.drop_index("ix_choice_state_choice_value", table_name="choice_state")
    op.drop_table("choice_state")
    op.create_table(
        "choice_state",
        sa.Column("person_id", _Seq, sa.ForeignKey("people.id"), primary_key=True),
        sa.Column("choice", sa.String(16), primary_key=True),
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("value", sa.Boolean(), nullable=False),
        sa.Column("effective_at", _TS, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_choice_state_choice_value", "choice_state", ["choice", "value"])
    _rebuild(per_channel=True)


def downgrade() -> None:
    op.drop_index("ix_choice_state_choice_value", table_name="choice_state")
    op.drop_table("choice_state")
    op.create_table(
        "choice_state",
        sa.Column("person_id", _Seq, sa.ForeignKey("people.id"), primary_key=True),
        sa.Column("choice", sa.String(16), primary_key=True),
        sa.Column("value", sa.Boolean(), nullable=False),
        sa.Column("effective_at", _TS, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_choice_state_choice_value", "choice_state", ["choice", "value"])
    _rebuild(per_channel=False)
