"""the day of the run that recorded a status change (its as_of), filled by the daily pass

Revision ID: 0010
Revises: 0009

A pass run for a past day (`--as-of`, a missed day caught up) records its changes today, but
they belong to that day: the digest counts "new overdue" by the run's day, not by the clock.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a plain ADD COLUMN (no batch copy of the table): status_change keeps its append-only triggers
    op.add_column("status_change", sa.Column("recorded_on", sa.Date(), nullable=True))


def downgrade() -> None:
    op.drop_column("status_change", "recorded_on")
