"""The admin's alert reads like every other message: a subject, a clean plain-text part and an
HTML page, in the admin's language, through a real SMTP server."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from followup.config.notifications import Delivery
from followup.flows.alerts import alert_message
from followup.notifications.dispatch import dispatch
from followup.notifications.outbox import queue
from tests.receivers import JsonReceiver, SmtpReceiver

QUICK = Delivery(max_attempts=3, backoff_minutes=[0], concurrency=2)
RUN_ID = "0b6f3c8e-1d2a-4e5f-9a7b-3c4d5e6f7a8b"
FAILURE = "/srv/followup/inbox/visit-2026-03.csv: no such file"


@pytest.mark.parametrize(("language", "words"), [
    ("ru", ["ЗАПУСК ЗАВЕРШИЛСЯ ОШИБКОЙ", "Поток: ingest", "Сообщение: " + FAILURE]),
    ("kk", ["ІСКЕ ҚОСУ ҚАТЕМЕН АЯҚТАЛДЫ", "Ағын: ingest", "Хабар: " + FAILURE]),
    ("en", ["A RUN FAILED", "Flow: ingest", "Message: " + FAILURE]),
])
def test_the_admin_alert_arrives_with_a_clean_text_part(engine, tmp_path, language, words):
    """By e-mail (HTML and its text part) and by a text channel (a webhook: the text template)."""
    row = alert_message(RUN_ID, "ingest visit-2026-03.csv", "ingest", FAILURE, language=language,
                        ui_url="https://prefect.ombudsman.kz")
    with Session(engine) as session, session.begin():
        queue(session, [row])
    with SmtpReceiver() as smtp, JsonReceiver() as hook:
        routes = tmp_path / "apprise.yaml"
        routes.write_text(f"version: 1\nurls:\n  - {smtp.url('admin@ombudsman.kz')}:\n      tag: admin\n"
                          f"  - {hook.url('admin')}:\n      tag: admin\n", encoding="utf-8")
        assert dispatch(engine=engine, apprise_file=routes, delivery=QUICK).sent == 1
        [mail] = smtp.to("admin@ombudsman.kz")
        [post] = hook.at("admin")
    link = f"https://prefect.ombudsman.kz/runs/flow-run/{RUN_ID}"
    assert "ingest visit-2026-03.csv" in mail.subject and post.body["title"] == mail.subject
    text = post.body["message"]
    for word in [*words, link]:
        assert word in text, text
    for part in (text, mail.text):
        assert "ingest visit-2026-03.csv" in part and FAILURE in part and link in part
        for markup in ("&nbsp;", "<br", "&lt;", "&amp;", "<td", "{{"):
            assert markup not in part, (markup, part)
    assert f'<a href="{link}">' in mail.html and "ingest visit-2026-03.csv" in mail.html
