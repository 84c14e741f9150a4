"""Simulated days through the ladder: reminder, overdue, escalation, level 2, a reply.

These call the steps the flows orchestrate (plain functions, real databases); the Prefect
flows themselves are run in test_deadline_flows.py.
"""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from followup.config.policy import load_policy
from followup.models.calendar import WorkingCalendar
from followup.models.followup import IndividualizedRecommendation, Notification, Reminder
from followup.models.registry import Recommendation, StatusChange
from followup.spreadsheets.ingest import import_recommendations, import_responses
from followup.steps.deadlines import check_deadlines, escalate_ministry, plan_escalations, refer_to_level2
from tests.conftest import write_csv

POLICY = load_policy()
CALENDAR = WorkingCalendar.from_policy(POLICY.calendar)
DUE = date(2026, 3, 10)


def log(engine, external_id: str) -> list[tuple[str | None, str]]:
    r, h = Recommendation.__table__, StatusChange.__table__
    with engine.connect() as c:
        rows = c.execute(
            select(h.c.from_status, h.c.to_status).join(r, r.c.id == h.c.recommendation_id)
            .where(r.c.external_id == external_id, h.c.from_status.is_distinct_from(h.c.to_status)).order_by(h.c.id)
        ).all()
    return [tuple(row) for row in rows]


def status(engine, external_id: str) -> str:
    with engine.connect() as c:
        return c.execute(select(Recommendation.status).where(Recommendation.external_id == external_id)).scalar_one()


def notifications(engine) -> list[Notification]:
    with engine.connect() as c:
        return [Notification.model_validate(r._mapping) for r in c.execute(select(Notification.__table__).order_by(Notification.id))]


def escalate_all(as_of: date, engine) -> list[str]:
    refs = []
    for code in plan_escalations(as_of, engine=engine):
        refs += escalate_ministry(code, as_of, engine=engine).individualized
    return refs


def test_the_whole_ladder_day_by_day(registry, tmp_path):
    engine = registry
    # 14 days before: one reminder letter per ministry, each listing only its own items
    result = check_deadlines(DUE - timedelta(days=14), engine=engine)
    assert result.reminders == 3 and sorted(result.notifications) == ["reminder:health:2026-02-24", "reminder:interior:2026-02-24"]
    letters = {n.recipient: n for n in notifications(engine)}
    assert "NPM-1" in letters["ministry:interior"].body_text and "NPM-2" in letters["ministry:interior"].body_text
    assert "NPM-3" not in letters["ministry:interior"].body_text and "NPM-1" not in letters["ministry:health"].body_text
    # the same day again: nothing new
    assert check_deadlines(DUE - timedelta(days=14), engine=engine).counts()["notifications"] == 0
    # a day without a reminder due
    assert check_deadlines(DUE - timedelta(days=10), engine=engine).reminders == 0
    # 3 days before: the second reminder, once
    assert check_deadlines(DUE - timedelta(days=3), engine=engine).reminders == 3
    assert check_deadlines(DUE - timedelta(days=3), engine=engine).reminders == 0
    # the deadline day itself is not overdue
    assert check_deadlines(DUE, engine=engine).changes == []
    # the ministry of health answers in time
    write_csv(tmp_path / "reply.csv", "external_id,status,responded_on,note", "NPM-3,implemented,09.03.2026,Письмо МЗ №1")
    import_responses(tmp_path / "reply.csv", engine=engine, today=DUE)
    # the day after: interior's two items are overdue, health's is not
    after = check_deadlines(DUE + timedelta(days=1), engine=engine)
    assert sorted(c.external_id for c in after.changes) == ["NPM-1", "NPM-2"]
    assert status(engine, "NPM-1") == "overdue" and status(engine, "NPM-3") == "implemented"
    # escalation after 10 working days on the Kazakhstan calendar (Nauryz falls in between)
    overdue_since = DUE + timedelta(days=1)
    escalation_day = CALENDAR.add_working_days(overdue_since, 10)
    assert escalation_day > overdue_since + timedelta(days=14)  # weekends and Nauryz 21–23 March
    assert escalate_all(escalation_day - timedelta(days=1), engine) == []
    assert escalate_all(escalation_day, engine) == [f"IR-{escalation_day:%Y%m%d}-INTERIOR"]
    assert escalate_all(escalation_day, engine) == []  # idempotent
    letter = [n for n in notifications(engine) if n.kind == "individualized"]
    assert len(letter) == 1 and letter[0].recipient == "ministry:interior"
    assert "NPM-1" in letter[0].body_text and "NPM-2" in letter[0].body_text and "NPM-3" not in letter[0].body_text
    # the ministry answers one item; the other stays silent past the 30-day response deadline
    write_csv(tmp_path / "reply2.csv", "external_id,status,responded_on,note", "NPM-2,implemented,01.04.2026,Обучение проведено")
    import_responses(tmp_path / "reply2.csv", engine=engine, today=date(2026, 12, 31))
    response_due = escalation_day + timedelta(days=30)
    assert refer_to_level2(response_due, engine=engine).changes == []
    second = refer_to_level2(response_due + timedelta(days=1), engine=engine)
    assert [(c.external_id, c.to_status) for c in second.changes] == [("NPM-1", "awaiting_decision")]
    assert [n.recipient for n in notifications(engine) if n.kind == "level2"] == ["ombudsman"]
    # the notice tells the silent item from the answered one: the ministry did reply in part
    (notice,) = [n for n in notifications(engine) if n.kind == "level2"]
    assert notice.payload["items"] == ["NPM-1"] and "нет ответа" not in notice.subject
    assert notice.body_text.index("РЕКОМЕНДАЦИИ БЕЗ ОТВЕТА (1)") < notice.body_text.index("NPM-1") < notice.body_text.index(
        "РЕКОМЕНДАЦИИ, ПО КОТОРЫМ ПОЛУЧЕН ОТВЕТ (1)") < notice.body_text.index("NPM-2")
    assert "Текущий статус: исполнена" in notice.body_text
    assert refer_to_level2(response_due + timedelta(days=2), engine=engine).changes == []
    with engine.connect() as c:
        assert c.execute(select(IndividualizedRecommendation.status)).scalar_one() == "level2"
    # a late reply still counts
    write_csv(tmp_path / "reply3.csv", "external_id,status,responded_on", "NPM-1,implemented,20.05.2026")
    import_responses(tmp_path / "reply3.csv", engine=engine, today=date(2026, 12, 31))
    assert log(engine, "NPM-1") == [
        (None, "issued"), ("issued", "overdue"), ("overdue", "escalated"),
        ("escalated", "awaiting_decision"), ("awaiting_decision", "implemented"),
    ]
    assert log(engine, "NPM-2") == [(None, "issued"), ("issued", "overdue"), ("overdue", "escalated"), ("escalated", "implemented")]


def test_time_on_hold_stops_the_clock(registry):
    """Waiting on the Ombudsman's office for 5 days moves the deadline by 5 days."""
    from sqlmodel import Session

    from followup.models.transitions import transition

    engine = registry
    with Session(engine) as session:
        rec = session.execute(select(Recommendation).where(Recommendation.external_id == "NPM-1")).scalar_one()
        transition(session, rec, "on_hold", actor="office", reason="waiting for the NPM's expert opinion", at=None)
        session.commit()
    with engine.begin() as c:  # the hold started on 01.03 (set the clock as if the change happened then)
        c.execute(Recommendation.__table__.update().where(Recommendation.external_id == "NPM-1").values(on_hold_since=date(2026, 3, 1)))
    with Session(engine) as session:
        rec = session.execute(select(Recommendation).where(Recommendation.external_id == "NPM-1")).scalar_one()
        from followup.models.transitions import TransitionRequest, transition_many

        transition_many(session, [TransitionRequest(rec.id, "on_hold", "in_progress")], actor="office", reason="opinion received",
                        effective_on=[date(2026, 3, 6)])
        session.commit()
        assert session.get(Recommendation, rec.id).days_on_hold == 5
    late = check_deadlines(DUE + timedelta(days=1), engine=engine)
    assert sorted(c.external_id for c in late.changes) == ["NPM-2", "NPM-3"]  # NPM-1's deadline is now 15.03
    assert [c.external_id for c in check_deadlines(DUE + timedelta(days=6), engine=engine).changes] == ["NPM-1"]


@pytest.mark.usefixtures("db_url")
def test_a_missing_deadline_is_derived_from_the_policy(engine, tmp_path):
    import_recommendations(write_csv(tmp_path / "f.csv", "external_id,text,issued_on,ministry,source",
                                     "CAT-1,Ensure independent investigations,01.12.2025,prosecutor,treaty_body",
                                     "NPM-9,Отремонтировать душевые,01.12.2025,interior,npm_visit"), engine=engine)
    result = check_deadlines(date(2026, 1, 5), engine=engine)
    assert result.derived_deadlines == 2
    with engine.connect() as c:
        due = dict(c.execute(select(Recommendation.external_id, Recommendation.due_on)).all())
    assert due == {"CAT-1": date(2026, 12, 1), "NPM-9": date(2026, 3, 1)}  # 1 year / 90 days
    assert check_deadlines(date(2026, 1, 5), engine=engine).derived_deadlines == 0


def test_two_workers_at_once_do_not_double_anything(registry):
    """Two schedulers fire the same day's pass at the same moment: each item changes once."""
    engine = registry
    day = DUE + timedelta(days=1)
    errors: list[BaseException] = []

    def run():
        try:
            check_deadlines(DUE - timedelta(days=3), engine=engine)
            check_deadlines(day, engine=engine)
            escalate_all(CALENDAR.add_working_days(day, 10), engine)
        except BaseException as exc:  # noqa: BLE001 - whatever a thread raises is collected and asserted on
            errors.append(exc)

    workers = [threading.Thread(target=run) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert errors == []
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(Reminder)).scalar_one() == 3
        assert c.execute(select(func.count()).select_from(IndividualizedRecommendation)).scalar_one() == 2
        overdue_entries = c.execute(select(func.count()).select_from(StatusChange).where(StatusChange.to_status == "overdue")).scalar_one()
        keys = c.execute(select(Notification.dedupe_key)).scalars().all()
    assert overdue_entries == 3
    assert len(keys) == len(set(keys)) == 2 + 2 + 2  # reminders (3-day, then overdue letters) + 2 individualized
    assert log(registry, "NPM-1") == [(None, "issued"), ("issued", "overdue"), ("overdue", "escalated")]


def test_escalation_is_planned_only_for_ministries_overdue_long_enough(registry):
    """The plan is a cheap filter (overdue at least as many calendar days as the shortest rule's
    working days); the ministry's own transaction then decides, so the plan never escalates."""
    engine = registry
    check_deadlines(DUE + timedelta(days=1), engine=engine)  # all three overdue since 11.03
    assert plan_escalations(DUE + timedelta(days=5), engine=engine) == []
    ten_working = CALENDAR.add_working_days(DUE + timedelta(days=1), POLICY.defaults.escalate_after_working_days)
    assert plan_escalations(ten_working, engine=engine) == ["health", "interior"]
    # listed one calendar day early is harmless: the ministry's step finds nothing yet to escalate
    early = DUE + timedelta(days=1 + POLICY.shortest_escalation())
    if CALENDAR.working_days_between(DUE + timedelta(days=1), early) < POLICY.defaults.escalate_after_working_days:
        assert "interior" in plan_escalations(early, engine=engine)
        assert escalate_ministry("interior", early, engine=engine).individualized == []
    assert escalate_all(ten_working, engine) == [f"IR-{ten_working:%Y%m%d}-HEALTH", f"IR-{ten_working:%Y%m%d}-INTERIOR"]


def test_the_shortest_escalation_counts_every_override():
    from followup.config.policy import Rule

    assert POLICY.shortest_escalation() == POLICY.defaults.escalate_after_working_days  # no rule shortens it
    urgent = POLICY.model_copy(update={"priorities": {"urgent": Rule(escalate_after_working_days=3)}})
    assert urgent.shortest_escalation() == 3


@pytest.mark.usefixtures("db_url")
def test_the_days_read_leaves_out_only_items_with_nothing_due(engine, tmp_path):
    """check-deadlines reads, in SQL, only items that may need something today (deadline near
    or passed, none at all, overdue) and escalate only those overdue long enough: on every day
    of a month, deciding on that read gives exactly what deciding on every open item gives."""
    import pandas as pd
    from sqlalchemy.orm import Session

    from followup.models.domain import Status
    from followup.models.policy import decide
    from followup.models.transitions import transition
    from followup.steps.deadlines import load_watched

    import_recommendations(write_csv(
        tmp_path / "mixed.csv", "external_id,text,issued_on,due_on,ministry,facility",
        "M-1,Срок скоро,05.01.2026,10.03.2026,interior,ИВС г. Кокшетау",
        "M-2,Срок через месяц,05.01.2026,10.04.2026,interior,ИВС г. Кокшетау",
        "M-3,Срок не указан,20.12.2025,,interior,ИВС г. Кокшетау",
        "M-4,На паузе,05.01.2026,12.03.2026,interior,ИВС г. Кокшетау",
        "M-5,Срок через год,05.01.2026,10.03.2027,interior,ИВС г. Кокшетау",
    ), engine=engine, actor="clerk")
    with Session(engine) as session, session.begin():
        held = session.scalars(select(Recommendation).where(Recommendation.external_id == "M-4")).one()
        transition(session, held, Status.ON_HOLD, actor="clerk", reason="waits for the office's answer")

    def ids(frame: pd.DataFrame) -> list[tuple]:
        return sorted(frame[["id", "due_on"]].astype(str).itertuples(index=False, name=None))

    day, checked = DUE - timedelta(days=20), 0
    while day <= DUE + timedelta(days=40):
        with Session(engine) as session:
            every = decide(load_watched(session, ministry="interior"), POLICY, day)
            read = decide(load_watched(session, ministry="interior",
                                       due_by=day + timedelta(days=POLICY.longest_reminder())), POLICY, day)
            overdue = load_watched(session, ministry="interior", statuses=(Status.OVERDUE,))
            bounded = load_watched(session, ministry="interior", statuses=(Status.OVERDUE,),
                                   overdue_since_by=day - timedelta(days=POLICY.shortest_escalation()))
        for kind in ("reminders", "overdue", "derived_due"):
            assert ids(getattr(read, kind)) == ids(getattr(every, kind)), (day, kind)
        if len(overdue):
            assert ids(decide(bounded, POLICY, day).escalate if len(bounded) else bounded) == ids(decide(overdue, POLICY, day).escalate), day
        checked += len(every.reminders) + len(every.overdue) + len(every.derived_due)
        check_deadlines(day, engine=engine)  # the registry moves on as it would day by day
        escalate_all(day, engine)
        day += timedelta(days=1)
    assert checked  # the month saw reminders, overdue marks and a derived deadline


def test_the_longest_reminder_counts_every_override():
    from followup.config.policy import Rule

    assert POLICY.longest_reminder() == max(POLICY.defaults.reminder_days_before)
    early = POLICY.model_copy(update={"sources": {"upr": Rule(reminder_days_before=[60, 7])}})
    assert early.longest_reminder() == 60


@pytest.mark.usefixtures("db_url")
def test_escalations_leave_the_checkpoint_to_the_next_commit_on_sqlite(registry):
    """Each ministry's escalation commits without copying the WAL into the database (the level-2
    step's commit does it for all), and the connection goes back to the pool with SQLite's
    default checkpointing for whoever uses it next."""
    from followup.models.backend import WAL_AUTOCHECKPOINT
    from followup.models.db import defer_checkpoint

    engine = registry
    check_deadlines(DUE + timedelta(days=1), engine=engine)
    day = CALENDAR.add_working_days(DUE + timedelta(days=1), POLICY.defaults.escalate_after_working_days)
    assert escalate_all(day, engine) == [f"IR-{day:%Y%m%d}-HEALTH", f"IR-{day:%Y%m%d}-INTERIOR"]
    with engine.connect() as connection:
        defer_checkpoint(connection)
        if connection.dialect.name == "sqlite":
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == WAL_AUTOCHECKPOINT
    assert status(engine, "NPM-1") == "escalated"


def _answer(engine, external_id: str, on: date, *, under_review: bool) -> None:
    """What recording a ministry's reply on an item of its individualized recommendation leaves in
    the registry: the item answered on that day, its claim waiting for the office's review or not."""
    from followup.models.followup import IndividualizedItem

    r, i = Recommendation.__table__, IndividualizedItem.__table__
    with engine.begin() as c:
        rec_id = c.execute(select(r.c.id).where(r.c.external_id == external_id)).scalar_one()
        c.execute(i.update().where(i.c.recommendation_id == rec_id).values(answered_on=on))
        c.execute(r.update().where(r.c.id == rec_id).values(awaiting_review=under_review))


def _escalated(engine) -> date:
    """NPM-1 and NPM-2 in interior's individualized recommendation, NPM-3 in health's; returns their reply deadline."""
    check_deadlines(DUE + timedelta(days=1), engine=engine)
    day = CALENDAR.add_working_days(DUE + timedelta(days=1), POLICY.defaults.escalate_after_working_days)
    assert escalate_all(day, engine) == [f"IR-{day:%Y%m%d}-HEALTH", f"IR-{day:%Y%m%d}-INTERIOR"]
    return POLICY.individualized.response_deadline.after(day)


def test_level2_counts_only_silent_items_and_lists_the_answered_ones_apart(registry):
    """Interior answers NPM-2 (its claim waits for the office's review) and not NPM-1; health
    answers its only item: only NPM-1 goes before the Ombudsman, and health's letter was answered."""
    engine = registry
    response_due = _escalated(engine)
    _answer(engine, "NPM-2", response_due - timedelta(days=2), under_review=True)
    _answer(engine, "NPM-3", response_due - timedelta(days=1), under_review=False)
    result = refer_to_level2(response_due + timedelta(days=1), engine=engine)
    assert [(c.external_id, c.to_status) for c in result.changes] == [("NPM-1", "awaiting_decision")]
    assert (status(engine, "NPM-2"), status(engine, "NPM-3")) == ("escalated", "escalated")  # not silent, not moved
    with engine.connect() as c:
        letters = dict(c.execute(select(IndividualizedRecommendation.ministry_code, IndividualizedRecommendation.status)).all())
    assert letters == {"interior": "level2", "health": "answered"}
    (notice,) = [n for n in notifications(engine) if n.kind == "level2"]  # none for health's answered letter
    assert notice.payload["items"] == ["NPM-1"] and notice.payload["ministry"] == "interior"
    assert notice.subject.startswith("Требуется решение: ответ на индивидуальную рекомендацию") and "не по всем пунктам" in notice.subject
    text = notice.body_text
    assert "остаются неисполненными" in text and "в установленный срок не поступил" not in text
    silent, answered = text.index("РЕКОМЕНДАЦИИ БЕЗ ОТВЕТА (1)"), text.index("РЕКОМЕНДАЦИИ, ПО КОТОРЫМ ПОЛУЧЕН ОТВЕТ (1)")
    assert silent < text.index("NPM-1") < answered < text.index("NPM-2")
    assert (f"Текущий статус: ответ ожидает рассмотрения аппаратом Уполномоченного "
            f"(ответ от {response_due - timedelta(days=2):%d.%m.%Y})") in text
    assert "NPM-3" not in text and "NPM-3" not in notice.body_html
    assert ">Рекомендации без ответа (1)</h2>" in notice.body_html and ">Рекомендации, по которым получен ответ (1)</h2>" in notice.body_html


def test_a_long_level2_notice_lists_the_first_items_of_each_list_and_annexes_them_all(registry, tmp_path):
    """A backlog's letter goes to level 2 whole: the notice lists the first `letters.listed_items`
    silent items and answered items, counts them all, and carries every one in its annex."""
    import io

    import pandas as pd

    from followup.config.policy import Letters

    engine = registry
    import_recommendations(write_csv(
        tmp_path / "more.csv", "external_id,text,issued_on,due_on,ministry,facility",
        *(f"NPM-{n},Рекомендация {n},05.01.2026,10.03.2026,interior,ИВС г. Кокшетау" for n in (4, 5)),
    ), engine=engine, actor="clerk")
    response_due = _escalated(engine)  # interior's letter: NPM-1, NPM-2, NPM-4, NPM-5
    _answer(engine, "NPM-4", response_due - timedelta(days=2), under_review=True)
    _answer(engine, "NPM-5", response_due - timedelta(days=1), under_review=True)
    policy = POLICY.model_copy(update={"letters": Letters(listed_items=1)})
    refer_to_level2(response_due + timedelta(days=1), engine=engine, policy=policy)
    (notice,) = [n for n in notifications(engine) if n.kind == "level2" and n.payload["ministry"] == "interior"]
    reference = notice.payload["reference"]
    annex = f"level2-{reference}-items.csv"
    assert notice.payload["items"] == ["NPM-1", "NPM-2"] and notice.payload["attachment"] == annex
    text = notice.body_text
    assert "РЕКОМЕНДАЦИИ БЕЗ ОТВЕТА (2)" in text and "РЕКОМЕНДАЦИИ, ПО КОТОРЫМ ПОЛУЧЕН ОТВЕТ (2)" in text
    assert "NPM-1" in text and "NPM-4" in text and "NPM-2" not in text and "NPM-5" not in text
    assert text.count("Здесь приведены первые 1 из 2.") == 2 and f"Полный перечень — в приложенном файле {annex}." in text
    table = pd.read_csv(io.BytesIO(notice.attachment.encode("utf-8")), sep=";", encoding="utf-8-sig", dtype=str)
    assert list(table["Номер рекомендации"]) == ["NPM-1", "NPM-2", "NPM-4", "NPM-5"]
    assert list(table["Раздел"]) == ["Рекомендации без ответа"] * 2 + ["Рекомендации, по которым получен ответ"] * 2


def test_a_letter_whose_items_were_all_answered_makes_no_level2_notice(registry):
    engine = registry
    response_due = _escalated(engine)
    for external_id in ("NPM-1", "NPM-2", "NPM-3"):
        _answer(engine, external_id, response_due, under_review=external_id == "NPM-1")
    assert refer_to_level2(response_due + timedelta(days=1), engine=engine).changes == []
    with engine.connect() as c:
        assert set(c.execute(select(IndividualizedRecommendation.status)).scalars()) == {"answered"}
    assert [n for n in notifications(engine) if n.kind == "level2"] == []
    assert {status(engine, e) for e in ("NPM-1", "NPM-2", "NPM-3")} == {"escalated"}


def test_a_reminder_lists_its_items_by_deadline_then_number(engine, tmp_path):
    """The clerk works down the letter: the earliest deadline first, and within one deadline the
    numbers as people count them (NPM-2 before NPM-10), whatever order they were imported in."""
    rows = [("NPM-10", "17.03.2026"), ("NPM-2", "17.03.2026"), ("NPM-7", "12.03.2026"),
            ("NPM-1", "20.03.2026"), ("NPM-30", "01.03.2026"), ("NPM-4", "02.03.2026")]
    import_recommendations(write_csv(
        tmp_path / "visit.csv", "external_id,text,issued_on,due_on,ministry,facility",
        *(f"{number},Рекомендация {number},05.01.2026,{due},interior,ИВС г. Кокшетау" for number, due in rows),
    ), engine=engine, actor="clerk")
    check_deadlines(DUE, engine=engine)  # 10.03: four due within 14 days, two overdue
    [letter] = notifications(engine)
    assert letter.payload["due_soon"] == ["NPM-7", "NPM-2", "NPM-10", "NPM-1"]
    assert letter.payload["overdue"] == ["NPM-30", "NPM-4"]
    text = letter.body_text
    assert text.index("NPM-7") < text.index("NPM-2 ") < text.index("NPM-10") < text.index("NPM-1 ") < text.index("NPM-30")
    # the Russian letter dates itself as Russian letters do
    assert f"от {DUE:%d.%m.%Y} г." in text and letter.subject.endswith(f"({DUE:%d.%m.%Y} г.)")


def test_items_escalated_today_are_left_to_the_individualized_recommendation(registry):
    """On the day items escalate, the individualized recommendation lists them; the day's reminder
    does not list them again (and, with nothing else to say, is not written at all)."""
    as_of = CALENDAR.add_working_days(DUE + timedelta(days=1), 10)
    check_deadlines(as_of, engine=registry)  # the first run in weeks: overdue and escalating at once
    escalate_all(as_of, registry)
    kinds = sorted((n.recipient, n.kind) for n in notifications(registry))
    assert kinds == [("ministry:health", "individualized"), ("ministry:interior", "individualized")]


def test_a_kazakh_letter_carries_its_legal_basis_in_kazakh(registry):
    """A ministry written to in Kazakh gets the whole individualized recommendation in Kazakh: the
    legal basis too, not the Russian paragraph of config/policy.yaml."""
    from sqlalchemy import update

    from followup.models.registry import Ministry

    with registry.begin() as c:
        c.execute(update(Ministry.__table__).where(Ministry.__table__.c.code == "interior").values(language="kk"))
    as_of = CALENDAR.add_working_days(DUE + timedelta(days=1), 10)
    check_deadlines(as_of, engine=registry)
    escalate_all(as_of, registry)
    [letter] = [n for n in notifications(registry) if n.kind == "individualized" and n.recipient == "ministry:interior"]
    assert letter.language == "kk"
    assert POLICY.legal_basis.kk.split()[0] in letter.body_text and "Конституциялық заңына" in letter.body_html
    assert "В соответствии с Конституционным законом" not in letter.body_text + letter.body_html
    assert f"{as_of:%d.%m.%Y} ж." in letter.body_text  # and dated as Kazakh letters are
