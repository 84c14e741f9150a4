"""Alembic environment: migrations are generated from and applied to `SQLModel.metadata`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine
from sqlmodel import SQLModel

import followup.models.followup  # noqa: F401  (registers the tables on the metadata)
import followup.models.registry  # noqa: F401  (registers the tables on the metadata)
import followup.models.replies  # noqa: F401  (registers the tables on the metadata)
import followup.models.users  # noqa: F401  (registers the tables on the metadata)
from followup.models.backend import backend_of
from followup.models.search import include_object

config = context.config
target_metadata = SQLModel.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode copies the table instead
        render_as_batch=backend_of(connection).alters_by_copy,
        compare_type=True,
        # the FTS5 table and the expression index are the migrations' own, not models'
        include_object=include_object,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # `followup init` passes its own connection and transaction
        _configure(connection)
        context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from followup.config.settings import get_settings

        url = get_settings().database_url
    engine = create_engine(url)
    with engine.begin() as connection:
        _configure(connection)
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
