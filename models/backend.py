"""Every difference between SQLite and PostgreSQL, in one object per kind of database.

The registry runs on both databases, and a few operations must be written differently on each
(the step locks, the fast bulk paths, the daily pass's status UPDATE, checkpoints, large IN
lists, ON CONFLICT, how a timestamp is stored, a consistent read, creating the database). Each
of them is a method of `Backend`; `SqliteBackend` and `PostgresBackend` implement them. Which
one applies is decided once, from the URL, when `models.db.get_engine` makes the engine
(`backend_for_url`), and found again from any engine, connection or dialect with `backend_of`:
callers never test the dialect's name themselves.

The fast paths hand rows straight to the driver (COPY on PostgreSQL, executemany on SQLite)
with each column's bind processor applied once per column (`driver_rows`): SQLAlchemy's
per-row parameter handling cost the import and the daily pass 2-3x. The processors come from
`bind_processor`, the one place that asks SQLAlchemy for them, through public API only
(tests/test_backend.py checks it still gives what SQLAlchemy itself applies).
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from sqlalchemy import (
    Engine,
    Integer,
    Select,
    Table,
    Text,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy import column as column_of
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

from followup.models.search import FTS_TABLE, SEARCH_INDEX

# SQLAlchemy's PostgreSQL dialect is imported by PostgresBackend where it builds a statement:
# a command on a SQLite registry does not load it (a fiftieth of a second)
if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PostgresInsert

#: a bound value's conversion to what the driver takes (None: the value goes as it is)
BindProcessor = Callable[[Any], Any]

#: SQLite's own default: after a commit, copy the WAL back into the database once it holds
#: more than this many pages
WAL_AUTOCHECKPOINT = 1000

#: status changes per UPDATE statement on PostgreSQL (arrays of this length, one per column)
UPDATE_CHUNK = 50_000


# --- bind processors (the one place that asks SQLAlchemy for them) -----------------------------


def bind_processor(type_: TypeEngine[Any], dialect: Dialect) -> BindProcessor | None:
    """The function SQLAlchemy applies to a value of `type_` before handing it to `dialect`'s
    driver (dates as text on SQLite, UTC datetimes, JSON), or None when it hands values as they are.

    The dialect's own implementation of the type (`dialect_impl`: e.g. SQLite's DATE, which
    writes text) processes the value, as when SQLAlchemy executes a statement. Public API only
    (SQLAlchemy's `_cached_bind_processor` does the same and keeps the result; callers ask once
    per column per statement, so nothing is lost). tests/test_backend.py fails if the two ever
    disagree.
    """
    return type_.dialect_impl(dialect).bind_processor(dialect)


def driver_rows(dialect: Dialect, parameters: Sequence[tuple[Any, Sequence[Any]]]) -> list[tuple[Any, ...]]:
    """Rows of driver parameters from (column, values) pairs, each column's bind processor applied
    once per distinct value: for statements sent through the driver's executemany or COPY."""
    processed: list[Sequence[Any]] = []
    for column, values in parameters:
        processor = bind_processor(column.type, dialect)
        processed.append(_processed(processor, values) if processor else values)
    return list(zip(*processed, strict=False))


def _processed(processor: BindProcessor, values: Sequence[Any]) -> list[Any]:
    """Apply a bind processor once per distinct value: dates and timestamps repeat (a file has a
    few thousand distinct days, an import one timestamp); unhashable values (JSON) go one by one."""
    cache: dict[Any, Any] = {}
    out: list[Any] = []
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


# --- the backends ------------------------------------------------------------------------------


class Backend(ABC):
    """What differs between the databases the registry runs on. Stateless: one instance per kind
    of database serves every engine of that kind."""

    #: SQLAlchemy's name for the dialect (`Dialect.name`, `URL.get_backend_name()`)
    name: ClassVar[str]
    #: the driver's positional placeholder, for statements sent through the driver
    mark: ClassVar[str]
    #: whether Alembic must copy a table to alter it (batch mode)
    alters_by_copy: ClassVar[bool] = False

    @abstractmethod
    def create_engine(self, url: str) -> Engine:
        """A new engine for `url`, with this database's connection settings."""

    @abstractmethod
    def create_database(self, url: str, *, extensions: tuple[str, ...] = ()) -> bool:
        """Create the database `url` names if it is absent (and `extensions` in it); True if created."""

    @abstractmethod
    def lock(self, connection: Connection, name: str) -> None:
        """Serialize one kind of run (`name`) per registry until the transaction ends."""

    def defer_checkpoint(self, connection: Connection) -> None:  # noqa: ARG002 - a default that needs none
        """Let this transaction's commit leave its pages for a later commit to write back
        (see SqliteBackend); nothing where the database has no such choice."""
        return None

    @abstractmethod
    def utc_for_storage(self, value: datetime) -> datetime:
        """An aware UTC datetime as this database's timestamp column takes it."""

    def read_snapshot_options(self) -> dict[str, Any]:
        """Execution options for a connection whose reads must all see one moment of the
        registry (the digest's sections); {} where one transaction already does."""
        return {}

    def insert_absent(self, table: Table, *keys: str) -> Insert:
        """An INSERT that skips rows whose unique key (`keys`) already exists.

        What makes repeated and concurrent runs write each reminder or message once.
        """
        return self._dialect_insert(table).on_conflict_do_nothing(index_elements=list(keys))

    @abstractmethod
    def _dialect_insert(self, table: Table) -> SqliteInsert | PostgresInsert:
        """This dialect's INSERT construct (the one with `on_conflict_do_nothing`)."""

    def one_of(self, column: ColumnElement[Any], keys: Iterable[Any]) -> ColumnElement[bool]:
        """`column IN (keys)` for a large set of keys (a plain IN here; see PostgresBackend)."""
        return column.in_(list(keys))

    @abstractmethod
    def text_search(self, table: Table, words: Sequence[str]) -> ColumnElement[bool]:
        """Rows of `table` (the recommendations) whose folded text (`search_text`) has, for every
        one of `words` (folded by `models.search.query_words`), a word beginning with it: the
        word-prefix AND both databases answer from their full-text index."""

    #: where counting every match of a common word costs more than a page can wait, the count of a
    #: search stops here and the list says "N+" (None: counted whole)
    search_count_limit: ClassVar[int | None] = None

    def prepare_text_search(self, connection: Connection) -> None:  # noqa: ARG002 - the interface's arguments
        """Anything the database needs, in the reader's transaction, before a text search (nothing here)."""
        return None

    def text_search_count(self, words: Sequence[str]) -> Select[Any] | None:  # noqa: ARG002 - the interface's arguments
        """A COUNT of the recommendations the text search alone selects, answered by the full-text
        index without reading the table, where that is faster than counting rows (SQLite's FTS5
        table); None where counting the table is as fast."""
        return None

    def in_index_order(self, statement: Select[Any], table: Table, index: str) -> Select[Any]:  # noqa: ARG002 - the interface's arguments
        """`statement` told to walk `index` (its sort column's) and test each row against its
        conditions, for when the conditions match so many rows that the page is met early
        (`models.listing.walk_in_order` decides). Unchanged here: PostgreSQL's planner knows the
        text search's selectivity from the GIN index's statistics; SQLite's cannot (SqliteBackend)."""
        return statement

    @abstractmethod
    def text_search_ddl(self) -> list[str]:
        """The statements that make the full-text index over `recommendation.search_text` (and
        keep it in step with the table); run by migration 0007, and again by any later migration
        that has to rebuild the recommendation table."""

    @abstractmethod
    def drop_text_search_ddl(self) -> list[str]:
        """The statements that remove what `text_search_ddl` made."""

    @contextmanager
    def text_index_in_one_pass(self, connection: Connection) -> Iterator[None]:  # noqa: ARG002 - the interface's arguments
        """Recommendations inserted inside this block, in the caller's write transaction, enter the
        full-text index together at its end instead of one by one (see SqliteBackend). Nothing
        here: PostgreSQL's index follows each COPY as fast. On an error inside the block the
        caller's transaction must roll back."""
        yield

    def bulk_insert(self, connection: Connection, table: Table, columns: Mapping[str, Sequence[Any]]) -> None:
        """INSERT many rows straight through the driver, in the caller's transaction: one
        executemany (PostgresBackend: COPY).

        `columns` maps column name -> its values (one list per column, all the same length). Each
        column's bind processor (dates on SQLite, UTC datetimes, JSON) is applied once per column;
        SQLAlchemy's per-row parameter handling cost the import 2-3x at 500,000 rows.
        """
        names = list(columns)
        if not names or not columns[names[0]]:
            return
        quote = connection.dialect.identifier_preparer.quote
        rows = driver_rows(connection.dialect, [(table.c[n], columns[n]) for n in names])
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
            f"VALUES ({', '.join([self.mark] * len(names))})"
        )
        connection.exec_driver_sql(sql, rows)

    def update_by_id(self, connection: Connection, table: Table, ids: Sequence[Any],
                     columns: Mapping[str, Sequence[Any]]) -> int:
        """`UPDATE table SET column = value, ... WHERE id = ...` for many rows, through the driver's
        executemany with each column's bind processor applied once per distinct value (as
        `bulk_insert`); returns how many rows matched."""
        if not ids:
            return 0
        quote = connection.dialect.identifier_preparer.quote
        mark = self.mark
        sets = ", ".join(f"{quote(name)} = {mark}" for name in columns)
        rows = driver_rows(connection.dialect, [*((table.c[name], values) for name, values in columns.items()), (table.c.id, ids)])
        return int(connection.exec_driver_sql(f"UPDATE {quote(table.name)} SET {sets} WHERE id = {mark}", rows).rowcount)

    def update_statuses(self, connection: Connection, table: Table, updates: Sequence[Mapping[str, Any]],
                        at: datetime) -> int:
        """Move each recommendation (`table`) from the status its caller read to its new one,
        with the clock columns; returns how many rows matched (fewer means another run moved
        some meanwhile).

        Each update holds b_id, b_from, b_to, b_overdue_since, b_on_hold_since, b_hold_days.
        Here: the driver's executemany with each column's bind processor applied once per
        distinct value (SQLAlchemy's per-row parameter handling cost more than the UPDATEs);
        PostgresBackend sends them as arrays.
        """
        c = table.c
        mark = self.mark
        sql = (
            f"UPDATE {connection.dialect.identifier_preparer.quote(table.name)} SET status = {mark}, "
            f"updated_at = {mark}, overdue_since = COALESCE({mark}, overdue_since), "
            f"on_hold_since = {mark}, days_on_hold = days_on_hold + {mark} WHERE id = {mark} AND status = {mark}"
        )
        rows = driver_rows(connection.dialect, [
            (c.status, [u["b_to"] for u in updates]),
            (c.updated_at, [at] * len(updates)),
            (c.overdue_since, [u["b_overdue_since"] for u in updates]),
            (c.on_hold_since, [u["b_on_hold_since"] for u in updates]),
            (c.days_on_hold, [u["b_hold_days"] for u in updates]),
            (c.id, [u["b_id"] for u in updates]),
            (c.status, [u["b_from"] for u in updates]),
        ])
        return int(connection.exec_driver_sql(sql, rows).rowcount)


def _sqlite_pragmas(dbapi_connection: Any, _connection_record: Any) -> None:  # pragma: no cover - trivial
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the daily runs
    cursor.execute("PRAGMA busy_timeout=30000")  # two writers wait instead of failing at once
    cursor.close()


def _sqlite_checkpoint_default(dbapi_connection: Any, _connection_record: Any, _connection_proxy: Any) -> None:  # pragma: no cover - trivial
    """Every use of a pooled connection starts with the default checkpointing, whatever the
    last one chose (see `SqliteBackend.defer_checkpoint`)."""
    dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")


class _HintingSqliteCompiler(SQLiteCompiler):
    """SQLite's compiler with table hints (`select.with_hint(table, "INDEXED BY ix")`) written after
    the table's name, where SQLite's grammar has them; SQLAlchemy's SQLite dialect drops them."""

    def get_from_hint_text(self, table: Any, text: str | None) -> str | None:  # noqa: ARG002 - the compiler's signature
        return text


def _fts_match(words: Sequence[str]) -> str:
    """FTS5's query for the word-prefix AND: `"w1"* "w2"*` (the words are folded, letters and
    digits only, and quoted anyway, so nothing in them is FTS5 syntax)."""
    return " ".join('"' + w.replace('"', '""') + '"*' for w in words)


class SqliteBackend(Backend):
    """A registry in one file, in process: one writer at a time, WAL for readers."""

    name = "sqlite"
    mark = "?"
    alters_by_copy = True  # SQLite cannot ALTER most things: batch mode copies the table

    def create_engine(self, url: str) -> Engine:
        parsed = make_url(url)
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "checkout", _sqlite_checkpoint_default)
        engine.dialect.statement_compiler = _HintingSqliteCompiler
        return engine

    def create_database(self, url: str, *, extensions: tuple[str, ...] = ()) -> bool:  # noqa: ARG002 - the interface's arguments
        """Nothing to do: the file is made on first connection (`create_engine` makes its folder)."""
        return False

    def lock(self, connection: Connection, name: str) -> None:  # noqa: ARG002 - one lock serializes every kind of run
        # any write statement takes SQLite's single write lock (others wait: busy_timeout)
        connection.execute(text("UPDATE ministry SET code = code WHERE 1 = 0"))

    def defer_checkpoint(self, connection: Connection) -> None:
        """Let this transaction's commit leave its pages in the WAL for the next commit to
        checkpoint, instead of copying them into the database file now.

        For a run of transactions that each touch pages all over the same table (the daily pass
        escalates ministry by ministry, and every ministry's items are spread over the whole
        registry): each commit's checkpoint wrote most of the table again and waited for the disk,
        11 s of a 1,000,000-item pass. The next ordinary commit (level 2, or any other write)
        checkpoints everything at once; the connection gets the default back when it is next
        taken from the pool.
        """
        connection.exec_driver_sql("PRAGMA wal_autocheckpoint=0")

    def utc_for_storage(self, value: datetime) -> datetime:
        """SQLite keeps no zone: the naive UTC time."""
        return value.replace(tzinfo=None)

    def _dialect_insert(self, table: Table) -> SqliteInsert:
        return sqlite.insert(table)

    def text_search(self, table: Table, words: Sequence[str]) -> ColumnElement[bool]:
        """`id IN (SELECT rowid FROM recommendation_fts WHERE ... MATCH '"w1"* "w2"*')`: FTS5's
        implicit AND of prefix terms. The words are folded (letters and digits only), and quoted
        anyway, so nothing in them is FTS5 syntax."""
        found = text(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :match").bindparams(match=_fts_match(words))
        return table.c.id.in_(found.columns(column_of("rowid", Integer)))

    def text_search_count(self, words: Sequence[str]) -> Select[Any] | None:
        """`SELECT count(*) FROM recommendation_fts WHERE ... MATCH ...`: the FTS5 index counts its
        own matches (fetching each matched row of the table to count it reads the whole table's
        pages when a word is common)."""
        return select(func.count()).select_from(text(FTS_TABLE)).where(
            text(f"{FTS_TABLE} MATCH :match").bindparams(match=_fts_match(words)))

    def in_index_order(self, statement: Select[Any], table: Table, index: str) -> Select[Any]:
        """`INDEXED BY index`: SQLite's planner cannot estimate how many rows an FTS5 MATCH
        returns, so it always fetches every match and sorts them (0.3-0.6 s for 100,000 matches
        out of a million) even when walking the sort column's index meets the page in a few
        thousand rows."""
        return statement.with_hint(table, f"INDEXED BY {index}", dialect_name="sqlite")

    def text_search_ddl(self) -> list[str]:
        """An FTS5 table with the recommendation table as its external content (the folded text is
        stored once), and triggers that index each insert, each change of `search_text` and each
        delete. The folded text has letters, digits and single spaces only; `unicode61` with
        `remove_diacritics 0` splits it at the spaces and changes nothing else (й stays й)."""
        r = "recommendation"
        delete_old = f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, search_text) VALUES ('delete', old.id, old.search_text);"
        insert_new = f"INSERT INTO {FTS_TABLE}(rowid, search_text) VALUES (new.id, new.search_text);"
        return [
            f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(search_text, content='{r}', content_rowid='id', "
            "tokenize='unicode61 remove_diacritics 0')",
            f"CREATE TRIGGER {FTS_TABLE}_insert AFTER INSERT ON {r} BEGIN {insert_new} END",
            f"CREATE TRIGGER {FTS_TABLE}_delete AFTER DELETE ON {r} BEGIN {delete_old} END",
            # only a change of the folded text touches the index: the daily pass's status updates do not
            f"CREATE TRIGGER {FTS_TABLE}_update AFTER UPDATE OF search_text ON {r} BEGIN {delete_old} {insert_new} END",
            f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')",
        ]

    def drop_text_search_ddl(self) -> list[str]:
        return [*(f"DROP TRIGGER IF EXISTS {FTS_TABLE}_{event}" for event in ("insert", "delete", "update")),
                f"DROP TABLE IF EXISTS {FTS_TABLE}"]

    @contextmanager
    def text_index_in_one_pass(self, connection: Connection) -> Iterator[None]:
        """The insert trigger indexes one row per statement, and each of them makes FTS5 flush its
        pending terms to a new segment and merge: 70% of a 100,000-row import's time. Here the
        trigger is set aside for the block and the block's new rows are indexed at its end by one
        `INSERT ... SELECT` (FTS5 buffers the terms and writes them in a few segments), then the
        trigger is put back as it was. All of it inside the caller's write transaction, which
        holds SQLite's single write lock from the first statement here to its commit: no other
        connection ever writes, or reads, the registry without the trigger. New rows are those
        whose id is above the largest before the block (SQLite gives a new row max(id) + 1)."""
        trigger = f"{FTS_TABLE}_insert"
        self.lock(connection, "text index")  # a write: the transaction is open and holds the write lock
        driver = connection.connection.driver_connection
        if driver is None or not getattr(driver, "in_transaction", False):
            raise RuntimeError("the full-text index can be filled in one pass only inside a write transaction")
        ddl = connection.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", (trigger,)).scalar()
        if ddl is None:  # a registry without the search (before migration 0007)
            yield
            return
        last = connection.exec_driver_sql("SELECT coalesce(max(id), 0) FROM recommendation").scalar()
        connection.exec_driver_sql(f"DROP TRIGGER {trigger}")
        yield
        connection.exec_driver_sql(
            f"INSERT INTO {FTS_TABLE}(rowid, search_text) SELECT id, search_text FROM recommendation WHERE id > ?", (last,))
        connection.exec_driver_sql(ddl)


class PostgresBackend(Backend):
    """A registry on a PostgreSQL server, through psycopg."""

    name = "postgresql"
    mark = "%s"

    def create_engine(self, url: str) -> Engine:
        return create_engine(url, pool_pre_ping=True)

    @staticmethod
    def admin_url(url: str) -> str:
        """The same server's `postgres` database through psycopg (CREATE DATABASE cannot run inside
        the database it creates, and Prefect's server's asyncpg URL is for the server only)."""
        return make_url(url).set(drivername="postgresql+psycopg", database="postgres").render_as_string(hide_password=False)

    def create_database(self, url: str, *, extensions: tuple[str, ...] = ()) -> bool:
        """Safe to repeat. `url` may use any PostgreSQL driver (asyncpg for Prefect's, psycopg for
        the registry)."""
        name = make_url(url).database
        admin = create_engine(self.admin_url(url), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
                if not exists:
                    connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        inside = create_engine(make_url(self.admin_url(url)).set(database=name), isolation_level="AUTOCOMMIT")
        try:
            with inside.connect() as connection:
                for extension in extensions:
                    connection.execute(text(f'CREATE EXTENSION IF NOT EXISTS "{extension}"'))
        finally:
            inside.dispose()
        return not exists

    def lock(self, connection: Connection, name: str) -> None:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(f"followup:{name}".encode())})

    def utc_for_storage(self, value: datetime) -> datetime:
        """`timestamptz` keeps the zone."""
        return value

    def read_snapshot_options(self) -> dict[str, Any]:
        """READ COMMITTED (the default) lets each statement see later commits: REPEATABLE READ."""
        return {"isolation_level": "REPEATABLE READ"}

    def _dialect_insert(self, table: Table) -> PostgresInsert:
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)

    def one_of(self, column: ColumnElement[Any], keys: Iterable[Any]) -> ColumnElement[bool]:
        """One array parameter (`= ANY(:keys)`): psycopg spends seconds parsing a statement with
        20,000 placeholders (SQLite keeps a plain IN; its limit is 32,766 parameters, callers
        send chunks of at most 20,000)."""
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(bindparam(None, list(keys), type_=ARRAY(column.type)))

    #: a GIN index answers which rows match but not whether they are visible: counting 100,000
    #: matches of a million visits most of the table's pages (0.5-1.3 s); a thousand are enough to
    #: tell the office to narrow the search, and the page itself is found by walking the deadline
    search_count_limit: ClassVar[int | None] = 1000

    def prepare_text_search(self, connection: Connection) -> None:
        """`SET LOCAL work_mem = '32MB'` for this transaction: a common word's matches, combined with a
        second index (the ministry's), overflow the default 4 MB bitmap, which then turns lossy and
        every row of every page it names is tested again (twice as slow at a million items)."""
        connection.exec_driver_sql("SET LOCAL work_mem = '32MB'")

    def text_search(self, table: Table, words: Sequence[str]) -> ColumnElement[bool]:
        """`to_tsvector('simple', search_text) @@ to_tsquery('simple', 'w1:* & w2:*')`, written as
        the index is (`text_search_ddl`) so the planner uses it. 'simple' neither stems nor drops
        stop words (PostgreSQL has no Kazakh stemmer, and SQLite's FTS5 does neither): the folded
        words are compared as they are. The words hold letters and digits only: no tsquery syntax."""
        simple: ColumnElement[Any] = literal_column("'simple'::regconfig")
        query = " & ".join(f"{w}:*" for w in words)
        vector = func.to_tsvector(simple, table.c.search_text)
        return vector.bool_op("@@")(func.to_tsquery(simple, bindparam(None, query, type_=Text())))

    def text_search_ddl(self) -> list[str]:
        return [f"CREATE INDEX {SEARCH_INDEX} ON recommendation USING gin (to_tsvector('simple'::regconfig, search_text))"]

    def drop_text_search_ddl(self) -> list[str]:
        return [f"DROP INDEX IF EXISTS {SEARCH_INDEX}"]

    def bulk_insert(self, connection: Connection, table: Table, columns: Mapping[str, Sequence[Any]]) -> None:
        """COPY: one stream instead of one INSERT per row (the history of 225,000 status changes
        took 20 s as INSERTs through psycopg)."""
        names = list(columns)
        if not names or not columns[names[0]]:
            return
        quote = connection.dialect.identifier_preparer.quote
        rows = driver_rows(connection.dialect, [(table.c[n], columns[n]) for n in names])
        sql = f"COPY {quote(table.name)} ({', '.join(quote(n) for n in names)}) FROM STDIN"
        driver = connection.connection.driver_connection
        assert driver is not None, "COPY needs the connection's psycopg connection"
        with driver.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)

    def update_statuses(self, connection: Connection, table: Table, updates: Sequence[Mapping[str, Any]],
                        at: datetime) -> int:
        """Set-based: the statement joins the changes as arrays (`unnest`), one statement per
        UPDATE_CHUNK changes; one UPDATE per change through psycopg took 33 s of a
        1,000,000-item pass."""
        sql = (
            f"UPDATE {connection.dialect.identifier_preparer.quote(table.name)} AS r SET status = u.to_status, updated_at = %s, "
            "overdue_since = COALESCE(u.overdue_since, r.overdue_since), on_hold_since = u.on_hold_since, "
            "days_on_hold = r.days_on_hold + u.hold_days "
            "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::date[], %s::date[], %s::int[]) "
            "AS u(id, from_status, to_status, overdue_since, on_hold_since, hold_days) "
            "WHERE r.id = u.id AND r.status = u.from_status"
        )
        stamp = bind_processor(table.c.updated_at.type, connection.dialect)
        matched = 0
        for start in range(0, len(updates), UPDATE_CHUNK):
            part = updates[start : start + UPDATE_CHUNK]
            matched += connection.exec_driver_sql(sql, (
                stamp(at) if stamp else at,
                [u["b_id"] for u in part], [str(u["b_from"]) for u in part], [str(u["b_to"]) for u in part],
                [u["b_overdue_since"] for u in part], [u["b_on_hold_since"] for u in part], [u["b_hold_days"] for u in part],
            )).rowcount
        return matched


# --- choosing one ------------------------------------------------------------------------------

SQLITE = SqliteBackend()
POSTGRES = PostgresBackend()
_BACKENDS: dict[str, Backend] = {b.name: b for b in (SQLITE, POSTGRES)}


def _named(name: str) -> Backend:
    backend = _BACKENDS.get(name)
    if backend is None:
        raise ValueError(f"the registry runs on SQLite or PostgreSQL, not {name!r}")
    return backend


def backend_for_url(url: str) -> Backend:
    """The backend for a database URL (any driver of a supported database): what
    `models.db.get_engine` uses to make the engine."""
    return _named(make_url(url).get_backend_name())


def backend_of(bind: Connection | Engine | Dialect) -> Backend:
    """The backend the engine behind `bind` was made with (the same object every time)."""
    # a plain lookup, no isinstance: UTCDateTime asks for each timestamp it binds
    dialect = cast(Dialect, getattr(bind, "dialect", bind))
    return _named(dialect.name)
