"""A ministry answers through its page; the office's registry records the reply, holds the claims
its policy reviews, and the office accepts or returns them (`followup replies …`).

Replies are written here as the reply portal leaves them: a confirmed `Reply` with its claims
(and evidence), waiting for `record-responses` (steps/replies.py; the flow is in
test_replies_flow.py).
"""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import func, insert, select
from sqlmodel import Session

from followup.config.settings import get_settings
from followup.models.calendar import local_today
from followup.models.followup import IndividualizedItem, IndividualizedRecommendation, Notification, Reminder
from followup.models.registry import Recommendation, StatusChange
from followup.models.replies import Evidence, Reply, ReplyClaim
from followup.models.transitions import transition
from followup.models.types import utcnow
from followup.notifications.digest import build_digest
from followup.notifications.dispatch import dispatch
from followup.notifications.render import render
from followup.spreadsheets.ingest import import_responses
from followup.steps.deadlines import check_deadlines, escalate_ministry, refer_to_level2
from followup.steps.replies import ReviewError, accept_claims, list_claims_under_review, record_replies, return_claims
from tests.conftest import write_csv
from tests.receivers import JsonReceiver, SmtpReceiver
from tests.test_import import run_cli

DUE = date(2026, 3, 10)  # the registry fixture's deadline
ANSWERED = date(2026, 2, 20)  # the day the ministry's reply is dated


# --- what the reply portal leaves in the registry --------------------------------------------------------


def confirmed_reply(engine, ministry: str, claims: list[tuple[str, str, str]], *, responded_on: date = ANSWERED,
                    letter: str | None = "IR-20260120-INTERIOR", files: tuple[tuple[str, str], ...] = ()) -> int:
    """A reply the ministry's validating official confirmed: claims (external_id, status, measures), evidence files."""
    with Session(engine) as session, session.begin():
        ids = dict(session.connection().execute(select(Recommendation.external_id, Recommendation.id)).all())
        reply_id = session.connection().execute(insert(Reply).returning(Reply.id), {
            "ministry_code": ministry, "channel": "portal", "letter_reference": letter, "responded_on": responded_on,
            "author_name": "Сейткали Асель", "author_position": "главный специалист", "author_email": "aseitkali@mvd.gov.kz",
            "state": "confirmed", "generation": 1, "confirmed_by_name": "Жумабеков Ерлан", "confirmed_by_position": "директор департамента",
            "created_at": utcnow(), "confirmed_at": utcnow(),
        }).scalar_one()
        session.connection().execute(insert(ReplyClaim), [
            {"reply_id": reply_id, "recommendation_id": ids[ext], "claimed_status": status, "measures": measures, "outcome": "pending"}
            for ext, status, measures in claims
        ])
        for name, digest in files:
            session.connection().execute(insert(Evidence), {"reply_id": reply_id, "sha256": digest, "filename": name,
                                                            "content_type": "application/pdf", "size": 1024, "created_at": utcnow()})
    return reply_id


def item(engine, external_id: str) -> Recommendation:
    with Session(engine) as session:
        return session.exec(select(Recommendation).where(Recommendation.external_id == external_id)).one()[0]


def history(engine, external_id: str) -> list[StatusChange]:
    with Session(engine) as session:
        rec = item(engine, external_id)
        return [row[0] for row in session.exec(select(StatusChange).where(StatusChange.recommendation_id == rec.id).order_by(StatusChange.id))]


def claims_of(engine, reply_id: int) -> dict[str, ReplyClaim]:
    with Session(engine) as session:
        rows = session.exec(select(ReplyClaim, Recommendation.external_id).join(Recommendation, Recommendation.id == ReplyClaim.recommendation_id)
                            .where(ReplyClaim.reply_id == reply_id)).all()
        return {ext: claim for claim, ext in rows}


def reply_row(engine, reply_id: int) -> Reply:
    with Session(engine) as session:
        return session.get(Reply, reply_id)


def outbox(engine, kind: str | None = None) -> list[Notification]:
    with Session(engine) as session:
        stmt = select(Notification).order_by(Notification.id)
        if kind:
            stmt = stmt.where(Notification.kind == kind)
        return [row[0] for row in session.exec(stmt)]


@pytest.fixture
def routes(tmp_path, monkeypatch):
    """The office's Apprise file: the Ministry of Internal Affairs by e-mail, the office by webhook."""

    def write(smtp: SmtpReceiver, hook: JsonReceiver) -> None:
        path = tmp_path / "routes.yaml"
        path.write_text("version: 1\nurls:\n"
                        f"  - {smtp.url('kanc@mvd.gov.kz')}:\n      tag: ministry:interior\n"
                        f"  - {smtp.url('kanc@dsm.gov.kz')}:\n      tag: ministry:health\n"
                        f"  - {hook.url('office')}:\n      tag: ombudsman\n", encoding="utf-8")
        monkeypatch.setenv("FOLLOWUP_APPRISE_CONFIG", str(path))
        get_settings.cache_clear()

    return write


# --- recording ------------------------------------------------------------------------------------------


def test_work_under_way_moves_the_item_and_an_implemented_claim_waits_for_the_office(registry):
    """The interior ministry reports work started on NPM-1 and NPM-2 implemented: the first moves at
    once, the second waits for the office (policy: implemented and rejected are reviewed)."""
    reply_id = confirmed_reply(registry, "interior", [
        ("NPM-1", "in_progress", "Подрядчик приступил к расширению оконных проёмов камер ИВС."),
        ("NPM-2", "implemented", "Проведено обучение 24 сотрудников ИВС, протокол № 7."),
    ], files=(("akt-7.pdf", "ab" * 32),))
    result = record_replies(engine=registry, today=date(2026, 2, 21))

    assert result.counts() == {"replies": 1, "applied": 1, "unchanged": 0, "under_review": 1, "refused": 0, "moves": 1, "notifications": 1}
    reference = f"REPLY-{reply_id}"
    # NPM-1 moved, and its history names the reply, its letter, the measures and the evidence
    assert item(registry, "NPM-1").status == "in_progress"
    move = history(registry, "NPM-1")[-1]
    assert (move.from_status, move.to_status, move.effective_on) == ("issued", "in_progress", ANSWERED)
    assert move.reason.startswith(f"reply {reference} of 20.02.2026 (ministry's portal, letter IR-20260120-INTERIOR): Подрядчик приступил")
    assert move.evidence == f"{reference}: akt-7.pdf (sha256 {'ab' * 6})"
    assert move.actor == "ministry:interior (Жумабеков Ерлан)"
    # NPM-2 keeps its status, held for the office's review, and the log says why
    held = item(registry, "NPM-2")
    assert (held.status, held.awaiting_review) == ("issued", True)
    note = history(registry, "NPM-2")[-1]
    assert (note.from_status, note.to_status, note.changes) == ("issued", "issued", {"awaiting_review": [False, True]})
    assert reference in note.reason
    assert {e: c.outcome for e, c in claims_of(registry, reply_id).items()} == {"NPM-1": "applied", "NPM-2": "under_review"}
    recorded = reply_row(registry, reply_id)
    assert recorded.state == "recorded" and recorded.recorded_at is not None
    assert [line.external_id for line in list_claims_under_review(engine=registry)] == ["NPM-2"]


def test_a_claim_that_repeats_the_status_changes_nothing(registry):
    with Session(registry) as session:
        transition(session, session.exec(select(Recommendation).where(Recommendation.external_id == "NPM-1")).one()[0],
                   "in_progress", actor="clerk", reason="letter 12")
        session.commit()
    before = len(history(registry, "NPM-1"))
    reply_id = confirmed_reply(registry, "interior", [("NPM-1", "in_progress", "Работы продолжаются.")])
    assert record_replies(engine=registry).counts()["unchanged"] == 1
    assert len(history(registry, "NPM-1")) == before
    assert claims_of(registry, reply_id)["NPM-1"].outcome == "unchanged"


def test_refused_claims_are_kept_and_the_others_recorded(registry):
    """NPM-1 was withdrawn meanwhile and NPM-3 is Health's: both refused and listed, NPM-2 still moves."""
    with Session(registry) as session:
        transition(session, session.exec(select(Recommendation).where(Recommendation.external_id == "NPM-1")).one()[0],
                   "withdrawn", actor="clerk", reason="facility closed")
        session.commit()
    reply_id = confirmed_reply(registry, "interior", [
        ("NPM-1", "in_progress", "Работы начаты."), ("NPM-2", "in_progress", "Обучение запланировано."),
        ("NPM-3", "in_progress", "Не наше учреждение."),
    ])
    result = record_replies(engine=registry)

    assert [(c.external_id, c.why) for c in result.refused] == [
        ("NPM-1", "cannot go from withdrawn to in_progress"), ("NPM-3", "not this body's recommendation"),
    ]
    assert {e: c.outcome for e, c in claims_of(registry, reply_id).items()} == {"NPM-1": "refused", "NPM-2": "applied", "NPM-3": "refused"}
    assert (item(registry, "NPM-1").status, item(registry, "NPM-2").status, item(registry, "NPM-3").status) == ("withdrawn", "in_progress", "issued")
    assert reply_row(registry, reply_id).state == "recorded"
    [ack] = outbox(registry, "acknowledgement")
    assert "не внесено" in ack.body_text and "NPM-1" in ack.body_text


def test_a_claim_walks_the_transition_table_step_by_step(registry):
    """An overdue item the ministry says is partially implemented: one legal move, dated the reply's day;
    from on_hold (waiting on the office) to in_progress, the same."""
    check_deadlines(DUE + timedelta(days=1), engine=registry)
    assert item(registry, "NPM-1").status == "overdue"
    confirmed_reply(registry, "interior", [("NPM-1", "partially_implemented", "Освещение улучшено в 3 из 5 камер.")],
                    responded_on=DUE + timedelta(days=2))
    record_replies(engine=registry)
    assert item(registry, "NPM-1").status == "partially_implemented"
    assert history(registry, "NPM-1")[-1].effective_on == DUE + timedelta(days=2)


def test_two_replies_on_one_item_in_one_run_move_it_in_order(registry):
    """The fallback run finds two replies: work started, then (a later reply) a partial answer."""
    first = confirmed_reply(registry, "interior", [("NPM-1", "in_progress", "Начаты работы.")])
    second = confirmed_reply(registry, "interior", [("NPM-1", "partially_implemented", "Готово 3 из 5.")], responded_on=ANSWERED + timedelta(days=5))
    result = record_replies(engine=registry)
    assert [r.reference for r in result.replies] == [f"REPLY-{first}", f"REPLY-{second}"]
    moves = [(h.from_status, h.to_status) for h in history(registry, "NPM-1") if h.from_status != h.to_status]
    assert moves[-2:] == [("issued", "in_progress"), ("in_progress", "partially_implemented")]


def test_each_reply_is_recorded_exactly_once(registry):
    """A second run (the fallback after the event's run) finds nothing left; so do two runs at once."""
    reply_id = confirmed_reply(registry, "interior", [("NPM-1", "in_progress", "Начаты работы.")])
    assert record_replies(engine=registry).counts()["replies"] == 1
    again = record_replies(engine=registry)
    assert again.counts()["replies"] == 0 and again.notifications == []
    assert record_replies(engine=registry, reply_ids=[reply_id]).counts()["replies"] == 0

    racing = confirmed_reply(registry, "interior", [("NPM-2", "in_progress", "Обучение назначено.")])
    results, errors = [], []
    start = threading.Barrier(2)

    def run() -> None:
        start.wait()
        try:
            results.append(record_replies(engine=registry))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(r.counts()["replies"] for r in results) == [0, 1]
    moves = [h for h in history(registry, "NPM-2") if h.to_status == "in_progress"]
    assert len(moves) == 1
    assert [n.dedupe_key for n in outbox(registry, "acknowledgement")] == [f"ack:{reply_id}", f"ack:{racing}"]


# --- what the ministry receives ---------------------------------------------------------------------------


def test_the_acknowledgement_reaches_the_ministry_in_its_language(registry, routes):
    reply_id = confirmed_reply(registry, "interior", [
        ("NPM-1", "in_progress", "Подрядчик приступил к работам."), ("NPM-2", "implemented", "Обучение проведено."),
    ])
    record_replies(engine=registry, today=date(2026, 2, 21))
    [ack] = outbox(registry, "acknowledgement")
    assert (ack.recipient, ack.language, ack.dedupe_key) == ("ministry:interior", "ru", f"ack:{reply_id}")
    with SmtpReceiver() as smtp, JsonReceiver() as hook:
        routes(smtp, hook)
        assert dispatch(engine=registry).sent == 1
        [mail] = smtp.to("kanc@mvd.gov.kz")
    assert mail.subject == f"Ответ № REPLY-{reply_id} от 20.02.2026 г. получен и внесён в реестр рекомендаций НПМ"
    for words in ("NPM-1", "NPM-2", "исполняется", "исполнена", "статус изменён", "на рассмотрении аппарата Уполномоченного",
                  "Подрядчик приступил к работам.", "npm@ombudsman.kz", "IR-20260120-INTERIOR"):
        assert words in mail.text, words
    assert "in_progress" not in mail.text and "under_review" not in mail.text  # names, not codes
    assert "NPM-2" in mail.html and "исполнена" in mail.html


@pytest.mark.parametrize("language", ["kk", "en"])
def test_the_reply_letters_speak_kazakh_and_english(language: str):
    contact = {"name": "Aigerim Akhmetova", "position": "Chief expert", "phone": "+7 (7172) 74-05-36", "email": "npm@ombudsman.kz"}
    items = [{"external_id": "NPM-1", "facility": "ИВС", "text": "Обеспечить освещением", "claimed_status": "partially_implemented",
              "measures": "3 из 5 камер", "outcome": "under_review"}]
    common = {"as_of": date(2026, 2, 21), "ministry": "МВД", "reference": "REPLY-7", "responded_on": ANSWERED,
              "letter_reference": None, "items": items, "contact": contact}
    words = {"kk": ("ішінара орындалды", "Уәкіл аппаратының қарауында", "пысықтауға қайтарылды", "растауыңызды сұраймыз"),
             "en": ("partially implemented", "under review by the Commissioner's office", "returned for completion", "confirm")}[language]
    ack = render("acknowledgement", language, common)
    assert words[0] in ack.text and words[1] in ack.text
    returned = render("reply_returned", language, {**common, "comment": "Attach the act."})
    assert words[2] in returned.subject.lower() + returned.text.lower() and "Attach the act." in returned.text
    confirm = render("reply_confirm", language, {"ministry": "МВД", "reply_reference": "REPLY-7", "author_name": "Асель", "author_position": None,
                                                 "author_email": None, "items": items, "confirm_url": "http://127.0.0.1:8000/c/x",
                                                 "expires_on": date(2026, 3, 6), "contact": contact})
    assert "http://127.0.0.1:8000/c/x" in confirm.text and "06.03.2026" in confirm.text and words[0] in confirm.text
    assert words[3] in (confirm.subject + confirm.text).lower()


# --- the office's review -----------------------------------------------------------------------------------


def test_the_office_accepts_a_claim_and_the_history_names_the_reply_and_the_reviewer(registry):
    reply_id = confirmed_reply(registry, "interior", [("NPM-2", "implemented", "Обучение проведено, протокол № 7.")],
                               files=(("protocol-7.pdf", "cd" * 32),))
    record_replies(engine=registry)
    listed = run_cli("replies", "list")
    assert listed.exit_code == 0 and f"REPLY-{reply_id}" in listed.output and "NPM-2" in listed.output and "implemented" in listed.output

    result = run_cli("replies", "accept", f"REPLY-{reply_id}")
    assert result.exit_code == 0, result.output
    assert f"REPLY-{reply_id} (interior): accepted NPM-2" in result.output
    accepted = item(registry, "NPM-2")
    assert (accepted.status, accepted.awaiting_review) == ("implemented", False)
    move = [h for h in history(registry, "NPM-2") if (h.from_status, h.to_status) == ("issued", "implemented")][-1]
    assert move.actor == "test-clerk"  # FOLLOWUP_ACTOR: the office's reviewer
    assert f"reply REPLY-{reply_id} of 20.02.2026" in move.reason and "accepted on review by test-clerk" in move.reason
    assert move.effective_on == ANSWERED and "protocol-7.pdf" in move.evidence
    claim = claims_of(registry, reply_id)["NPM-2"]
    assert (claim.outcome, claim.reviewed_by) == ("accepted", "test-clerk") and claim.reviewed_at is not None
    assert "nothing waits" in run_cli("replies", "list").output
    everything = run_cli("replies", "list", "--all")
    assert "accepted (test-clerk)" in everything.output


def test_the_office_returns_a_claim_with_its_comment_and_the_status_stays(registry, routes):
    reply_id = confirmed_reply(registry, "interior", [
        ("NPM-1", "rejected", "Расширение окон невозможно по конструкции здания."),
        ("NPM-2", "implemented", "Обучение проведено."),
    ])
    record_replies(engine=registry)
    with SmtpReceiver() as smtp, JsonReceiver() as hook:
        routes(smtp, hook)
        dispatch(engine=registry)  # the acknowledgement leaves first
        result = run_cli("replies", "return", str(reply_id), "--item", "NPM-1", "--comment",
                         "Приложите заключение экспертизы о конструкции здания и предложите иные меры освещения.")
        assert result.exit_code == 0, result.output
        dispatch(engine=registry)
        mail = next(m for m in smtp.to("kanc@mvd.gov.kz") if "возвращён на доработку" in m.subject)
    returned = item(registry, "NPM-1")
    assert (returned.status, returned.awaiting_review) == ("issued", False)
    assert item(registry, "NPM-2").awaiting_review  # not returned: still waits
    claim = claims_of(registry, reply_id)["NPM-1"]
    assert (claim.outcome, claim.reviewed_by) == ("returned", "test-clerk")
    assert claim.review_comment.startswith("Приложите заключение экспертизы")
    [letter] = outbox(registry, "reply_returned")
    assert (letter.recipient, letter.dedupe_key) == ("ministry:interior", f"returned:{reply_id}:{claim.id}")
    assert mail.subject == f"Ответ № REPLY-{reply_id} от 20.02.2026 г. возвращён на доработку"
    assert "Приложите заключение экспертизы о конструкции здания" in mail.text
    assert "NPM-1" in mail.text and "отклонена" in mail.text and "NPM-2" not in mail.text
    assert "Приложите заключение экспертизы" in mail.html


def test_the_review_commands_say_what_is_wrong(registry):
    reply_id = confirmed_reply(registry, "interior", [("NPM-1", "in_progress", "Начаты работы.")])
    not_yet = run_cli("replies", "accept", str(reply_id))
    assert not_yet.exit_code == 2 and "not recorded yet" in not_yet.output
    record_replies(engine=registry)
    for args, words in [
        (("replies", "accept", "REPLY-999"), "no reply REPLY-999 in the registry"),
        (("replies", "accept", f"REPLY-{reply_id}"), f"REPLY-{reply_id} has no claim under review"),
        (("replies", "return", str(reply_id), "--comment", "   "), "needs a comment"),
        (("replies", "accept", "twelve"), "not a reply number"),
    ]:
        result = run_cli(*args)
        assert result.exit_code == 2 and words in result.output, (args, result.output)
    with pytest.raises(ReviewError, match="no claim under review on NPM-404"):
        accept_claims(engine=registry, reply_id=reply_id, actor="office", external_ids=["NPM-404"])


def test_a_claim_accepted_after_the_item_was_withdrawn_is_refused(registry):
    reply_id = confirmed_reply(registry, "interior", [("NPM-1", "implemented", "Окна расширены.")])
    record_replies(engine=registry)
    with Session(registry) as session:
        transition(session, session.exec(select(Recommendation).where(Recommendation.external_id == "NPM-1")).one()[0],
                   "withdrawn", actor="office", reason="facility closed")
        session.commit()
    result = accept_claims(engine=registry, reply_id=reply_id, actor="office")
    assert result.accepted == [] and [c.external_id for c in result.refused] == ["NPM-1"]
    assert claims_of(registry, reply_id)["NPM-1"].outcome == "refused"
    assert not item(registry, "NPM-1").awaiting_review


# --- a claim under review holds its item -----------------------------------------------------------------


def test_an_item_under_review_gets_no_reminder_overdue_mark_or_escalation(registry):
    """Until the office decides, the daily pass leaves the item alone; the other items go on."""
    confirmed_reply(registry, "interior", [("NPM-1", "implemented", "Окна расширены, акт № 5.")])
    record_replies(engine=registry)
    check_deadlines(DUE - timedelta(days=14), engine=registry)
    with Session(registry) as session:
        reminded = set(session.execute(select(Recommendation.external_id).join(Reminder, Reminder.recommendation_id == Recommendation.id)).scalars())
    assert reminded == {"NPM-2", "NPM-3"}
    [letter] = [n for n in outbox(registry, "reminder") if n.recipient == "ministry:interior"]
    assert "NPM-2" in letter.body_text and "NPM-1" not in letter.body_text

    later = DUE + timedelta(days=30)
    check_deadlines(DUE + timedelta(days=1), engine=registry)
    check_deadlines(later, engine=registry)
    escalated = escalate_ministry("interior", later, engine=registry)
    assert (item(registry, "NPM-1").status, item(registry, "NPM-2").status) == ("issued", "escalated")
    assert [c.external_id for c in escalated.changes] == ["NPM-2"]


def test_an_item_of_an_individualized_recommendation_answered_or_under_review_does_not_go_to_level_2(registry):
    """Both items escalated; the ministry answers both (one claim under review, one applied) before the
    letter's deadline: level 2 finds nothing silent, and each item records the reply that answered it."""
    check_deadlines(DUE + timedelta(days=1), engine=registry)
    issued = DUE + timedelta(days=30)
    escalate_ministry("interior", issued, engine=registry)
    with Session(registry) as session:
        letter = session.exec(select(IndividualizedRecommendation)).one()[0]
    reply_id = confirmed_reply(registry, "interior", [("NPM-1", "implemented", "Окна расширены."), ("NPM-2", "in_progress", "Обучение идёт.")],
                               responded_on=issued + timedelta(days=5), letter=letter.reference)
    record_replies(engine=registry)
    with Session(registry) as session:
        marked = {row[0].recommendation_id: (row[0].answered_on, row[0].reply_id) for row in session.exec(select(IndividualizedItem))}
    assert set(marked.values()) == {(issued + timedelta(days=5), reply_id)}
    assert (item(registry, "NPM-1").status, item(registry, "NPM-2").status) == ("escalated", "in_progress")

    refer_to_level2(letter.response_due_on + timedelta(days=1), engine=registry)
    assert item(registry, "NPM-1").status == "escalated"  # held by the review, not before the Ombudsman
    with Session(registry) as session:
        assert session.get(IndividualizedRecommendation, letter.id).status == "answered"


def test_a_returned_claim_counts_as_unanswered_again(registry):
    """The office returns the claim on an escalated item: if the ministry stays silent past the
    letter's deadline, the item goes to level 2 after all."""
    check_deadlines(DUE + timedelta(days=1), engine=registry)
    issued = DUE + timedelta(days=30)
    escalate_ministry("interior", issued, engine=registry)
    reply_id = confirmed_reply(registry, "interior", [("NPM-1", "implemented", "Окна расширены.")], responded_on=issued + timedelta(days=5))
    record_replies(engine=registry)
    return_claims(engine=registry, reply_id=reply_id, actor="office", comment="Приложите акт.")
    with Session(registry) as session:
        letter = session.exec(select(IndividualizedRecommendation)).one()[0]
        assert all(row[0].answered_on is None for row in session.exec(select(IndividualizedItem)))
    refer_to_level2(letter.response_due_on + timedelta(days=1), engine=registry)
    assert item(registry, "NPM-1").status == "awaiting_decision"


# --- paper replies and the digest ---------------------------------------------------------------------------


def test_a_paper_reply_file_is_recorded_as_a_reply_per_ministry(registry, tmp_path):
    """The office types two ministries' letters into one file: one paper reply each, applied at once
    (the office is the reviewer: no review even for `implemented`)."""
    path = write_csv(tmp_path / "replies.csv", "external_id,status,responded_on,note,evidence",
                     "NPM-1,in_progress,20.02.2026,Письмо МВД № 12-3/456: работы начаты,scan-456.pdf",
                     "NPM-3,implemented,21.02.2026,Письмо Минздрава № 7: вода подведена,act-7.pdf")
    result = import_responses(path, engine=registry)
    assert result.updated == 2 and len(result.replies) == 2
    with Session(registry) as session:
        replies = {r.ministry_code: r for r in (row[0] for row in session.exec(select(Reply)))}
    assert set(replies) == {"interior", "health"}
    interior = replies["interior"]
    assert (interior.channel, interior.state, interior.author_name, interior.confirmed_by_name, interior.responded_on) == (
        "paper", "recorded", "test-clerk", "test-clerk", date(2026, 2, 20))
    assert {e: (c.claimed_status, c.outcome) for e, c in claims_of(registry, interior.id).items()} == {"NPM-1": ("in_progress", "applied")}
    assert item(registry, "NPM-3").status == "implemented" and not item(registry, "NPM-3").awaiting_review
    move = history(registry, "NPM-1")[-1]
    assert move.reason == f"reply REPLY-{interior.id} of 20.02.2026 (paper, file replies.csv): Письмо МВД № 12-3/456: работы начаты"
    assert move.evidence == "scan-456.pdf"
    assert outbox(registry, "acknowledgement") == []  # the ministry wrote a letter; no acknowledgement by mail
    again = import_responses(path, engine=registry)
    assert (again.updated, again.unchanged, again.replies) == (0, 2, [])
    with Session(registry) as session:
        assert session.exec(select(func.count()).select_from(Reply)).one()[0] == 2


def test_the_digest_lists_the_replies_received(registry):
    portal = confirmed_reply(registry, "interior", [("NPM-1", "in_progress", "Начаты работы."), ("NPM-2", "implemented", "Проведено.")])
    record_replies(engine=registry)
    today = local_today()
    digest = build_digest(registry, today)
    rows = digest.section("replies_received")
    assert rows.to_dict("records") == [{
        "reference": f"REPLY-{portal}", "ministry": "interior", "responded_on": ANSWERED, "channel": "portal",
        "items": ["NPM-1", "NPM-2"], "applied": 1, "under_review": 1, "returned": 0, "refused": 0,
    }]
    rendered = render("digest", "ru", {"as_of": digest.as_of, "since": digest.since, "sections": digest.sections})
    assert "Полученные ответы госорганов" in rendered.text and f"REPLY-{portal}" in rendered.text
    assert "страница министерства" in rendered.text and "NPM-1, NPM-2" in rendered.text
    # a week later it is no longer new
    assert build_digest(registry, today + timedelta(days=7)).section("replies_received").empty
    assert build_digest(registry, today - timedelta(days=7)).section("replies_received").empty


def test_history_shows_which_reply_moved_an_item(registry):
    reply_id = confirmed_reply(registry, "interior", [("NPM-1", "in_progress", "Начаты работы.")])
    record_replies(engine=registry)
    result = run_cli("history", "NPM-1")
    assert result.exit_code == 0 and f"reply REPLY-{reply_id} of 20.02.2026" in result.output


def test_the_reply_number_is_read_as_the_office_types_it():
    from followup.steps.replies import parse_reply_id

    assert parse_reply_id("REPLY-12") == parse_reply_id("12") == parse_reply_id(" reply-12 ") == parse_reply_id(12) == 12
    with pytest.raises(ReviewError):
        parse_reply_id("R12")
