"""What a command costs before it does its work (issue 20): a clerk's `followup list`, `show`,
`history` or `stats` reads the registry and starts no Prefect, and a registry already at the
newest migration is not handed to Alembic. Times are printed by bench/commands_bench.py; here
only what is loaded is checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from followup.models.crud import init_db
from followup.models.db import get_engine, head_revision, schema_revision
from followup.spreadsheets.ingest import import_recommendations
from tests.conftest import write_csv

# holidays.countries: every country's holidays (loading any one country's imports all 250)
HEAVY = ("prefect", "alembic", "pandas", "numpy", "holidays", "holidays.countries", "jinja2")

# the commands one after another in one interpreter, each followed by what it had loaded so far
READ_ONLY = f"""
import json, sys
from followup.interfaces.cli import app
for args in json.loads(sys.argv[1]):
    app(args, standalone_mode=False)
    print("LOADED", json.dumps([m for m in {HEAVY!r} if m in sys.modules]), flush=True)
"""


def _registry(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    init_db(url)
    import_recommendations(write_csv(
        tmp_path / "visit.csv", "external_id,text,issued_on,due_on,ministry,facility",
        "NPM-1,Обеспечить камеры ИВС естественным освещением,05.01.2026,10.03.2026,МВД,ИВС г. Кокшетау",
        "NPM-2,Обеспечить пациентов питьевой водой,05.01.2026,10.03.2027,health,Психиатрическая больница г. Караганда",
    ), engine=get_engine(url), actor="clerk")
    return url


def _run(commands: list[list[str]], url: str, cwd: Path) -> list[tuple[str, list[str]]]:
    """Each command's output and the heavy packages loaded once it had run."""
    import os

    env = dict(os.environ, FOLLOWUP_DATABASE_URL=url, COLUMNS="200")
    done = subprocess.run([sys.executable, "-c", READ_ONLY, json.dumps(commands)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    results, output = [], []
    for line in done.stdout.splitlines():
        if line.startswith("LOADED "):
            results.append(("\n".join(output), json.loads(line.removeprefix("LOADED "))))
            output = []
        else:
            output.append(line)
    return results


def test_commands_that_run_no_flow_load_neither_prefect_nor_alembic(tmp_path: Path):
    """The clerk lists, opens and reads the history of an item, looks at the picture per ministry
    and imports a file again: correct answers, and neither Prefect nor Alembic loaded; the
    read-only commands load neither pandas nor numpy (nor the holidays, nor Jinja's templates);
    pandas only for the import, which reads the file with it, and no country's holidays."""
    url = _registry(tmp_path)
    write_csv(tmp_path / "again.csv", "external_id,text,issued_on,due_on,ministry,facility",
              "NPM-1,Обеспечить камеры ИВС естественным освещением,05.01.2026,10.03.2026,МВД,ИВС г. Кокшетау")
    (listed, after_list), (shown, after_show), (history, after_history), (stats, after_stats), (imported, after_import) = _run(
        [["list"], ["show", "NPM-1"], ["history", "NPM-1"], ["stats", "--as-of", "2026-04-01"],
         ["import", "recommendations", "again.csv"]], url, tmp_path)
    assert "NPM-1" in listed and "NPM-2" in listed and "2 items" in listed
    assert "Обеспечить камеры ИВС естественным освещением" in shown and "10.03.2026" in shown
    assert "(new) → issued" in history and "clerk" in history
    total = next(line for line in stats.splitlines() if line.strip("│ ").startswith("total"))
    assert total.split("│")[-2].strip() == "2"
    assert "again.csv: 0 created, 0 updated, 1 unchanged, 0 rejected" in imported
    assert after_list == after_show == after_history == after_stats == []
    assert not {"prefect", "alembic", "holidays.countries", "jinja2"} & set(after_import)  # pandas reads the file


def test_a_registry_behind_the_newest_migration_is_still_upgraded_by_a_read_only_command(tmp_path: Path):
    """After an upgrade of the project, the first command of the day, whichever it is, brings
    the registry's schema to the new release (Alembic is loaded only then)."""
    url = _registry(tmp_path)
    from alembic import command

    from followup.models.db import alembic_config

    engine = get_engine(url)
    with engine.begin() as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.downgrade(config, "-1")
    with engine.connect() as connection:
        assert schema_revision(connection) != head_revision()
    [(listed, loaded)] = _run([["list"]], url, tmp_path)
    assert "NPM-1" in listed and "alembic" in loaded
    with engine.connect() as connection:
        assert schema_revision(connection) == head_revision()
        assert connection.execute(text("SELECT count(*) FROM recommendation")).scalar_one() == 2


def test_the_head_revision_read_from_the_files_is_alembics():
    """models/db.py reads the newest migration from the files without Alembic: the same answer."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from followup.models.db import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head()


def test_a_command_closes_the_registry_on_its_way_out(tmp_path: Path):
    """The CLI skips Python's garbage collection at exit (`_leave_quickly`, gc.freeze) but still
    closes its connections first: SQLite checkpoints its WAL and removes it, as before."""
    url = _registry(tmp_path)
    get_engine(url).dispose()  # this process's connection would keep the WAL
    [(listed, _)] = _run([["list"]], url, tmp_path)
    assert "NPM-1" in listed
    assert not (tmp_path / "registry.db-wal").exists()
