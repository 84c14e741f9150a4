"""`followup export recommendations FILE`: the registry as a spreadsheet the clerk can edit and import again."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from followup.models.crud import init_db
from followup.models.db import get_engine
from followup.models.registry import Recommendation, StatusChange
from followup.spreadsheets.export import export_recommendations
from followup.spreadsheets.ingest import import_recommendations
from tests.conftest import write_csv
from tests.test_import import import_json, recommendation, row_counts, run_cli

EXPORT_COLUMNS = [
    "external_id", "text", "issued_on", "due_on", "ministry", "facility", "facility_type", "region", "category",
    "source", "mechanism_ref", "priority", "visit_id", "status", "grade", "updated_at",
    "themes", "affected_persons", "sdgs", "recommending_state", "response", "follow_up",
]

#: texts the office really writes, and the ones spreadsheet software likes to "fix"
TEXTS = {
    "T-01": "Обеспечить лиц, содержащихся в ИВС, питьевой водой",
    "T-02": "Қазақ әріптері: ә ғ қ ң ө ұ ү һ і — Ә Ғ Қ Ң Ө Ұ Ү Һ І",
    "T-03": "Привести в соответствие с «Правилами внутреннего распорядка» и \"Минимальными правилами\"",
    "T-04": "Первая строка\nвторая строка\n\nпосле пустой строки",
    "T-05": "  с пробелами в начале и в конце  ",
    "T-06": "007",
    "T-07": "1.50",
    "T-08": "NA",
    "T-09": "null",
    "T-10": "15.02.2024",
    "T-11": "=ЕСЛИ(A1;1;0)",
    "T-12": "#N/A",
    "T-13": '"в кавычках целиком"',
    "T-14": "точка; с запятой, и запятая",
    "T-15": "1e5",
    "T-16": "Windows line break\r\ninside a cell",
    "T-17": "old Mac line break\rinside a cell",
    "T-18": "Excel's own escape _x000D_ written as text",
    "T-19": "=HYPERLINK(\"http://evil.example/\";\"click\")",
}


def _sheet(path: Path, texts: dict[str, str]) -> Path:
    """The NPM's sheet, written by a CSV library that quotes what needs quoting."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["external_id", "text", "issued_on", "ministry"])
    for external_id, value in texts.items():
        writer.writerow([external_id, value, "15.02.2024", "МВД"])
    path.write_bytes(buffer.getvalue().encode("utf-8"))
    return path


def _texts(url: str) -> dict[str, str]:
    r = Recommendation.__table__
    with get_engine(url).connect() as connection:
        return dict(connection.execute(select(r.c.external_id, r.c.text)).all())


def _rows(path: Path) -> list[list[object]]:
    """The exported file's cells, without updated_at (the moment each registry wrote the row)."""
    if path.suffix == ".csv":
        rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))
    else:
        workbook = load_workbook(path, read_only=True)
        rows = [list(row) for row in workbook.worksheets[0].iter_rows(values_only=True)]
        workbook.close()
    skip = rows[0].index("updated_at")
    return [[cell for i, cell in enumerate(row) if i != skip] for row in rows]


@pytest.mark.usefixtures("db_url")
def test_the_export_is_a_utf8_comma_csv_with_the_import_columns(tmp_path):
    """What the clerk opens in Excel: the import columns plus status, grade and updated_at."""
    import_json(write_csv(
        tmp_path / "npm.csv",
        "external_id,text,issued_on,due_on,ministry,facility,facility_type,region,visit_id",
        "NPM-1,Обеспечить водой,15.02.2024,15.05.2024,МВД,ИВС г. Алматы,police_temporary_detention,Алматы,V-1",
    ))
    result = run_cli("export", "recommendations", tmp_path / "registry.csv")
    assert result.exit_code == 0
    assert "exported 1 recommendations" in result.output
    rows = list(csv.DictReader(io.StringIO((tmp_path / "registry.csv").read_bytes().decode("utf-8-sig"), newline="")))
    assert list(rows[0]) == EXPORT_COLUMNS
    assert {k: v for k, v in rows[0].items() if k != "updated_at"} == {
        "external_id": "NPM-1", "text": "Обеспечить водой", "issued_on": "2024-02-15", "due_on": "2024-05-15",
        "ministry": "interior", "facility": "ИВС г. Алматы", "facility_type": "police_temporary_detention",
        "region": "Алматы", "category": "", "source": "npm_visit", "mechanism_ref": "", "priority": "normal",
        "visit_id": "V-1", "status": "issued", "grade": "",
        "themes": "", "affected_persons": "", "sdgs": "", "recommending_state": "", "response": "", "follow_up": "",
    }
    updated_at = datetime.fromisoformat(rows[0]["updated_at"])
    assert updated_at.tzinfo is not None and abs(datetime.now(UTC) - updated_at) < timedelta(hours=1)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_an_export_imports_back_unchanged(db_url, tmp_path, suffix):
    """Export, then import the file as it is: every row unchanged, no history written."""
    import_json(write_csv(
        tmp_path / "npm.csv",
        "external_id,text,issued_on,due_on,ministry,facility,facility_type,region,category,source,mechanism_ref,priority,visit_id,status,grade",
        "NPM-1,Обеспечить водой,15.02.2024,15.05.2024,МВД,ИВС г. Алматы,police_temporary_detention,Алматы,water,,,high,V-1,in_progress,",
        "NPM-2,Отремонтировать душевые,15.02.2024,,Минздрав,ПНИ №3,psychiatric_hospital,Астана,,,,,V-2,implemented,A",
        "UPR-55,Ратифицировать протокол,01.11.2023,,,,,,,upr,A/HRC/55/9 para 12,,,,",
    ))
    export = tmp_path / f"registry{suffix}"
    assert run_cli("export", "recommendations", export).exit_code == 0
    before = row_counts(db_url)
    assert import_json(export) == {"created": 0, "updated": 0, "unchanged": 3, "rejected": 0}
    assert row_counts(db_url) == before
    assert recommendation(db_url, "NPM-2").status == "implemented"


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_text_survives_export_and_import_into_another_registry_byte_for_byte(db_url, tmp_path, suffix):
    """The office moves its registry: every text arrives exactly as written, and exports the same."""
    texts = dict(TEXTS)
    import_json(_sheet(tmp_path / "npm.csv", texts))
    assert _texts(db_url) == texts

    first_export = tmp_path / f"first{suffix}"
    export_recommendations(first_export)
    second_url = f"sqlite:///{tmp_path / 'second-registry.db'}"
    init_db(second_url)
    second = get_engine(second_url)
    try:
        counts = import_recommendations(first_export, engine=second, actor="test-clerk").counts()
        assert counts == {"created": len(texts), "updated": 0, "unchanged": 0, "rejected": 0}
        assert _texts(second_url) == texts
        second_export = tmp_path / f"second{suffix}"
        export_recommendations(second_export, engine=second)
    finally:
        second.dispose()
    assert _rows(second_export) == _rows(first_export)
    assert import_json(first_export)["unchanged"] == len(texts)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
@pytest.mark.usefixtures("db_url")
def test_a_carriage_return_in_a_text_or_an_id_survives_an_export(tmp_path, suffix):
    """A Windows line break, or a lone CR, in a text or an id comes back from an .xlsx exactly
    as from a CSV: XML would read it back as a line feed, so it is written as Excel writes it
    (_x000D_); the re-import changes nothing and creates no second recommendation."""
    texts = {"T-1": "Windows line break\r\ninside a cell", "T-2": "lone\rCR", "x\ry": "an id with a CR", "x\r\ny": "and CRLF"}
    import_json(_sheet(tmp_path / "npm.csv", texts))
    export_recommendations(tmp_path / f"registry{suffix}")
    assert import_json(tmp_path / f"registry{suffix}") == {"created": 0, "updated": 0, "unchanged": 4, "rejected": 0}


@pytest.mark.usefixtures("db_url")
def test_every_status_moves_with_an_export_to_another_registry(engine, tmp_path):
    """An escalated or overdue item arrives in the new registry where it stood, by legal steps."""
    from sqlmodel import Session

    from followup.models.domain import Status
    from followup.models.transitions import TransitionRequest, path_between, transition_many

    wanted = {f"S-{i}": status for i, status in enumerate(Status)}
    rows = [f"{ext},Текст {ext},15.02.2024,{'' if s == Status.UNASSIGNED else 'МВД'}" for ext, s in wanted.items()]
    import_json(write_csv(tmp_path / "npm.csv", "external_id,text,issued_on,ministry", *rows))
    with Session(engine) as session:
        for ext, status in wanted.items():
            rec = session.execute(select(Recommendation).where(Recommendation.external_id == ext)).scalar_one()
            previous = rec.status
            for step in path_between(rec.status, status) or []:
                transition_many(session, [TransitionRequest(rec.id, Status(previous), step, ext)], actor="office", reason="setup")
                previous = step
        session.commit()

    export = tmp_path / "all.csv"
    export_recommendations(export)
    second_url = f"sqlite:///{tmp_path / 'second-registry.db'}"
    init_db(second_url)
    second = get_engine(second_url)
    try:
        counts = import_recommendations(export, engine=second, actor="migration").counts()
        assert counts["created"] == len(wanted) and counts["rejected"] == 0
        with second.connect() as connection:
            arrived = dict(connection.execute(select(Recommendation.external_id, Recommendation.status)).all())
            steps = connection.execute(
                select(func.count()).select_from(StatusChange).join(Recommendation).where(Recommendation.external_id == "S-5")
            ).scalar_one()
    finally:
        second.dispose()
    assert arrived == {ext: s.value for ext, s in wanted.items()}
    assert wanted["S-5"] == Status.ESCALATED and steps == 3  # created issued → overdue → escalated
