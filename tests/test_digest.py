"""The Ombudsman's weekly digest, on a small registry the daily pass has worked through.

The office's spring 2026: NPM recommendations from January visits, deadlines in March and
April, the daily pass run every day (reminders, overdue, individualized recommendations,
level 2), ministries' replies on the days they arrive, the office's own acts (a withdrawal,
a hold, an assignment). On Monday 04.05.2026 the office builds the digest of 28.04–04.05;
every section is checked row by row against what the scenario makes of the registry.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import select, update
from sqlmodel import Session

from followup.config.policy import load_policy
from followup.models.calendar import WorkingCalendar
from followup.models.followup import Notification
from followup.models.registry import Recommendation
from followup.models.transitions import TransitionRequest, record_edits, transition, transition_many
from followup.notifications.digest import SECTION_COLUMNS, Digest, build_digest
from followup.spreadsheets.ingest import import_recommendations, import_responses
from followup.steps.deadlines import check_deadlines, escalate_ministry, plan_escalations, refer_to_level2
from tests.conftest import write_csv

CALENDAR = WorkingCalendar.from_policy(load_policy().calendar)
CALENDAR_TZ = ZoneInfo("Asia/Almaty")  # the office's day
AS_OF = date(2026, 5, 4)  # a Monday: the digest of Tuesday 28.04 to Monday 04.05, both included
SINCE = date(2026, 4, 28)
IVS = "ИВС г. Кокшетау"
PNB = "Психиатрическая больница г. Караганда"
SCHOOL = "Специальная школа г. Шымкент"
LONG_TEXT = (
    "Обеспечить проживающих центра оказания специальных социальных услуг доступом к индивидуальным "
    "средствам гигиены, отдельным шкафам для личных вещей и возможностью ежедневных прогулок на свежем воздухе"
)


def d(text: str) -> date:
    day, month, year = map(int, text.split("."))
    return date(year, month, day)


def office(engine, external_id: str, to_status: str, day: date, reason: str) -> None:
    """The office's own act (not a ministry's reply), effective on `day`."""
    with Session(engine) as session:
        rec = session.execute(select(Recommendation).where(Recommendation.external_id == external_id)).scalar_one()
        transition_many(session, [TransitionRequest(rec.id, rec.status, to_status, external_id)],
                        actor="office", reason=reason, effective_on=[day])
        session.commit()


def reply(engine, tmp_path, day: date, *rows: str) -> None:
    """Ministries' replies that reached the office on `day` (external_id,status)."""
    lines = [f"{row},{day:%d.%m.%Y}" for row in rows]
    import_responses(write_csv(tmp_path / f"reply-{day}.csv", "external_id,status,responded_on", *lines),
                     engine=engine, actor="clerk", today=day)


def daily_pass(engine, day: date) -> None:
    check_deadlines(day, engine=engine)
    for code in plan_escalations(day, engine=engine):
        escalate_ministry(code, day, engine=engine)
    refer_to_level2(day, engine=engine)


@pytest.fixture
def spring(engine, tmp_path):
    """The registry as it stands on the evening of 04.05.2026, after that day's pass."""
    akm, krg, trk = "Акмолинская область", "Карагандинская область", "Туркестанская область"
    centre = "Центр оказания специальных социальных услуг г. Талдыкорган"
    import_recommendations(write_csv(
        tmp_path / "visits.csv", "external_id,text,issued_on,due_on,ministry,facility,region,category",
        f"NPM-1,Обеспечить камеры ИВС естественным освещением,05.01.2026,10.03.2026,МВД,{IVS},{akm},условия содержания",
        f"NPM-2,Провести обучение персонала,05.01.2026,10.03.2026,interior,{IVS},{akm},персонал",
        f"NPM-9,Оборудовать комнату для свиданий,05.01.2026,10.03.2026,interior,{IVS},{akm},условия содержания",
        f"NPM-3,Обеспечить пациентов питьевой водой,05.01.2026,10.03.2026,health,{PNB},{krg},условия содержания",
        f"NPM-4,Обеспечить ежедневные прогулки,05.01.2026,10.03.2026,МЗ,{PNB},{krg},режим",
        f"NPM-10,Вести журнал мер стеснения,05.01.2026,13.04.2026,health,{PNB},{krg},медицина",
        f"NPM-7,Пересмотреть порядок изоляции пациентов,05.01.2026,03.05.2026,health,{PNB},{krg},режим",
        f"NPM-5,Обеспечить доступ к психологу,05.01.2026,26.04.2026,education,{SCHOOL},{trk},медицина",
        f"NPM-6,Прекратить практику коллективных наказаний,05.01.2026,27.04.2026,education,{SCHOOL},{trk},режим",
        f"NPM-12,Провести экспертизу условий проживания,05.01.2026,20.04.2026,education,{SCHOOL},{trk},условия содержания",
        "NPM-11,Обеспечить переводчика жестового языка,05.01.2026,01.02.2026,labour,,,",
        "NPM-8,Обеспечить доступную среду,05.01.2026,04.05.2026,labour,,,",
        f'NPM-20,"{LONG_TEXT}",12.01.2026,,,{centre},Жетісу область,социальное обслуживание',
        "NPM-21,Уточнить ведомственную принадлежность помещения для задержанных,19.01.2026,,,,,",
        "NPM-22,Обеспечить видеонаблюдение в помещениях для допроса,19.01.2026,01.09.2026,,,,",
    ), engine=engine, actor="clerk")
    reply(engine, tmp_path, d("20.01.2026"), "NPM-11,rejected")  # labour refuses, in time: an answer
    office(engine, "NPM-9", "withdrawn", d("05.03.2026"), "superseded by NPM-1")
    # NPM-22's body is established: the clerk re-imports it with its ministry
    import_recommendations(write_csv(
        tmp_path / "assign.csv", "external_id,text,issued_on,due_on,ministry",
        "NPM-22,Обеспечить видеонаблюдение в помещениях для допроса,19.01.2026,01.09.2026,justice",
    ), engine=engine, actor="clerk")

    replies = {
        d("09.03.2026"): ["NPM-4,partially_implemented"],  # health, in time
        d("01.04.2026"): ["NPM-2,implemented"],  # interior answers one item of its letter
        d("15.04.2026"): ["NPM-3,implemented"],  # health answers its letter
        d("30.04.2026"): ["NPM-6,in_progress"],  # education, after the deadline: still late
    }
    day = d("09.03.2026")
    while day <= AS_OF:
        if day in replies:
            reply(engine, tmp_path, day, *replies[day])
        if day == d("10.04.2026"):  # the office waits for an expert's opinion on NPM-12: its clock stops
            office(engine, "NPM-12", "on_hold", day, "expert opinion requested")
        daily_pass(engine, day)
        day += timedelta(days=1)
    return engine


def status_of(engine) -> dict[str, str]:
    with engine.connect() as c:
        return dict(c.execute(select(Recommendation.external_id, Recommendation.status)).all())


def rows(frame: pd.DataFrame) -> list[tuple]:
    return [tuple(r) for r in frame.astype(object).itertuples(index=False, name=None)]


def test_the_weekly_digest_of_a_spring(spring):
    engine = spring
    # the scenario did what the ladder says (the dates below come from the calendar, not guesses)
    assert CALENDAR.add_working_days(d("11.03.2026"), 10) == d("30.03.2026")  # Nauryz in between
    assert CALENDAR.add_working_days(d("14.04.2026"), 10) == d("28.04.2026")
    assert status_of(engine) == {
        "NPM-1": "awaiting_decision", "NPM-2": "implemented", "NPM-9": "withdrawn",
        "NPM-3": "implemented", "NPM-4": "partially_implemented", "NPM-10": "escalated", "NPM-7": "overdue",
        "NPM-5": "overdue", "NPM-6": "overdue", "NPM-12": "on_hold",
        "NPM-11": "rejected", "NPM-8": "issued",
        "NPM-20": "unassigned", "NPM-21": "unassigned", "NPM-22": "issued",
    }

    # the dispatcher's outcomes: one reminder failed once, the level-2 notice gave up, the new
    # letter to health has no Apprise URL; one message went out, the rest wait in the queue
    n = Notification.__table__
    with engine.begin() as c:
        keys = [k for k, in c.execute(select(n.c.dedupe_key).order_by(n.c.id))]
        reminder = next(k for k in keys if k.startswith("reminder:interior:"))
        outcomes = {
            reminder: ("failed", 1, "SMTP 451 try again later"),
            "level2:IR-20260330-INTERIOR": ("dead", 5, "SMTP 550 mailbox unavailable"),
            "individualized:IR-20260428-HEALTH": ("unroutable", 0, "no Apprise URL tagged ministry:health"),
            "individualized:IR-20260330-HEALTH": ("sent", 1, None),
        }
        for key, (state, attempts, error) in outcomes.items():
            c.execute(update(n).where(n.c.dedupe_key == key).values(status=state, attempts=attempts, last_error=error))
        created = dict(c.execute(select(n.c.dedupe_key, n.c.created_at)).all())
        subject = dict(c.execute(select(n.c.dedupe_key, n.c.subject)).all())

    with Session(engine) as session:
        digest = build_digest(session, AS_OF)

    assert isinstance(digest, Digest)
    assert (digest.since, digest.as_of) == (SINCE, AS_OF)
    assert digest.keys == [
        "new_overdue", "individualized", "drafts_waiting", "awaiting_decision", "decisions", "unassigned", "replies_received",
        "response_rates", "failed_notifications",
    ]
    for section in digest.sections:
        assert tuple(section["rows"].columns) == SECTION_COLUMNS[section["key"]]

    # 1. overdue this week: NPM-6 on 28.04 (the first day; overdue again on 01.05 after a mere
    # "in progress", listed once) and NPM-7 on 04.05 (the digest's own day). Not NPM-5, overdue
    # on 27.04 (last week's digest), nor NPM-8, due on 04.05 itself.
    assert rows(digest.section("new_overdue")) == [
        ("NPM-6", "education", SCHOOL, "Туркестанская область", d("27.04.2026"), d("28.04.2026"), "overdue"),
        ("NPM-7", "health", PNB, "Карагандинская область", d("03.05.2026"), d("04.05.2026"), "overdue"),
    ]

    # 2. issued this week: health's second letter (NPM-10, 10 working days overdue on 28.04);
    # the letters of 30.03 are not this week's
    assert rows(digest.section("individualized")) == [
        ("IR-20260428-HEALTH", "health", d("28.04.2026"), d("28.05.2026"), 1, "issued"),
    ]

    # 3. level 2: interior never answered NPM-1 in IR-20260330-INTERIOR (due 29.04)
    assert rows(digest.section("awaiting_decision")) == [
        ("NPM-1", "interior", IVS, "IR-20260330-INTERIOR", d("29.04.2026")),
    ]

    # 4. no ministry yet: NPM-20 (text cut at 120 characters) and NPM-21; NPM-22 was assigned
    assert len(LONG_TEXT) > 120
    assert rows(digest.section("unassigned")) == [
        ("NPM-20", "npm_visit", None, d("12.01.2026"), "Центр оказания специальных социальных услуг г. Талдыкорган",
         "Жетісу область", "социальное обслуживание", LONG_TEXT[:120]),
        ("NPM-21", "npm_visit", None, d("19.01.2026"), None, None, None,
         "Уточнить ведомственную принадлежность помещения для задержанных"),
    ]

    # 5. response rates, by hand, on 04.05 (deadline passed = before 04.05; withdrawn left out):
    #   education: NPM-5, NPM-6 due; NPM-12's 20.04 moved by 24 days on hold (10.04 -> 04.05): not due.
    #              answered 0 of 2; overdue NPM-5, NPM-6.
    #   health:    NPM-3 implemented, NPM-4 partially (an answer), NPM-10 escalated, NPM-7 overdue:
    #              answered 2 of 4; overdue 2; letters 2 (30.03 answered, 28.04 waiting).
    #   interior:  NPM-1 awaiting a decision, NPM-2 implemented (NPM-9 withdrawn): 1 of 2; overdue 1;
    #              its one letter went to level 2, not answered.
    #   labour:    NPM-11 rejected (a reply); NPM-8 due 04.05 is not past due: 1 of 1.
    #   justice:   NPM-22 due 01.09: nothing due yet, no rate, not listed.
    #   sent: every item the body was sent, due or not (education NPM-12, labour NPM-8 too)
    rates = digest.section("response_rates")
    assert rows(rates) == [
        ("education", 3, 2, 0, 0.0, 2, 0, 0),
        ("health", 4, 4, 2, 0.5, 2, 2, 1),  # same rate as interior, more items late: listed first
        ("interior", 2, 2, 1, 0.5, 1, 1, 0),
        ("labour", 2, 1, 1, 1.0, 0, 0, 0),
    ]
    assert not rates.isna().any().any()
    assert [str(t) for t in rates.dtypes] == ["object", "int64", "int64", "int64", "float64", "int64", "int64", "int64"]

    # 6. what the dispatcher could not deliver, oldest first, times in Almaty
    failed = digest.section("failed_notifications")
    expected_keys = [reminder, "individualized:IR-20260428-HEALTH", "level2:IR-20260330-INTERIOR"]
    assert [r[:6] for r in rows(failed)] == [
        ("ministry:interior", "reminder", subject[reminder], "failed", 1, "SMTP 451 try again later"),
        ("ministry:health", "individualized", subject[expected_keys[1]], "unroutable", 0,
         "no Apprise URL tagged ministry:health"),
        ("ombudsman", "level2", subject[expected_keys[2]], "dead", 5, "SMTP 550 mailbox unavailable"),
    ]
    assert list(failed["created_at"]) == [created[k] for k in expected_keys]
    assert {t.utcoffset() for t in failed["created_at"]} == {timedelta(hours=5)}

    # every date column holds date objects (not strings, not Timestamps) on both databases
    for key, column in [
        ("new_overdue", "due_on"), ("new_overdue", "overdue_since"), ("individualized", "issued_on"),
        ("individualized", "response_due_on"), ("awaiting_decision", "response_due_on"), ("unassigned", "issued_on"),
    ]:
        assert all(type(v) is date for v in digest.section(key)[column]), (key, column)

    # the same digest from a connection or an engine
    with engine.connect() as connection:
        again = build_digest(connection, AS_OF)
    for other in (again, build_digest(engine, AS_OF)):
        for mine, theirs in zip(digest.sections, other.sections, strict=True):
            pd.testing.assert_frame_equal(mine["rows"], theirs["rows"])

    # the next digest starts the day after this one (no day in two digests); the pass has not
    # run past 04.05, so its period holds nothing yet, and the standing sections are the same
    later = build_digest(engine, AS_OF + timedelta(days=7))
    assert later.since == AS_OF + timedelta(days=1)
    assert later.section("new_overdue").empty and later.section("individualized").empty
    assert rows(later.section("awaiting_decision")) == rows(digest.section("awaiting_decision"))


@pytest.mark.usefixtures("db_url")
def test_the_period_is_the_days_ending_with_as_of_in_almaty(engine, tmp_path):
    """A change without effective_on counts on its local (Asia/Almaty, UTC+5) day; edits are not changes."""
    import_recommendations(write_csv(
        tmp_path / "f.csv", "external_id,text,issued_on,due_on,ministry",
        *[f"R-{k},Рекомендация {k},05.01.2026,01.12.2026,interior" for k in "ABCDE"],
    ), engine=engine, actor="clerk")
    # by hand, at these instants (UTC), on-hold items declared overdue by the office
    at = {
        "A": datetime(2026, 4, 27, 19, 30, tzinfo=UTC),  # 28.04 00:30 in Almaty: the first day, in
        "B": datetime(2026, 5, 4, 18, 30, tzinfo=UTC),  # 04.05 23:30 in Almaty: the last day, in
        "C": datetime(2026, 5, 4, 19, 30, tzinfo=UTC),  # 05.05 00:30 in Almaty: after the period
        "D": datetime(2026, 4, 27, 18, 59, tzinfo=UTC),  # 27.04 23:59 in Almaty: before the period
        "E": datetime(2026, 3, 2, 9, 0, tzinfo=UTC),  # long before
    }
    with Session(engine) as session:
        recs = {r.external_id[2:]: r for r in session.execute(select(Recommendation)).scalars()}
        for k, moment in at.items():
            transition(session, recs[k], "on_hold", actor="office", reason="waiting", at=moment - timedelta(days=1))
            transition(session, recs[k], "overdue", actor="office", reason="declared overdue", at=moment)
        # an edit of E's text during the period: a history row with to_status 'overdue', not a change
        record_edits(session, [(recs["E"].id, "overdue", {"text": ["a", "b"]})], actor="clerk", reason="typo",
                     at=datetime(2026, 4, 30, 6, 0, tzinfo=UTC))
        session.commit()

    digest = build_digest(engine, AS_OF)
    overdue = digest.section("new_overdue")
    assert list(overdue["external_id"]) == ["R-A", "R-B"]
    assert list(overdue["overdue_since"]) == [d("28.04.2026"), d("04.05.2026")]
    assert list(overdue["due_on"]) == [d("01.12.2026")] * 2

    # one day: only as_of itself
    assert list(build_digest(engine, AS_OF, days=1).section("new_overdue")["external_id"]) == ["R-B"]
    assert build_digest(engine, AS_OF, days=1).since == AS_OF
    assert list(build_digest(engine, d("05.05.2026"), days=1).section("new_overdue")["external_id"]) == ["R-C"]
    with pytest.raises(ValueError, match="at least 1"):
        build_digest(engine, AS_OF, days=0)

    # nothing is past due on 04.05: interior has no rate yet
    assert digest.section("response_rates").empty


@pytest.mark.usefixtures("db_url")
def test_a_backlog_marked_overdue_late_is_new_in_the_digest_of_the_day_it_was_marked(engine, tmp_path):
    """The office imports last year's recommendations; the first pass marks the long-expired
    ones overdue as of the day after their deadline. They are new to the office this week."""
    import_recommendations(write_csv(
        tmp_path / "backlog.csv", "external_id,text,issued_on,due_on,ministry",
        "OLD-1,Отремонтировать прогулочный двор,10.01.2025,10.04.2025,interior",
        "OLD-2,Обеспечить доступ к врачу,10.01.2025,10.06.2025,health",
    ), engine=engine, actor="clerk")
    today = datetime.now(UTC).astimezone(CALENDAR_TZ).date()
    check_deadlines(today, engine=engine)
    digest = build_digest(engine, today)
    assert rows(digest.section("new_overdue")[["external_id", "overdue_since"]]) == [
        ("OLD-2", d("11.06.2025")), ("OLD-1", d("11.04.2025")),
    ]
    # and a week later they are no longer new
    assert build_digest(engine, today + timedelta(days=7)).section("new_overdue").empty


@pytest.mark.usefixtures("db_url")
def test_an_empty_registry_gives_empty_sections_with_their_columns(engine):
    digest = build_digest(engine, AS_OF)
    for section in digest.sections:
        assert section["rows"].empty
        assert tuple(section["rows"].columns) == SECTION_COLUMNS[section["key"]]


def _escalated_backlog(engine, tmp_path) -> date:
    """Three interior items and one of the National Security Committee, overdue since 11.03.2026 and
    escalated ten working days later (30.03); one unassigned item on medical care. Returns 30.03."""
    import_recommendations(write_csv(
        tmp_path / "escalated.csv", "external_id,text,issued_on,due_on,ministry,facility,category",
        f"NPM-31,Обеспечить камеры естественным освещением,05.01.2026,10.03.2026,interior,{IVS},detention_conditions",
        f"NPM-32,Провести обучение персонала,05.01.2026,10.03.2026,interior,{IVS},legal_training",
        f"NPM-30,Отремонтировать санузел,05.01.2026,10.03.2026,interior,{IVS},sanitary_standards",
        "NPM-40,Обеспечить доступ к адвокату,05.01.2026,10.03.2026,nsc,СИЗО КНБ г. Астана,",
        "NPM-50,Обеспечить осмотр врачом при поступлении,05.01.2026,10.03.2026,,,medical_care",
    ), engine=engine, actor="clerk")
    as_of = CALENDAR.add_working_days(d("11.03.2026"), 10)
    check_deadlines(d("11.03.2026"), engine=engine)
    check_deadlines(as_of, engine=engine)
    for code in plan_escalations(as_of, engine=engine):
        escalate_ministry(code, as_of, engine=engine)
    return as_of


@pytest.mark.usefixtures("db_url")
def test_the_digest_names_what_escalated_item_by_item_with_the_full_list_attached(engine, tmp_path):
    """The office reads the digest to know which recommendations went to whom: under each
    individualized recommendation its items (number, facility, deadline, days overdue), the first
    `listed_items` of them, and every item in the attached spreadsheet."""
    import io

    from followup.notifications.digest import digest_message

    as_of = _escalated_backlog(engine, tmp_path)
    digest = build_digest(engine, as_of)
    message = digest_message(digest, "ru", listed_items=2)
    text, html = message["body_text"], message["body_html"]
    assert "IR-20260330-INTERIOR — Министерство внутренних дел Республики Казахстан (3)" in text
    assert "IR-20260330-NSC — Комитет национальной безопасности Республики Казахстан (1)" in text
    interior = text[text.index("IR-20260330-INTERIOR — "):text.index("IR-20260330-NSC — ")]
    # by deadline, then number (not in the order of import); the deadline as the letter gave it; 20 days overdue on 30.03
    assert interior.index("NPM-30") < interior.index("NPM-31") and "NPM-32" not in interior
    assert IVS in interior and "10.03.2026" in interior and " 20" in interior
    name = "digest-2026-03-30-items.csv"
    assert f"Здесь приведены первые 2 из 3. Полный перечень — в приложенном файле {name}." in text
    assert "NPM-40" in text and "Дней просрочки" in text and ">Дней просрочки</th>" in html and "NPM-31" in html
    assert message["payload"]["attachment"] == name
    table = pd.read_csv(io.StringIO(message["attachment"].lstrip("\ufeff")), sep=";", dtype=str)
    assert sorted(set(table["Номер рекомендации"])) == ["NPM-30", "NPM-31", "NPM-32", "NPM-40"]
    # the newly overdue are a list of items too: cut like the letters, all of them in the same file
    # the individualized section's figure counts the letters and the items in them
    assert "Направленные индивидуальные рекомендации: 2, рекомендаций в них: 4" in text
    # a short list needs no attachment
    assert "attachment" not in digest_message(digest, "ru", listed_items=100)


@pytest.mark.usefixtures("db_url")
def test_the_digest_shows_names_in_the_office_language_and_says_state_body(engine, tmp_path):
    """Codes (interior, nsc, medical_care) never reach a reader; the list mixes ministries with the
    National Security Committee, so its column says "state body"."""
    from followup.notifications.digest import digest_message

    as_of = _escalated_backlog(engine, tmp_path)
    digest = build_digest(engine, as_of)
    for language, body, words in [
        ("ru", "Госорган", ["Министерство внутренних дел Республики Казахстан", "Комитет национальной безопасности", "медицинская помощь"]),
        ("kk", "Мемлекеттік орган", ["Қазақстан Республикасы Ішкі істер министрлігі", "Ұлттық қауіпсіздік комитеті", "медициналық көмек"]),
        ("en", "State body", ["Ministry of Internal Affairs", "National Security Committee", "medical care"]),
    ]:
        message = digest_message(digest, language)
        text, html = message["body_text"], message["body_html"]
        assert all(word in text and word in html for word in words), language
        assert f">{body}</th>" in html and "Министерство</th>" not in html
        for code in ("interior", "nsc", "medical_care"):
            assert f" {code} " not in text and f">{code}<" not in html, (language, code)


@pytest.mark.usefixtures("db_url")
def test_a_pass_run_for_a_past_day_counts_in_that_days_digest(engine, tmp_path):
    """The demo runs the pass `--as-of 30.03.2026` today: what it marked overdue (a backlog,
    overdue since long before) is new in the digest of 30.03, not in today's."""
    import_recommendations(write_csv(
        tmp_path / "backlog.csv", "external_id,text,issued_on,due_on,ministry",
        "OLD-1,Отремонтировать прогулочный двор,10.01.2025,10.04.2025,interior",
        "OLD-2,Обеспечить доступ к врачу,10.01.2025,10.06.2025,health",
        "NEW-1,Провести обучение персонала,10.01.2026,25.03.2026,health",
    ), engine=engine, actor="clerk")
    as_of = d("30.03.2026")
    check_deadlines(as_of, engine=engine)
    digest = build_digest(engine, as_of)
    assert sorted(digest.section("new_overdue")["external_id"]) == ["NEW-1", "OLD-1", "OLD-2"]
    today = datetime.now(UTC).astimezone(CALENDAR_TZ).date()
    assert build_digest(engine, today).section("new_overdue").empty
    # the history says which run recorded the mark
    from followup.models.registry import StatusChange

    h = StatusChange.__table__
    with engine.connect() as c:
        assert set(c.execute(select(h.c.recorded_on).where(h.c.to_status == "overdue")).scalars()) == {as_of}


@pytest.mark.usefixtures("db_url")
def test_a_long_list_of_newly_overdue_items_is_cut_like_a_reminder_with_all_of_them_attached(engine, tmp_path):
    """A pass that marks a thousand items overdue made a digest of 1.4 MB: the newly overdue are
    listed like a reminder's items, the first `listed_items`, and every one in the attachment."""
    import io

    from followup.notifications.digest import digest_message
    from followup.spreadsheets.ingest import import_recommendations
    from followup.steps.deadlines import check_deadlines

    rows = [f"LATE-{n},Обеспечить камеры естественным освещением,05.01.2026,{n:02d}.03.2026,МВД" for n in range(1, 6)]
    import_recommendations(write_csv(tmp_path / "late.csv", "external_id,text,issued_on,due_on,ministry", *rows), engine=engine)
    check_deadlines(date(2026, 3, 9), engine=engine)
    message = digest_message(build_digest(engine, date(2026, 3, 9)), "ru", listed_items=2)
    text = message["body_text"]
    section = text.split("НОВЫЕ ПРОСРОЧЕННЫЕ РЕКОМЕНДАЦИИ")[1]
    assert "LATE-1" in section and "LATE-2" in section and "LATE-3" not in section
    assert "Здесь приведены первые 2 из 5. Полный перечень — в приложенном файле digest-2026-03-09-items.csv." in section
    table = pd.read_csv(io.StringIO(message["attachment"].lstrip("\ufeff")), sep=";", dtype=str)
    assert list(table["Номер рекомендации"]) == [f"LATE-{n}" for n in range(1, 6)]
    assert set(table["Раздел"]) == {"Новые просроченные рекомендации"}
