"""ministries' replies: the reply portal's replies, claims and evidence; link generations; review marks

Revision ID: 0006
Revises: 0005

A ministry answers on its page behind a signed link (or the office types a paper reply): the
reply, what it claims item by item, and its evidence files are kept before anything moves.
`ministry.link_generation` lets the office revoke every link of a ministry at once, and
`ministry.approval` says whether a second official confirms its replies. An item whose claim
waits for the office's review is marked (`recommendation.awaiting_review`), and an item of an
individualized recommendation that was answered says so (`individualized_item.answered_on`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from followup.models.types import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ministry") as batch:
        batch.add_column(sa.Column("approval", sa.String(length=10), nullable=False, server_default="required"))
        batch.add_column(sa.Column("link_generation", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("recommendation") as batch:
        batch.add_column(sa.Column("awaiting_review", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "reply",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ministry_code", sa.String(length=32), sa.ForeignKey("ministry.code"), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("letter_reference", sa.String(length=60), nullable=True),
        sa.Column("responded_on", sa.Date(), nullable=False),
        sa.Column("author_name", sa.String(length=200), nullable=False),
        sa.Column("author_position", sa.String(length=200), nullable=True),
        sa.Column("author_email", sa.String(length=200), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("confirmed_by_name", sa.String(length=200), nullable=True),
        sa.Column("confirmed_by_position", sa.String(length=200), nullable=True),
        sa.Column("confirmed_by_email", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("confirmed_at", UTCDateTime(), nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_reply_state", "reply", ["state"])
    op.create_index("ix_reply_ministry_code", "reply", ["ministry_code"])
    op.create_table(
        "reply_claim",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("reply_id", sa.Integer(), sa.ForeignKey("reply.id"), nullable=False),
        sa.Column("recommendation_id", sa.Integer(), sa.ForeignKey("recommendation.id"), nullable=False),
        sa.Column("claimed_status", sa.String(length=32), nullable=False),
        sa.Column("measures", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("reviewed_by", sa.String(length=200), nullable=True),
        sa.Column("reviewed_at", UTCDateTime(), nullable=True),
        sa.Column("review_comment", sa.Text(), nullable=True),
        sa.UniqueConstraint("reply_id", "recommendation_id", name="uq_reply_claim"),
    )
    op.create_index("ix_reply_claim_reply_id", "reply_claim", ["reply_id"])
    op.create_index("ix_reply_claim_recommendation_id", "reply_claim", ["recommendation_id"])
    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("reply_id", sa.Integer(), sa.ForeignKey("reply.id"), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_evidence_reply_id", "evidence", ["reply_id"])
    with op.batch_alter_table("individualized_item") as batch:
        batch.add_column(sa.Column("answered_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("reply_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_individualized_item_reply_id", "reply", ["reply_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("individualized_item") as batch:
        batch.drop_constraint("fk_individualized_item_reply_id", type_="foreignkey")
        batch.drop_column("reply_id")
        batch.drop_column("answered_on")
    op.drop_index("ix_evidence_reply_id", table_name="evidence")
    op.drop_table("evidence")
    op.drop_index("ix_reply_claim_recommendation_id", table_name="reply_claim")
    op.drop_index("ix_reply_claim_reply_id", table_name="reply_claim")
    op.drop_table("reply_claim")
    op.drop_index("ix_reply_ministry_code", table_name="reply")
    op.drop_index("ix_reply_state", table_name="reply")
    op.drop_table("reply")
    with op.batch_alter_table("recommendation") as batch:
        batch.drop_column("awaiting_review")
    with op.batch_alter_table("ministry") as batch:
        batch.drop_column("link_generation")
        batch.drop_column("approval")
