"""Engine, sessions and schema management for the registry (SQLite or PostgreSQL)."""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, Table, inspect, text
from sqlalchemy.engine import Connection, Result
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from followup.config.settings import get_settings
from followup.models.backend import backend_for_url, backend_of

if TYPE_CHECKING:  # Alembic is imported only when the schema must change (a third of a second)
    from alembic.config import Config as AlembicConfig

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def defer_checkpoint(connection: Connection) -> None:
    """On SQLite, let this transaction's commit leave its pages in the WAL for the next commit
    to checkpoint instead of copying them into the database file now (the daily pass's
    ministry-by-ministry escalations: see `SqliteBackend.defer_checkpoint`). Nothing on PostgreSQL.
    """
    backend_of(connection).defer_checkpoint(connection)


#: the engines `get_engine` made, for `dispose_engines` (weakly: one dropped from the cache goes as before)
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


@lru_cache(maxsize=8)
def get_engine(url: str | None = None) -> Engine:
    """One engine per database URL for the process (the settings' URL by default), made by the
    database's backend (chosen here, once; `backend_of` finds it again)."""
    url = url or get_settings().database_url
    engine = backend_for_url(url).create_engine(url)
    _ENGINES.add(engine)
    return engine


def dispose_engines() -> None:
    """Close the pooled connections of every engine `get_engine` made, as the interpreter does
    when it collects them at exit (SQLite then checkpoints its WAL and removes it; PostgreSQL
    sees the session end): what the command line does before it leaves (interfaces/cli.py)."""
    for engine in list(_ENGINES):
        engine.dispose()


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session whose work commits together at the end, or not at all."""
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def insert_absent(connection: Connection, table: Table, *keys: str) -> Insert:
    """An INSERT that skips rows whose unique key already exists, on SQLite and PostgreSQL.

    What makes repeated and concurrent runs write each reminder or message once.
    """
    return backend_of(connection).insert_absent(table, *keys)


def bulk_insert(connection: Connection, table: Table, columns: Mapping[str, Sequence[Any]]) -> None:
    """INSERT many rows straight through the driver (PostgreSQL: COPY; SQLite: executemany), in
    the caller's transaction.

    `columns` maps column name -> its values (one list per column, all the same length). Each
    column's bind processor (dates on SQLite, UTC datetimes, JSON) is applied once per column;
    SQLAlchemy's per-row parameter handling cost the import 2-3x at 500,000 rows.
    """
    backend_of(connection).bulk_insert(connection, table, columns)


@contextmanager
def text_index_in_one_pass(connection: Connection) -> Iterator[None]:
    """Recommendations inserted inside the block (in the caller's transaction, which must roll
    back on an error) enter the full-text index together at its end instead of one by one: a
    bulk import's rows on SQLite (see `SqliteBackend.text_index_in_one_pass`); nothing changes on
    PostgreSQL."""
    with backend_of(connection).text_index_in_one_pass(connection):
        yield


def update_by_id(connection: Connection, table: Table, ids: Sequence[Any], columns: Mapping[str, Sequence[Any]]) -> int:
    """`UPDATE table SET column = value, ... WHERE id = ...` for many rows, through the driver's
    executemany with each column's bind processor applied once per distinct value (as
    `bulk_insert`); returns how many rows matched."""
    return backend_of(connection).update_by_id(connection, table, ids, columns)


def tuples(result: Result[Any]) -> list[tuple[Any, ...]]:
    """A result's rows as plain tuples, for a DataFrame: pandas probes each Row for attributes,
    and a Row answers a missing one by raising through SQLAlchemy's key lookup (half of the
    time of reading 200,000 rows)."""
    return [tuple(row) for row in result.all()]


def columns_of(result: Result[Any], *, shared: Iterable[str] = (), batch: int = 20_000) -> dict[str, list[Any]]:
    """A result's columns as plain lists, for a DataFrame (not Rows: see `tuples`), read a batch
    of rows at a time, so that the rows as fetched never all live at once.

    Each value of a `shared` column (few distinct values: a code, a status, a date) is kept as
    one object per distinct value: the driver makes a new object for every cell, and a large
    ministry's open items in a backlog (300,000 rows of codes, statuses and dates) held their
    frame twice over in copies of the same few thousand values.
    """
    names = list(result.keys())
    out: dict[str, list[Any]] = {name: [] for name in names}
    pools: dict[str, dict[Any, Any]] = {name: {} for name in shared if name in out}
    for rows in result.partitions(batch):
        for name, values in zip(names, zip(*rows, strict=True), strict=True):
            pool = pools.get(name)
            out[name].extend(values if pool is None else [pool.setdefault(v, v) for v in values])
    return out


def one_of(connection: Connection, column: ColumnElement[Any], keys: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN (keys)` for a large set of keys, fast on both databases.

    PostgreSQL gets one array parameter (`= ANY(:keys)`): psycopg spends seconds parsing a
    statement with 20,000 placeholders. SQLite keeps a plain IN (its limit is 32,766
    parameters; callers send chunks of at most 20,000).
    """
    return backend_of(connection).one_of(column, keys)


def alembic_config(engine: Engine) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


_REVISION = re.compile(r"""^(down_revision|revision)\b[^=]*=\s*(?:None|['"]([^'"]+)['"])""", re.MULTILINE)


@lru_cache(maxsize=1)
def head_revision() -> str:
    """The newest migration's revision: the one no other migration names as its down_revision,
    read from the files of migrations/versions/ without importing Alembic (a third of a second
    of every command). tests/test_registry.py checks it against Alembic's own answer."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for name, value in _REVISION.findall(path.read_text(encoding="utf-8")):
            if value:
                (revisions if name == "revision" else parents).add(value)
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"{MIGRATIONS_DIR / 'versions'}: expected one head revision, found {sorted(heads) or 'none'}")
    return heads.pop()


def schema_revision(connection: Connection) -> str | None:
    """The revision the registry's schema is at (alembic_version), None for an empty database."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return versions[0] if len(versions) == 1 else None


def upgrade_schema(engine: Engine | None = None) -> None:
    """Create or upgrade the schema to the newest migration; a no-op when already current
    (then Alembic is not even imported)."""
    engine = engine or get_engine()
    with engine.connect() as connection:
        if schema_revision(connection) == head_revision():
            return
    from alembic import command

    cfg = alembic_config(engine)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
