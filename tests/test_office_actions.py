"""The office's own actions: hold, resume, withdraw, a reply typed by hand, the Commissioner's
level-2 decisions, and the approval of drafted individualized recommendations before they leave.

Scenarios on the `registry` fixture (NPM-1 and NPM-2 to the Ministry of Internal Affairs, NPM-3 to
Health, all due 10.03.2026), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session
from typer.testing import CliRunner

from followup.config.notifications import Delivery
from followup.config.policy import copy_with_approval, load_policy
from followup.config.settings import get_settings
from followup.interfaces.cli import app
from followup.models.calendar import WorkingCalendar
from followup.models.followup import CommissionerDecision, IndividualizedRecommendation, Notification
from followup.models.registry import Recommendation, StatusChange
from followup.models.users import create_user
from followup.notifications.digest import build_digest
from followup.notifications.dispatch import dispatch
from followup.reports.annual import compute, read_year
from followup.steps import office
from followup.steps.deadlines import check_deadlines, escalate_ministry, plan_escalations, refer_to_level2
from tests.receivers import SmtpReceiver

DUE = date(2026, 3, 10)
CALENDAR = WorkingCalendar.from_policy(load_policy().calendar)
#: ten working days after the items became overdue on 11.03: the individualized recommendations
ESCALATION = CALENDAR.add_working_days(DUE + timedelta(days=1), 10)
#: the day after their 30-day response deadline: level 2
LEVEL2 = ESCALATION + timedelta(days=31)
QUICK = Delivery(max_attempts=3, backoff_minutes=[0], concurrency=4)


def item(engine, external_id: str) -> Recommendation:
    with Session(engine) as session:
        return session.exec(select(Recommendation).where(Recommendation.external_id == external_id)).one()[0]


def history(engine, external_id: str) -> list[tuple[str | None, str, str, str]]:
    """(from, to, actor, reason) of the item's status changes, oldest first."""
    r, h = Recommendation.__table__, StatusChange.__table__
    with engine.connect() as c:
        rows = c.execute(
            select(h.c.from_status, h.c.to_status, h.c.actor, h.c.reason).join(r, r.c.id == h.c.recommendation_id)
            .where(r.c.external_id == external_id, h.c.from_status.is_distinct_from(h.c.to_status)).order_by(h.c.id)
        ).all()
    return [tuple(row) for row in rows]


def letters(engine, kind: str | None = None) -> list[Notification]:
    with engine.connect() as c:
        rows = c.execute(select(Notification.__table__).order_by(Notification.id)).all()
    found = [Notification.model_validate(r._mapping) for r in rows]
    return [n for n in found if kind is None or n.kind == kind]


def users(engine, *people: tuple[str, str, str | None, str | None]) -> None:
    with Session(engine) as session:
        for name, role, full_name, position in people:
            create_user(session=session, name=name, role=role, password="correct horse battery", full_name=full_name,
                        position=position)
        session.commit()


def escalate(engine, as_of: date = ESCALATION) -> tuple[list[str], list[str]]:
    """The daily pass up to escalation: (references sent, references drafted)."""
    check_deadlines(DUE + timedelta(days=1), engine=engine)
    sent, drafted = [], []
    for code in plan_escalations(as_of, engine=engine):
        result = escalate_ministry(code, as_of, engine=engine)
        sent += result.individualized
        drafted += result.drafts
    return sent, drafted


def approval_required(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped policy: individualized recommendations wait for a head's approval."""
    monkeypatch.setenv("FOLLOWUP_POLICY_FILE", str(copy_with_approval(tmp_path / "policy-required.yaml", "required")))
    get_settings.cache_clear()


def cli(monkeypatch: pytest.MonkeyPatch, actor: str, *args: str):
    monkeypatch.setenv("FOLLOWUP_ACTOR", actor)
    get_settings.cache_clear()
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


# --- hold, resume, withdraw ---------------------------------------------------------------------------


def test_a_hold_stops_the_clock_and_resuming_puts_the_item_back_where_it_was(registry):
    engine = registry
    change = office.hold(engine=engine, external_id="NPM-1", actor="anna", reason="waiting for the visit report",
                         today=date(2026, 3, 1))
    assert (change.from_status, change.to_status) == ("issued", "on_hold")
    # on 11.03 NPM-2 is overdue; NPM-1 waits on the office, its clock stopped
    check_deadlines(DUE + timedelta(days=1), engine=engine)
    assert (item(engine, "NPM-1").status, item(engine, "NPM-2").status) == ("on_hold", "overdue")

    office.resume(engine=engine, external_id="NPM-1", actor="anna", reason="visit report received", today=date(2026, 3, 11))
    resumed = item(engine, "NPM-1")
    assert resumed.status == "issued" and resumed.days_on_hold == 10 and resumed.on_hold_since is None
    # ten days held: its deadline is now 20.03, so it is not overdue on 12.03, and is on 21.03
    check_deadlines(date(2026, 3, 12), engine=engine)
    assert item(engine, "NPM-1").status == "issued"
    check_deadlines(date(2026, 3, 21), engine=engine)
    assert item(engine, "NPM-1").status == "overdue"
    assert history(engine, "NPM-1")[1:3] == [
        ("issued", "on_hold", "anna", "waiting for the visit report"),
        ("on_hold", "issued", "anna", "visit report received"),
    ]


def test_resume_returns_an_overdue_item_to_overdue_and_refuses_an_item_not_on_hold(registry):
    engine = registry
    check_deadlines(DUE + timedelta(days=1), engine=engine)
    office.hold(engine=engine, external_id="NPM-2", actor="anna", reason="the ministry asked for a meeting", today=date(2026, 3, 12))
    assert office.resume(engine=engine, external_id="NPM-2", actor="anna", reason="met",
                         today=date(2026, 3, 13)).to_status == "overdue"
    with pytest.raises(office.OfficeError, match="NPM-2 is overdue, not on hold: there is nothing to resume"):
        office.resume(engine=engine, external_id="NPM-2", actor="anna", reason="again")
    with pytest.raises(office.OfficeError, match="no recommendation 'NPM-9' in the registry"):
        office.hold(engine=engine, external_id="NPM-9", actor="anna", reason="x")
    with pytest.raises(office.OfficeError, match="give a reason"):
        office.hold(engine=engine, external_id="NPM-1", actor="anna", reason="  ")


def test_withdrawn_is_final_and_recorded_under_the_actor(registry):
    engine = registry
    office.withdraw(engine=engine, external_id="NPM-3", actor="anna", reason="the facility was closed")
    assert item(engine, "NPM-3").status == "withdrawn"
    assert history(engine, "NPM-3")[-1] == ("issued", "withdrawn", "anna", "the facility was closed")
    with pytest.raises(office.OfficeError, match=r"NPM-3 is withdrawn: it cannot be put on hold \(from withdrawn it may go to nothing"):
        office.hold(engine=engine, external_id="NPM-3", actor="anna", reason="by mistake")


def test_once_the_office_has_users_only_an_active_one_may_act(registry, monkeypatch):
    engine = registry
    users(engine, ("anna", "clerk", "Анна Сейтова", "главный специалист"))
    with pytest.raises(office.NotPermitted, match="'stranger' is not a user of the workspace"):
        office.hold(engine=engine, external_id="NPM-1", actor="stranger", reason="x")
    office.hold(engine=engine, external_id="NPM-1", actor="anna", reason="x")
    # the CLI: FOLLOWUP_ACTOR names the user
    result = cli(monkeypatch, "anna", "resume", "NPM-1", "--reason", "the report came")
    assert result.exit_code == 0, result.output
    assert "NPM-1: on_hold -> issued" in result.output
    refused = cli(monkeypatch, "stranger", "withdraw", "NPM-1", "--reason", "x")
    assert refused.exit_code == 2 and "'stranger' is not a user of the workspace" in refused.output


def test_a_reply_typed_by_hand_is_a_paper_reply_like_an_imported_one(registry):
    engine = registry
    change = office.record_reply(engine=engine, external_id="NPM-1", status="implemented", responded_on=date(2026, 3, 2),
                                 note="окна заменены", evidence="письмо МВД № 12-3/45", actor="anna", today=date(2026, 3, 5))
    assert change.to_status == "implemented" and change.note.startswith("REPLY-")
    entry = history(engine, "NPM-1")[-1]
    assert entry[:3] == ("issued", "implemented", "anna")
    assert entry[3] == f"reply {change.note} of 02.03.2026 (paper, typed by the office): окна заменены"
    with pytest.raises(office.OfficeError, match="is in the future"):
        office.record_reply(engine=engine, external_id="NPM-2", status="in_progress", responded_on=date(2026, 3, 9),
                            actor="anna", today=date(2026, 3, 5))
    with pytest.raises(office.OfficeError, match="a reply may record in_progress, implemented"):
        office.record_reply(engine=engine, external_id="NPM-2", status="withdrawn", responded_on=date(2026, 3, 2), actor="anna")


# --- level 2: the Commissioner's decisions ---------------------------------------------------------


def test_the_commissioner_decides_each_item_at_level_2(registry, monkeypatch):
    engine = registry
    users(engine, ("aigul", "head", "Айгуль Нурланова", "Уполномоченный по правам человека"), ("anna", "clerk", None, None))
    sent, _ = escalate(engine)
    assert sent == [f"IR-{ESCALATION:%Y%m%d}-HEALTH", f"IR-{ESCALATION:%Y%m%d}-INTERIOR"]
    refer_to_level2(LEVEL2, engine=engine)
    queue = office.level2_queue(engine=engine)
    assert [(line.reference, line.external_id, line.since) for line in queue] == [
        (sent[0], "NPM-3", LEVEL2), (sent[1], "NPM-1", LEVEL2), (sent[1], "NPM-2", LEVEL2)]
    assert queue[0].facility == "Психиатрическая больница г. Караганда"

    # a clerk may not decide; an unknown decision is refused in one sentence
    with pytest.raises(office.NotPermitted, match="user 'anna' is a clerk; this needs a head or above"):
        office.record_decision(engine=engine, key="NPM-1", decision="closed", reason="x", actor="anna")
    unknown = cli(monkeypatch, "aigul", "decide", "NPM-1", "--decision", "shrug", "--reason", "x")
    assert unknown.exit_code == 2
    assert unknown.output.strip() == ("unknown decision 'shrug': choose one of parliament_report, prosecutor_referral, "
                                      "new_deadline, closed")

    day = LEVEL2 + timedelta(days=3)
    assert office.record_decision(engine=engine, key="NPM-1", decision="parliament_report", reason="annual report, chapter 4",
                         actor="aigul", today=day) == ["NPM-1"]
    with pytest.raises(office.OfficeError, match="must be after today"):
        office.record_decision(engine=engine, key=sent[1], decision="new_deadline", due=day, reason="x", actor="aigul", today=day)
    new_due = day + timedelta(days=30)
    assert office.record_decision(engine=engine, key=sent[1], decision=office.Decision.NEW_DEADLINE, due=new_due,
                         reason="the minister promised by letter", actor="aigul", today=day) == ["NPM-2"]
    result = cli(monkeypatch, "aigul", "decide", "NPM-3", "--decision", "prosecutor_referral", "--reason", "no cooperation")
    assert result.exit_code == 0, result.output

    assert item(engine, "NPM-1").status == "reported_to_parliament"
    back = item(engine, "NPM-2")
    assert (back.status, back.due_on, back.days_on_hold) == ("issued", new_due, 0)
    assert item(engine, "NPM-3").status == "referred_to_prosecutor"
    assert history(engine, "NPM-1")[-1] == ("awaiting_decision", "reported_to_parliament", "aigul",
                                            "decision of the Commissioner (report to Parliament): annual report, chapter 4")
    assert history(engine, "NPM-2")[-1][:3] == ("awaiting_decision", "issued", "aigul")
    assert office.level2_queue(engine=engine) == []
    # a further decision on a decided item (closing after the referral), and a late reply still counts
    office.record_decision(engine=engine, key="NPM-3", decision="closed", reason="the prosecutor found no violation", actor="aigul", today=day)
    office.record_reply(engine=engine, external_id="NPM-1", status="implemented", responded_on=day, actor="anna", today=day)
    assert (item(engine, "NPM-3").status, item(engine, "NPM-1").status) == ("closed", "implemented")

    with Session(engine) as session:
        decisions = session.exec(select(CommissionerDecision).order_by(CommissionerDecision.id)).all()
    assert [(d[0].decision, d[0].due_on, d[0].actor) for d in decisions] == [
        ("parliament_report", None, "aigul"), ("new_deadline", new_due, "aigul"), ("prosecutor_referral", None, "aigul"),
        ("closed", None, "aigul")]
    assert all(d[0].individualized_id is not None for d in decisions)

    # the annual report counts them in its own section, and the closed item as closed
    report = compute(read_year(engine, 2026, today=date(2026, 12, 31)))
    table = report.tables["decisions"].set_index("decision")
    assert table.loc["total", "recommendations"] == 4 and table.loc["closed", "recommendations"] == 1
    assert report.headline["decisions"] == 4
    by_ministry = report.tables["recommendations_by_ministry"].set_index("ministry_code")
    assert by_ministry.loc["total", "closed"] == 1 and by_ministry.loc["total", "issued"] == 3
    # the digest of that week lists those of the week (the CLI's referral is dated today, in another week)
    digest = build_digest(engine, day + timedelta(days=1))
    assert sorted(digest.section("decisions")["decision"]) == ["closed", "new_deadline", "parliament_report"]


def test_the_annual_report_prints_the_decisions_section_in_each_language(registry, tmp_path):
    from followup.reports.annual import write_report

    engine = registry
    users(engine, ("aigul", "head", None, None))
    escalate(engine)
    refer_to_level2(LEVEL2, engine=engine)
    office.record_decision(engine=engine, key="NPM-3", decision="parliament_report", reason="x", actor="aigul", today=LEVEL2)
    report = compute(read_year(engine, 2026, today=date(2026, 12, 31)))
    for language, heading, kind in (("ru", "Решения Уполномоченного", "доклад Парламенту"),
                                    ("kk", "Уәкілдің шешімдері", "Парламентке баяндама"),
                                    ("en", "Decisions of the Commissioner", "report to Parliament")):
        html = write_report(report, tmp_path / language, language).html.read_text(encoding="utf-8")
        assert heading in html and kind in html


# --- approval before sending ------------------------------------------------------------------------


def test_a_draft_queues_nothing_and_never_reaches_level_2(registry, tmp_path, monkeypatch):
    engine = registry
    approval_required(tmp_path, monkeypatch)
    sent, drafted = escalate(engine)
    assert sent == [] and drafted == [f"IR-{ESCALATION:%Y%m%d}-HEALTH", f"IR-{ESCALATION:%Y%m%d}-INTERIOR"]
    assert letters(engine, "individualized") == []
    assert item(engine, "NPM-1").status == "escalated"  # the items are in the letter, which waits
    with Session(engine) as session:
        draft = session.exec(select(IndividualizedRecommendation).where(IndividualizedRecommendation.reference == drafted[1])).one()[0]
    assert (draft.status, draft.response_due_on, draft.outgoing_number) == ("draft", None, None)
    # months later, still not approved: nothing goes to level 2
    assert refer_to_level2(ESCALATION + timedelta(days=90), engine=engine).changes == []
    assert item(engine, "NPM-1").status == "escalated"
    # the drafts wait; after approval_days working days they are in the digest
    pending = office.pending_drafts(engine=engine, today=ESCALATION + timedelta(days=1))
    assert [(p.reference, p.items, p.overdue) for p in pending] == [(drafted[0], 1, False), (drafted[1], 2, False)]
    assert build_digest(engine, ESCALATION + timedelta(days=1)).section("drafts_waiting").empty
    late = CALENDAR.add_working_days(ESCALATION, 4)
    waiting = build_digest(engine, late).section("drafts_waiting")
    assert list(waiting["reference"]) == drafted and set(waiting["working_days"]) == {4}
    assert all(p.overdue for p in office.pending_drafts(engine=engine, today=late))


def test_a_head_approves_a_draft_which_then_arrives_numbered_and_signed(registry, tmp_path, monkeypatch):
    engine = registry
    approval_required(tmp_path, monkeypatch)
    users(engine, ("aigul", "head", "Нурланова Айгуль Маратовна", "Уполномоченный по правам человека в Республике Казахстан"),
          ("anna", "clerk", "Сейтова Анна", "главный специалист"))
    _, drafted = escalate(engine)
    interior = drafted[1]
    with pytest.raises(office.NotPermitted, match="user 'anna' is a clerk; this needs a head or above"):
        office.approve(engine=engine, reference=interior, actor="anna")
    out_day = ESCALATION + timedelta(days=2)
    assert office.approve(engine=engine, reference=interior, actor="aigul", outgoing_number="04-12/345",
                          outgoing_date=out_day, today=out_day) == interior
    with pytest.raises(office.OfficeError, match=f"{interior} is not a draft: it was sent by aigul on {out_day:%d.%m.%Y}"):
        office.approve(engine=engine, reference=interior, actor="aigul", today=out_day)
    with Session(engine) as session:
        letter = session.exec(select(IndividualizedRecommendation).where(IndividualizedRecommendation.reference == interior)).one()[0]
    assert (letter.status, letter.outgoing_number, letter.outgoing_date, letter.approved_by) == ("issued", "04-12/345", out_day, "aigul")
    assert letter.response_due_on == out_day + timedelta(days=30)  # from the outgoing date
    assert letter.signer_name == "Нурланова Айгуль Маратовна"
    assert [n.dedupe_key for n in letters(engine, "individualized")] == [f"individualized:{interior}"]

    apprise = tmp_path / "apprise.yaml"
    with SmtpReceiver() as smtp:
        apprise.write_text(f"version: 1\nurls:\n  - {smtp.url('kanc@mvd.gov.kz')}:\n      tag: ministry:interior\n", encoding="utf-8")
        dispatch(engine=engine, apprise_file=apprise, delivery=QUICK)
        formal = [m for m in smtp.mails if "Индивидуальная рекомендация" in m.subject]  # besides the 11.03 reminder
        assert len(formal) == 1
        mail = formal[0]
    assert "04-12/345" in mail.subject and f"{out_day:%d.%m.%Y}" in mail.subject
    text = mail.part("text/plain") or ""
    assert "04-12/345" in text and "Нурланова Айгуль Маратовна" in text and "Ф. И. О." not in text
    assert f"{out_day + timedelta(days=30):%d.%m.%Y}" in text  # the deadline runs from the outgoing date
    assert "Нурланова Айгуль Маратовна" in (mail.part("text/html") or "")
    # level 2 now counts from the approved letter's deadline
    assert refer_to_level2(out_day + timedelta(days=30), engine=engine).changes == []
    assert [c.external_id for c in refer_to_level2(out_day + timedelta(days=31), engine=engine).changes] == ["NPM-1", "NPM-2"]


def test_approve_all_approves_every_pending_draft_and_says_so_when_none_is(registry, tmp_path, monkeypatch):
    engine = registry
    approval_required(tmp_path, monkeypatch)
    users(engine, ("aigul", "head", "Нурланова Айгуль", None), ("anna", "clerk", None, None))
    nothing = cli(monkeypatch, "aigul", "approve", "--all")
    assert nothing.exit_code == 0 and "no draft individualized recommendation waits for approval" in nothing.output
    _, drafted = escalate(engine)
    refused = cli(monkeypatch, "anna", "approve", "--all")
    assert refused.exit_code == 2 and "user 'anna' is a clerk; this needs a head or above" in refused.output
    approved = cli(monkeypatch, "aigul", "approve", "--all")
    assert approved.exit_code == 0, approved.output
    assert all(ref in approved.output for ref in drafted)
    assert office.pending_drafts(engine=engine) == []
    assert sorted(n.dedupe_key for n in letters(engine, "individualized")) == [f"individualized:{r}" for r in drafted]
