"""The ministries' reply portal, as a ministry clerk, its validating official and an intruder use it.

Every test runs on SQLite and on PostgreSQL (the `registry` fixture: NPM-1 and NPM-2 to the Ministry
of Internal Affairs, NPM-3 to Health, issued 05.01.2026, due 10.03.2026). The app's "today" is
20.03.2026. Prefect events are recorded, never sent.
"""

from __future__ import annotations

import io
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import Engine, func, select, update
from starlette.testclient import TestClient

from followup.config.policy import load_policy
from followup.config.settings import MissingSecretKey, get_settings
from followup.interfaces.web import events
from followup.interfaces.web.app import create_app
from followup.models.db import session_scope
from followup.models.followup import Notification
from followup.models.links import BadLink, confirm_token, ministry_token, revoke
from followup.models.registry import Ministry, Recommendation, table_of
from followup.models.replies import (
    ClaimInput,
    Evidence,
    ForeignItems,
    Reply,
    ReplyClaim,
    ReplyNotDraft,
    ReplyRejected,
    confirm_reply,
    create_draft_reply,
)
from followup.models.types import utcnow
from followup.spreadsheets.ingest import import_recommendations
from tests.conftest import write_csv

TODAY = date(2026, 3, 20)
UNTIL = date(2026, 6, 30)
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
#: what no 403 page may show: the items' numbers and texts, the ministries' names
SECRETS = ("NPM-1", "NPM-2", "NPM-3", "Обеспечить", "Министерство внутренних дел", "Министерство здравоохранения")


def link(ministry: str = "interior", generation: int = 1, until: date = UNTIL, key: str | None = None) -> str:
    return "/r/" + ministry_token(ministry, generation, until, key=key)


def portal_app(engine: Engine, **options: Any) -> Any:
    return create_app(engine=engine, today=lambda: TODAY, **options)


@pytest.fixture
def portal(registry: Engine, emitted: list[dict[str, Any]]) -> TestClient:  # noqa: ARG001 - events recorded, never sent
    return TestClient(portal_app(registry))


def opened(client: TestClient, ministry: str = "interior") -> TestClient:
    response = client.get(link(ministry))
    assert response.status_code == 200, response.text
    return client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def ids_of(engine: Engine, *external_ids: str) -> list[int]:
    r = table_of(Recommendation)
    with engine.connect() as connection:
        found = dict(connection.execute(select(r.c.external_id, r.c.id).where(r.c.external_id.in_(external_ids))).all())
    return [found[e] for e in external_ids]


def count(engine: Engine, model: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table_of(model))).scalar_one())


def set_approval(engine: Engine, ministry: str, approval: str) -> None:
    m = table_of(Ministry)
    with engine.begin() as connection:
        connection.execute(update(m).where(m.c.code == ministry).values(approval=approval))


def replies(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(select(table_of(Reply)).order_by(table_of(Reply).c.id)).all())


def answer(client: TestClient, ids: list[int], *, files: list[tuple[str, tuple[str, bytes, str]]] | None = None,
           csrf: str | None = "page", **fields: Any) -> httpx.Response:
    """Open the reply form for `ids` and send it with `fields` (defaults: in progress, a date, an author)."""
    form = client.get("/m/reply", params={"ids": ids})
    assert form.status_code == 200, form.text
    data: dict[str, Any] = {"ids": [str(i) for i in ids], "responded_on": "15.03.2026", "author_name": "Сейткали А. Б.",
                            "author_position": "начальник управления", "author_email": "a.seitkali@mvd.gov.kz",
                            "common_status": "in_progress", "common_measures": "Работы начаты, смета утверждена"}
    data.update(fields)
    if csrf == "page":
        data["csrf"] = csrf_of(form.text)
    elif csrf is not None:
        data["csrf"] = csrf
    return client.post("/m/reply", data=data, files=files or [("evidence", ("", b"", "application/octet-stream"))],
                       follow_redirects=False)


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and ".incoming" not in p.parts]


# --- getting in --------------------------------------------------------------------------------


def test_a_ministry_link_opens_its_own_page_and_the_address_keeps_no_token(portal: TestClient):
    exchanged = portal.get(link(), follow_redirects=False)
    assert exchanged.status_code == 303 and exchanged.headers["location"] == "/m/"
    cookie = exchanged.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie  # the public URL is http here
    page = portal.get("/m/")
    assert page.status_code == 200
    assert "NPM-1" in page.text and "NPM-2" in page.text and "Министерство внутренних дел" in page.text
    assert "NPM-3" not in page.text and "питьевой водой" not in page.text  # Health's
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert (page.headers["x-content-type-options"], page.headers["x-frame-options"], page.headers["referrer-policy"]) == (
        "nosniff", "DENY", "no-referrer")
    assert page.headers["cache-control"] == "no-store"


def test_the_session_cookie_is_secure_behind_https(registry: Engine, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FOLLOWUP_PUBLIC_URL", "https://npm.ombudsman.kz")
    get_settings.cache_clear()
    client = TestClient(portal_app(registry), base_url="https://testserver")
    assert "secure" in client.get(link(), follow_redirects=False).headers["set-cookie"].lower()


@pytest.mark.parametrize("case", ["forged", "other key", "expired", "revoked", "unknown body", "confirm token"])
def test_a_bad_link_shows_a_refusal_and_no_data(portal: TestClient, registry: Engine, case: str):
    good = link()
    bad = {
        "forged": good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB"),
        "other key": link(key="someone-elses-key"),
        "expired": link(until=date(2026, 3, 19)),
        "revoked": good,
        "unknown body": link("finance"),
        "confirm token": "/r/" + confirm_token(1, "interior", 1, UNTIL),
    }[case]
    if case == "revoked":
        with session_scope(registry) as session:
            revoke(session, "interior")
    response = portal.get(bad, follow_redirects=False)
    assert response.status_code == 403
    assert "недействительна" in response.text and "+7 (7172) 74-05-36" in response.text  # what happened, whom to call
    assert not any(secret in response.text for secret in SECRETS)
    assert bad.split("/")[-1] not in response.text  # the token is never echoed
    assert portal.get("/m/").status_code == 403


def test_another_ministrys_link_shows_only_that_ministrys_items(portal: TestClient, registry: Engine):
    page = opened(portal, "health").get("/m/")
    assert "NPM-3" in page.text and "NPM-1" not in page.text and "Обеспечить камеры" not in page.text
    (interior_item,) = ids_of(registry, "NPM-1")
    assert portal.get(f"/m/items/{interior_item}").status_code == 404
    assert portal.get("/m/reply", params={"ids": interior_item}).status_code == 403


def test_revoking_the_links_ends_the_open_sessions(portal: TestClient, registry: Engine):
    opened(portal)
    with session_scope(registry) as session:
        revoke(session, "interior")
    refused = portal.get("/m/")
    assert refused.status_code == 403 and "NPM-1" not in refused.text
    assert portal.get("/m/").status_code == 403  # the session was dropped, not only refused once


def test_a_session_ends_with_its_links_last_day(registry: Engine, emitted: list[dict[str, Any]]):  # noqa: ARG001
    days = [date(2026, 6, 30)]
    client = TestClient(create_app(engine=registry, today=lambda: days[0]))
    assert client.get(link(until=date(2026, 6, 30))).status_code == 200
    days[0] = date(2026, 7, 1)
    assert client.get("/m/").status_code == 403


def test_too_many_bad_links_from_one_address_are_refused_for_a_while(portal: TestClient):
    for attempt in range(30):
        assert portal.get(f"/r/guess-{attempt}").status_code == 403
    blocked = portal.get(link(), follow_redirects=False)
    assert blocked.status_code == 429 and blocked.headers["retry-after"] == "600"
    assert "NPM-1" not in blocked.text


def test_the_app_refuses_to_start_without_a_signing_key(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("FOLLOWUP_SECRET_KEY")
    monkeypatch.setenv("FOLLOWUP_DATABASE_URL", "postgresql+psycopg://followup@db.example:5432/followup")
    get_settings.cache_clear()
    with pytest.raises(MissingSecretKey, match="FOLLOWUP_SECRET_KEY"):
        create_app()


def test_followup_web_says_what_is_missing_before_touching_anything(monkeypatch: pytest.MonkeyPatch):
    from tests.test_import import run_cli

    monkeypatch.delenv("FOLLOWUP_SECRET_KEY")
    monkeypatch.setenv("FOLLOWUP_DATABASE_URL", "postgresql+psycopg://followup@db.example:5432/followup")
    get_settings.cache_clear()
    result = run_cli("web", "--port", "8000")
    assert result.exit_code == 2 and "FOLLOWUP_SECRET_KEY is not set" in result.stderr


def test_the_language_is_the_ministrys_until_the_clerk_picks_another(portal: TestClient):
    assert "Рекомендации, ожидающие ответа" in opened(portal).get("/m/").text
    switched = portal.get("/lang/en", params={"to": "/m/"}, follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == "/m/"
    assert "Recommendations awaiting your answer" in portal.get("/m/").text
    assert "Жауап күтіп тұрған ұсынымдар" in portal.get("/lang/kk", params={"to": "/m/"}).text
    # never a redirect away from the portal
    for target in ("https://evil.example/", "//evil.example", "/r/abc", "/m/../../x"):
        assert portal.get("/lang/ru", params={"to": target}, follow_redirects=False).headers["location"] == "/"


# --- the list ------------------------------------------------------------------------------------


def test_recommendation_texts_are_shown_as_text(registry: Engine, tmp_path: Path, emitted: list[dict[str, Any]]):  # noqa: ARG001
    import_recommendations(write_csv(
        tmp_path / "hostile.csv", "external_id,text,issued_on,due_on,ministry,facility",
        'NPM-9,"Убрать <script>alert(""x"")</script> & <b>решётки</b> с окон ""камер""",05.01.2026,10.03.2026,МВД,ИВС г. Кокшетау',
    ), engine=registry, actor="clerk")
    client = opened(TestClient(portal_app(registry)))
    for page in (client.get("/m/").text, client.get(f"/m/items/{ids_of(registry, 'NPM-9')[0]}").text):
        assert "<script>alert" not in page and "<b>решётки" not in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;решётки&lt;/b&gt;" in page
    # and in the spreadsheet, a text that looks like a formula stays text
    import_recommendations(write_csv(
        tmp_path / "formula.csv", "external_id,text,issued_on,due_on,ministry",
        'NPM-10,"=HYPERLINK(""http://evil.example"",""Открыть"")",05.01.2026,10.03.2026,МВД'), engine=registry, actor="clerk")
    sheet = load_workbook(io.BytesIO(client.get("/m/items.xlsx").content)).worksheets[0]
    (cell,) = [row[5] for row in sheet.iter_rows(min_row=2) if row[0].value == "NPM-10"]
    assert (cell.value, cell.data_type) == ('=HYPERLINK("http://evil.example","Открыть")', "s")


def test_items_are_grouped_by_the_letter_they_were_in_with_the_offices_word_on_them(
        portal: TestClient, registry: Engine, tmp_path: Path):
    from followup.models.followup import IndividualizedItem, IndividualizedRecommendation, Reminder

    import_recommendations(write_csv(tmp_path / "more.csv", "external_id,text,issued_on,due_on,ministry,facility",
                                     "NPM-4,Отремонтировать прогулочный двор,05.01.2026,10.03.2026,МВД,ИВС г. Кокшетау"),
                           engine=registry, actor="clerk")
    first, second, fourth = ids_of(registry, "NPM-1", "NPM-2", "NPM-4")
    r = table_of(Recommendation)
    with registry.begin() as connection:
        letter = connection.execute(table_of(IndividualizedRecommendation).insert().values(
            reference="IR-20260315-INTERIOR", ministry_code="interior", issued_on=date(2026, 3, 15),
            response_due_on=date(2026, 4, 14), status="issued", created_at=utcnow())).inserted_primary_key[0]
        connection.execute(table_of(IndividualizedItem).insert().values(individualized_id=letter, recommendation_id=first))
        connection.execute(table_of(Reminder).insert().values(recommendation_id=second, due_on=date(2026, 3, 10),
                                                              offset_days=14, sent_on=date(2026, 2, 24)))
        connection.execute(update(r).where(r.c.id == fourth).values(awaiting_review=True))
        reply = connection.execute(table_of(Reply).insert().values(
            ministry_code="interior", channel="portal", responded_on=date(2026, 3, 1), author_name="X", state="recorded",
            generation=1, created_at=utcnow())).inserted_primary_key[0]
        connection.execute(table_of(ReplyClaim).insert().values(
            reply_id=reply, recommendation_id=first, claimed_status="implemented", measures="Сделано", outcome="returned",
            reviewed_by="Ахметова А. С.", reviewed_at=utcnow(), review_comment="Приложите акт приёмки <работ>"))
    page = opened(portal).get("/m/").text.split("<table", 1)[1]  # the table, not the letter filter's choices
    ir_group = page.index("Индивидуальная рекомендация № IR-20260315-INTERIOR от 15.03.2026")
    reminder_group = page.index("Напоминание № REM-20260224-INTERIOR от 24.02.2026")
    unsent_group = page.index("Ещё не включены в письма")
    assert ir_group < page.index(">NPM-1<") < reminder_group < page.index(">NPM-2<") < unsent_group < page.index(">NPM-4<")
    assert "Возвращено аппаратом:</strong> Приложите акт приёмки &lt;работ&gt;" in page
    assert "на рассмотрении аппарата" in page and f'value="{fourth}"' not in page  # under review: not answerable
    only_reminder = portal.get("/m/", params={"letter": "reminder:2026-02-24"}).text
    assert "NPM-2" in only_reminder and "NPM-1" not in only_reminder and "NPM-4" not in only_reminder
    form = portal.get("/m/reply", params={"letter": "ir:IR-20260315-INTERIOR"}).text
    assert f'name="ids" value="{first}"' in form and 'value="IR-20260315-INTERIOR"' in form
    assert 'value="REM-20260224-INTERIOR"' in portal.get("/m/reply", params={"ids": second}).text
    under_review = portal.get("/m/reply", params={"ids": fourth})
    assert "Отметьте рекомендации" in under_review.text  # back to the list: nothing here can be answered now


@pytest.fixture
def big_registry(engine: Engine, tmp_path: Path) -> Engine:
    """3,000 open items to the Ministry of Internal Affairs in 30 facilities of 6 regions, and 10 to Health."""
    rows = [
        f"MVD-{n:04d},Рекомендация № {n} по условиям содержания,05.01.2026,{10 + n % 18:02d}.03.2026,interior,"
        f"Учреждение {n % 30:02d},Регион {n % 30 % 6}"
        for n in range(3000)
    ] + [f"MZ-{n},Рекомендация Минздраву {n},05.01.2026,10.03.2026,health,Больница {n},Регион 0" for n in range(10)]
    import_recommendations(write_csv(tmp_path / "big.csv", "external_id,text,issued_on,due_on,ministry,facility,region", *rows),
                           engine=engine, actor="clerk")
    return engine


def test_a_ministry_with_3000_open_items_pages_and_filters_them(big_registry: Engine, emitted: list[dict[str, Any]]):  # noqa: ARG001
    client = opened(TestClient(portal_app(big_registry)))
    first = client.get("/m/")
    assert "Открытых рекомендаций: 3000" in first.text
    assert first.text.count('name="ids"') == 50 and "Страница 1 из 60" in first.text
    assert "MZ-" not in first.text
    last = client.get("/m/", params={"page": 60})
    assert last.text.count('name="ids"') == 50 and "Показаны 2951–3000 из 3000" in last.text
    shown = set(re.findall(r">(MVD-\d{4})<", first.text)) | set(re.findall(r">(MVD-\d{4})<", last.text))
    assert len(shown) == 100  # two pages, no item twice

    facility = re.search(r'<option value="(\d+)">Учреждение 07</option>', first.text)
    assert facility
    by_facility = client.get("/m/", params={"facility": facility.group(1)})
    assert "Открытых рекомендаций: 100" in by_facility.text and "Страница 1 из 2" in by_facility.text
    assert set(re.findall(r"Учреждение \d\d", by_facility.text.split("<table", 1)[1])) == {"Учреждение 07"}
    assert f"facility={facility.group(1)}" in by_facility.text  # the next page keeps the filter

    by_region = client.get("/m/", params={"region": "Регион 3"})
    assert "Открытых рекомендаций: 500" in by_region.text
    both = client.get("/m/", params={"region": "Регион 3", "due_before": "12.03.2026"})
    expected = sum(1 for n in range(3000) if n % 30 % 6 == 3 and 10 + n % 18 < 12)
    assert f"Открытых рекомендаций: {expected}" in both.text
    assert "Открытых рекомендаций: 0" in client.get("/m/", params={"overdue": "1"}).text  # none overdue yet

    sheet = load_workbook(io.BytesIO(client.get("/m/items.xlsx", params={"region": "Регион 3"}).content), read_only=True)
    assert sum(1 for _ in sheet.worksheets[0].iter_rows(min_row=2)) == 500


# --- answering ------------------------------------------------------------------------------------


def test_a_reply_is_saved_as_a_draft_and_sent_to_the_validating_official(portal: TestClient, registry: Engine,
                                                                        emitted: list[dict[str, Any]]):
    first, second = ids_of(registry, "NPM-1", "NPM-2")
    sent = answer(opened(portal), [first, second], **{f"status_{second}": "implemented",
                                                      f"measures_{second}": "Обучение проведено 12.03.2026"},
                  files=[("evidence", ("акт обучения.pdf", PDF, "application/pdf")),
                         ("evidence", ("фото.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png"))])
    assert sent.status_code == 200 and "REPLY-1" in sent.text and "подтверждение" in sent.text
    (reply,) = replies(registry)
    assert (reply.state, reply.ministry_code, reply.generation, reply.author_name, reply.responded_on) == (
        "draft", "interior", 1, "Сейткали А. Б.", date(2026, 3, 15))
    with registry.connect() as connection:
        claims = connection.execute(select(table_of(ReplyClaim).c.recommendation_id, table_of(ReplyClaim).c.claimed_status,
                                           table_of(ReplyClaim).c.measures).order_by(table_of(ReplyClaim).c.id)).all()
        files = connection.execute(select(table_of(Evidence).c.filename, table_of(Evidence).c.content_type)).all()
        (message,) = connection.execute(select(table_of(Notification))).all()
    assert [tuple(c) for c in claims] == [(first, "in_progress", "Работы начаты, смета утверждена"),
                                         (second, "implemented", "Обучение проведено 12.03.2026")]
    assert sorted(files) == [("акт обучения.pdf", "application/pdf"), ("фото.png", "image/png")]
    assert len(stored_files(get_settings().evidence_dir)) == 2
    assert (message.recipient, message.kind, message.dedupe_key) == ("ministry:interior:approver", "reply_confirm", "reply_confirm:1")
    assert "/c/" in message.body_text and "NPM-2" in message.body_text
    assert [e["event"] for e in emitted] == ["followup.notification.queued"]
    assert emitted[0]["resource"] == {"prefect.resource.id": "followup.outbox"}
    # the clerk cannot confirm it in the official's place
    page = portal.get("/m/replies/1")
    assert "ждёт подтверждения" in page.text
    assert portal.post("/m/replies/1/confirm", data={"csrf": csrf_of(page.text)}).status_code == 403


def test_the_form_explains_every_problem_and_keeps_what_was_typed(portal: TestClient, registry: Engine):
    first, second = ids_of(registry, "NPM-1", "NPM-2")
    refused = answer(opened(portal), [first, second], common_status="", common_measures="",
                     **{f"status_{first}": "rejected", f"measures_{first}": "",
                        f"status_{second}": "implemented", f"measures_{second}": "Сделано <быстро>"},
                     responded_on="25.03.2026", author_name="", author_email="не почта")
    assert refused.status_code == 400
    text = refused.text
    assert "Исправьте ошибки" in text
    assert "для отклонения укажите причины" in text
    assert "дата 25.03.2026 ещё не наступила" in text
    assert "обязательное поле" in text and "это не адрес электронной почты" in text
    assert "Сделано &lt;быстро&gt;" in text and 'value="не почта"' in text  # kept, escaped
    assert '<option value="rejected" selected>' in text
    assert replies(registry) == []


def test_a_date_before_the_recommendation_was_issued_is_refused(portal: TestClient, registry: Engine):
    refused = answer(opened(portal), ids_of(registry, "NPM-1"), responded_on="2026-01-04")
    assert refused.status_code == 400 and "NPM-1: дата раньше направления рекомендации (05.01.2026)" in refused.text


def test_another_ministrys_item_slipped_into_the_form_writes_nothing(portal: TestClient, registry: Engine):
    own, foreign = ids_of(registry, "NPM-1", "NPM-3")
    form = opened(portal).get("/m/reply", params={"ids": own})
    response = portal.post("/m/reply", data={"csrf": csrf_of(form.text), "ids": [str(own), str(foreign)],
                                             "responded_on": "15.03.2026", "author_name": "X", "common_status": "implemented"},
                           files=[("evidence", ("a.pdf", PDF, "application/pdf"))])
    assert response.status_code == 403 and "питьевой" not in response.text
    assert replies(registry) == [] and count(registry, Evidence) == 0


def test_a_form_without_its_csrf_token_is_refused(portal: TestClient, registry: Engine):
    ids = ids_of(registry, "NPM-1")
    assert answer(opened(portal), ids, csrf=None).status_code == 403
    assert answer(portal, ids, csrf="forged-token").status_code == 403
    assert portal.post("/logout", data={}).status_code == 403
    assert replies(registry) == []


def test_links_revoked_between_opening_the_form_and_sending_it_write_nothing(portal: TestClient, registry: Engine):
    ids = ids_of(registry, "NPM-1")
    form = opened(portal).get("/m/reply", params={"ids": ids})
    with session_scope(registry) as session:
        revoke(session, "interior")
    response = portal.post("/m/reply", data={"csrf": csrf_of(form.text), "ids": [str(i) for i in ids],
                                             "responded_on": "15.03.2026", "author_name": "X", "common_status": "in_progress"},
                           files=[("evidence", ("a.pdf", PDF, "application/pdf"))])
    assert response.status_code == 403 and "NPM-1" not in response.text
    assert replies(registry) == [] and count(registry, Notification) == 0


def test_an_html_page_named_pdf_is_refused(portal: TestClient, registry: Engine):
    refused = answer(opened(portal), ids_of(registry, "NPM-1"),
                     files=[("evidence", ("scan.pdf", b"<!doctype html><script>alert(1)</script>", "application/pdf"))])
    assert refused.status_code == 400
    assert "файл «scan.pdf» не PDF" in refused.text and "Работы начаты, смета утверждена" in refused.text
    assert replies(registry) == [] and stored_files(get_settings().evidence_dir) == []


def test_word_and_excel_files_are_told_by_their_parts_and_zip_bombs_are_refused(portal: TestClient, registry: Engine):
    def archive(members: dict[str, int]) -> bytes:
        import zipfile

        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            for name, size in members.items():
                z.writestr(name, b"0" * size)
        return buffer.getvalue()

    docx = archive({"[Content_Types].xml": 10, "word/document.xml": 100})
    renamed_zip = archive({"notes.txt": 10})
    bomb = archive({"[Content_Types].xml": 10, "xl/workbook.xml": 10, **{f"xl/worksheets/s{i}.xml": 1 for i in range(6000)}})
    refused = answer(opened(portal), ids_of(registry, "NPM-1"), files=[
        ("evidence", ("decision.docx", docx, "application/octet-stream")),
        ("evidence", ("report.docx", renamed_zip, "application/vnd.openxmlformats-officedocument.wordprocessingml.document")),
        ("evidence", ("book.xlsx", bomb, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")),
    ])
    assert refused.status_code == 400
    assert "«report.docx» не PDF" in refused.text and "«book.xlsx» не PDF" in refused.text
    assert "«decision.docx» не PDF" not in refused.text
    assert "decision.docx" in refused.text  # kept for the corrected form: no need to choose it again
    kept = re.search(r'name="kept" value="([^"]+)"', refused.text)
    assert kept
    sent = answer(portal, ids_of(registry, "NPM-1"), kept=kept.group(1))
    assert sent.status_code == 200
    with registry.connect() as connection:
        assert connection.execute(select(table_of(Evidence).c.filename, table_of(Evidence).c.content_type)).all() == [
            ("decision.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document")]


def test_a_file_over_the_policys_size_is_cut_off_while_it_streams(registry: Engine, emitted: list[dict[str, Any]]):  # noqa: ARG001
    policy = load_policy()
    small = policy.model_copy(update={"replies": policy.replies.model_copy(update={"evidence_max_mb": 0.01})})
    client = opened(TestClient(portal_app(registry, policy=small)))
    refused = answer(client, ids_of(registry, "NPM-1"), files=[("evidence", ("big.pdf", PDF + b"0" * 50_000, "application/pdf"))])
    assert refused.status_code == 400 and "файл «big.pdf» больше 0.01 МБ" in refused.text
    assert replies(registry) == [] and stored_files(get_settings().evidence_dir) == []
    assert list((get_settings().evidence_dir / ".incoming").iterdir()) == []  # the cut-off part is gone too
    too_long = client.post("/m/reply", content=b"x" * 10, headers={
        "content-type": "multipart/form-data; boundary=xyz", "content-length": str(10**9)})
    assert too_long.status_code == 413


def test_evidence_is_served_as_an_attachment_only_to_its_ministry(portal: TestClient, registry: Engine):
    answer(opened(portal), ids_of(registry, "NPM-1"), files=[("evidence", ("Акт №5 <проверки>.pdf", PDF, "text/html"))])
    with registry.connect() as connection:
        (evidence_id,) = connection.execute(select(table_of(Evidence).c.id)).scalars().all()
    download = portal.get(f"/m/evidence/{evidence_id}")
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"].startswith("attachment;")
    assert "filename*=UTF-8''" in download.headers["content-disposition"]
    assert download.headers["x-content-type-options"] == "nosniff"
    other = opened(TestClient(portal.app), "health")
    assert other.get(f"/m/evidence/{evidence_id}").status_code == 404
    assert TestClient(portal.app).get(f"/m/evidence/{evidence_id}").status_code == 403  # no session at all


# --- confirming -----------------------------------------------------------------------------------


def test_without_a_validating_official_the_author_confirms_the_reply(portal: TestClient, registry: Engine,
                                                                    emitted: list[dict[str, Any]]):
    set_approval(registry, "interior", "none")
    first, second = ids_of(registry, "NPM-1", "NPM-2")
    saved = answer(opened(portal), [first, second])
    assert saved.status_code == 303 and saved.headers["location"] == "/m/replies/1"
    review = portal.get("/m/replies/1")
    assert "Проверьте и подтвердите ответ" in review.text and "Работы начаты" in review.text
    assert count(registry, Notification) == 0
    confirmed = portal.post("/m/replies/1/confirm", data={"csrf": csrf_of(review.text)}, follow_redirects=False)
    assert confirmed.status_code == 303
    (reply,) = replies(registry)
    assert (reply.state, reply.confirmed_by_name, reply.confirmed_by_email) == ("confirmed", "Сейткали А. Б.", "a.seitkali@mvd.gov.kz")
    assert reply.confirmed_at is not None
    (event,) = emitted
    assert event["event"] == "followup.response.submitted"
    assert event["resource"] == {"prefect.resource.id": "followup.response.1", "prefect.resource.name": "REPLY-1"}
    assert event["related"] == [{"prefect.resource.id": "followup.ministry.interior", "prefect.resource.role": "ministry"}]
    assert event["payload"] == {"reply_id": 1, "ministry": "interior", "items": [first, second]}
    again = portal.post("/m/replies/1/confirm", data={"csrf": csrf_of(review.text)})
    assert "уже подтверждён" in again.text and len(emitted) == 1


def test_the_validating_official_confirms_with_the_link_from_the_message(portal: TestClient, registry: Engine,
                                                                        emitted: list[dict[str, Any]]):
    answer(opened(portal), ids_of(registry, "NPM-1"))
    with registry.connect() as connection:
        body = connection.execute(select(table_of(Notification).c.body_text)).scalar_one()
    url = re.search(r"https?://\S+(/c/\S+)", body)
    assert url
    official = TestClient(portal.app)  # another person, another browser
    exchanged = official.get(url.group(1), follow_redirects=False)
    assert exchanged.status_code == 303 and exchanged.headers["location"] == "/c/"
    page = official.get("/c/")
    assert "Подтверждение ответа REPLY-1" in page.text and "Сейткали А. Б." in page.text and "NPM-1" in page.text
    assert official.get("/m/").status_code == 403  # the official sees this reply, not the ministry's page
    missing = official.post("/c/", data={"csrf": csrf_of(page.text), "name": "", "position": "", "email": ""})
    assert missing.status_code == 400 and "обязательное поле" in missing.text
    done = official.post("/c/", data={"csrf": csrf_of(page.text), "name": "Жумабаев Е. К.", "position": "вице-министр",
                                      "email": "vice@mvd.gov.kz"})
    assert done.status_code == 200 and "Ответ подтверждён" in done.text
    (reply,) = replies(registry)
    assert (reply.state, reply.author_name, reply.confirmed_by_name, reply.confirmed_by_position) == (
        "confirmed", "Сейткали А. Б.", "Жумабаев Е. К.", "вице-министр")
    assert [e["event"] for e in emitted] == ["followup.notification.queued", "followup.response.submitted"]
    assert official.get(url.group(1), follow_redirects=False).status_code == 403  # used: the reply is no draft any more


def test_a_confirmation_link_stops_working_when_the_links_are_revoked(portal: TestClient, registry: Engine):
    answer(opened(portal), ids_of(registry, "NPM-1"))
    official = TestClient(portal.app)
    assert official.get("/c/" + confirm_token(1, "interior", 1, UNTIL)).status_code == 200
    page = official.get("/c/")
    with session_scope(registry) as session:
        revoke(session, "interior")
    refused = official.post("/c/", data={"csrf": csrf_of(page.text), "name": "Жумабаев Е. К."})
    assert refused.status_code == 403 and replies(registry)[0].state == "draft"
    assert TestClient(portal.app).get("/c/" + confirm_token(1, "interior", 2, UNTIL)).status_code == 403  # typed under generation 1


def test_a_prefect_server_that_is_down_never_loses_a_confirmed_reply(portal: TestClient, registry: Engine,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    caplog: pytest.LogCaptureFixture):
    def down(**_: Any) -> None:
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    monkeypatch.setattr(events, "emit_event", down)
    set_approval(registry, "interior", "none")
    answer(opened(portal), ids_of(registry, "NPM-1"))
    review = portal.get("/m/replies/1")
    with caplog.at_level(logging.WARNING, logger="followup.web"):
        confirmed = portal.post("/m/replies/1/confirm", data={"csrf": csrf_of(review.text)})
    assert confirmed.status_code == 200 and "подтверждён и направлен" in confirmed.text
    assert replies(registry)[0].state == "confirmed"
    assert "followup.response.submitted could not be emitted" in caplog.text


# --- the spreadsheet round trip --------------------------------------------------------------------


def filled_sheet(content: bytes, answers: dict[str, tuple[str, str, str, str]]) -> bytes:
    """The downloaded workbook with status, responded_on, note and evidence filled in for some rows."""
    book = load_workbook(io.BytesIO(content))
    sheet = book.worksheets[0]
    header = [c.value for c in sheet[1]]
    for row in sheet.iter_rows(min_row=2):
        external_id = row[header.index("external_id")].value
        if external_id in answers:
            for column, value in zip(("status", "responded_on", "note", "evidence"), answers[external_id], strict=True):
                row[header.index(column)].value = value
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(client: TestClient, content: bytes, name: str = "ответ.xlsx", **fields: str) -> httpx.Response:
    form = client.get("/m/upload")
    data = {"csrf": csrf_of(form.text), "author_name": "Сейткали А. Б.", "author_position": "начальник управления",
            "responded_on": "", **fields}
    return client.post("/m/upload", data=data, files=[("table", (name, content, "application/octet-stream"))],
                       follow_redirects=False)


def test_the_reply_spreadsheet_round_trips(portal: TestClient, registry: Engine):
    download = opened(portal).get("/m/items.xlsx")
    assert download.status_code == 200 and download.headers["content-disposition"].startswith("attachment;")
    sheet = load_workbook(io.BytesIO(download.content), read_only=True).worksheets[0]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0][:5] == ["external_id", "status", "responded_on", "note", "evidence"]
    assert rows[0][5:] == ["text", "facility", "region", "due_on", "current_status", "letter"]
    assert sorted(r[0] for r in rows[1:]) == ["NPM-1", "NPM-2"] and all(r[1] is None for r in rows[1:])
    filled = filled_sheet(download.content, {
        "NPM-1": ("implemented", "16.03.2026", "Окна заменены", "акт № 12 от 16.03.2026"),
        "NPM-2": ("in_progress", "16.03.2026", "Обучение запланировано на апрель", ""),
    })
    sent = upload(portal, filled)
    assert sent.status_code == 200, sent.text
    (reply,) = replies(registry)
    assert (reply.state, reply.responded_on, reply.author_name) == ("draft", date(2026, 3, 16), "Сейткали А. Б.")
    with registry.connect() as connection:
        claims = connection.execute(select(table_of(ReplyClaim).c.recommendation_id, table_of(ReplyClaim).c.claimed_status,
                                           table_of(ReplyClaim).c.measures).order_by(table_of(ReplyClaim).c.recommendation_id)).all()
    first, second = ids_of(registry, "NPM-1", "NPM-2")
    assert [tuple(c) for c in claims] == [
        (first, "implemented", "Окна заменены\nПодтверждение: акт № 12 от 16.03.2026"),
        (second, "in_progress", "Обучение запланировано на апрель"),
    ]


def test_an_uploaded_spreadsheet_with_bad_rows_names_each_row_and_writes_nothing(portal: TestClient, registry: Engine):
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in (["external_id", "status", "responded_on", "note", "evidence"], ["NPM-1", "done", "16.03.2026", "", ""],
                ["NPM-3", "implemented", "16.03.2026", "чужая", ""], ["NPM-2", "rejected", "31.02.2026", "", ""],
                ["NPM-9", "", "", "без статуса: не читается", ""]):
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    refused = upload(opened(portal), out.getvalue())
    assert refused.status_code == 400
    assert "Строка 2, столбец status: недопустимый статус «done»" in refused.text
    assert "Строка 3, столбец external_id: нет открытой рекомендации вашего ведомства с номером «NPM-3»" in refused.text
    assert "Строка 4, столбец responded_on: «31.02.2026» — не дата" in refused.text
    assert "NPM-9" not in refused.text and "питьевой" not in refused.text
    assert replies(registry) == []
    not_a_table = upload(portal, b"<html>not a table</html>\x00", name="ответ.xlsx")
    assert not_a_table.status_code == 400 and "не таблица Excel" in not_a_table.text


# --- through a real server: the access log ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: Any, **config: Any) -> Iterator[str]:
    """The app on uvicorn in a thread (as `followup web` runs it), on a free port; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the web server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()


def test_tokens_never_reach_the_access_log(registry: Engine, caplog: pytest.LogCaptureFixture,
                                          emitted: list[dict[str, Any]]):  # noqa: ARG001
    app = portal_app(registry)
    token = link().removeprefix("/r/")
    official = confirm_token(7, "interior", 1, UNTIL)
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    with serving(app, access_log=True) as base, httpx.Client(base_url=base, follow_redirects=True) as client:
        assert client.get(f"/r/{token}").status_code == 200  # followed to /m/
        assert client.get(f"/c/{official}?x=1").status_code == 403
        assert client.get("/r/forged-token").status_code == 403
    access = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert any("/r/*** HTTP/1.1" in line for line in access) and any("/c/***" in line for line in access)
    assert any('"GET /m/ HTTP/1.1" 200' in line for line in access)
    assert token not in caplog.text and official not in caplog.text and "forged-token" not in caplog.text


# --- the data functions, as the CLI and the flows call them ---------------------------------------


def test_the_data_functions_check_what_the_pages_check(registry: Engine):
    own, foreign = ids_of(registry, "NPM-1", "NPM-3")
    with pytest.raises(ForeignItems), session_scope(registry) as session:
        create_draft_reply(session=session, ministry="interior", generation=1, today=TODAY, responded_on=TODAY,
                           author_name="X", claims=[ClaimInput(own, "in_progress"), ClaimInput(foreign, "in_progress")])
    with pytest.raises(ReplyRejected) as rejected, session_scope(registry) as session:
        create_draft_reply(session=session, ministry="interior", generation=1, today=TODAY, responded_on=TODAY,
                           author_name=" ", claims=[ClaimInput(own, "rejected"), ClaimInput(own, "done")])
    assert [str(p) for p in rejected.value.problems] == [
        "author_name: is required", "NPM-1: measures: a rejection needs its reasons in the measures",
        "NPM-1: status: the recommendation is named twice in one reply"]
    with pytest.raises(BadLink), session_scope(registry) as session:
        create_draft_reply(session=session, ministry="interior", generation=2, today=TODAY, responded_on=TODAY,
                           author_name="X", claims=[ClaimInput(own, "in_progress")])
    assert replies(registry) == []
    with session_scope(registry) as session:
        reply = create_draft_reply(session=session, ministry="interior", generation=1, today=TODAY, responded_on=TODAY,
                                   author_name="X", claims=[ClaimInput(own, "in_progress", "начато")])
    with session_scope(registry) as session:
        confirmed = confirm_reply(session=session, reply_id=reply.id, confirmed_by_name="Y", at=utcnow())
    assert (confirmed.state, confirmed.confirmed_by_name) == ("confirmed", "Y")
    with pytest.raises(ReplyNotDraft), session_scope(registry) as session:
        confirm_reply(session=session, reply_id=reply.id, confirmed_by_name="Y", at=utcnow())
