"""Fixtures: every registry test runs against SQLite and against the PostgreSQL server.

PostgreSQL is not optional: when the server at FOLLOWUP_TEST_POSTGRES_URL (default: the
local one on 127.0.0.1:5432) cannot be reached, the tests that need it fail with a sentence
saying so, instead of being skipped.

Markers (pyproject.toml), set here from the fixtures a test uses so that nobody has to
remember them: `db` (a registry database), `server` (a Prefect server, the Prefect test
harness or other processes), `browser` (headless Chromium). `pytest -m "not db and not
server and not browser"` runs the rest in seconds, without PostgreSQL.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from followup.config.settings import get_settings
from followup.models.crud import init_db
from followup.models.db import get_engine

POSTGRES_URL = os.environ.get("FOLLOWUP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# a test using one of these (directly or through other fixtures) gets the marker
DB_FIXTURES = frozenset({"db_url", "engine", "session", "postgres_server_url"})
SERVER_FIXTURES = frozenset({"prefect_server", "real_prefect_server"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that need a database or a server, from the fixtures they use (their closure)."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & DB_FIXTURES:
            item.add_marker(pytest.mark.db)
        if used & SERVER_FIXTURES:
            item.add_marker(pytest.mark.server)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A throw-away database on the PostgreSQL server, dropped at the end of the run."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"followup_test_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to reach it is the same message
        pytest.fail(
            f"PostgreSQL is required for these tests and is not reachable at {POSTGRES_URL} ({exc.__class__.__name__}). "
            "Start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) "
            "or point FOLLOWUP_TEST_POSTGRES_URL at one.",
            pytrace=False,
        )
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _fresh_postgres(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A new, migrated registry on each database; FOLLOWUP_DATABASE_URL points at it."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'followup.db'}"
    else:
        url = request.getfixturevalue("postgres_server_url")
        _fresh_postgres(url)
    monkeypatch.setenv("FOLLOWUP_DATABASE_URL", url)
    get_settings.cache_clear()
    init_db(url)
    yield url
    get_engine(url).dispose()
    get_engine.cache_clear()
    get_settings.cache_clear()


@pytest.fixture
def engine(db_url: str) -> Engine:
    return get_engine(db_url)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture(scope="module")
def prefect_server() -> Iterator[None]:
    """The Prefect test harness (a temporary server and database), one per test module."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The Prefect events the web app emits (as if PREFECT_API_URL were set), recorded instead of sent."""
    from followup.interfaces.web import events

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(events, "prefect_configured", lambda: True)
    monkeypatch.setattr(events, "emit_event", lambda **kwargs: sent.append(kwargs))
    return sent


@pytest.fixture
def registry(engine: Engine, tmp_path: Path) -> Engine:
    """Two NPM recommendations to the Ministry of Internal Affairs and one to Health, with facilities, due 10.03.2026.

    On each database: `engine` comes from the parametrized `db_url`."""
    from followup.spreadsheets.ingest import import_recommendations

    import_recommendations(write_csv(
        tmp_path / "visit.csv", "external_id,text,issued_on,due_on,ministry,facility",
        "NPM-1,Обеспечить камеры ИВС естественным освещением,05.01.2026,10.03.2026,МВД,ИВС г. Кокшетау",
        "NPM-2,Провести обучение персонала,05.01.2026,10.03.2026,interior,ИВС г. Кокшетау",
        "NPM-3,Обеспечить пациентов питьевой водой,05.01.2026,10.03.2026,health,Психиатрическая больница г. Караганда",
    ), engine=engine, actor="clerk")
    return engine


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands that write var/ or files do it inside the test's own folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FOLLOWUP_ACTOR", "test-clerk")
    # letters carry signed reply links: the key every worker and the web app share (a test of a
    # missing key removes it)
    monkeypatch.setenv("FOLLOWUP_SECRET_KEY", "test-secret-key-not-for-production")
    # individualized recommendations leave on their own in the tests written before approval
    # existed; the tests of drafts point FOLLOWUP_POLICY_FILE at a `required` copy
    from followup.config.policy import copy_with_approval

    monkeypatch.setenv("FOLLOWUP_POLICY_FILE", str(copy_with_approval(tmp_path / "policy-automatic.yaml", "automatic")))
    get_settings.cache_clear()


def write_csv(path: Path, header: str, *rows: str, sep: str = ",", bom: bool = False, crlf: bool = False) -> Path:
    """Write a small CSV the way a clerk's spreadsheet program would."""
    newline = "\r\n" if crlf else "\n"
    content = newline.join([header.replace(",", sep), *rows]) + newline
    path.write_bytes((("\ufeff" if bom else "") + content).encode("utf-8"))
    return path


def wait_until(predicate, timeout: float, what: str, *, every: float = 1):
    """Poll `predicate` until it returns something truthy (returned), or fail naming `what`:
    a real Prefect server and its workers answer in their own time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
