"""The office's consolidated annual report: every figure checked against a small year counted by hand.

The year 2025 of a small NPM: three facilities, four visits, seven recommendations. Each one's
fate is written next to it below; the expected figures are counted from those lines.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pandas as pd
import pytest
from sqlmodel import Session

from followup.config.policy import load_policy
from followup.models.calendar import WorkingCalendar
from followup.models.crud import create_facility, create_visit
from followup.models.registry import FacilityBase, VisitBase
from followup.reports.annual import compute, read_year, write_report
from followup.reports.picture import current_picture
from followup.spreadsheets.ingest import import_recommendations, import_responses
from followup.steps.deadlines import check_deadlines, escalate_ministry, plan_escalations, refer_to_level2
from tests.conftest import write_csv

AKMOLA, KARAGANDA = "Акмолинская область", "Карагандинская область"
CELLS, HOSPITAL, COLONY = "ИВС г. Кокшетау", "Психиатрическая больница г. Караганда", "Учреждение ЕЦ-166/11"
OVERDUE_ON = date(2025, 7, 2)  # R5's deadline 01.07.2025 passed
ESCALATED_ON = WorkingCalendar.from_policy(load_policy().calendar).add_working_days(OVERDUE_ON, 10)


@pytest.fixture
def year_2025(engine, tmp_path):
    """The registry after the year 2025, as the office lived it."""
    with Session(engine) as session:
        cells = create_facility(session=session, facility_in=FacilityBase(
            name=CELLS, facility_type="police_temporary_detention", region=AKMOLA, ministry_code="interior"))
        hospital = create_facility(session=session, facility_in=FacilityBase(
            name=HOSPITAL, facility_type="psychiatric_hospital", region=KARAGANDA, ministry_code="health"))
        colony = create_facility(session=session, facility_in=FacilityBase(
            name=COLONY, facility_type="prison", region=KARAGANDA, ministry_code="interior"))
        for ref, day, kind, facility in [
            ("NPM-2024-0090", date(2024, 11, 1), "planned", hospital),  # last year's: not in the report
            ("NPM-2025-0001", date(2025, 2, 1), "planned", cells),
            ("NPM-2025-0002", date(2025, 3, 10), "special", hospital),
            ("NPM-2025-0003", date(2025, 4, 1), "planned", colony),
            ("NPM-2025-0004", date(2025, 9, 1), "follow_up", cells),
        ]:
            create_visit(session=session, visit_in=VisitBase(external_id=ref, visited_on=day, kind=kind, facility_id=facility.id))
        session.commit()
    header = "external_id,text,issued_on,due_on,ministry,facility,category,source,visit_id,grade"
    import_recommendations(write_csv(
        tmp_path / "recommendations.csv", header,
        # last year's: implemented in February 2025 (counts in the month-by-month flow only)
        f"R0,Отремонтировать санузлы,01.11.2024,01.02.2025,health,{HOSPITAL},санитарные нормы,npm_visit,NPM-2024-0090,",
        f"R1,Обеспечить камеры естественным освещением,01.02.2025,01.05.2025,interior,{CELLS},условия содержания,npm_visit,NPM-2025-0001,",
        f"R2,Обеспечить осмотр медиком при поступлении,01.02.2025,01.05.2025,interior,{CELLS},медицинская помощь,npm_visit,NPM-2025-0001,",
        f"R3,Укомплектовать штат психологов,10.03.2025,10.06.2025,health,{HOSPITAL},медицинская помощь,npm_visit,NPM-2025-0002,",
        f"R4,Установить видеонаблюдение в палатах,10.03.2025,10.06.2025,health,{HOSPITAL},условия содержания,npm_visit,NPM-2025-0002,",
        f"R5,Обеспечить прогулочные дворики навесами,01.04.2025,01.07.2025,interior,{COLONY},условия содержания,npm_visit,NPM-2025-0003,",
        f"R6,Провести обучение персонала,01.09.2025,01.03.2026,interior,{CELLS},правовое обучение,npm_visit,NPM-2025-0004,",
        f"R7,Заменить мебель в палатах,10.03.2025,31.01.2026,health,{HOSPITAL},условия содержания,npm_visit,NPM-2025-0002,",
        # a Committee against Torture follow-up item graded B in an earlier round
        "R8,Establish an independent complaints mechanism,01.12.2021,01.12.2022,,,,treaty_body,,B",
    ), engine=engine, actor="clerk")
    import_responses(write_csv(
        tmp_path / "replies.csv", "external_id,status,responded_on,note",
        "R0,implemented,15.02.2025,санузлы отремонтированы",
        "R1,implemented,15.03.2025,окна заменены",  # 42 days after issue
        "R2,implemented,01.05.2025,осмотр введён",  # 89 days after issue
        "R3,partially_implemented,01.06.2025,принят один психолог из трёх",
        "R4,rejected,20.04.2025,нет финансирования",
        "R6,in_progress,01.10.2025,обучение запланировано",
        "R7,implemented,10.01.2026,мебель заменена",  # after the year: still open in the 2025 report
    ), engine=engine, actor="clerk", today=date(2026, 1, 20))
    # R5 is never answered: overdue, then in an individualized recommendation, then before the Commissioner
    check_deadlines(OVERDUE_ON, engine=engine)
    for code in plan_escalations(ESCALATED_ON, engine=engine):
        escalate_ministry(code, ESCALATED_ON, engine=engine)
    refer_to_level2(ESCALATED_ON + timedelta(days=31), engine=engine)
    return engine


def table(report, key: str, by: str) -> dict:
    return report.tables[key].set_index(by).to_dict("index")


def test_the_report_counts_the_year_as_the_office_would_by_hand(year_2025):
    report = compute(read_year(year_2025, 2025))
    assert report.cutoff == date(2025, 12, 31)
    assert report.headline == {
        "visits": 4, "planned": 2, "special": 1, "follow_up": 1, "facilities": 3,
        "issued": 7, "implemented": 2, "partially_implemented": 1, "rejected": 1, "overdue": 1, "escalated": 1,
        "implementation_rate": pytest.approx(2 / 7), "median_days": 65.5,  # (42 + 89) / 2
        "individualized": 1, "individualized_level2": 1, "decisions": 0,
    }
    ministries = table(report, "recommendations_by_ministry", "ministry_code")
    assert {k: {c: ministries[k][c] for c in ("issued", "implemented", "partially_implemented", "rejected", "open", "overdue",
                                               "escalated")} for k in ministries} == {
        "interior": {"issued": 4, "implemented": 2, "partially_implemented": 0, "rejected": 0, "open": 1, "overdue": 1, "escalated": 1},
        "health": {"issued": 3, "implemented": 0, "partially_implemented": 1, "rejected": 1, "open": 1, "overdue": 0, "escalated": 0},
        "total": {"issued": 7, "implemented": 2, "partially_implemented": 1, "rejected": 1, "open": 2, "overdue": 1, "escalated": 1},
    }
    assert ministries["interior"]["implementation_rate"] == 0.5 and ministries["interior"]["median_days"] == 65.5
    assert ministries["health"]["implementation_rate"] == 0 and pd.isna(ministries["health"]["median_days"])
    regions = table(report, "recommendations_by_region", "region")
    assert {k: (v["issued"], v["implemented"], v["overdue"]) for k, v in regions.items()} == {
        KARAGANDA: (4, 0, 1), AKMOLA: (3, 2, 0), "total": (7, 2, 1)}
    categories = table(report, "recommendations_by_category", "category")
    assert {k: v["issued"] for k, v in categories.items()} == {
        "условия содержания": 4, "медицинская помощь": 2, "правовое обучение": 1, "total": 7}
    visits = table(report, "visits", "kind")
    assert {k: (v["visits"], v["facilities"]) for k, v in visits.items()} == {
        "planned": (2, 2), "special": (1, 1), "follow_up": (1, 1), "total": (4, 3)}
    by_type = table(report, "facilities_by_type", "facility_type")
    assert {k: (v["facilities"], v["visits"], v["recommendations"]) for k, v in by_type.items()} == {
        "police_temporary_detention": (1, 2, 3), "psychiatric_hospital": (1, 1, 3), "prison": (1, 1, 1), "total": (3, 4, 7)}
    assert {k: v["facilities"] for k, v in table(report, "facilities_by_ministry", "ministry_code").items()} == {
        "interior": 2, "health": 1, "total": 3}
    assert {k: v["facilities"] for k, v in table(report, "facilities_by_region", "region").items()} == {
        KARAGANDA: 2, AKMOLA: 1, "total": 3}
    individualized = table(report, "individualized", "ministry_code")
    assert individualized == {
        "interior": {"individualized": 1, "items": 1, "answered": 0, "level2": 1, "waiting": 0, "unanswered": 0},
        "total": {"individualized": 1, "items": 1, "answered": 0, "level2": 1, "waiting": 0, "unanswered": 0},
    }
    assert dict(zip(report.tables["grades"]["grade"], report.tables["grades"]["recommendations"], strict=True)) == {
        "A": 0, "B": 1, "C": 0, "D": 0, "E": 0}
    monthly = report.tables["monthly"].set_index("month")
    assert monthly["issued"].to_dict() == {1: 0, 2: 2, 3: 3, 4: 1, 5: 0, 6: 0, 7: 0, 8: 0, 9: 1, 10: 0, 11: 0, 12: 0}
    assert monthly["implemented"].to_dict() == {1: 0, 2: 1, 3: 1, 4: 0, 5: 1, 6: 0, 7: 0, 8: 0, 9: 0, 10: 0, 11: 0, 12: 0}


def test_the_report_is_written_as_a_printable_page_with_charts_and_spreadsheets(year_2025, tmp_path):
    files = write_report(compute(read_year(year_2025, 2025)), tmp_path / "report", "ru")
    html = files.html.read_text(encoding="utf-8")
    assert "Консолидированный доклад участников национального превентивного механизма" in html
    assert "за 2025 год" in html and "31.12.2025" in html
    assert "28,6&nbsp;%" in html  # 2 of 7, with the Russian decimal comma
    assert "Министерство внутренних дел Республики Казахстан" in html  # names, not codes
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == 3  # embedded: the page stands alone
    assert {p.name for p in files.charts} == {"rate_by_ministry.png", "monthly.png", "overdue_by_region.png"}
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in files.charts)
    # the tables as spreadsheets: headers and names in the report's language, numbers as numbers
    by_ministry = pd.read_csv(tmp_path / "report" / "tables" / "recommendations_by_ministry.csv", sep=";", decimal=",",
                              encoding="utf-8-sig")
    assert list(by_ministry.columns[:3]) == ["Ведомство", "Направлено", "Исполнено"]
    assert by_ministry.iloc[-1]["Ведомство"] == "Итого" and by_ministry.iloc[-1]["Исполнено, %"] == 28.6
    sheets = pd.read_excel(files.xlsx, sheet_name=None)
    assert len(sheets) == 11 and sheets["Рекомендации по ведомствам"].iloc[-1]["Направлено"] == 7


def test_the_report_reads_in_english_too(year_2025, tmp_path):
    files = write_report(compute(read_year(year_2025, 2025)), tmp_path / "en", "en")
    html = files.html.read_text(encoding="utf-8")
    assert "Consolidated report of the members of the National Preventive Mechanism" in html and "28.6&nbsp;%" in html
    assert "Ministry of Internal Affairs" in html


def test_a_year_without_data_gives_an_empty_report_not_an_error(engine, tmp_path):
    files = write_report(compute(read_year(engine, 2019)), tmp_path / "empty", "ru")
    assert "Нет данных за этот период." in files.html.read_text(encoding="utf-8")


@pytest.mark.server  # its own Prefect test harness
@pytest.mark.usefixtures("year_2025")
def test_the_annual_report_flow_runs_on_prefect_and_publishes_its_headline(tmp_path):
    from prefect.testing.utilities import prefect_test_harness

    from followup.flows.report import REPORT_KEY, annual_report_flow

    with prefect_test_harness():
        result = annual_report_flow(year=2025, out=str(tmp_path / "flow"), language="ru")
        from prefect.client.orchestration import get_client

        async def artifact():
            async with get_client() as client:
                from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

                return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[REPORT_KEY])))

        import asyncio

        [published] = asyncio.run(artifact())
    assert result["headline"]["issued"] == 7 and (tmp_path / "flow" / "annual-report-2025.html").exists()
    assert published.type == "table" and "Annual report 2025" in published.description
    assert "recommendations sent to state bodies" in str(published.data)


def _by_ministry(rows: list[dict]) -> dict[str, dict]:
    return {row["ministry"]: {k: v for k, v in row.items() if k != "ministry"} for row in rows}


def test_stats_show_each_ministry_s_current_picture(year_2025):
    picture = _by_ministry(current_picture(year_2025, date(2026, 1, 20)))
    # on 20.01.2026: R6 open and due 01.03 (not within 14 days); R5 before the Commissioner; R7 implemented this year
    assert picture["interior"] == {"open": 1, "due_soon": 0, "overdue": 0, "escalated": 0, "awaiting_decision": 1,
                                        "implemented": 0, "partially_implemented": 0, "rejected": 0, "total": 2}
    assert picture["health"]["implemented"] == 1 and picture["health"]["total"] == 1  # last year's answers are not counted
    assert _by_ministry(current_picture(year_2025, date(2026, 2, 20)))["interior"]["due_soon"] == 1


def test_an_answer_dated_before_the_import_of_its_recommendation_counts(engine, tmp_path):
    """A backlog is imported in November with the replies of the spring: the replies count from their dates."""
    import_recommendations(write_csv(
        tmp_path / "backlog.csv", "external_id,text,issued_on,due_on,ministry",
        "B1,Обеспечить камеры естественным освещением,10.01.2025,10.04.2025,interior",
        "B2,Провести обучение персонала,10.01.2025,10.04.2025,interior",
    ), engine=engine, actor="clerk")  # the import's own entries are dated today
    import_responses(write_csv(tmp_path / "replies.csv", "external_id,status,responded_on", "B1,implemented,01.03.2025"),
                     engine=engine, actor="clerk")
    report = compute(read_year(engine, 2025))
    assert (report.headline["implemented"], report.headline["issued"], report.headline["median_days"]) == (1, 2, 50)


@pytest.mark.usefixtures("year_2025")
def test_followup_stats_prints_the_picture_per_ministry():
    from typer.testing import CliRunner

    from followup.interfaces.cli import app

    result = CliRunner().invoke(app, ["stats", "--as-of", "2026-01-20"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "Recommendations as of 20.01.2026" in result.output
    interior = next(line for line in result.output.splitlines() if "Ministry of Internal Affairs" in line)
    assert [int(n) for n in re.findall(r"\d+", interior)] == [1, 0, 0, 0, 1, 0, 0, 0, 2]


@pytest.mark.usefixtures("year_2025")
def test_followup_stats_reads_a_day_first_as_of_as_the_iso_one():
    """`--as-of 20.01.2026` and `--as-of 2026-01-20` are the same run; a month-first date is refused."""
    from typer.testing import CliRunner

    from followup.interfaces.cli import app

    iso = CliRunner().invoke(app, ["stats", "--as-of", "2026-01-20"], env={"COLUMNS": "250"})
    day_first = CliRunner().invoke(app, ["stats", "--as-of", "20.01.2026"], env={"COLUMNS": "250"})
    assert iso.exit_code == day_first.exit_code == 0, iso.output + day_first.output
    assert day_first.output == iso.output
    month_first = CliRunner().invoke(app, ["stats", "--as-of", "01/20/2026"], env={"COLUMNS": "250"})
    assert month_first.exit_code == 2
    assert "'--as-of'" in month_first.output and "DD.MM.YYYY or YYYY-MM-DD" in month_first.output
