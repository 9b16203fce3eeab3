"""The choices registry: people, choice history and its current-state index, demographics for
identity checks and statistics, proxy authorities, identity challenges and sessions.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", _Seq, primary_key=True, autoincrement=True),
        sa.Column("nhs_number", sa.String(10), nullable=False, unique=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "choice_events",
        sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
        sa.Column("change_id", sa.String(32), nullable=False),
        sa.Column("person_id", _Seq, sa.ForeignKey("people.id"), nullable=False),
        sa.Column("choice", sa.String(16), nullable=False),
        sa.Column("value", sa.Boolean(), nullable=False),
        sa.Column("effective_at", _TS, nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(16), nullable=False),
        sa.Column("proxy", sa.JSON(), nullable=True),
    )
    op.create_index("ix_choice_events_change_id", "choice_events", ["change_id"])
    op.create_index(
        "ix_choice_events_person_choice",
        "choice_events",
        ["person_id", "choice", "effective_at", "seq"],
    )
    op.create_table(
        "choice_state",
        sa.Column("person_id", _Seq, sa.ForeignKey("people.id"), primary_key=True),
        sa.Column("choice", sa.String(16), primary_key=True),
        sa.Column("value", sa.Boolean(), nullable=False),
        sa.Column("effective_at", _TS, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_choice_state_choice_value", "choice_state", ["choice", "value"])
    op.create_table(
        "demographics",
        sa.Column("person_id", _Seq, sa.ForeignKey("people.id"), primary_key=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("postcode", sa.String(8), nullable=True),
        sa.Column("practice", sa.String(8), nullable=True),
        sa.Column("district", sa.String(4), nullable=True),
        sa.Column("contact", sa.String(200), nullable=True),
    )
    op.create_table(
        "proxy_authorities",
        sa.Column("id", _Seq, primary_key=True, autoincrement=True),
        sa.Column("person_id", _Seq, sa.ForeignKey("people.id"), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("reference", sa.String(32), nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
    )
    op.create_index("ix_proxy_authorities_person_id", "proxy_authorities", ["person_id"])
    op.create_table(
        "identity_challenges",
        sa.Column("challenge_id", sa.String(64), primary_key=True),
        sa.Column("person_id", _Seq, sa.ForeignKey("people.id"), nullable=True),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", _TS, nullable=True),
    )
    op.create_table(
        "identity_attempts",
        sa.Column("id", _Seq, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_index("ix_identity_attempts_key", "identity_attempts", ["key", "kind", "at"])
    op.create_table(
        "identity_sessions",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("person_id", _Seq, sa.ForeignKey("people.id"), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "identity_sessions",
        "identity_attempts",
        "identity_challenges",
        "proxy_authorities",
        "demographics",
        "choice_state",
        "choice_events",
        "people",
    ):
        op.drop_table(table)
