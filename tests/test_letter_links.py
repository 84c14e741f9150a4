"""Letters a ministry can answer: each reminder and individualized recommendation carries the
ministry's reply link, the reference to quote and the office's contact; `followup links` prints
and revokes links; the flows that write letters refuse to start without the signing key."""

from __future__ import annotations

import os
import stat
from datetime import date, timedelta

import pytest
from sqlalchemy import delete, func, select, update
from sqlmodel import Session
from typer.testing import CliRunner

from followup.config.office import office_contact
from followup.config.policy import load_policy
from followup.config.settings import MissingSecretKey, get_settings
from followup.interfaces.cli import app
from followup.models.calendar import WorkingCalendar, local_today
from followup.models.followup import Notification, Reminder
from followup.models.links import (
    BadLink,
    MinistryGrant,
    check_generation,
    generation_of,
    ministry_link,
    read_ministry_token,
)
from followup.models.registry import Ministry, Recommendation
from followup.steps.deadlines import check_deadlines, escalate_ministry, reminder_reference

POLICY = load_policy()
CALENDAR = WorkingCalendar.from_policy(POLICY.calendar)
DUE = date(2026, 3, 10)  # conftest's `registry`: NPM-1, NPM-2 (interior), NPM-3 (health)
REMINDER_DAY = DUE - timedelta(days=14)
OVERDUE_DAY = DUE + timedelta(days=1)
ESCALATION_DAY = CALENDAR.add_working_days(OVERDUE_DAY, POLICY.defaults.escalate_after_working_days)


def letters(engine, recipient: str = "ministry:interior") -> list[Notification]:
    with engine.connect() as c:
        rows = c.execute(select(Notification.__table__).where(Notification.recipient == recipient).order_by(Notification.id))
        return [Notification.model_validate(r._mapping) for r in rows]


def grant_of(link: str, today: date) -> MinistryGrant:
    """What opening the link gives (the web app reads the token the same way)."""
    assert link.startswith(f"{get_settings().public_url}/r/")
    return read_ministry_token(link.rsplit("/", 1)[1], today=today)


def speak(engine, language: str) -> None:
    with engine.begin() as c:
        c.execute(update(Ministry.__table__).where(Ministry.__table__.c.code == "interior").values(language=language))


@pytest.mark.parametrize("language", ["ru", "kk", "en"])
def test_a_reminder_and_an_individualized_recommendation_carry_link_reference_and_contact(registry, language):
    engine = registry
    speak(engine, language)
    check_deadlines(REMINDER_DAY, engine=engine)
    check_deadlines(OVERDUE_DAY, engine=engine)
    assert escalate_ministry("interior", ESCALATION_DAY, engine=engine).individualized == [f"IR-{ESCALATION_DAY:%Y%m%d}-INTERIOR"]
    reminder, _, individualized = letters(engine)
    assert (reminder.kind, individualized.kind) == ("reminder", "individualized")
    with Session(engine) as session:
        generation = generation_of(session, "interior")
    contact = office_contact(language)
    for letter, day, reference in ((reminder, REMINDER_DAY, f"REM-{REMINDER_DAY:%Y%m%d}-INTERIOR"),
                                   (individualized, ESCALATION_DAY, f"IR-{ESCALATION_DAY:%Y%m%d}-INTERIOR")):
        assert letter.language == language and letter.payload is not None
        link = letter.payload["reply_link"]
        last_day = day + timedelta(days=POLICY.replies.link_days)
        # the link opens as the ministry, in its current generation, until the letter's date + link_days
        assert grant_of(link, today=day) == MinistryGrant("interior", generation, last_day)
        assert grant_of(link, today=last_day).ministry == "interior"
        with pytest.raises(BadLink, match="expired"):
            grant_of(link, today=last_day + timedelta(days=1))
        assert f"\n{link}\n" in letter.body_text and f'<a href="{link}"' in letter.body_html
        assert letter.payload["reference"] == reference
        for body in (letter.body_text, letter.body_html):
            assert f"{last_day:%d.%m.%Y}" in body and reference in body
            assert all(value in body for value in contact.values())  # name, position, phone, e-mail
            assert ": ____" not in body
    assert reminder_reference("interior", REMINDER_DAY) == f"REM-{REMINDER_DAY:%Y%m%d}-INTERIOR"


def test_the_same_letter_rendered_again_carries_the_same_link(registry):
    """No timestamp in the token: a re-run (a lost letter written again) gives the same text."""
    engine = registry
    check_deadlines(REMINDER_DAY, engine=engine)
    (first,) = letters(engine)
    with engine.begin() as c:  # as if that day's run had never happened
        c.execute(delete(Reminder.__table__))
        c.execute(delete(Notification.__table__))
    check_deadlines(REMINDER_DAY, engine=engine)
    (again,) = letters(engine)
    assert again.created_at > first.created_at  # written anew
    assert (again.body_text, again.body_html, again.payload) == (first.body_text, first.body_html, first.payload)
    with Session(engine) as session:
        assert ministry_link(session, "interior", REMINDER_DAY, POLICY.replies.link_days) == first.payload["reply_link"]
        # another letter date is another link (its own last day)
        assert ministry_link(session, "interior", OVERDUE_DAY, POLICY.replies.link_days) != first.payload["reply_link"]


@pytest.mark.usefixtures("registry")
def test_links_show_prints_the_current_link_by_code_or_alias():
    shown = CliRunner().invoke(app, ["links", "show", "МВД"], env={"COLUMNS": "80"})
    assert shown.exit_code == 0, shown.output
    today = local_today()
    last_day = today + timedelta(days=POLICY.replies.link_days)
    lines = shown.output.splitlines()
    assert lines[0].startswith(f"interior: reply link of {today:%d.%m.%Y}, valid until {last_day:%d.%m.%Y}")
    assert grant_of(lines[-1], today=today) == MinistryGrant("interior", 1, last_day)  # never wrapped
    assert CliRunner().invoke(app, ["links", "show", "interior"]).output == shown.output
    unknown = CliRunner().invoke(app, ["links", "show", "Минфин"])
    assert unknown.exit_code == 2 and "unknown ministry 'Минфин'" in unknown.output


def test_after_links_revoke_old_links_are_stale_and_new_letters_carry_the_new_one(registry):
    engine = registry
    check_deadlines(REMINDER_DAY, engine=engine)
    old = letters(engine)[0].payload["reply_link"]
    revoked = CliRunner().invoke(app, ["links", "revoke", "interior"], env={"COLUMNS": "80"})
    assert revoked.exit_code == 0, revoked.output
    assert "every earlier reply link and open session of this ministry stopped working" in revoked.output
    new = revoked.output.splitlines()[-1]
    assert grant_of(new, today=local_today()).generation == 2
    stale = grant_of(old, today=REMINDER_DAY)  # still signed and in date, but of generation 1
    with Session(engine) as session:
        with pytest.raises(BadLink, match="revoked"):
            check_generation(session, "interior", stale.generation)
        check_generation(session, "interior", 2)
        check_generation(session, "health", 1)  # the other ministries' links are untouched
    check_deadlines(DUE - timedelta(days=3), engine=engine)  # the next reminder
    latest = letters(engine)[-1].payload["reply_link"]
    assert grant_of(latest, today=DUE - timedelta(days=3)) == MinistryGrant(
        "interior", 2, DUE - timedelta(days=3) + timedelta(days=POLICY.replies.link_days))
    assert grant_of(letters(engine, "ministry:health")[-1].payload["reply_link"], today=DUE).generation == 1


def test_the_letter_steps_need_the_key_on_postgresql_and_make_one_on_sqlite(registry, db_url, monkeypatch, tmp_path):
    """Without FOLLOWUP_SECRET_KEY, PostgreSQL (workers on several machines) refuses before anything
    is written; an SQLite registry gets a key made once beside it, readable by its owner only."""
    engine = registry
    check_deadlines(OVERDUE_DAY, engine=engine)  # three overdue items, with the key
    monkeypatch.delenv("FOLLOWUP_SECRET_KEY")
    get_settings.cache_clear()

    def written() -> tuple[int, list[str]]:
        with engine.connect() as c:
            return (c.execute(select(func.count()).select_from(Notification)).scalar_one(),
                    c.execute(select(Recommendation.status).order_by(Recommendation.external_id)).scalars().all())

    before = written()
    assert before[1] == ["overdue"] * 3
    if db_url.startswith("postgresql"):
        with pytest.raises(MissingSecretKey, match="FOLLOWUP_SECRET_KEY is not set"):
            check_deadlines(OVERDUE_DAY + timedelta(days=1), engine=engine)
        with pytest.raises(MissingSecretKey, match="FOLLOWUP_SECRET_KEY is not set"):
            escalate_ministry("interior", ESCALATION_DAY, engine=engine)
        assert written() == before
        assert not (tmp_path / "secret_key").exists()
        return
    assert escalate_ministry("interior", ESCALATION_DAY, engine=engine).individualized
    key_file = tmp_path / "secret_key"  # beside followup.db
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key = key_file.read_text("ascii").strip()
    assert len(key) >= 32 and get_settings().signing_key() == key
    get_settings.cache_clear()
    assert get_settings().signing_key() == key  # made once: the same key on the next call
    link = letters(engine)[-1].payload["reply_link"]
    assert read_ministry_token(link.rsplit("/", 1)[1], today=ESCALATION_DAY, key=key).ministry == "interior"
