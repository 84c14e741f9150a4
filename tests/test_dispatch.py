"""The outbox leaves through Apprise to real receivers: an SMTP server and an HTTP endpoint on loopback.

Each ministry's clerk gets one letter per run with only the ministry's own items; the office
gets its notices; a dead mail server means retries, then `dead`, and nothing lost.
"""

from __future__ import annotations

import threading
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlmodel import Session

from followup.config.notifications import Delivery
from followup.config.policy import load_policy
from followup.models.calendar import WorkingCalendar
from followup.models.followup import Notification
from followup.models.types import utcnow
from followup.notifications.dispatch import dispatch
from followup.notifications.outbox import queue
from followup.spreadsheets.ingest import import_recommendations
from followup.steps.deadlines import check_deadlines, escalate_ministry, plan_escalations, refer_to_level2
from tests.conftest import write_csv
from tests.receivers import JsonReceiver, SmtpReceiver

DUE = date(2026, 3, 10)
#: ten working days after the items became overdue on 11.03 (Nauryz falls in between)
ESCALATION = WorkingCalendar.from_policy(load_policy().calendar).add_working_days(DUE + timedelta(days=1), 10)
REF = f"IR-{ESCALATION:%Y%m%d}"
QUICK = Delivery(max_attempts=3, backoff_minutes=[0], concurrency=4)
INTERIOR, HEALTH = "kanc@mvd.gov.kz", "kanc@dsm.gov.kz"


def routes(tmp_path: Path, smtp: SmtpReceiver, hook: JsonReceiver, *, health: bool = True) -> Path:
    """The office's Apprise file: each ministry's chancellery by e-mail, the office by webhook."""
    lines = [
        "version: 1", "urls:",
        f"  - {smtp.url(INTERIOR)}:", "      tag: ministry:interior",
        f"  - {hook.url('office')}:", "      tag: ombudsman",
    ]
    if health:
        lines += [f"  - {smtp.url(HEALTH)}:", "      tag: ministry:health"]
    path = tmp_path / "apprise.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rows(engine) -> list[Notification]:
    with engine.connect() as c:
        return [Notification.model_validate(r._mapping) for r in c.execute(select(Notification.__table__).order_by(Notification.id))]


def test_each_ministry_gets_one_letter_with_only_its_own_items(registry, tmp_path):
    engine = registry
    check_deadlines(DUE - timedelta(days=14), engine=engine)
    with SmtpReceiver() as smtp, JsonReceiver() as hook:
        result = dispatch(engine=engine, apprise_file=routes(tmp_path, smtp, hook), delivery=QUICK)
        assert result.summary() == {"claimed": 2, "sent": 2, "messages": 2, "failed": 0, "dead": 0, "unroutable": 0}
        [interior] = smtp.to(INTERIOR)
        [health] = smtp.to(HEALTH)
    assert "NPM-1" in interior.text and "NPM-2" in interior.text and "NPM-3" not in interior.text + interior.html
    assert "NPM-3" in health.text and "NPM-1" not in health.text + health.html and "NPM-2" not in health.text + health.html
    assert "NPM-1" in interior.html  # the HTML part too
    sent = rows(engine)
    assert {n.status for n in sent} == {"sent"} and all(n.attempts == 1 and n.sent_at for n in sent)
    assert all("s3cret" not in (n.delivered_to or "") for n in sent) and "mailto://npm:****@127.0.0.1" in sent[0].delivered_to
    # nothing is sent twice
    with SmtpReceiver(port=smtp.port) as again, JsonReceiver() as hook2:
        assert dispatch(engine=engine, apprise_file=routes(tmp_path, again, hook2), delivery=QUICK).claimed == 0
        assert again.mails == []


def test_the_individualized_recommendation_leaves_alone_and_the_reminder_does_not_repeat_it(registry, tmp_path):
    """The formal letter is a document the ministry files by its number: it arrives as a mail of its
    own under its own subject, and the same day's reminder neither lists its items again nor
    announces that the Commissioner "may send" one."""
    engine = registry
    as_of = ESCALATION
    import_recommendations(write_csv(
        tmp_path / "later.csv", "external_id,text,issued_on,due_on,ministry,facility",
        f"NPM-4,Отремонтировать прогулочный двор,05.01.2026,{as_of + timedelta(days=3):%d.%m.%Y},interior,ИВС г. Кокшетау",
    ), engine=engine, actor="clerk")
    check_deadlines(as_of, engine=engine)
    for code in plan_escalations(as_of, engine=engine):
        escalate_ministry(code, as_of, engine=engine)
    with SmtpReceiver() as smtp, JsonReceiver() as hook:
        result = dispatch(engine=engine, apprise_file=routes(tmp_path, smtp, hook), delivery=QUICK)
        mails = smtp.to(INTERIOR)
    assert result.sent == 3 and result.messages == 3  # interior: reminder + letter; health: its letter
    [reminder] = [m for m in mails if m.subject.startswith("Напоминание")]
    [letter] = [m for m in mails if m.subject.startswith("Индивидуальная рекомендация")]
    assert letter.subject == f"Индивидуальная рекомендация № {REF}-INTERIOR от {as_of:%d.%m.%Y} г.: неисполненные рекомендации НПМ"
    assert "NPM-1" in letter.text and "NPM-2" in letter.text and "NPM-4" not in letter.text and "Напоминаем" not in letter.text
    document = letter.attachments[f"{REF}-INTERIOR.html"].decode("utf-8")
    assert f"{REF}-INTERIOR" in document and "NPM-1" in document and "NPM-2" in document and "NPM-3" not in document
    # the reminder: the item due soon, not the escalated ones, no word of a letter that "may" come
    assert "NPM-4" in reminder.text and "NPM-1" not in reminder.text + reminder.html and "NPM-2" not in reminder.text
    assert "вправе направить индивидуальную рекомендацию" not in reminder.text + reminder.html
    assert reminder.attachments == {} and f"{REF}-INTERIOR" not in reminder.subject


def test_a_long_individualized_recommendation_lists_its_first_items_and_carries_the_complete_list_as_its_annex(registry, tmp_path):
    """A backlog escalates by the thousand: the formal letter lists its first items like a reminder,
    counts them all, and names its annex, the complete list as a spreadsheet that travels with the
    letter and its own HTML document."""
    import io

    import pandas as pd

    from followup.config.policy import Letters

    engine = registry
    as_of = ESCALATION
    lines = [f"NPM-{n},Рекомендация {n},05.01.2026,10.03.2026,interior,ИВС г. Кокшетау" for n in range(10, 15)]
    import_recommendations(write_csv(tmp_path / "backlog.csv", "external_id,text,issued_on,due_on,ministry,facility", *lines),
                           engine=engine, actor="clerk")
    policy = load_policy().model_copy(update={"letters": Letters(listed_items=2)})
    check_deadlines(DUE + timedelta(days=1), engine=engine, policy=policy)
    for code in plan_escalations(as_of, engine=engine, policy=policy):
        escalate_ministry(code, as_of, engine=engine, policy=policy)
    with SmtpReceiver() as smtp, JsonReceiver() as hook:
        dispatch(engine=engine, apprise_file=routes(tmp_path, smtp, hook), delivery=QUICK)
        [letter] = [m for m in smtp.to(INTERIOR) if m.subject.startswith("Индивидуальная рекомендация")]
    reference = f"{REF}-INTERIOR"
    annex = f"{reference}-items.csv"
    # the letter: all seven counted, the first two listed, and where the rest is
    assert "следующие рекомендации (7) не исполнены" in letter.text
    assert "NPM-1" in letter.text and "NPM-2" in letter.text
    assert "NPM-12" not in letter.text + letter.html and "NPM-14" not in letter.text + letter.html
    assert "Здесь приведены первые 2 из 7." in letter.text and f"Полный перечень — в приложенном файле {annex}." in letter.text
    assert annex in letter.html
    # two files: the letter as the document the ministry files, and its annex with every item
    assert sorted(letter.attachments) == sorted([f"{reference}.html", annex])
    assert "Здесь приведены первые 2 из 7." in letter.attachments[f"{reference}.html"].decode("utf-8")
    table = pd.read_csv(io.BytesIO(letter.attachments[annex]), sep=";", encoding="utf-8-sig", dtype=str)
    assert list(table["Номер рекомендации"]) == ["NPM-1", "NPM-2", *(f"NPM-{n}" for n in range(10, 15))]
    assert list(table["№"]) == [str(n) for n in range(1, 8)] and set(table["Раздел"]) == {"Просрочено"}
    assert set(table["Учреждение"]) >= {"ИВС г. Кокшетау"} and "Рекомендация 14" in set(table["Текст рекомендации"])
    # the registry keeps every item under the letter, and the payload names them all
    [stored] = [n for n in rows(engine) if n.kind == "individualized" and n.dedupe_key.endswith("INTERIOR")]
    assert stored.payload["items"] == ["NPM-1", "NPM-2", *(f"NPM-{n}" for n in range(10, 15))]
    assert stored.payload["attachment"] == annex and stored.payload["document"] == f"{reference}.html"
    # its plain-text part as written: the first two numbered, the note under them
    assert "1. NPM-1 — ИВС г. Кокшетау" in stored.body_text and "2. NPM-2 — ИВС г. Кокшетау" in stored.body_text
    assert "3. NPM-10" not in stored.body_text and "Здесь приведены первые 2 из 7." in stored.body_text


class _QueueingWhileSending(list):
    """The office's webhook inbox; its first delivery makes the portal queue another message,
    as a validating official's confirmation queued while the dispatcher is at work."""

    def __init__(self, engine) -> None:
        super().__init__()
        self.engine = engine

    def append(self, post) -> None:
        if not self:
            with Session(self.engine) as session, session.begin():
                queue(session, [{"recipient": "ombudsman", "kind": "reply_confirm", "subject": "queued meanwhile",
                                 "body_text": "NPM-7", "dedupe_key": "meanwhile"}])
        super().append(post)


def test_a_message_queued_while_the_dispatcher_runs_leaves_in_the_same_run(registry, tmp_path):
    """One run serves a burst of queued events: it does not end while the outbox holds a new
    message (the trigger dropped that message's event, the fallback would be 10 minutes away)."""
    engine = registry
    check_deadlines(DUE - timedelta(days=14), engine=engine)
    with Session(engine) as session, session.begin():
        queue(session, [{"recipient": "ombudsman", "kind": "digest", "subject": "first", "body_text": "digest",
                         "dedupe_key": "first"}])
    with SmtpReceiver() as smtp, JsonReceiver() as hook:
        hook.posts = _QueueingWhileSending(engine)
        result = dispatch(engine=engine, apprise_file=routes(tmp_path, smtp, hook), delivery=QUICK)
        assert [p.body["title"] for p in hook.at("office")] == ["first", "queued meanwhile"]
    assert result.rounds == 2 and result.claimed == 4 and result.sent == 4
    assert {n.dedupe_key: n.status for n in rows(engine)}["meanwhile"] == "sent"


def test_a_failed_message_is_not_retried_within_the_same_run(registry, tmp_path):
    """The later rounds take new messages only: a refusing server is tried once per run."""
    engine = registry
    check_deadlines(DUE - timedelta(days=14), engine=engine)
    with SmtpReceiver(refuse=True) as smtp, JsonReceiver() as hook:
        result = dispatch(engine=engine, apprise_file=routes(tmp_path, smtp, hook), delivery=QUICK)
    assert result.rounds == 1 and result.failed == 2
    assert {(n.status, n.attempts) for n in rows(engine)} == {("failed", 1)}


def test_a_backlog_letter_lists_the_first_items_and_attaches_the_complete_list(engine, tmp_path):
    """A ministry with a long backlog gets a letter a clerk can read, and every item in a spreadsheet."""
    import io

    import pandas as pd

    from followup.config.policy import Letters

    lines = [f"NPM-{n},Рекомендация {n},05.01.2026,10.03.2026,interior,ИВС г. Кокшетау" for n in range(1, 6)]
    lines.append("NPM-9,Срочная рекомендация,05.01.2026,14.03.2026,interior,ИВС г. Кокшетау")
    import_recommendations(write_csv(tmp_path / "visit.csv", "external_id,text,issued_on,due_on,ministry,facility", *lines),
                           engine=engine, actor="clerk")
    policy = load_policy().model_copy(update={"letters": Letters(listed_items=2)})
    check_deadlines(DUE + timedelta(days=1), engine=engine, policy=policy)  # 5 newly overdue, 1 due in 3 days
    with SmtpReceiver() as smtp, JsonReceiver() as hook:
        dispatch(engine=engine, apprise_file=routes(tmp_path, smtp, hook), delivery=QUICK)
        [letter] = smtp.to(INTERIOR)
    # the letter: the whole due-soon section, the first two overdue items, and where the rest is
    assert "NPM-9" in letter.text and "NPM-1" in letter.text and "NPM-2" in letter.text
    assert not any(f"NPM-{n}" in letter.text + letter.html for n in (3, 4, 5))
    assert "Просрочено (5)" in letter.text  # the heading counts all of them
    name = "reminder-interior-2026-03-11.csv"
    assert "Здесь приведены первые 2 из 5." in letter.text and f"Полный перечень — в приложенном файле {name}." in letter.text
    assert name in letter.html
    # the spreadsheet: every item, in Excel's Russian layout (BOM, semicolons), numbered per section
    raw = letter.attachments[name]
    assert raw.startswith("\ufeff".encode())
    table = pd.read_csv(io.BytesIO(raw), sep=";", encoding="utf-8-sig", dtype=str)
    assert list(table.columns) == ["№", "Раздел", "Номер рекомендации", "Срок исполнения", "Учреждение", "Текст рекомендации"]
    assert list(table["Номер рекомендации"]) == ["NPM-9", "NPM-1", "NPM-2", "NPM-3", "NPM-4", "NPM-5"]
    assert list(table["№"]) == ["1", "1", "2", "3", "4", "5"]
    assert list(table["Срок исполнения"]) == ["14.03.2026"] + ["10.03.2026"] * 5
    assert set(table["Раздел"]) == {"Срок исполнения истекает", "Просрочено"}
    [stored] = rows(engine)
    assert stored.payload["attachment"] == name and stored.payload["overdue"] == [f"NPM-{n}" for n in range(1, 6)]
    assert "ПРОСРОЧЕНО (5)" in stored.body_text and "NPM-3" not in stored.body_text  # the plain-text part as written


def test_the_office_is_told_of_level_2_through_its_webhook(registry, tmp_path):
    engine = registry
    as_of = ESCALATION
    check_deadlines(as_of, engine=engine)
    for code in plan_escalations(as_of, engine=engine):
        escalate_ministry(code, as_of, engine=engine)
    refer_to_level2(ESCALATION + timedelta(days=31), engine=engine)
    with SmtpReceiver() as smtp, JsonReceiver() as hook:
        dispatch(engine=engine, apprise_file=routes(tmp_path, smtp, hook), delivery=QUICK)
        posts = hook.at("office")
    # one notice per individualized recommendation, each under a subject that names it and its ministry
    assert len(posts) == 2
    by_title = {post.body["title"]: post.body["message"] for post in posts}
    interior = next(message for title, message in by_title.items() if f"{REF}-INTERIOR" in title)
    health = next(message for title, message in by_title.items() if f"{REF}-HEALTH" in title)
    assert any("Министерство внутренних дел" in title for title in by_title) and not any("(+" in title for title in by_title)
    assert "NPM-1" in interior and "NPM-3" not in interior and "NPM-3" in health and "NPM-1" not in health


def test_a_message_nobody_can_receive_is_kept_and_sent_once_a_route_exists(registry, tmp_path):
    engine = registry
    check_deadlines(DUE - timedelta(days=14), engine=engine)
    with SmtpReceiver() as smtp, JsonReceiver() as hook:
        result = dispatch(engine=engine, apprise_file=routes(tmp_path, smtp, hook, health=False), delivery=QUICK)
        assert result.unroutable == ["ministry:health"] and result.sent == 1
        [kept] = [n for n in rows(engine) if n.recipient == "ministry:health"]
        assert kept.status == "unroutable" and "ministry:health" in kept.last_error and kept.body_text
        assert smtp.to(HEALTH) == []
        # the admin adds the route; the next run delivers it
        result = dispatch(engine=engine, apprise_file=routes(tmp_path, smtp, hook), delivery=QUICK)
        assert result.sent == 1 and len(smtp.to(HEALTH)) == 1
    assert {n.status for n in rows(engine)} == {"sent"}


def test_a_dead_mail_server_means_retries_then_dead_and_nothing_lost(registry, tmp_path):
    engine = registry
    check_deadlines(DUE - timedelta(days=14), engine=engine)
    with SmtpReceiver(refuse=True) as smtp, JsonReceiver() as hook:
        path = routes(tmp_path, smtp, hook)
        first = dispatch(engine=engine, apprise_file=path, delivery=QUICK)
        assert first.sent == 0 and first.failed == 2 and first.dead == []
        assert {(n.status, n.attempts) for n in rows(engine)} == {("failed", 1)}
        assert all("s3cret" not in n.last_error and "127.0.0.1" in n.last_error for n in rows(engine))
        dispatch(engine=engine, apprise_file=path, delivery=QUICK)
        last = dispatch(engine=engine, apprise_file=path, delivery=QUICK)
        assert sorted(last.dead) == ["reminder:health:2026-02-24", "reminder:interior:2026-02-24"]
        assert dispatch(engine=engine, apprise_file=path, delivery=QUICK).claimed == 0  # dead is not retried by itself
    kept = rows(engine)
    assert {(n.status, n.attempts) for n in kept} == {("dead", 3)} and all("NPM-" in n.body_text for n in kept)


def test_backoff_holds_a_failed_message_back(registry, tmp_path):
    engine = registry
    check_deadlines(DUE - timedelta(days=14), engine=engine)
    patient = Delivery(max_attempts=3, backoff_minutes=[30])
    with SmtpReceiver(refuse=True) as smtp, JsonReceiver() as hook:
        path = routes(tmp_path, smtp, hook)
        assert dispatch(engine=engine, apprise_file=path, delivery=patient).failed == 2
        assert dispatch(engine=engine, apprise_file=path, delivery=patient).claimed == 0  # not before 30 minutes
    assert all(n.next_attempt_at > utcnow() + timedelta(minutes=29) for n in rows(engine))


def test_a_dispatcher_that_died_after_sending_is_replaced_and_the_message_sent_again(registry, tmp_path):
    """A crash between sending and marking resends; it never loses."""
    engine = registry
    check_deadlines(DUE - timedelta(days=14), engine=engine)
    table = Notification.__table__
    with engine.begin() as c:  # what a worker killed mid-send leaves behind
        c.execute(update(table).values(status="sending", claimed_at=utcnow() - timedelta(minutes=20)))
    with SmtpReceiver() as smtp, JsonReceiver() as hook:
        result = dispatch(engine=engine, apprise_file=routes(tmp_path, smtp, hook), delivery=QUICK)
        assert result.sent == 2 and len(smtp.mails) == 2
    with engine.begin() as c:  # a claim within its lease belongs to a dispatcher still at work
        c.execute(update(table).values(status="sending", claimed_at=utcnow()))
    with SmtpReceiver() as smtp, JsonReceiver() as hook:
        assert dispatch(engine=engine, apprise_file=routes(tmp_path, smtp, hook), delivery=QUICK).claimed == 0


@pytest.mark.usefixtures("db_url")
def test_two_dispatchers_at_once_send_each_message_once(engine, tmp_path):
    with Session(engine) as session, session.begin():
        queue(session, [
            {"recipient": "ministry:interior" if i % 2 else "ministry:health", "kind": "reminder", "subject": f"S{i}",
             "body_text": f"NPM-{i}", "dedupe_key": f"k{i}"}
            for i in range(20)
        ])
    with SmtpReceiver() as smtp, JsonReceiver() as hook:
        path = routes(tmp_path, smtp, hook)
        results = []
        workers = [threading.Thread(target=lambda: results.append(dispatch(engine=engine, apprise_file=path, delivery=QUICK)))
                   for _ in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert sum(r.sent for r in results) == 20
        assert sorted(len(m.text.split("NPM-")) - 1 for m in smtp.mails) == [10, 10]  # two letters, ten items each
    assert {n.status for n in rows(engine)} == {"sent"}


def test_secrets_come_from_the_environment_and_never_show(registry, tmp_path, monkeypatch):
    """The routes file names ${SMTP_PASSWORD}; the password itself is only in the environment."""
    engine = registry
    check_deadlines(DUE - timedelta(days=14), engine=engine)
    with SmtpReceiver(refuse=True, password="env-only-pw") as smtp:
        path = tmp_path / "routes.txt"  # Apprise's TEXT format this time
        path.write_text(
            f"ministry:interior={smtp.url(INTERIOR, password='${SMTP_PASSWORD}')}\n"
            f"ministry:health={smtp.url(HEALTH, password='${SMTP_PASSWORD}')}\n",
            encoding="utf-8",
        )
        from followup.config.loader import ConfigError

        with pytest.raises(ConfigError, match=r"SMTP_PASSWORD.*not set"):
            dispatch(engine=engine, apprise_file=path, delivery=QUICK)
        monkeypatch.setenv("SMTP_PASSWORD", "env-only-pw")
        result = dispatch(engine=engine, apprise_file=path, delivery=QUICK)
    assert result.failed == 2  # the server refuses: the error is recorded, masked
    for n in rows(engine):
        assert "env-only-pw" not in n.last_error and "****" in n.last_error


def test_routine_messages_travel_together_under_a_subject_that_says_what_they_hold(engine, tmp_path):
    """Three acknowledgements for one ministry in one run: one mail, whose subject counts them by kind
    (not the first one's subject with "(+2)")."""
    with Session(engine) as session, session.begin():
        queue(session, [
            {"recipient": "ministry:interior", "kind": "acknowledgement", "subject": f"Ответ № REPLY-{n} получен",
             "body_text": f"Ответ REPLY-{n}", "dedupe_key": f"ack:{n}"} for n in (1, 2, 3)
        ] + [{"recipient": "ministry:interior", "kind": "reply_returned", "subject": "Ответ № REPLY-4 возвращён",
              "body_text": "Ответ REPLY-4", "dedupe_key": "returned:4"}])
    with SmtpReceiver() as smtp, JsonReceiver() as hook:
        result = dispatch(engine=engine, apprise_file=routes(tmp_path, smtp, hook), delivery=QUICK)
        [mail] = smtp.to(INTERIOR)
    assert result.sent == 4 and result.messages == 1
    assert mail.subject == "Сообщений: 4 (подтверждение получения ответа — 3, возврат ответа на доработку — 1)"
    assert all(f"REPLY-{n}" in mail.text for n in (1, 2, 3, 4))


def test_the_local_outbox_names_each_file_by_the_letter_its_date_and_its_whole_words(engine, tmp_path):
    """A letter of a past day's run (the demo's 23.11.2026) is filed under that day, at the time it
    was written in Asia/Almaty, and a subject too long for a file name is cut after a whole word."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    folder = tmp_path / "files"
    path = tmp_path / "apprise.txt"  # Apprise's TEXT format (its YAML reader fails on a URL with ?path=)
    path.write_text(f"ombudsman=outbox://outbox?path={folder}\n", encoding="utf-8")
    subject = ("Требуется решение: ответ на индивидуальную рекомендацию № IR-20261123-INTERIOR получен не по всем "
               "пунктам (Министерство внутренних дел Республики Казахстан)")
    with Session(engine) as session, session.begin():
        queue(session, [{"recipient": "ombudsman", "kind": "level2", "subject": subject, "body_text": "…",
                         "payload": {"as_of": "2026-11-23", "reference": "IR-20261123-INTERIOR"}, "dedupe_key": "level2:x"}])
    before = datetime.now(ZoneInfo("Asia/Almaty")).replace(microsecond=0)
    assert dispatch(engine=engine, apprise_file=path, delivery=QUICK).sent == 1
    after = datetime.now(ZoneInfo("Asia/Almaty"))
    [written] = folder.iterdir()
    day, clock, rest = written.name.split(" ", 2)
    assert day == "2026-11-23"
    assert before.time() <= datetime.strptime(clock, "%H%M%S").time() <= after.time() or before.date() != after.date()
    title = rest.removesuffix(".txt").removesuffix(".html")
    assert len(written.name.encode("utf-8")) <= 255 and title.endswith("…")
    kept, safe = title.removesuffix("…"), " ".join(subject.replace(":", " ").split())  # no ":" in a file name
    assert safe.startswith(kept) and safe[len(kept)] == " "  # cut between two words, never inside one


def test_a_burst_of_queued_events_starts_one_dispatch_run_after_the_burst():
    """prefect.yaml: the trigger fires on the first `followup.notification.queued` and drops the
    others of its window (Prefect's `within` throttles), so the run starts when the window has
    closed: whatever the dropped events announced is in the outbox by then."""
    from prefect.events.schemas.automations import Posture

    from followup.operations.deployments import runner_deployments

    [trigger] = {d.name: d for d in runner_deployments()}["dispatch"].triggers
    assert trigger.expect == {"followup.notification.queued"} and trigger.posture == Posture.Reactive
    assert trigger.threshold == 1 and not trigger.for_each  # one window for the whole outbox
    assert trigger.within.total_seconds() >= 30
    assert trigger.schedule_after >= trigger.within


@pytest.mark.parametrize("tag", ["ministry:interor", "ministry:interor:approver", "ministry:interior:deputy"])
def test_a_ministry_tag_of_no_known_ministry_is_named_by_file_and_line(registry, tmp_path, tag):
    """A typo in a tag would leave a ministry's letters without a route: the dispatcher refuses the file."""
    from followup.config.loader import ConfigError

    path = tmp_path / "apprise.yaml"
    path.write_text("version: 1\nurls:\n  - json://127.0.0.1:9/office:\n      tag: ombudsman\n"
                    f"  - json://127.0.0.1:9/interior:\n      tag: {tag}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"apprise.yaml: line 5: tag '{tag}': ") as caught:
        dispatch(engine=registry, apprise_file=path, delivery=QUICK)
    if "deputy" not in tag:
        assert "no ministry 'interor'" in str(caught.value) and "interior" in str(caught.value)
    text = tmp_path / "apprise.txt"  # Apprise's TEXT format: the line of the URL
    text.write_text(f"ombudsman=json://127.0.0.1:9/office\n\n{tag}=json://127.0.0.1:9/interior\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"apprise.txt: line 3: tag '{tag}': "):
        dispatch(engine=registry, apprise_file=text, delivery=QUICK)


@pytest.mark.parametrize("form", ["yaml", "text"])
def test_a_url_apprise_refuses_is_reported_as_refused_with_its_line_and_no_password(registry, tmp_path, form):
    engine = registry
    check_deadlines(DUE - timedelta(days=14), engine=engine)
    refused = "mailto://npm:Sup3rSecretPw@127.0.0.1:2525?from=not-an-address&to=kanc@dsm.gov.kz"
    with SmtpReceiver() as smtp:
        if form == "yaml":
            path = tmp_path / "apprise.yaml"
            path.write_text("version: 1\nurls:\n"
                            f"  - {smtp.url(INTERIOR)}:\n      tag: ministry:interior\n"
                            f"  - {refused}:\n      tag: ministry:health\n", encoding="utf-8")
            line = 5
        else:
            path = tmp_path / "apprise.txt"
            path.write_text(f"ministry:interior={smtp.url(INTERIOR)}\nministry:health={refused}\n", encoding="utf-8")
            line = 2
        result = dispatch(engine=engine, apprise_file=path, delivery=QUICK)
    assert result.sent == 1 and result.unroutable == ["ministry:health"]
    [kept] = [n for n in rows(engine) if n.recipient == "ministry:health"]
    assert kept.status == "unroutable"
    assert kept.last_error.startswith(f"{path}: line {line} (tag 'ministry:health'): Apprise refused the URL mailto://…")
    assert "no Apprise URL has the tag" not in kept.last_error
    assert "Sup3rSecretPw" not in kept.last_error and "S...w" not in kept.last_error
