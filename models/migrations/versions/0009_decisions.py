"""drafts of individualized recommendations and the Commissioner's level-2 decisions (filled by that work)

Revision ID: 0009
Revises: 0008

With `individualized.approval: required` an individualized recommendation is drawn up as a
draft (no response deadline yet) until a head approves it with the office's outgoing number
and date and signs it; `decision` keeps each level-2 decision with its date and basis.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from followup.models.types import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("individualized_recommendation") as batch:
        batch.alter_column("response_due_on", existing_type=sa.Date(), nullable=True)
        batch.add_column(sa.Column("outgoing_number", sa.String(length=60), nullable=True))
        batch.add_column(sa.Column("outgoing_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("approved_by", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("approved_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("signer_name", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("signer_position", sa.String(length=200), nullable=True))
    op.create_table(
        "decision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("recommendation_id", sa.Integer(), sa.ForeignKey("recommendation.id"), nullable=False),
        sa.Column("individualized_id", sa.Integer(), sa.ForeignKey("individualized_recommendation.id"), nullable=True),
        sa.Column("decision", sa.String(length=30), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    with op.batch_alter_table("decision") as batch:
        batch.create_index("ix_decision_recommendation_id", ["recommendation_id"])
        batch.create_index("ix_decision_decided_on", ["decided_on"])


def downgrade() -> None:
    op.drop_table("decision")
    with op.batch_alter_table("individualized_recommendation") as batch:
        for column in ("signer_position", "signer_name", "approved_at", "approved_by", "outgoing_date", "outgoing_number"):
            batch.drop_column(column)
        batch.alter_column("response_due_on", existing_type=sa.Date(), nullable=False)
