"""The office clerk imports the NPM's spreadsheet of recommendations (`followup import recommendations`).

Every test runs against SQLite and PostgreSQL (the `db_url` fixture) and, unless it is about
the Python function itself, goes through the command line as the clerk would.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlmodel import SQLModel
from typer.testing import CliRunner

from followup.config.loader import load_ministries
from followup.config.settings import get_settings
from followup.interfaces.cli import app
from followup.models.db import get_engine, session_scope
from followup.models.registry import Facility, Recommendation, StatusChange, Visit
from followup.spreadsheets.tabular import read_table
from tests.conftest import write_csv

HEADER = "external_id,text,issued_on,due_on,ministry,facility,facility_type,region,visit_id"


# --- helpers shared with test_export.py and test_responses.py ---------------------------------


def run_cli(*args: str | Path):
    """Run `followup ARGS...` in-process, as the clerk types it; an unhandled exception fails the test."""
    # a wide terminal: rich would otherwise fold long lines at 80 columns
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "250"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def import_json(path: Path, *options: str) -> dict[str, int]:
    """`followup import recommendations PATH --json`, parsed; the import must succeed."""
    result = run_cli("import", "recommendations", path, "--json", *options)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def row_counts(db_url: str) -> dict[str, int]:
    """How many rows every table of the registry holds."""
    with get_engine(db_url).connect() as connection:
        return {
            table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in SQLModel.metadata.sorted_tables
        }


def recommendation(db_url: str, external_id: str) -> Recommendation:
    with get_engine(db_url).connect() as connection:
        row = connection.execute(select(Recommendation.__table__).where(Recommendation.__table__.c.external_id == external_id)).one()
    return Recommendation.model_validate(row._mapping)


def history(db_url: str, external_id: str) -> list[StatusChange]:
    """The recommendation's history, oldest first."""
    r, h = Recommendation.__table__, StatusChange.__table__
    stmt = select(h).join(r, r.c.id == h.c.recommendation_id).where(r.c.external_id == external_id).order_by(h.c.id)
    with get_engine(db_url).connect() as connection:
        return [StatusChange.model_validate(row._mapping) for row in connection.execute(stmt)]


def error_lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("row ")]


# --- columns ----------------------------------------------------------------------------------


def test_a_full_spreadsheet_is_imported_with_every_column(db_url, tmp_path):
    """The NPM's sheet with every optional column lands in the registry as written."""
    path = write_csv(
        tmp_path / "npm-2024.csv",
        "external_id,text,issued_on,due_on,ministry,facility,facility_type,region,category,source,mechanism_ref,priority,visit_id",
        'NPM-2024-001,"Обеспечить доступ к питьевой воде",15.02.2024,15.05.2024,МВД,ИВС г. Алматы,police_temporary_detention,Алматы,water,npm_visit,,high,V-2024-01',
        "NPM-2024-002,Провести ремонт душевых,15.02.2024,,,,,,,upr,A/HRC/55/9 para 12,,",
    )
    assert import_json(path) == {"created": 2, "updated": 0, "unchanged": 0, "rejected": 0}
    first = recommendation(db_url, "NPM-2024-001")
    assert (first.text, first.issued_on, first.due_on, first.ministry_code, first.status) == (
        "Обеспечить доступ к питьевой воде", date(2024, 2, 15), date(2024, 5, 15), "interior", "issued",
    )
    assert (first.category, first.source, first.priority) == ("water", "npm_visit", "high")
    second = recommendation(db_url, "NPM-2024-002")
    assert (second.ministry_code, second.status, second.source, second.mechanism_ref, second.priority) == (
        None, "unassigned", "upr", "A/HRC/55/9 para 12", "normal",
    )
    created = history(db_url, "NPM-2024-001")
    assert [(h.from_status, h.to_status, h.actor) for h in created] == [(None, "issued", "test-clerk")]
    assert "npm-2024.csv" in created[0].reason


def test_the_exported_columns_are_accepted(db_url, tmp_path):
    """status, grade and updated_at (written by the export) may be in the file."""
    path = write_csv(
        tmp_path / "with-status.csv", "external_id,text,issued_on,ministry,status,grade,updated_at",
        "NPM-1,Заменить матрасы,15.02.2024,health,in_progress,B,2024-03-01T10:00:00+00:00",
    )
    assert import_json(path)["created"] == 1
    rec = recommendation(db_url, "NPM-1")
    assert (rec.status, rec.grade) == ("in_progress", "B")


def test_an_unknown_column_is_named(db_url, tmp_path):
    """A column the registry does not know (a typo) is refused by name, nothing is read."""
    path = write_csv(tmp_path / "typo.csv", "external_id,text,issued_on,minstry", "NPM-1,Текст,15.02.2024,МВД")
    result = run_cli("import", "recommendations", path)
    assert result.exit_code != 0
    assert "unknown column 'minstry'" in result.output
    assert row_counts(db_url)["recommendation"] == 0


def test_a_missing_required_column_is_an_error(db_url, tmp_path):
    path = write_csv(tmp_path / "no-date.csv", "external_id,text,ministry", "NPM-1,Текст,МВД")
    result = run_cli("import", "recommendations", path)
    assert result.exit_code != 0
    assert "missing required column 'issued_on'" in result.output
    assert row_counts(db_url)["recommendation"] == 0


# --- the file's form: encoding, delimiter, line ends, dates -----------------------------------


@pytest.mark.parametrize(
    ("sep", "bom", "crlf"),
    [(",", False, False), (",", True, True), (";", False, True), (";", True, False)],
    ids=["comma-lf", "comma-bom-crlf", "semicolon-crlf", "semicolon-bom"],
)
def test_csv_as_any_spreadsheet_program_saves_it(db_url, tmp_path, sep, bom, crlf):
    """UTF-8 with or without BOM, comma or semicolon (detected), CRLF or LF: the same registry."""
    rows = [
        sep.join(["NPM-1", '"Обеспечить свет; и воздух, ежедневно"', "15.02.2024", "2024-05-15", "МВД"]),
        sep.join(["NPM-2", "Қамқоршылық кеңесін құру", "2024-02-15", "", ""]),
    ]
    path = write_csv(tmp_path / "sheet.csv", "external_id,text,issued_on,due_on,ministry", *rows, sep=sep, bom=bom, crlf=crlf)
    assert import_json(path)["created"] == 2
    first, second = recommendation(db_url, "NPM-1"), recommendation(db_url, "NPM-2")
    assert first.text == "Обеспечить свет; и воздух, ежедневно"  # no stray \r, no split on the other delimiter
    assert (first.issued_on, first.due_on, first.ministry_code) == (date(2024, 2, 15), date(2024, 5, 15), "interior")
    assert (second.text, second.issued_on, second.status) == ("Қамқоршылық кеңесін құру", date(2024, 2, 15), "unassigned")


def test_dates_are_read_day_first_never_month_first(db_url, tmp_path):
    """03.02.2024 is 3 February (the Kazakh way), 2024-02-15 is ISO."""
    path = write_csv(
        tmp_path / "dates.csv", "external_id,text,issued_on,due_on",
        "NPM-1,Текст,03.02.2024,04.03.2024", "NPM-2,Текст,2024-02-15,2024-12-01", "NPM-3,Текст,1/2/2024,",
    )
    assert import_json(path)["created"] == 3
    assert (recommendation(db_url, "NPM-1").issued_on, recommendation(db_url, "NPM-1").due_on) == (date(2024, 2, 3), date(2024, 3, 4))
    assert (recommendation(db_url, "NPM-2").issued_on, recommendation(db_url, "NPM-2").due_on) == (date(2024, 2, 15), date(2024, 12, 1))
    assert recommendation(db_url, "NPM-3").issued_on == date(2024, 2, 1)


# --- ministries ---------------------------------------------------------------------------------


def test_a_ministry_is_found_by_code_name_or_alias_in_any_case(db_url, tmp_path):
    """Clerks write the ministry as they are used to; all of these are the interior ministry."""
    kazakh = next(m for m in load_ministries() if m.code == "interior").names.kk
    spellings = ["МВД", "мвд", "Ministry of Internal Affairs", "interior", "INTERIOR", kazakh, kazakh.upper(), "  мвд рк  ", "КУИС"]
    rows = [f"NPM-{i},Текст,15.02.2024,{name}" for i, name in enumerate(spellings)]
    path = write_csv(tmp_path / "ministries.csv", "external_id,text,issued_on,ministry", *rows, "NPM-none,Текст,15.02.2024,")
    assert import_json(path)["created"] == len(spellings) + 1
    for i, name in enumerate(spellings):
        rec = recommendation(db_url, f"NPM-{i}")
        assert (name, rec.ministry_code, rec.status) == (name, "interior", "issued")
    unassigned = recommendation(db_url, "NPM-none")
    assert (unassigned.ministry_code, unassigned.status) == (None, "unassigned")


# --- facilities and visits --------------------------------------------------------------------


def test_a_new_facility_and_visit_are_created_once(db_url, tmp_path):
    """The first file creates the facility (type, region) and visit; the next file finds them by name."""
    first = write_csv(
        tmp_path / "visit-1.csv", HEADER,
        "NPM-1,Обеспечить водой,15.02.2024,,МВД,ИВС г. Алматы,police_temporary_detention,Алматы,V-2024-07",
        "NPM-2,Отремонтировать крышу,15.02.2024,,МВД,ИВС г. Алматы,,,V-2024-07",
    )
    assert import_json(first)["created"] == 2
    second = write_csv(tmp_path / "visit-2.csv", HEADER, "NPM-3,Установить камеры,16.02.2024,,МВД,ИВС г. Алматы,,,V-2024-07")
    assert import_json(second)["created"] == 1
    with get_engine(db_url).connect() as connection:
        facilities = connection.execute(select(Facility.__table__)).all()
        visits = connection.execute(select(Visit.__table__)).all()
    assert [(f.name, f.facility_type, f.region, f.ministry_code) for f in facilities] == [
        ("ИВС г. Алматы", "police_temporary_detention", "Алматы", "interior")
    ]
    assert [(v.external_id, v.visited_on, v.facility_id) for v in visits] == [("V-2024-07", date(2024, 2, 15), facilities[0].id)]
    for ext in ("NPM-1", "NPM-2", "NPM-3"):
        rec = recommendation(db_url, ext)
        assert (rec.facility_id, rec.visit_id) == (facilities[0].id, visits[0].id)


# --- idempotence and edits --------------------------------------------------------------------


def test_the_same_file_twice_changes_nothing(db_url, tmp_path):
    """A clerk who imports the same sheet again (by mistake or after a crash) changes nothing."""
    path = write_csv(
        tmp_path / "npm.csv", HEADER,
        'NPM-1,"Обеспечить ""горячей"" водой",15.02.2024,15.05.2024,МВД,ИВС г. Алматы,police_temporary_detention,Алматы,V-1',
        "NPM-2,Текст,15.02.2024,,,,,,",
    )
    assert import_json(path)["created"] == 2
    before = row_counts(db_url)
    assert import_json(path) == {"created": 0, "updated": 0, "unchanged": 2, "rejected": 0}
    assert row_counts(db_url) == before


def test_imported_items_are_found_by_the_search_and_so_are_later_ones(db_url, tmp_path):
    """The import indexes its new items for the search together, after writing them (on SQLite
    without the insert trigger, set aside meanwhile): they are found, a dry run leaves no trace,
    and an item added afterwards is indexed as it is written."""
    header = "external_id,text,issued_on,ministry"
    import_json(write_csv(tmp_path / "a.csv", header, "NPM-1,Обеспечить питьевой водой,15.02.2024,МВД", "NPM-2,Ремонт вентиляции,15.02.2024,МВД"))
    import_json(write_csv(tmp_path / "b.csv", header, "NPM-3,Питьевая вода в камерах,15.02.2024,МВД"), "--dry-run")
    import_json(write_csv(tmp_path / "c.csv", header, "NPM-2,Ремонт вентиляции,15.02.2024,МВД", "NPM-4,ПИТЬЕВОЙ режим,15.02.2024,МВД"))
    with session_scope(get_engine(db_url)) as session:
        session.add(Recommendation(external_id="NPM-5", text="Питьевые фонтанчики", issued_on=date(2024, 2, 15)))

    def searched(words: str) -> list[str]:
        return sorted(i["external_id"] for i in json.loads(run_cli("list", "--search", words, "--json").stdout))

    assert searched("питьев") == ["NPM-1", "NPM-4", "NPM-5"]
    assert searched("вентиляц") == ["NPM-2"]


def test_a_changed_row_updates_the_recommendation_and_its_history(db_url, tmp_path):
    """The NPM corrects a text and a deadline: the registry follows and the history says what changed."""
    write_csv(tmp_path / "v1.csv", "external_id,text,issued_on,due_on,ministry", "NPM-1,Обеспечить водой,15.02.2024,15.05.2024,МВД", "NPM-2,Текст,15.02.2024,,МЗ")
    import_json(tmp_path / "v1.csv")
    write_csv(tmp_path / "v2.csv", "external_id,text,issued_on,due_on,ministry", "NPM-1,Обеспечить питьевой водой,15.02.2024,01.06.2024,МВД", "NPM-2,Текст,15.02.2024,,МЗ")
    assert import_json(tmp_path / "v2.csv") == {"created": 0, "updated": 1, "unchanged": 1, "rejected": 0}
    rec = recommendation(db_url, "NPM-1")
    assert (rec.text, rec.due_on, rec.status) == ("Обеспечить питьевой водой", date(2024, 6, 1), "issued")
    edit = history(db_url, "NPM-1")[-1]
    assert (edit.from_status, edit.to_status, edit.actor) == ("issued", "issued", "test-clerk")
    assert edit.changes == {"text": ["Обеспечить водой", "Обеспечить питьевой водой"], "due_on": ["2024-05-15", "2024-06-01"]}
    assert "v2.csv" in edit.reason
    assert len(history(db_url, "NPM-2")) == 1


def test_assigning_a_ministry_issues_an_unassigned_item(db_url, tmp_path):
    """An item imported without a ministry waits as unassigned; naming the ministry later issues it."""
    write_csv(tmp_path / "v1.csv", "external_id,text,issued_on,ministry", "NPM-1,Обеспечить водой,15.02.2024,")
    import_json(tmp_path / "v1.csv")
    assert recommendation(db_url, "NPM-1").status == "unassigned"
    write_csv(tmp_path / "v2.csv", "external_id,text,issued_on,ministry", "NPM-1,Обеспечить водой,15.02.2024,Минздрав")
    assert import_json(tmp_path / "v2.csv")["updated"] == 1
    rec = recommendation(db_url, "NPM-1")
    assert (rec.ministry_code, rec.status) == ("health", "issued")
    log = [(h.from_status, h.to_status, h.changes) for h in history(db_url, "NPM-1")]
    assert log == [
        (None, "unassigned", None),
        ("unassigned", "unassigned", {"ministry_code": [None, "health"]}),
        ("unassigned", "issued", None),
    ]


# --- validation: the whole file or nothing ----------------------------------------------------


def test_every_bad_row_is_listed_and_nothing_is_written(db_url, tmp_path):
    """One file with many mistakes: all of them are listed by spreadsheet row, and the registry is untouched."""
    import_json(write_csv(tmp_path / "earlier.csv", HEADER, "OLD-1,Ранее,15.01.2024,,МВД,СИЗО-1,pre_trial_detention,Астана,V-0"))
    before = row_counts(db_url)
    path = write_csv(
        tmp_path / "bad.csv", HEADER,
        '"NPM-1","Первая строка\nвторая строка текста",15.02.2024,,МВД,Новый ИВС,,,V-NEW',  # row 2, two lines in the file
        "NPM-2,Текст,02.13.2024,,МВД,,,,",  # row 3: month first
        "NPM-3,Текст,2024-02-30,,МВД,,,,",  # row 4
        "NPM-4,Текст,31.02.2024,,МВД,,,,",  # row 5
        "NPM-5,Текст,15.02.2024,01.02.2024,МВД,,,,",  # row 6: deadline before issue
        "NPM-6,Текст,15.02.2024,,Министерство магии,,,,",  # row 7
        "NPM-7,   ,15.02.2024,,МВД,,,,",  # row 8: empty text
        "NPM-2,Текст,15.02.2024,,МВД,,,,",  # row 9: duplicate of row 3
        "NPM-8,Хороший текст,15.02.2024,,МВД,,,,",  # row 10: fine
    )
    result = run_cli("import", "recommendations", path)
    assert result.exit_code == 1
    assert "nothing was written" in result.output
    lines = error_lines(result)
    expected = [
        ("row 3: issued_on:", "02.13.2024"),
        ("row 4: issued_on:", "2024-02-30"),
        ("row 5: issued_on:", "31.02.2024"),
        ("row 6: due_on:", "before the issue date"),
        ("row 7: ministry:", "Министерство магии"),
        ("row 8: text:", "empty"),
        ("row 9: external_id:", "also on row 3"),
    ]
    for start, words in expected:
        assert any(line.startswith(start) and words in line for line in lines), (start, lines)
    assert len(lines) == len(expected), lines
    assert not any(line.startswith(("row 2:", "row 10:")) for line in lines)
    assert row_counts(db_url) == before


def test_a_value_too_long_for_the_registry_is_a_bad_row(db_url, tmp_path):
    """A pasted paragraph in a short column is listed like any other mistake, on both databases."""
    path = write_csv(
        tmp_path / "long.csv", "external_id,text,issued_on,facility,category",
        f"{'NPM-' + '9' * 200},Текст,15.02.2024,ИВС,права",
        f"NPM-2,Текст,15.02.2024,{'ИВС ' * 80},{'доступ к воде ' * 10}",
    )
    result = run_cli("import", "recommendations", path)
    assert result.exit_code == 1
    assert error_lines(result) == [
        "row 2: external_id: longer than 200 characters",
        "row 3: facility: longer than 300 characters",
        "row 3: category: longer than 100 characters",
    ]
    assert row_counts(db_url)["recommendation"] == row_counts(db_url)["facility"] == 0


def test_a_rejected_file_with_json_reports_the_rejected_rows(db_url, tmp_path):
    path = write_csv(tmp_path / "bad.csv", "external_id,text,issued_on", "NPM-1,Текст,15.02.2024", "NPM-2,Текст,30.02.2024", "NPM-3,,15.02.2024")
    result = run_cli("import", "recommendations", path, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"created": 0, "updated": 0, "unchanged": 0, "rejected": 2}
    assert row_counts(db_url)["recommendation"] == 0


def _zip_without_a_workbook() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("report.txt", "not a workbook")
    return buffer.getvalue()


A_CSV = "external_id,text,issued_on\nNPM-1,Обеспечить водой,15.02.2024\n"
NOT_TABLES = {
    "binary.csv": bytes(range(256)) * 4,
    "empty.csv": b"",
    "windows-1251.csv": A_CSV.encode("cp1251"),
    "notes.txt": A_CSV.encode("utf-8"),
    "renamed.xlsx": A_CSV.encode("utf-8"),
    "archive.xlsx": _zip_without_a_workbook(),
}


@pytest.mark.parametrize("name", NOT_TABLES)
def test_a_file_that_is_not_a_table_gets_one_clear_sentence(db_url, tmp_path, name):
    """Whatever the clerk picked by mistake: one sentence naming the file, no traceback, nothing written."""
    path = tmp_path / name
    path.write_bytes(NOT_TABLES[name])
    before = row_counts(db_url)
    result = run_cli("import", "recommendations", path)
    assert result.exit_code not in (0, 1)  # 1 is "bad rows"; this is "not a usable file"
    message = result.output.strip()
    assert message.startswith(f"{name}: ") and "\n" not in message, message
    assert "Traceback" not in message
    assert row_counts(db_url) == before


# --- options ----------------------------------------------------------------------------------


def test_dry_run_counts_but_writes_nothing(db_url, tmp_path):
    """A clerk checks a sheet before importing it: the counts are real, the registry unchanged."""
    import_json(write_csv(tmp_path / "v1.csv", "external_id,text,issued_on,ministry,facility", "NPM-1,Текст,15.02.2024,МВД,СИЗО-1"))
    before = row_counts(db_url)
    path = write_csv(
        tmp_path / "v2.csv", "external_id,text,issued_on,ministry,facility",
        "NPM-1,Новый текст,15.02.2024,МВД,СИЗО-1", "NPM-2,Текст,15.02.2024,МВД,СИЗО-2", "NPM-3,Текст,15.02.2024,,",
    )
    assert import_json(path, "--dry-run") == {"created": 2, "updated": 1, "unchanged": 0, "rejected": 0}
    result = run_cli("import", "recommendations", path, "--dry-run")
    assert result.exit_code == 0
    assert "dry run, nothing written" in result.output and "2 created, 1 updated" in result.output
    assert row_counts(db_url) == before
    assert recommendation(db_url, "NPM-1").text == "Текст"


@pytest.mark.usefixtures("db_url")
def test_json_prints_exactly_the_counts(tmp_path):
    """--json is for scripts: stdout is one JSON object with the four counts and nothing else."""
    path = write_csv(tmp_path / "npm.csv", "external_id,text,issued_on", "NPM-1,Текст,15.02.2024", "NPM-2,Текст,15.02.2024")
    result = run_cli("import", "recommendations", path, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"created": 2, "updated": 0, "unchanged": 0, "rejected": 0}
    assert list(json.loads(result.stdout)) == ["created", "updated", "unchanged", "rejected"]


def test_quarantine_imports_the_good_rows_and_sets_the_bad_aside(db_url, tmp_path):
    """With --quarantine the good rows go in and the bad ones are written, with their problem, for fixing."""
    path = write_csv(
        tmp_path / "npm.csv", "external_id,text,issued_on,ministry",
        "NPM-1,Текст,15.02.2024,МВД", "NPM-2,Текст,31.02.2024,МВД", "NPM-3,Текст,15.02.2024,Минмагии", "NPM-4,Текст,15.02.2024,",
    )
    quarantine = tmp_path / "rejected.csv"
    assert import_json(path, "--quarantine", str(quarantine)) == {"created": 2, "updated": 0, "unchanged": 0, "rejected": 2}
    assert recommendation(db_url, "NPM-1").status == "issued"
    assert recommendation(db_url, "NPM-4").status == "unassigned"
    assert row_counts(db_url)["recommendation"] == 2
    rejected = read_table(quarantine)
    assert list(rejected["external_id"]) == ["NPM-2", "NPM-3"]
    assert "error" in rejected.columns
    assert "issued_on: impossible date '31.02.2024'" in rejected["error"].iloc[0]
    assert "ministry: unknown ministry 'Минмагии'" in rejected["error"].iloc[1]

    # the clerk corrects the two rows in the quarantine file and imports it as it is
    fixed = rejected.assign(issued_on=["28.02.2024", "15.02.2024"], ministry=["МВД", "МЗ"])
    fixed.to_csv(quarantine, index=False)
    assert import_json(quarantine) == {"created": 2, "updated": 0, "unchanged": 0, "rejected": 0}
    assert recommendation(db_url, "NPM-3").ministry_code == "health"


def test_a_dry_run_with_quarantine_writes_no_file_either(db_url, tmp_path):
    path = write_csv(tmp_path / "npm.csv", "external_id,text,issued_on", "NPM-1,Текст,15.02.2024", "NPM-2,Текст,31.02.2024")
    quarantine = tmp_path / "rejected.csv"
    result = run_cli("import", "recommendations", path, "--dry-run", "--quarantine", quarantine)
    assert result.exit_code == 0, result.output
    assert not quarantine.exists()
    assert row_counts(db_url)["recommendation"] == 0


# --- a file read in slices ----------------------------------------------------------------------


def _sliced_file(tmp_path: Path) -> Path:
    """Nine rows read three by three (CSV_SLICE = 3): a facility named first in one slice, a
    visit dated earliest in a later one, a row of two lines, a blank line, a duplicate and a
    bad date in slices after the rows they concern."""
    return write_csv(
        tmp_path / "sliced.csv", HEADER,
        "NPM-1,Текст 1,15.02.2024,,МВД,ИВС г. Алматы,police_temporary_detention,Алматы,V-9",  # row 2
        '"NPM-2","Первая строка\nвторая",16.02.2024,,МВД,ивс г. алматы,,,V-9',  # row 3, two lines
        "OLD-1,Изменённый текст,15.01.2024,,МВД,,,,",  # row 4: in the registry already, changed
        "",  # row 5: blank
        "NPM-3,Текст 3,10.02.2024,,МЗ,Центр №1,psychiatric_hospital,Астана,V-9",  # row 6: V-9's earliest
        "NPM-4,Текст 4,31.02.2024,,МЗ,,,,",  # row 7: impossible date
        "NPM-1,Текст 5,15.02.2024,,МВД,,,,",  # row 8: duplicate of row 2
        "NPM-6,Текст 6,17.02.2024,,,Центр №1,,,V-10",  # row 9
        "NPM-7,Текст 7,18.02.2024,,МВД,,,,",  # row 10
    )


def test_a_file_read_in_slices_is_checked_and_written_as_a_whole(db_url, tmp_path, monkeypatch):
    """A large CSV is checked a slice at a time, then read again and written a slice at a time:
    the errors, their rows, the facilities and visits and the counts are those of the file as a
    whole."""
    import_json(write_csv(tmp_path / "earlier.csv", HEADER, "OLD-1,Ранее,15.01.2024,,МВД,,,,"))
    before = row_counts(db_url)
    monkeypatch.setattr("followup.spreadsheets.tabular.CSV_SLICE", 3)
    path = _sliced_file(tmp_path)
    result = run_cli("import", "recommendations", path)
    assert result.exit_code == 1
    assert error_lines(result) == ["row 7: issued_on: impossible date '31.02.2024'", "row 8: external_id: 'NPM-1' is also on row 2"]
    assert row_counts(db_url) == before

    quarantine = tmp_path / "rejected.csv"
    assert import_json(path, "--quarantine", str(quarantine)) == {"created": 5, "updated": 1, "unchanged": 0, "rejected": 2}
    assert list(read_table(quarantine)["external_id"]) == ["NPM-4", "NPM-1"]
    assert recommendation(db_url, "NPM-2").text == "Первая строка\nвторая"
    assert recommendation(db_url, "OLD-1").text == "Изменённый текст"
    with get_engine(db_url).connect() as connection:
        facilities = {f.name: f for f in connection.execute(select(Facility.__table__)).all()}
        visits = {v.external_id: v for v in connection.execute(select(Visit.__table__)).all()}
    assert {(f.name, f.facility_type, f.region, f.ministry_code) for f in facilities.values()} == {
        ("ИВС г. Алматы", "police_temporary_detention", "Алматы", "interior"),
        ("Центр №1", "psychiatric_hospital", "Астана", "health"),
    }
    assert (visits["V-9"].visited_on, visits["V-9"].facility_id) == (date(2024, 2, 10), facilities["Центр №1"].id)
    assert (visits["V-10"].visited_on, visits["V-10"].facility_id) == (date(2024, 2, 17), facilities["Центр №1"].id)
    for ext, facility, visit in (("NPM-1", "ИВС г. Алматы", "V-9"), ("NPM-2", "ИВС г. Алматы", "V-9"), ("NPM-6", "Центр №1", "V-10")):
        rec = recommendation(db_url, ext)
        assert (rec.facility_id, rec.visit_id) == (facilities[facility].id, visits[visit].id)
    assert import_json(path, "--quarantine", str(quarantine)) == {"created": 0, "updated": 0, "unchanged": 6, "rejected": 2}


def test_a_file_changed_between_its_two_readings_is_refused_whole(db_url, tmp_path, monkeypatch):
    """The second reading must find the file the first one checked: a row that became a
    duplicate, or a facility the first reading never saw, refuses the import; nothing is written."""
    from followup.spreadsheets import ingest
    from followup.spreadsheets.tabular import ImportFileError

    monkeypatch.setattr("followup.spreadsheets.tabular.CSV_SLICE", 3)
    before = row_counts(db_url)
    for changed in (
        "NPM-1,Текст 8,18.02.2024,,МВД,,,,",  # now a duplicate of row 2
        "NPM-8,Текст 8,18.02.2024,,МВД,Другой ИВС,,,",  # a facility pass 1 did not create
        "NPM-8,Текст 8,18.02.2024,,МВД,,,,V-NEW",  # a visit neither
        None,  # the last row gone
    ):
        path = _sliced_file(tmp_path)
        readings = []

        def read_slices(path, rows=None, changed=changed, readings=readings):
            readings.append(path)
            if len(readings) == 2:  # another program saves the file meanwhile
                lines = path.read_text(encoding="utf-8").splitlines()
                path.write_text("\n".join([*lines[:-1], *([changed] if changed else [])]) + "\n", encoding="utf-8")
            return tabular_read_slices(path, rows)

        from followup.spreadsheets.tabular import read_slices as tabular_read_slices

        monkeypatch.setattr(ingest, "read_slices", read_slices)
        with pytest.raises(ImportFileError, match="changed while it was being imported"):
            ingest.import_recommendations(path, engine=get_engine(db_url), quarantine=tmp_path / "rejected.csv")
        assert len(readings) == 2
        assert row_counts(db_url) == before
        assert not (tmp_path / "rejected.csv").exists()


# --- xlsx -------------------------------------------------------------------------------------


def test_an_xlsx_sheet_is_imported(db_url, tmp_path):
    """The NPM's Excel file: real date cells, text cells (a date typed as text), numbers as ids."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["external_id", "text", "issued_on", "due_on", "ministry", "facility", "region"])
    sheet.append(["NPM-1", "Обеспечить доступ к питьевой воде", datetime(2024, 2, 3), "15.05.2024", "МВД", "ИВС г. Алматы", "Алматы"])
    sheet.append([1002, "  Оқу бағдарламасын енгізу  ", date(2024, 2, 15), None, "Министерство просвещения Республики Казахстан", None, None])
    workbook.save(tmp_path / "npm.xlsx")
    assert import_json(tmp_path / "npm.xlsx") == {"created": 2, "updated": 0, "unchanged": 0, "rejected": 0}
    first = recommendation(db_url, "NPM-1")
    assert (first.issued_on, first.due_on, first.ministry_code) == (date(2024, 2, 3), date(2024, 5, 15), "interior")
    second = recommendation(db_url, "1002")
    assert (second.text, second.issued_on, second.due_on, second.ministry_code) == ("  Оқу бағдарламасын енгізу  ", date(2024, 2, 15), None, "education")
    assert import_json(tmp_path / "npm.xlsx")["unchanged"] == 2


def test_bad_rows_in_an_xlsx_sheet_are_listed_by_row(db_url, tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["external_id", "text", "issued_on", "due_on"])
    sheet.append(["NPM-1", "Текст", date(2024, 2, 15), date(2024, 1, 1)])
    sheet.append(["NPM-2", "Текст", "02.13.2024", None])
    workbook.save(tmp_path / "bad.xlsx")
    result = run_cli("import", "recommendations", tmp_path / "bad.xlsx")
    assert result.exit_code == 1
    assert [line.split(":")[:2] for line in error_lines(result)] == [["row 2", " due_on"], ["row 3", " issued_on"]]
    assert row_counts(db_url)["recommendation"] == 0


# --- the installed command --------------------------------------------------------------------


@pytest.mark.server  # the console script in a child process
def test_the_installed_followup_command(db_url, tmp_path):
    """The real console script, as a scheduled job would call it: a bad sheet exits 1, lists the row, writes nothing."""
    followup = Path(sys.executable).parent / "followup"
    env = {**os.environ, "FOLLOWUP_DATABASE_URL": db_url, "FOLLOWUP_ACTOR": "test-clerk", "COLUMNS": "250"}
    path = write_csv(tmp_path / "npm.csv", "external_id,text,issued_on,ministry", "NPM-1,Обеспечить водой,15.02.2024,МВД", "NPM-2,Текст,31.02.2024,МВД")
    done = subprocess.run([followup, "import", "recommendations", path, "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1
    assert json.loads(done.stdout) == {"created": 0, "updated": 0, "unchanged": 0, "rejected": 1}
    assert "npm.csv: 1 bad row, nothing was written" in done.stderr
    assert "row 3: issued_on: impossible date '31.02.2024'" in done.stderr
    assert "Traceback" not in done.stderr
    assert row_counts(db_url)["recommendation"] == 0


def test_an_empty_deadline_cell_never_removes_a_deadline(db_url, tmp_path):
    """A later file without the deadline (or the policy's derived one) keeps the item followed up."""
    import_json(write_csv(tmp_path / "a.csv", "external_id,text,issued_on,due_on", "NPM-1,Текст,15.02.2024,15.05.2024"))
    counts = import_json(write_csv(tmp_path / "b.csv", "external_id,text,issued_on,due_on", "NPM-1,Текст,15.02.2024,"))
    assert counts == {"created": 0, "updated": 0, "unchanged": 1, "rejected": 0}
    assert str(recommendation(db_url, "NPM-1").due_on) == "2024-05-15"


# --- hostile files ------------------------------------------------------------------------------


def _one_sentence(result, name: str) -> str:
    """A refused file: not 'bad rows' (1) nor success, one line naming the file, no traceback."""
    assert result.exit_code not in (0, 1), result.output
    message = result.output.strip()
    assert message.startswith(f"{name}: ") and "\n" not in message, message
    assert "Traceback" not in message
    return message


@pytest.mark.parametrize(("suffix", "width"), [(".csv", 20_000), (".xlsx", 16_000)])  # Excel stops at 16,384
def test_a_header_of_20000_unknown_columns_is_refused_at_once_in_one_short_sentence(tmp_path, suffix, width):
    """A sheet exported from another system with 20,000 columns: checked in seconds, not a minute,
    and the error names the first few columns and how many there are, not 189 KB of names."""
    header = ["external_id", "text", "issued_on", *(f"extra{i}" for i in range(width))]
    path = tmp_path / f"wide{suffix}"
    if suffix == ".csv":
        path.write_text(",".join(header) + "\nNPM-1,Текст,15.02.2024\n", encoding="utf-8")
    else:
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet()
        sheet.append(header)
        sheet.append(["NPM-1", "Текст", "15.02.2024"])
        workbook.save(path)
    started = time.monotonic()
    result = run_cli("import", "recommendations", path)
    assert time.monotonic() - started < 20
    message = _one_sentence(result, path.name)
    assert f"{width:,} unknown columns 'extra0', 'extra1', 'extra2', 'extra3', 'extra4' and {width - 5:,} more" in message
    assert len(message) < 600


def test_a_header_with_8000_repeated_columns_names_a_few_of_them(tmp_path):
    """The duplicate check counts once over the header (it compared every column with every other)."""
    names = [f"col{i}" for i in range(8_000)]
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(["external_id", "text", "issued_on", *names, *(n.upper() + " " for n in names)])
    workbook.save(tmp_path / "twice.xlsx")
    started = time.monotonic()
    message = _one_sentence(run_cli("import", "recommendations", tmp_path / "twice.xlsx"), "twice.xlsx")
    assert time.monotonic() - started < 20
    assert "columns 'col0', 'col1', 'col2', 'col3', 'col4' and 7,995 more appear more than once in the header" in message
    assert len(message) < 200


def _workbook_parts(rows: list[list[object]]) -> dict[str, bytes]:
    """A real workbook's parts (openpyxl), to tamper with."""
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    with zipfile.ZipFile(buffer) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _zip(path: Path, parts: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in parts.items():
            archive.writestr(name, content)
    return path


GOOD_ROWS: list[list[object]] = [["external_id", "text", "issued_on"], ["NPM-1", "Обеспечить водой", "15.02.2024"]]


def test_an_xlsx_that_unpacks_to_a_gigabyte_is_refused_before_it_is_read(db_url, tmp_path):
    """A 4 MB workbook whose first sheet unpacks to a gigabyte of rows: refused from its zip
    directory in seconds (it once ran to the time limit at 2.6 GB of memory), nothing written."""
    parts = _workbook_parts(GOOD_ROWS)
    # without a <dimension> (it is optional): a reader reads rows until the sheet ends
    sheet = parts.pop("xl/worksheets/sheet1.xml").replace(b'<dimension ref="A1:C2" />', b"")
    head, tail = sheet.split(b"</sheetData>")
    path = _zip(tmp_path / "bomb.xlsx", parts)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        # the first sheet itself: its two rows, then 1 GB of rows of zeros
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as member:
            member.write(head)
            rows = b"<row><c><v>0</v></c></row>" * (1 << 20)  # 26 MB
            for _ in range(40):
                member.write(rows)
            member.write(b"</sheetData>" + tail)
    assert path.stat().st_size < 8 << 20
    started = time.monotonic()
    message = _one_sentence(run_cli("import", "recommendations", path), "bomb.xlsx")
    assert time.monotonic() - started < 10
    assert "unpacks to 1,040 MB, more than the 200 MB an import reads (FOLLOWUP_XLSX_MAX_MB)" in message, message
    assert row_counts(db_url)["recommendation"] == 0


def _understate(archive: bytes, name: str, size: int) -> bytes:
    """The archive with the central directory claiming `size` bytes for the member `name`."""
    data = bytearray(archive)
    at = 0
    while (at := data.find(b"PK\x01\x02", at)) >= 0:
        name_length = int.from_bytes(data[at + 28 : at + 30], "little")
        if data[at + 46 : at + 46 + name_length] == name.encode():
            data[at + 24 : at + 28] = size.to_bytes(4, "little")
            return bytes(data)
        at += 4
    raise AssertionError(f"{name} not in the archive")


@pytest.mark.parametrize("limit_mb", ["200", "1"])
def test_an_xlsx_whose_zip_directory_understates_a_part_is_refused(db_url, tmp_path, monkeypatch, limit_mb):
    """The directory says a few bytes, the part unpacks to 3 MB: what is really unpacked is
    counted, and a part that does not match its directory is a damaged workbook."""
    monkeypatch.setenv("FOLLOWUP_XLSX_MAX_MB", limit_mb)
    get_settings.cache_clear()
    parts = _workbook_parts(GOOD_ROWS)
    parts["xl/media/zeros.bin"] = bytes(3 << 20)
    path = tmp_path / "liar.xlsx"
    path.write_bytes(_understate(_zip(tmp_path / "honest.xlsx", parts).read_bytes(), "xl/media/zeros.bin", 1000))
    message = _one_sentence(run_cli("import", "recommendations", path), "liar.xlsx")
    assert "a damaged .xlsx workbook" in message
    assert row_counts(db_url)["recommendation"] == 0
    # the honest archive is 3 MB unpacked: over a 1 MB limit, within the default
    honest = run_cli("import", "recommendations", tmp_path / "honest.xlsx")
    if limit_mb == "1":
        assert "more than the 1 MB an import reads" in _one_sentence(honest, "honest.xlsx")
    else:
        assert honest.exit_code == 0, honest.output


def test_a_sheet_whose_dimension_understates_its_rows_is_read_whole(db_url, tmp_path):
    """Another program wrote <dimension ref="A1:C2"/> over five rows: every row is imported,
    not one of five."""
    rows: list[list[object]] = [GOOD_ROWS[0], *([f"NPM-{i}", f"Текст {i}", "15.02.2024"] for i in range(1, 6))]
    parts = _workbook_parts(rows)
    sheet = parts["xl/worksheets/sheet1.xml"].decode("utf-8")
    assert '<dimension ref="A1:C6" />' in sheet
    parts["xl/worksheets/sheet1.xml"] = sheet.replace('<dimension ref="A1:C6" />', '<dimension ref="A1:C2" />').encode("utf-8")
    path = _zip(tmp_path / "short.xlsx", parts)
    assert import_json(path) == {"created": 5, "updated": 0, "unchanged": 0, "rejected": 0}
    assert row_counts(db_url)["recommendation"] == 5
