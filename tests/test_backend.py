"""The database backend (models/backend.py): chosen once per engine, and each dialect's way of
doing what differs between SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, text
from sqlmodel import SQLModel

import followup.models.followup  # noqa: F401 - every table in the metadata
from followup.models.backend import (
    POSTGRES,
    SQLITE,
    Backend,
    PostgresBackend,
    SqliteBackend,
    backend_for_url,
    backend_of,
    bind_processor,
)
from followup.models.db import bulk_insert, get_engine, insert_absent, one_of
from followup.models.registry import Ministry


def test_the_backend_is_chosen_once_per_engine(engine: Engine, db_url: str) -> None:
    backend = backend_of(engine)
    expected = SqliteBackend if db_url.startswith("sqlite") else PostgresBackend
    assert isinstance(backend, expected)
    assert backend is backend_for_url(db_url)
    assert backend is backend_of(get_engine(db_url)) is backend_of(engine.dialect)
    with engine.connect() as connection:
        assert backend_of(connection) is backend


def test_urls_of_any_driver_name_their_database_and_others_are_refused() -> None:
    assert backend_for_url("sqlite:///x.db") is SQLITE
    assert backend_for_url("sqlite+pysqlite:///x.db") is SQLITE
    assert backend_for_url("postgresql+psycopg://u@h/db") is POSTGRES
    assert backend_for_url("postgresql+asyncpg://u@h/db") is POSTGRES
    with pytest.raises(ValueError, match="not 'mysql'"):
        backend_for_url("mysql://u@h/db")


def test_the_engine_has_its_databases_settings(engine: Engine) -> None:
    with engine.connect() as connection:
        if backend_of(engine) is SQLITE:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        else:
            assert engine.pool._pre_ping  # the engine asks the server before it hands a pooled connection out


def test_lock_insert_absent_one_of_and_bulk_insert_on_each_database(engine: Engine) -> None:
    table = Ministry.__table__
    backend = backend_of(engine)
    with engine.begin() as connection:
        backend.lock(connection, "test")  # the advisory lock or the write lock: no error, nothing written
        bulk_insert(connection, table, {"code": ["ZZ1", "ZZ2"], "name_kk": ["Bir", "Eki"], "name_ru": ["Odin", "Dva"],
                                        "name_en": ["One", "Two"], "aliases": [["uno"], []], "language": ["ru", "kk"]})
        connection.execute(insert_absent(connection, table, "code"), [
            {"code": code, "name_kk": name, "name_ru": name, "name_en": name, "aliases": [], "language": "en"}
            for code, name in [("ZZ1", "again"), ("ZZ3", "Three")]
        ])
        rows = connection.execute(select(table.c.code, table.c.name_en, table.c.aliases)
                                  .where(one_of(connection, table.c.code, ["ZZ1", "ZZ3", "ZZ9"])).order_by(table.c.code)).all()
    assert [tuple(r) for r in rows] == [("ZZ1", "One", ["uno"]), ("ZZ3", "Three", [])]
    condition = str(one_of(engine.connect(), table.c.code, ["a"]).compile(dialect=engine.dialect))
    assert ("ANY" in condition) is (backend is POSTGRES), condition


def test_timestamps_are_stored_as_each_database_takes_them() -> None:
    at = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    assert SQLITE.utc_for_storage(at) == at.replace(tzinfo=None)
    assert POSTGRES.utc_for_storage(at) is at
    assert SQLITE.read_snapshot_options() == {}
    assert POSTGRES.read_snapshot_options() == {"isolation_level": "REPEATABLE READ"}


def test_only_sqlite_defers_its_checkpoint(engine: Engine) -> None:
    with engine.begin() as connection:
        backend_of(connection).defer_checkpoint(connection)
        if backend_of(connection) is SQLITE:
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0


def _samples(python_type: type) -> list[object]:
    return {
        str: ["x", "Ünïcode"], int: [0, 7], bool: [True, False], float: [1.5], date: [date(2026, 3, 1)],
        datetime: [datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC),
                   datetime(2026, 3, 1, 14, 30, tzinfo=UTC) + timedelta(hours=1)],
        dict: [{"a": [1, "b"]}], list: [["a", 1]],
    }.get(python_type, [])


@pytest.mark.parametrize("backend", [SQLITE, POSTGRES], ids=lambda b: b.name)
def test_bind_processors_are_the_ones_sqlalchemy_applies(backend: Backend) -> None:
    """The fast paths (COPY, executemany) convert values with `bind_processor`, through public
    API. If this fails, SQLAlchemy changed how it finds a column's bind processor
    (`TypeEngine._cached_bind_processor`, which its own statements use): the bulk paths would
    write values differently from the ORM; update `models.backend.bind_processor` to match."""
    dialect = engine_dialect(backend)
    checked = 0
    for table in SQLModel.metadata.sorted_tables:
        for column in table.c:
            ours = bind_processor(column.type, dialect)
            theirs = column.type._cached_bind_processor(dialect)  # the private API, here only
            assert (ours is None) == (theirs is None), (table.name, column.name)
            try:
                python_type = column.type.python_type
            except NotImplementedError:
                python_type = object
            for value in [None, *_samples(python_type)]:
                if ours is None or theirs is None:
                    continue
                assert _comparable(ours(value)) == _comparable(theirs(value)), (table.name, column.name, value)
                checked += 1
    assert checked > 0


def _comparable(value: object) -> object:
    """psycopg's Json wrapper has no equality: compare its type and what it wraps."""
    return (type(value), value.obj) if hasattr(value, "obj") else value


def engine_dialect(backend: Backend):
    """A dialect of the backend's database, without connecting."""
    from sqlalchemy import create_engine

    url = "sqlite://" if backend is SQLITE else "postgresql+psycopg://u@127.0.0.1/none"
    return create_engine(url).dialect


def test_the_digest_reads_one_snapshot(engine: Engine) -> None:
    from followup.notifications.digest import _connected

    with _connected(engine) as connection:
        level = connection.execute(text("SHOW transaction_isolation")).scalar() if backend_of(engine) is POSTGRES else None
    assert level in (None, "repeatable read")


def test_production_creates_a_postgresql_registry_once_and_leaves_sqlite_to_the_engine(postgres_server_url: str) -> None:
    from sqlalchemy.engine import make_url

    from followup.operations.production import create_database, drop_database

    url = make_url(postgres_server_url).set(database=f"{make_url(postgres_server_url).database}_made").render_as_string(hide_password=False)
    try:
        assert backend_for_url(url).create_database(url) is True
        assert create_database(url, extensions=("pg_trgm",)) is False  # safe to repeat
    finally:
        drop_database(url)
    assert backend_for_url("sqlite:///nowhere/registry.db").create_database("sqlite:///nowhere/registry.db") is False
