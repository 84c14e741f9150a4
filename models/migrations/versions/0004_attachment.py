"""notification attachment: the complete item list of a long reminder letter

Revision ID: 0004
Revises: 0003

A reminder letter lists at most `letters.listed_items` (config/policy.yaml) per section; the
complete list travels with it as a CSV file, stored with the message in the outbox so that
what is sent is what the run decided, whatever changes in the registry before dispatch.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notification") as batch:
        batch.add_column(sa.Column("attachment", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notification") as batch:
        batch.drop_column("attachment")
