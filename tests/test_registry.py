"""The registry's schema and reference data: `followup init` is safe to run again and again."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlmodel import Session, select

from followup.config.loader import load_ministries
from followup.config.settings import get_settings
from followup.models.crud import init_db, sync_ministries
from followup.models.registry import Ministry


def test_init_twice_changes_nothing(db_url, engine):
    """An admin who runs `followup init` after every upgrade does no harm."""
    before = set(inspect(engine).get_table_names())
    init_db(db_url)
    init_db(db_url)
    assert set(inspect(engine).get_table_names()) == before >= {"ministry", "facility", "visit", "recommendation", "status_change"}
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == ["0010"]
        assert connection.execute(text("SELECT count(*) FROM ministry")).scalar_one() == 9


@pytest.mark.usefixtures("db_url")
def test_the_migrations_build_exactly_the_models(engine):
    """A model changed without a migration would work in tests and break an installed registry."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    import followup.models.followup  # noqa: F401  (registers the tables)
    from followup.models.search import include_object

    with engine.connect() as connection:
        # the FTS5 table and the search's expression index are the migration's, not models'
        context = MigrationContext.configure(connection, opts={"compare_type": False, "include_object": include_object})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []


@pytest.mark.usefixtures("db_url")
def test_every_migration_goes_down_and_up_again(engine):
    """An administrator who rolls a release back (`alembic downgrade`) and forward again gets
    exactly the models' schema: every migration's downgrade undoes its upgrade."""
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlmodel import SQLModel

    import followup.models.followup  # noqa: F401  (registers the tables)
    from followup.models.db import alembic_config
    from followup.models.search import include_object

    config = alembic_config(engine)
    revisions = [r.revision for r in ScriptDirectory.from_config(config).walk_revisions()]  # newest first
    for down_to in [*revisions[1:], "base"]:  # one step down at a time, to nothing
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, down_to)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == revisions[0]
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": False, "include_object": include_object}),
                                SQLModel.metadata)
    assert diff == []


@pytest.mark.usefixtures("db_url")
def test_the_ministries_table_follows_the_config_file(engine, tmp_path: Path, monkeypatch):
    """The office adds an alias in ministries.yaml; the next init brings the registry in line."""
    edited = tmp_path / "ministries.yaml"
    content = get_settings().ministries_file.read_text(encoding="utf-8").replace("aliases: [КНБ,", "aliases: [ҰҚК РК, КНБ,")
    edited.write_text(content, encoding="utf-8")
    monkeypatch.setenv("FOLLOWUP_MINISTRIES_FILE", str(edited))
    get_settings.cache_clear()
    with Session(engine) as session:
        assert sync_ministries(session=session, ministries=load_ministries()) == 1
        session.commit()
        nsc = session.exec(select(Ministry).where(Ministry.code == "nsc")).one()
        assert nsc.aliases[0] == "ҰҚК РК"
        assert sync_ministries(session=session, ministries=load_ministries()) == 0


@pytest.mark.usefixtures("db_url")
def test_the_cli_init_says_where_the_registry_is():
    from typer.testing import CliRunner

    from followup.interfaces.cli import app

    result = CliRunner().invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    assert "registry ready" in result.output
    assert "@" not in result.output.split("registry ready:")[1]  # no credentials shown
