"""international recommendations: UPR state and response, follow-up selection, tags, follow-up grades

Revision ID: 0005
Revises: 0004

UN mechanisms' recommendations arrive from the Universal Human Rights Index and UPR matrices:
the recommending state and the state's response (supported / noted) of a UPR recommendation,
whether a treaty body selected it for its follow-up procedure, its themes / affected persons /
SDGs (tags, for triage, filters and the report), and the committee's grade per follow-up round.
Only columns are added to `recommendation` (SQLite adds them in place, no table copy).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from followup.models.types import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("recommendation") as batch:
        batch.add_column(sa.Column("recommending_state", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("response", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("follow_up", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "recommendation_tag",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("recommendation_id", sa.Integer(), sa.ForeignKey("recommendation.id"), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("value", sa.String(length=300), nullable=False),
        sa.UniqueConstraint("recommendation_id", "kind", "value", name="uq_recommendation_tag"),
    )
    op.create_index("ix_recommendation_tag_recommendation_id", "recommendation_tag", ["recommendation_id"])
    op.create_index("ix_recommendation_tag_kind_value", "recommendation_tag", ["kind", "value"])
    op.create_table(
        "follow_up_grade",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("recommendation_id", sa.Integer(), sa.ForeignKey("recommendation.id"), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("grade", sa.String(length=2), nullable=False),
        sa.Column("graded_on", sa.Date(), nullable=False),
        sa.Column("document", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("recommendation_id", "round", name="uq_follow_up_grade_round"),
    )
    op.create_index("ix_follow_up_grade_recommendation_id", "follow_up_grade", ["recommendation_id"])


def downgrade() -> None:
    op.drop_index("ix_follow_up_grade_recommendation_id", table_name="follow_up_grade")
    op.drop_table("follow_up_grade")
    op.drop_index("ix_recommendation_tag_kind_value", table_name="recommendation_tag")
    op.drop_index("ix_recommendation_tag_recommendation_id", table_name="recommendation_tag")
    op.drop_table("recommendation_tag")
    with op.batch_alter_table("recommendation") as batch:
        batch.drop_column("follow_up")
        batch.drop_column("response")
        batch.drop_column("recommending_state")
