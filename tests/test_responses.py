"""Ministries reply; the clerk records the replies (`followup import responses`) and reads the log (`followup history`)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest

from followup.config.settings import get_settings
from tests.conftest import write_csv
from tests.test_import import history, import_json, recommendation, row_counts, run_cli

REPLIES = "external_id,status,responded_on,note,evidence"


@pytest.fixture
def registry_url_with_statuses(db_url, tmp_path):
    """Recommendations issued on 15.02.2024 after a visit; one already implemented, one withdrawn."""
    import_json(write_csv(
        tmp_path / "npm.csv", "external_id,text,issued_on,ministry,status",
        "NPM-1,Обеспечить доступ к питьевой воде,15.02.2024,МВД,",
        "NPM-2,Отремонтировать душевые,15.02.2024,МВД,implemented",
        "NPM-3,Перевести в другое учреждение,15.02.2024,МВД,withdrawn",
        "NPM-4,Установить видеокамеры,15.02.2024,МВД,",
        "NPM-5,Обучить персонал,15.02.2024,Минздрав,",
        "NPM-6,Улучшить питание,15.02.2024,Минздрав,",
    ))
    return db_url


def import_replies(path, *options):
    return run_cli("import", "responses", path, *options)


def test_a_reply_is_recorded_as_a_status_change(registry_url_with_statuses, tmp_path):
    """The interior ministry writes that work has started: status, who, why, evidence and the letter's date."""
    path = write_csv(tmp_path / "replies.csv", REPLIES, "NPM-1,in_progress,20.02.2024,Письмо №12-3/456: работы начаты,scan-456.pdf")
    result = import_replies(path, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"created": 0, "updated": 1, "unchanged": 0, "rejected": 0}
    assert recommendation(registry_url_with_statuses, "NPM-1").status == "in_progress"
    reply = history(registry_url_with_statuses, "NPM-1")[-1]
    assert (reply.from_status, reply.to_status, reply.actor) == ("issued", "in_progress", "test-clerk")
    assert "Письмо №12-3/456: работы начаты" in reply.reason
    assert (reply.evidence, reply.effective_on) == ("scan-456.pdf", date(2024, 2, 20))


def test_the_same_replies_twice_change_nothing(registry_url_with_statuses, tmp_path):
    path = write_csv(
        tmp_path / "replies.csv", REPLIES,
        "NPM-1,in_progress,20.02.2024,работы начаты,", "NPM-4,implemented,2024-03-01,камеры установлены,act-7.pdf",
    )
    assert import_replies(path).exit_code == 0
    before = row_counts(registry_url_with_statuses)
    again = import_replies(path, "--json")
    assert again.exit_code == 0
    assert json.loads(again.stdout) == {"created": 0, "updated": 0, "unchanged": 2, "rejected": 0}
    assert row_counts(registry_url_with_statuses) == before


def test_a_dry_run_of_replies_writes_nothing(registry_url_with_statuses, tmp_path):
    path = write_csv(tmp_path / "replies.csv", REPLIES, "NPM-1,rejected,20.02.2024,нет средств,")
    before = row_counts(registry_url_with_statuses)
    result = import_replies(path, "--dry-run", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["updated"] == 1
    assert row_counts(registry_url_with_statuses) == before
    assert recommendation(registry_url_with_statuses, "NPM-1").status == "issued"


def test_every_bad_reply_is_listed_and_nothing_is_written(registry_url_with_statuses, tmp_path):
    """A batch of replies with mistakes: every bad row by its spreadsheet number, and no reply recorded."""
    future = (datetime.now(get_settings().tz).date() + timedelta(days=10)).strftime("%d.%m.%Y")
    path = write_csv(
        tmp_path / "replies.csv", REPLIES,
        'NPM-1,in_progress,20.02.2024,"Письмо получено,\nработы начаты",',  # row 2: good, two lines in the file
        "NPM-404,in_progress,20.02.2024,,",  # row 3: no such recommendation
        "NPM-2,overdue,20.02.2024,,",  # row 4: implemented -> overdue
        "NPM-3,in_progress,20.02.2024,,",  # row 5: withdrawn is final
        "NPM-4,implemented,30.02.2024,,",  # row 6: impossible date
        f"NPM-5,implemented,{future},,",  # row 7: in the future
        "NPM-6,implemented,01.02.2024,,",  # row 8: before the recommendation was issued
        "NPM-1,implemented,21.02.2024,,",  # row 9: second reply for NPM-1 in the same file
    )
    before = row_counts(registry_url_with_statuses)
    result = import_replies(path)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("row ")]
    expected = [
        ("row 3: external_id:", "NPM-404"),
        ("row 4: status:", "cannot go from implemented to overdue; allowed: in_progress"),  # as the README says
        ("row 5: status:", "cannot go from withdrawn to in_progress; allowed: nothing (final status)"),
        ("row 6: responded_on:", "30.02.2024"),
        ("row 7: responded_on:", "in the future"),
        ("row 8: responded_on:", "before the recommendation was issued"),
        ("row 9: external_id:", "also on row 2"),
    ]
    for start, words in expected:
        assert any(line.startswith(start) and words in line for line in lines), (start, lines)
    assert len(lines) == len(expected), lines
    assert row_counts(registry_url_with_statuses) == before
    assert recommendation(registry_url_with_statuses, "NPM-1").status == "issued"


@pytest.mark.usefixtures("registry_url_with_statuses")
def test_a_reply_file_that_is_not_a_table_gets_one_sentence(tmp_path):
    path = tmp_path / "replies.csv"
    path.write_bytes("external_id,status,responded_on\nNPM-1,in_progress,20.02.2024\n".encode("utf-16"))
    result = import_replies(path)
    assert result.exit_code not in (0, 1)
    assert result.output.strip().startswith("replies.csv: ") and "\n" not in result.output.strip()


@pytest.mark.usefixtures("registry_url_with_statuses")
def test_history_is_printed_oldest_first(tmp_path):
    """The log of NPM-1 reads as it happened: created, edited, reply, answer."""
    import_json(write_csv(tmp_path / "fix.csv", "external_id,text,issued_on,ministry", "NPM-1,Обеспечить питьевой водой,15.02.2024,МВД"))
    assert import_replies(write_csv(tmp_path / "r1.csv", REPLIES, "NPM-1,in_progress,20.02.2024,письмо 12,scan-12.pdf")).exit_code == 0
    assert import_replies(write_csv(tmp_path / "r2.csv", REPLIES, "NPM-1,implemented,01.04.2024,письмо 31,act-31.pdf")).exit_code == 0
    result = run_cli("history", "NPM-1")
    assert result.exit_code == 0
    output = result.output
    steps = ["(new) → issued", "edited: text", "issued → in_progress", "in_progress → implemented"]
    positions = [output.find(step) for step in steps]
    assert -1 not in positions, output
    assert positions == sorted(positions), output
    assert output.find("письмо 12") < output.find("письмо 31")
    for words in ("test-clerk", "scan-12.pdf", "act-31.pdf", "(effective 20.02.2024)", "(effective 01.04.2024)", "implemented"):
        assert words in output


@pytest.mark.usefixtures("registry_url_with_statuses")
def test_history_of_an_unknown_id_is_a_clear_error():
    result = run_cli("history", "NPM-404")
    assert result.exit_code != 0
    assert result.output.strip() == "no recommendation 'NPM-404' in the registry"


@pytest.mark.usefixtures("db_url")
def test_an_old_reply_file_does_not_move_an_item_back(engine, tmp_path):
    """The ministry said 'in progress' in March; the item escalated since; the March file comes again."""
    from sqlmodel import Session

    from followup.models.registry import Recommendation
    from followup.models.transitions import transition
    from followup.spreadsheets.ingest import import_recommendations, import_responses

    import_recommendations(write_csv(tmp_path / "r.csv", "external_id,text,issued_on,ministry", "NPM-1,Текст,15.02.2024,МВД"), engine=engine)
    march = write_csv(tmp_path / "march.csv", "external_id,status,responded_on,note", "NPM-1,in_progress,01.03.2024,Работы начаты")
    assert import_responses(march, engine=engine).updated == 1
    with Session(engine) as session:
        rec = session.query(Recommendation).one()
        transition(session, rec, "overdue", actor="scheduler", reason="deadline passed")
        transition(session, rec, "escalated", actor="scheduler", reason="IR-20240601-INTERIOR")
        session.commit()
    again = import_responses(march, engine=engine)
    assert (again.updated, again.unchanged) == (0, 1)
    with Session(engine) as session:
        assert session.query(Recommendation).one().status == "escalated"


def test_a_reply_dated_before_the_item_s_last_recorded_change_is_refused(registry_url_with_statuses, tmp_path):
    """The ministry wrote on 1 March that work started; a file typed later says it had implemented
    the item on 25 February. The history (and the annual report, which reads it in the order it
    was recorded) cannot take a reply before what it follows: the row is refused, naming why."""
    assert import_replies(write_csv(tmp_path / "march.csv", REPLIES, "NPM-1,in_progress,01.03.2024,работы начаты,")).exit_code == 0
    before = row_counts(registry_url_with_statuses)
    late = write_csv(tmp_path / "late.csv", REPLIES, "NPM-4,in_progress,20.02.2024,,", "NPM-1,implemented,25.02.2024,исполнено,")
    result = import_replies(late)
    assert result.exit_code == 1
    assert "late.csv: 1 bad row, nothing was written" in result.output
    assert [line for line in result.output.splitlines() if line.startswith("row ")] == [
        "row 3: responded_on: 25.02.2024 is before the last recorded change of NPM-1 (in_progress on 01.03.2024); a reply can only follow it",
    ]
    assert row_counts(registry_url_with_statuses) == before
    # dated on the day of the last change or later, it is recorded
    same_day = write_csv(tmp_path / "same-day.csv", REPLIES, "NPM-1,implemented,01.03.2024,исполнено,")
    assert json.loads(import_replies(same_day, "--json").stdout)["updated"] == 1


@pytest.mark.usefixtures("db_url")
def test_a_letter_dated_before_the_deadline_that_arrives_after_the_overdue_mark_is_an_answer_in_time(engine, tmp_path):
    """The daily pass marked the item overdue on 16 May; the ministry's letter of 10 May, slow in
    the post, is typed in afterwards: it is recorded with its own date, and the report counts the
    item implemented from 10 May (the last recorded entry wins from the day it is dated)."""
    import pandas as pd
    from sqlmodel import Session

    from followup.models.registry import Recommendation, StatusChange
    from followup.reports.annual import status_at
    from followup.spreadsheets.ingest import import_recommendations, import_responses
    from followup.steps.deadlines import check_deadlines

    import_recommendations(write_csv(tmp_path / "r.csv", "external_id,text,issued_on,due_on,ministry",
                                     "NPM-1,Текст,15.02.2024,15.05.2024,МВД"), engine=engine)
    check_deadlines(date(2024, 5, 16), engine=engine)
    reply = write_csv(tmp_path / "reply.csv", "external_id,status,responded_on", "NPM-1,implemented,10.05.2024")
    assert import_responses(reply, engine=engine).updated == 1
    with Session(engine) as session:
        rec = session.query(Recommendation).one()
        assert rec.status == "implemented"
        history = pd.DataFrame([(h.recommendation_id, h.id, h.to_status, h.effective_on or h.at.date())
                                for h in session.query(StatusChange).all()],
                               columns=["recommendation_id", "id", "to_status", "on"])
        items = pd.DataFrame([(rec.id,)], columns=["id"])
    for day, expected in ((date(2024, 5, 9), "issued"), (date(2024, 5, 12), "implemented"), (date(2024, 5, 20), "implemented")):
        assert status_at(items, history, day)["status"].iloc[0] == expected, day
