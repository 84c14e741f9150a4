"""The registry as the office reads it: a clerk filters, searches, sorts, pages and downloads
the list, and opens one item with its timeline, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import Engine, inspect
from sqlmodel import Session
from typer.testing import CliRunner

from followup.interfaces.cli import app
from followup.models.listing import RegistryFilter, get_item, list_items, timeline
from followup.models.search import FTS_TABLE, SEARCH_INDEX, fold, query_words
from followup.spreadsheets.export import export_items_xlsx
from followup.spreadsheets.ingest import import_recommendations, import_responses
from tests.conftest import write_csv

TODAY = date(2026, 3, 1)
HEADER = "external_id,text,issued_on,due_on,ministry,facility,facility_type,region,category,source,status,themes"
ROWS = (
    'R-1,"Обеспечить камеры ИВС естественным ОСВЕЩЕНИЕМ; установить ёмкости для питьевой воды",05.01.2026,10.03.2026,МВД,'
    'ИВС г. Кокшетау,police_temporary_detention,Акмолинская область,conditions,npm_visit,,Torture',
    'R-2,"Қамаудағы адамдарды сапалы ауыз сумен қамтамасыз ету (Үкімет қаулысы)",06.01.2026,20.03.2026,health,'
    'Психиатрическая больница г. Караганда,psychiatric_hospital,Карагандинская область,health care,npm_visit,,',
    'R-3,"Провести обучение персонала по предупреждению пыток; елочные игрушки убрать",07.01.2026,01.02.2026,interior,'
    'ИВС г. Кокшетау,police_temporary_detention,Акмолинская область,training,npm_visit,overdue,',
    'R-4,"=1+1 <script>alert(1)</script> ""вода"" — исполнить",08.01.2026,15.04.2026,,,,,other,upr,,',
    'R-5,"ҚАМАУ орындарында бейнебақылау жүйесін орнату; Іздеу жүргізу",09.01.2026,05.03.2026,justice,'
    'Учреждение ЛА-155/1,prison,Павлодарская область,conditions,npm_visit,in_progress,',
)


@pytest.fixture
def listed(engine: Engine, tmp_path: Path) -> Engine:
    """Five items: Russian and Kazakh texts, one with markup and a formula-like start, one unassigned."""
    import_recommendations(write_csv(tmp_path / "items.csv", HEADER, *ROWS), engine=engine, actor="clerk")
    return engine


def found(engine: Engine, **filters: object) -> list[str]:
    with engine.connect() as connection:
        page = list_items(connection, RegistryFilter(sort="external_id", **filters), today=TODAY)  # type: ignore[arg-type]
    return [row.external_id for row in page.rows]


def test_the_folding_treats_case_yo_and_kazakh_letters_alike():
    assert fold("ЁЛКА, Ёмкость!") == "елка емкость"
    assert fold("Қамаудағы ҮКІМЕТ ұйымы; өңір һ") == "камаудагы укимет уйымы онир х"
    assert fold("ӘкІМ Әділет ЁЁ") == fold("әкім әділет ёё") == "аким адилет ее"  # every letter, either case, wherever it stands
    assert fold("  <b>«вода»</b>\n\t=1+1 ") == "b вода b 1 1"
    assert query_words("вода, ВОДА вода") == ["вода"]
    assert query_words(" — «» ") == []


# the same expectations on both databases (the test runs on each): the same query finds the same items
@pytest.mark.parametrize(("query", "expected"), [
    ("освещение", ["R-1"]),
    ("ОСВЕЩ", ["R-1"]),  # a word's beginning, any case
    ("ёмкости", ["R-1"]), ("емкости", ["R-1"]),
    ("ёлочные", ["R-3"]), ("ЕЛОЧ", ["R-3"]),  # ё and е typed either way
    ("қамау", ["R-2", "R-5"]), ("камау", ["R-2", "R-5"]), ("ҚАМАУДАҒЫ", ["R-2"]),
    ("үкімет", ["R-2"]), ("укимет", ["R-2"]), ("іздеу", ["R-5"]), ("издеу", ["R-5"]),
    ("вод", ["R-1", "R-4"]), ("вода", ["R-4"]), ("вод питьевой", ["R-1"]), ("вода питьевой", []),  # every word
    ('"вода"', ["R-4"]), ("<script>", ["R-4"]), ("alert(1)", ["R-4"]), ("=1+1", ["R-4"]),
    ("пыт", ["R-3"]), ("ытк", []),  # beginnings of words only
    ("—", ["R-1", "R-2", "R-3", "R-4", "R-5"]),  # no word: nothing is filtered
])
def test_a_search_finds_the_same_items_on_both_databases(listed, query, expected):
    assert found(listed, search=query) == expected


def test_the_search_objects_are_made_by_the_migration(engine):
    """The model comparison leaves the search's own objects out; here they must exist."""
    if engine.dialect.name == "sqlite":
        assert FTS_TABLE in inspect(engine).get_table_names()
    else:
        assert SEARCH_INDEX in {i["name"] for i in inspect(engine).get_indexes("recommendation")}


def test_each_filter_narrows_the_list(listed):
    assert found(listed, ministry="interior") == ["R-1", "R-3"]
    assert found(listed, ministry="МВД") == ["R-1", "R-3"]  # a name or alias, as the import reads it
    assert found(listed, facility="ивс г. кокшетау") == ["R-1", "R-3"]  # exact, any case
    assert found(listed, facility="караганд") == ["R-2"]  # a part of the name
    assert found(listed, facility_type="prison") == ["R-5"]
    assert found(listed, region="карагандинская ОБЛАСТЬ") == ["R-2"]
    assert found(listed, statuses=("overdue", "in_progress")) == ["R-3", "R-5"]
    assert found(listed, overdue=True) == ["R-3"]  # the policy's late statuses
    assert found(listed, due_within_days=5) == ["R-5"]  # clock running, deadline by 06.03.2026
    assert found(listed, due_within_days=10) == ["R-1", "R-5"]
    assert found(listed, source="upr") == ["R-4"]
    assert found(listed, category="conditions") == ["R-1", "R-5"]
    assert found(listed, tag="theme:torture") == ["R-1"]
    assert found(listed, issued_from=date(2026, 1, 6), issued_to=date(2026, 1, 8)) == ["R-2", "R-3", "R-4"]
    assert found(listed, unassigned=True) == ["R-4"]
    assert found(listed, ministry="interior", search="пыток", overdue=True) == ["R-3"]


def test_unknown_values_are_refused_in_one_sentence(listed):
    with pytest.raises(ValueError, match="sort by one of due_on, -due_on"):
        RegistryFilter(sort="deadline")
    with pytest.raises(ValueError, match="unknown status 'late'"):
        RegistryFilter(statuses=("late",))
    with pytest.raises(ValueError, match="between 1 and 500"):
        RegistryFilter(page_size=501)
    with pytest.raises(ValueError, match="no ministry 'mars'"):
        found(listed, ministry="mars")


def test_sorting_and_paging(listed):
    def order(sort: str, **more: object) -> list[str]:
        with listed.connect() as connection:
            return [r.external_id for r in list_items(connection, RegistryFilter(sort=sort, **more), today=TODAY).rows]  # type: ignore[arg-type]

    assert order("due_on") == ["R-3", "R-5", "R-1", "R-2", "R-4"]
    assert order("-due_on") == ["R-4", "R-2", "R-1", "R-5", "R-3"]
    assert order("issued_on") == ["R-1", "R-2", "R-3", "R-4", "R-5"]
    assert order("-issued_on") == ["R-5", "R-4", "R-3", "R-2", "R-1"]
    assert order("ministry") == ["R-2", "R-1", "R-3", "R-5", "R-4"]  # without a ministry: last
    assert order("status")[:2] == ["R-5", "R-1"] or order("status")[0] == "R-5"  # in_progress before issued
    with listed.connect() as connection:
        pages = [list_items(connection, RegistryFilter(page=n, page_size=2), today=TODAY) for n in (1, 2, 3, 4)]
    assert [p.total for p in pages] == [5, 5, 5, 5] and {p.pages for p in pages} == {3}
    assert [[r.external_id for r in p.rows] for p in pages] == [["R-3", "R-5"], ["R-1", "R-2"], ["R-4"], []]
    row = pages[0].rows[0]
    assert (row.ministry_code, row.facility, row.region, row.status, row.due_on) == (
        "interior", "ИВС г. Кокшетау", "Акмолинская область", "overdue", date(2026, 2, 1))


def test_the_download_is_the_filtered_list_and_text_stays_text(listed):
    with listed.connect() as connection:
        everything = export_items_xlsx(connection, RegistryFilter(), today=TODAY)
        kazakh = export_items_xlsx(connection, RegistryFilter(search="қамау", page_size=1), today=TODAY)
    sheet = openpyxl.load_workbook(io.BytesIO(everything)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("external_id", "text", "ministry") and len(rows) == 6  # every page
    formula_like = next(c for c in sheet["B"] if str(c.value).startswith("="))
    assert formula_like.data_type == "s" and formula_like.value.startswith("=1+1 <script>")
    kazakh_rows = list(openpyxl.load_workbook(io.BytesIO(kazakh)).active.iter_rows(values_only=True))  # type: ignore[union-attr]
    assert [r[0] for r in kazakh_rows[1:]] == ["R-5", "R-2"]  # all matches by deadline, not the page of one


@pytest.mark.usefixtures("listed")
def test_list_json_gives_codes_and_iso_dates():
    result = CliRunner().invoke(app, ["list", "--ministry", "interior", "--status", "overdue", "--json"])
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)
    assert items == [{
        "external_id": "R-3", "ministry": "interior", "status": "overdue", "due_on": "2026-02-01", "issued_on": "2026-01-07",
        "facility": "ИВС г. Кокшетау", "region": "Акмолинская область", "source": "npm_visit", "category": "training",
        "priority": "normal", "awaiting_review": False,
        "text": "Провести обучение персонала по предупреждению пыток; елочные игрушки убрать",
    }]
    searched = json.loads(CliRunner().invoke(app, ["list", "--search", "КАМАУ", "--json", "--sort", "-due_on"]).stdout)
    assert [i["external_id"] for i in searched] == ["R-2", "R-5"]
    bad = CliRunner().invoke(app, ["list", "--sort", "deadline"])
    assert bad.exit_code == 2 and "sort by one of" in bad.output and len(bad.output.strip().splitlines()) == 1


def test_show_prints_the_record_and_its_timeline_with_a_reply_and_a_letter(listed, tmp_path):
    from followup.models.replies import ClaimInput, EvidenceInput, confirm_reply, create_draft_reply
    from followup.steps.deadlines import check_deadlines

    check_deadlines(date(2026, 2, 24), engine=listed)  # 14 days before 10.03: R-1 goes into a reminder letter
    import_responses(write_csv(tmp_path / "replies.csv", "external_id,status,responded_on,note,evidence",
                               "R-1,in_progress,25.02.2026,Письмо №12-3/456: работы начаты,scan-456.pdf"),
                     engine=listed, actor="clerk", today=date(2026, 2, 26))
    with listed.connect() as connection:
        record = get_item(connection, "R-1")
        assert record is not None
    with Session(listed) as session:
        reply = create_draft_reply(session=session, ministry="interior", generation=1,
                                   claims=[ClaimInput(record.id, "implemented", "Окна расширены")],
                                   responded_on=date(2026, 2, 27), today=date(2026, 2, 27), author_name="Focal Point",
                                   evidence=[EvidenceInput("ab" * 32, "акт-приёмки.pdf", "application/pdf", 1234)])
        confirm_reply(session=session, reply_id=reply.id, confirmed_by_name="Deputy", at=datetime(2026, 2, 27, 9, tzinfo=UTC))  # type: ignore[arg-type]
        session.commit()
    with listed.connect() as connection:
        entries = timeline(connection, record.id)
    kinds = [e.kind for e in entries]
    assert "status" in kinds and "reminder" in kinds and kinds.count("reply") == 2
    assert kinds.index("reminder") < kinds.index("reply")  # in order of the days they took effect
    # the import that created it comes first, although it was recorded today and the rest is dated in February
    assert entries[0].kind == "status" and entries[0].from_status is None and entries[0].on > date(2026, 3, 1)
    letter = next(e for e in entries if e.kind == "reminder")
    assert letter.reference == "REM-20260224-INTERIOR" and letter.on == date(2026, 2, 24)
    portal = [e for e in entries if e.kind == "reply"][-1]
    assert [f.filename for f in portal.files] == ["акт-приёмки.pdf"] and portal.to_status == "implemented"
    moved = next(e for e in entries if e.kind == "status" and e.to_status == "in_progress")
    assert moved.effective_on == date(2026, 2, 25) and moved.actor == "clerk"

    result = CliRunner().invoke(app, ["show", "R-1"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for expected in ("ОСВЕЩЕНИЕМ", "Министерство внутренних дел", "ИВС г. Кокшетау", "10.03.2026", "in_progress",
                     "REM-20260224-INTERIOR", "claims in_progress", "акт-приёмки.pdf", "issued → in_progress"):
        assert expected in text, expected
    history = CliRunner().invoke(app, ["history", "R-1"])
    assert history.exit_code == 0 and "ИВС г. Кокшетау" in history.output and "10.03.2026" in history.output
    missing = CliRunner().invoke(app, ["show", "R-404"])
    assert missing.exit_code == 2 and missing.output.strip() == "no recommendation 'R-404' in the registry"


def test_a_re_imported_text_is_found_by_its_new_words(listed, tmp_path):
    changed = [r.replace("естественным ОСВЕЩЕНИЕМ", "вентиляцией") for r in ROWS]
    import_recommendations(write_csv(tmp_path / "items-2.csv", HEADER, *changed), engine=listed, actor="clerk")
    assert found(listed, search="вентиляц") == ["R-1"]
    assert found(listed, search="освещением") == []


def test_walking_the_deadline_is_chosen_only_when_matches_are_common():
    from followup.models.listing import walk_in_order

    # 100,000 matches of a million: the first page is met after about 500 entries of the index
    assert walk_in_order(matching=100_000, wanted=50, registry_size=1_000_000)
    # 500 matches: fetching and sorting them is cheaper than walking 100,000 entries
    assert not walk_in_order(matching=500, wanted=50, registry_size=1_000_000)
    assert not walk_in_order(matching=0, wanted=50, registry_size=1_000_000)


def test_a_common_word_pages_in_the_same_order_as_sorting_every_match(engine, tmp_path):
    """When most items hold the searched word the page is found by walking the deadline's index
    (SQLite cannot tell how common a word is); the pages, with items without a deadline last,
    are the ones sorting every match gives, on both databases."""
    rows = []
    for n in range(1, 61):
        word = "питьевой воды" if n % 4 else "освещения"
        due = "" if n % 7 == 0 else f"{1 + n * 13 % 28:02d}.{1 + n % 12:02d}.2026"
        rows.append(f'W-{n:02d},"Обеспечить наличие {word} в камере {n}",05.01.2026,{due},interior,'
                    f'ИВС г. Кокшетау,police_temporary_detention,Акмолинская область,conditions,npm_visit,,')
    import_recommendations(write_csv(tmp_path / "many.csv", HEADER, *rows), engine=engine, actor="clerk")
    with engine.connect() as connection:
        every = list_items(connection, RegistryFilter(search="питьев", page_size=500), today=TODAY).rows
        expected = sorted(every, key=lambda r: (r.due_on is None, r.due_on or date.min, r.id))
        assert len(every) == 45
        for sort, ordered in (("due_on", expected), ("-due_on", sorted(every, key=lambda r: (
                r.due_on is None, -(r.due_on or date.min).toordinal(), -r.id)))):
            for page in (1, 2, 5):
                got = list_items(connection, RegistryFilter(search="ПИТЬЕВ", sort=sort, page=page, page_size=10), today=TODAY)
                assert got.total == 45
                assert [r.external_id for r in got.rows] == [r.external_id for r in ordered[(page - 1) * 10:page * 10]], (sort, page)
        # with a second condition the count reads the table, and agrees
        narrowed = list_items(connection, RegistryFilter(search="питьев", overdue=False, ministry="interior", page_size=10), today=TODAY)
        assert narrowed.total == 45 and [r.external_id for r in narrowed.rows] == [r.external_id for r in expected[:10]]


def test_a_search_count_that_stops_at_its_limit_says_so_and_still_pages(engine, tmp_path, monkeypatch):
    """PostgreSQL stops counting a search at 1,000 (a GIN index cannot count without visiting the
    rows): the list then says "1000+" and keeps offering the next page while pages come back full."""
    from followup.models.backend import backend_of

    rows = [f'C-{n:02d},"Обеспечить камеры питьевой водой {n}",05.01.2026,{1 + n % 28:02d}.04.2026,interior,'
            f'ИВС г. Кокшетау,police_temporary_detention,Акмолинская область,conditions,npm_visit,,' for n in range(1, 15)]
    import_recommendations(write_csv(tmp_path / "count.csv", HEADER, *rows), engine=engine, actor="clerk")
    with engine.connect() as connection:
        monkeypatch.setattr(type(backend_of(connection)), "search_count_limit", 5)
        first = list_items(connection, RegistryFilter(search="питьевой", page_size=4), today=TODAY)
        assert (first.total, first.at_least, first.total_label, first.has_next) == (5, True, "5+", True)
        third = list_items(connection, RegistryFilter(search="питьевой", page_size=4, page=3), today=TODAY)
        assert len(third.rows) == 4 and third.has_next and third.pages_label == "3+"
        last = list_items(connection, RegistryFilter(search="питьевой", page_size=4, page=4), today=TODAY)
        assert len(last.rows) == 2 and not last.has_next  # 14 in all
        # a filter without words is counted whole
        plain = list_items(connection, RegistryFilter(ministry="interior", page_size=4), today=TODAY)
        assert not plain.at_least and plain.total_label == str(plain.total)


def test_due_within_counts_the_days_an_item_waited_on_the_office(listed):
    """R-5 (due 05.03) waited 20 days on the office in February: its deadline is 25.03, not within
    5 days of 01.03 any more, but within 30. R-3's deadline (01.02) has passed: never "due within"."""
    from followup.steps.office import hold, resume

    hold(engine=listed, external_id="R-5", actor="a.seitkali", reason="awaiting the NPM's own expert opinion", today=date(2026, 2, 1))
    resume(engine=listed, external_id="R-5", actor="a.seitkali", reason="opinion received", today=date(2026, 2, 21))
    assert found(listed, due_within_days=5) == []
    assert found(listed, due_within_days=24) == ["R-1", "R-2", "R-5"]
    assert found(listed, due_within_days=23) == ["R-1", "R-2"]
    with listed.connect() as connection:
        assert list_items(connection, RegistryFilter(due_within_days=24), today=TODAY).total == 3
    # `followup stats` counts as due soon what the list shows as due within the same days
    from followup.reports.picture import current_picture

    for days, expected in ((5, 0), (23, 2), (24, 3)):
        assert current_picture(listed, TODAY, due_within=days)[-1]["due_soon"] == expected
