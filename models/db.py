"""Engine, sessions and schema management for the registry (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

from followup.config.settings import get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _sqlite_pragmas(dbapi_connection, connection_record) -> None:  # pragma: no cover - trivial
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the daily runs
    cursor.execute("PRAGMA busy_timeout=30000")  # two writers wait instead of failing at once
    cursor.close()


#: SQLite's own default: after a commit, copy the WAL back into the database once it holds
#: more than this many pages
WAL_AUTOCHECKPOINT = 1000


def _sqlite_checkpoint_default(dbapi_connection, connection_record, connection_proxy) -> None:  # pragma: no cover - trivial
    """Every use of a pooled connection starts with the default checkpointing, whatever the
    last one chose (see `defer_checkpoint`)."""
    dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")


def defer_checkpoint(connection) -> None:
    """On SQLite, let this transaction's commit leave its pages in the WAL for the next commit
    to checkpoint, instead of copying them into the database file now.

    For a run of transactions that each touch pages all over the same table (the daily pass
    escalates ministry by ministry, and every ministry's items are spread over the whole
    registry): each commit's checkpoint wrote most of the table again and waited for the disk,
    11 s of a 1,000,000-item pass. The next ordinary commit (level 2, or any other write)
    checkpoints everything at once; the connection gets the default back when it is next
    taken from the pool. Nothing on PostgreSQL.
    """
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA wal_autocheckpoint=0")


@lru_cache(maxsize=8)
def get_engine(url: str | None = None) -> Engine:
    """One engine per database URL for the process (the settings' URL by default)."""
    url = url or get_settings().database_url
    parsed = make_url(url)
    if parsed.drivername == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "checkout", _sqlite_checkpoint_default)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    return engine


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


def insert_absent(connection, table, *keys: str):
    """An INSERT that skips rows whose unique key already exists, on SQLite and PostgreSQL.

    What makes repeated and concurrent runs write each reminder or message once.
    """
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=list(keys))


def bulk_insert(connection, table, columns: dict[str, list]) -> None:
    """INSERT many rows straight through the driver (PostgreSQL: COPY; SQLite: executemany), in
    the caller's transaction.

    `columns` maps column name -> its values (one list per column, all the same length). Each
    column's bind processor (dates on SQLite, UTC datetimes, JSON) is applied once per column;
    SQLAlchemy's per-row parameter handling cost the import 2-3x at 500,000 rows.
    """
    names = list(columns)
    if not names or not columns[names[0]]:
        return
    quote = connection.dialect.identifier_preparer.quote
    rows = driver_rows(connection, [(table.c[n], columns[n]) for n in names])
    if connection.dialect.name == "postgresql":
        # COPY: one stream instead of one INSERT per row (the history of 225,000 status
        # changes took 20 s as INSERTs through psycopg)
        sql = f"COPY {quote(table.name)} ({', '.join(quote(n) for n in names)}) FROM STDIN"
        with connection.connection.driver_connection.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
        return
    mark = driver_mark(connection)
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
        f"VALUES ({', '.join([mark] * len(names))})"
    )
    connection.exec_driver_sql(sql, rows)


def update_by_id(connection, table, ids: list, columns: dict[str, list]) -> int:
    """`UPDATE table SET column = value, ... WHERE id = ...` for many rows, through the driver's
    executemany with each column's bind processor applied once per distinct value (as
    `bulk_insert`); returns how many rows matched."""
    if not ids:
        return 0
    quote = connection.dialect.identifier_preparer.quote
    mark = driver_mark(connection)
    sets = ", ".join(f"{quote(name)} = {mark}" for name in columns)
    rows = driver_rows(connection, [*((table.c[name], values) for name, values in columns.items()), (table.c.id, ids)])
    return connection.exec_driver_sql(f"UPDATE {quote(table.name)} SET {sets} WHERE id = {mark}", rows).rowcount


def driver_mark(connection) -> str:
    """The driver's positional placeholder: `?` for sqlite3, `%s` for psycopg."""
    return "?" if connection.dialect.paramstyle == "qmark" else "%s"


def driver_rows(connection, parameters: list[tuple]) -> list[tuple]:
    """Rows of driver parameters from (column, values) pairs, each column's bind processor applied
    once per distinct value: for statements sent through the driver's executemany."""
    dialect = connection.dialect
    processed = []
    for column, values in parameters:
        processor = column.type._cached_bind_processor(dialect)
        processed.append(_processed(processor, values) if processor else values)
    return list(zip(*processed))


def _processed(processor, values: list) -> list:
    """Apply a bind processor once per distinct value: dates and timestamps repeat (a file has a
    few thousand distinct days, an import one timestamp); unhashable values (JSON) go one by one."""
    cache: dict = {}
    out = []
    try:
        for v in values:
            try:
                out.append(cache[v])
            except KeyError:
                cache[v] = p = processor(v)
                out.append(p)
    except TypeError:
        return [processor(v) for v in values]
    return out


def tuples(result) -> list[tuple]:
    """A result's rows as plain tuples, for a DataFrame: pandas probes each Row for attributes,
    and a Row answers a missing one by raising through SQLAlchemy's key lookup (half of the
    time of reading 200,000 rows)."""
    return [tuple(row) for row in result.all()]


def one_of(connection, column, keys):
    """`column IN (keys)` for a large set of keys, fast on both databases.

    PostgreSQL gets one array parameter (`= ANY(:keys)`): psycopg spends seconds parsing a
    statement with 20,000 placeholders. SQLite keeps a plain IN (its limit is 32,766
    parameters; callers send chunks of at most 20,000).
    """
    from sqlalchemy import any_, bindparam
    from sqlalchemy.dialects.postgresql import ARRAY

    keys = list(keys)
    if connection.dialect.name == "postgresql":
        return column == any_(bindparam(None, keys, type_=ARRAY(column.type)))
    return column.in_(keys)


def alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def upgrade_schema(engine: Engine | None = None) -> None:
    """Create or upgrade the schema to the newest migration; a no-op when already current."""
    engine = engine or get_engine()
    cfg = alembic_config(engine)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
