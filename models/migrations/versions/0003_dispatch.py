"""notification dispatch: backoff, claims, where each message went

Revision ID: 0003
Revises: 0002

The dispatcher claims queued notifications (status `sending`, `claimed_at`) before it sends
them, so two dispatchers never send the same row twice at once, and a claim left by a crashed
worker is taken again after a lease: a crash may resend, it never loses.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import followup.models.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notification") as batch:
        batch.add_column(sa.Column("next_attempt_at", followup.models.types.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("claimed_at", followup.models.types.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("delivered_to", sa.Text(), nullable=True))
        batch.create_index("ix_notification_recipient", ["recipient"])


def downgrade() -> None:
    with op.batch_alter_table("notification") as batch:
        batch.drop_index("ix_notification_recipient")
        batch.drop_column("delivered_to")
        batch.drop_column("claimed_at")
        batch.drop_column("next_attempt_at")
