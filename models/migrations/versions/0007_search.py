"""full-text search over the recommendations' texts, and the indexes of the registry's list

Revision ID: 0007
Revises: 0006

Every recommendation keeps its text folded for search (`recommendation.search_text`,
`models.search.fold`: case, ё/е and the Kazakh letters folded the same way on both databases),
filled here for the rows already there, in batches, and by every write of a text from now on.
Each database indexes the folded text its own way (`Backend.text_search_ddl`: SQLite an FTS5
table kept in step by triggers, PostgreSQL a GIN index on its 'simple' tsvector). The registry's
list filters by ministry, status, facility and dates and sorts by deadline or date of issue:
their indexes come here too.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from followup.models.backend import backend_of
from followup.models.search import fold

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: rows folded per statement when filling the column of an existing registry
BATCH = 5_000

INDEXES = {
    "ix_recommendation_ministry_status_due_on": ["ministry_code", "status", "due_on"],
    "ix_recommendation_facility_id": ["facility_id"],
    "ix_recommendation_due_on": ["due_on"],
    "ix_recommendation_issued_on": ["issued_on"],
}


def _fill_search_text(connection: sa.Connection) -> None:
    """Fold the texts already in the registry, BATCH rows at a time (by id, so a large registry
    is never read at once)."""
    r = sa.table("recommendation", sa.column("id", sa.Integer()), sa.column("text", sa.Text()),
                 sa.column("search_text", sa.Text()))
    write = sa.update(r).where(r.c.id == sa.bindparam("b_id")).values(search_text=sa.bindparam("b_text"))
    last = 0
    while True:
        rows = connection.execute(sa.select(r.c.id, r.c.text).where(r.c.id > last).order_by(r.c.id).limit(BATCH)).all()
        if not rows:
            return
        connection.execute(write, [{"b_id": i, "b_text": fold(t)} for i, t in rows])
        last = rows[-1][0]


def upgrade() -> None:
    with op.batch_alter_table("recommendation") as batch:
        batch.add_column(sa.Column("search_text", sa.Text(), nullable=True))
    for name, columns in INDEXES.items():
        op.create_index(name, "recommendation", columns)
    connection = op.get_bind()
    _fill_search_text(connection)
    for statement in backend_of(connection).text_search_ddl():
        op.execute(statement)


def downgrade() -> None:
    connection = op.get_bind()
    for statement in backend_of(connection).drop_text_search_ddl():
        op.execute(statement)
    for name in INDEXES:
        op.drop_index(name, table_name="recommendation")
    with op.batch_alter_table("recommendation") as batch:
        batch.drop_column("search_text")
