"""A ministry answers, end to end, as it would in production: every part real.

A real Prefect server with `followup serve`, the web app (`followup web`) and an SMTP server
on loopback standing for the ministry's mail. The daily check sends the Ministry of Internal
Affairs its reminder; its focal point opens the link from that letter in headless Chromium,
answers two items with an evidence PDF, and the ministry's validating official confirms
through the link that reached them. The confirmation's event starts `record-responses` on the
server, the items move in the registry, and the ministry's acknowledgement arrives.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, select

from followup.models.crud import init_db
from followup.models.registry import Recommendation, StatusChange
from followup.models.replies import Reply
from followup.operations.deployments import free_port, start_server
from followup.spreadsheets.ingest import import_recommendations
from tests.conftest import wait_until, write_csv
from tests.receivers import Mail, SmtpReceiver

pytestmark = [pytest.mark.server, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
TODAY = datetime.now(ZoneInfo("Asia/Almaty")).date()
MINISTRY_MAIL = "focal.point@mvd.gov.kz"
APPROVER_MAIL = "deputy.minister@mvd.gov.kz"
OFFICE_MAIL = "npm@ombudsman.kz"
#: where the README's screenshots come from (committed); the test rewrites them on every run
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


@dataclass
class Installation:
    url: str  # the registry
    web: str  # the web app's public address
    api: str  # the Prefect server
    smtp: SmtpReceiver
    env: dict[str, str]


def _followup(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("followup")), *args]


def _start(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "wb")  # noqa: SIM115 - the child writes to it until it is stopped
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture
def installation(tmp_path: Path) -> Iterator[Installation]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is required at /usr/bin/chromium (.ci/run installs it)", pytrace=False)
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    init_db(url)
    # visited 80 days ago, due in 10 days: today's check sends the reminder (a link in a letter is
    # valid for 90 days from the letter's date, so the scenario runs on today's date)
    issued, due = (f"{TODAY - timedelta(days=80):%d.%m.%Y}", f"{TODAY + timedelta(days=10):%d.%m.%Y}")
    import_recommendations(write_csv(
        tmp_path / "visit.csv", "external_id,text,issued_on,due_on,ministry,facility,region",
        f"NPM-2026-101,Обеспечить камеры ИВС естественным освещением и вентиляцией,{issued},{due},МВД,ИВС г. Кокшетау,Акмолинская область",
        f'NPM-2026-102,"Обеспечить задержанных горячим питанием не реже трёх раз в сутки (<норма> ""А"")",{issued},{due},МВД,ИВС г. Кокшетау,Акмолинская область',
        f"NPM-2026-103,Провести обучение персонала по Стамбульскому протоколу,{issued},{due},МВД,ИВС г. Астаны,г. Астана",
    ), engine=create_engine(url), actor="clerk")
    with SmtpReceiver() as smtp:
        apprise = tmp_path / "apprise.yaml"
        apprise.write_text(
            "version: 1\nurls:\n"
            f"  - {smtp.url(MINISTRY_MAIL)}:\n      tag: ministry:interior\n"
            f"  - {smtp.url(APPROVER_MAIL)}:\n      tag: ministry:interior:approver\n"
            f"  - {smtp.url(OFFICE_MAIL)}:\n      tag: ombudsman, admin\n",
            encoding="utf-8",
        )
        server = start_server(free_port(), home=tmp_path / "prefect-home", log=tmp_path / "prefect-server.log")
        web_port = free_port()
        web = f"http://127.0.0.1:{web_port}"
        env = dict(
            os.environ, PREFECT_API_URL=server.url, FOLLOWUP_DATABASE_URL=url, FOLLOWUP_APPRISE_CONFIG=str(apprise),
            FOLLOWUP_PUBLIC_URL=web, FOLLOWUP_SECRET_KEY="end-to-end-secret", PREFECT_RUNNER_POLL_FREQUENCY="1",
            FOLLOWUP_EVIDENCE_DIR=str(tmp_path / "evidence"),
        )
        serve = _start(_followup("serve"), env, tmp_path, tmp_path / "serve.log")
        app = _start(_followup("web", "--port", str(web_port)), env, tmp_path, tmp_path / "web.log")
        try:
            yield Installation(url, web, server.url, smtp, env)
        finally:
            _stop(app)
            _stop(serve)
            server.stop()


def _run_deployment(api: str, name: str, parameters: dict) -> None:
    async def go() -> None:
        from prefect.deployments import run_deployment
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: api}):
            await run_deployment(name, parameters=parameters, timeout=0)

    asyncio.run(go())


def _mail_to(smtp: SmtpReceiver, address: str, subject_has: str, timeout: float) -> Mail:
    def arrived() -> Mail | None:
        return next((m for m in smtp.to(address) if subject_has.casefold() in m.subject.casefold()), None)

    return wait_until(arrived, timeout, f"a message to {address} about {subject_has!r}")


def _link(mail: Mail, web: str, kind: str) -> str:
    found = re.search(re.escape(web) + rf"/{kind}/[A-Za-z0-9_.\-]+", mail.text)
    assert found, f"no /{kind}/ link in: {mail.text[:3000]}"
    return found.group(0)


def _pdf(path: Path) -> Path:
    """A small, valid one-page PDF: the act of the works done."""
    body = b"BT /F1 18 Tf 72 720 Td (Act of works: windows replaced, IVS Kokshetau) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(body) + body + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


def _status(url: str, external_id: str) -> tuple[str, bool]:
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            row = c.execute(select(Recommendation.status, Recommendation.awaiting_review)
                            .where(Recommendation.external_id == external_id)).one()
            return str(row[0]), bool(row[1])
    finally:
        engine.dispose()


def test_a_ministry_answers_from_its_letter_and_the_registry_follows(installation: Installation, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    site = installation
    # today's check: the three items fall due within 14 days, so the ministry's reminder leaves
    # (the dispatcher is started by the check's event)
    wait_until(lambda: _deployed(site.api), 120, "the served deployments")
    _run_deployment(site.api, "check-deadlines/check-deadlines", {"as_of": TODAY.isoformat()})
    reminder = _mail_to(site.smtp, MINISTRY_MAIL, "Напоминание", 240)
    link = _link(reminder, site.web, "r")
    assert "Ахметова" in reminder.text  # the office's contact replaces the blank "Исполнитель: ____"
    evidence = _pdf(tmp_path / "акт-приёмки-работ.pdf")
    SCREENSHOTS.mkdir(exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            clerk = browser.new_page(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
            clerk.goto(link)
            assert clerk.url == f"{site.web}/m/"  # the token is exchanged for a session and leaves the address bar
            clerk.get_by_role("heading", name="Рекомендации, ожидающие ответа").wait_for()
            assert "&lt;норма&gt;" in clerk.content()  # the recommendation's text is shown, escaped
            clerk.screenshot(path=SCREENSHOTS / "ministry-page.png", full_page=True)
            clerk.get_by_label("Выбрать NPM-2026-101").check()
            clerk.get_by_label("Выбрать NPM-2026-102").check()
            clerk.get_by_role("button", name="Ответить на отмеченные").first.click()
            clerk.get_by_role("heading", name="Ответ на рекомендации: 2").wait_for()
            first, second = clerk.locator("fieldset.item-claim").nth(0), clerk.locator("fieldset.item-claim").nth(1)
            first.locator("select").select_option("in_progress")
            first.locator("textarea").fill("Заключён договор на замену оконных блоков, работы начаты 01.04.2026.")
            second.locator("select").select_option("partially_implemented")
            second.locator("textarea").fill("Трёхразовое горячее питание организовано в двух камерах из пяти.")
            clerk.fill("#responded_on", TODAY.isoformat())
            clerk.fill("#author_name", "Сейткали Айдос Болатұлы")
            clerk.fill("#author_position", "начальник управления охраны общественного порядка")
            clerk.fill("#author_email", "a.seitkali@mvd.gov.kz")
            clerk.set_input_files("#evidence", str(evidence))
            clerk.screenshot(path=SCREENSHOTS / "reply-form.png", full_page=True)
            clerk.get_by_role("button", name="Сохранить и направить на подтверждение").click()
            clerk.get_by_role("heading", name="Ответ направлен на подтверждение").wait_for()

            # the validating official's link reaches the approver's address, not the clerk's
            request = _mail_to(site.smtp, APPROVER_MAIL, "REPLY-", 180)
            confirm = _link(request, site.web, "c")
            assert not [m for m in site.smtp.to(MINISTRY_MAIL) if "/c/" in m.text]
            official = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=False).new_page()
            official.goto(confirm)
            assert official.url == f"{site.web}/c/"
            assert "акт-приёмки-работ.pdf" in official.content()
            official.fill("#name", "Нурланов Ерлан Маратович")
            official.fill("#position", "заместитель министра")
            official.fill("#email", "e.nurlanov@mvd.gov.kz")
            official.screenshot(path=SCREENSHOTS / "confirmation.png", full_page=True)
            official.get_by_role("button", name="Подтвердить ответ").click()
            official.get_by_role("heading", name="Ответ подтверждён").wait_for()
        finally:
            browser.close()

    # the confirmation's event starts record-responses on the server: the items move
    wait_until(lambda: _status(site.url, "NPM-2026-101")[0] == "in_progress", 240, "the reply recorded by the event's run")
    assert _status(site.url, "NPM-2026-102") == ("partially_implemented", False)
    assert _status(site.url, "NPM-2026-103") == ("issued", False)  # not in the reply
    engine = create_engine(site.url)
    try:
        with engine.connect() as c:
            reply = c.execute(select(Reply)).one()
            reasons = c.execute(select(StatusChange.reason, StatusChange.actor).where(StatusChange.to_status == "in_progress")).all()
    finally:
        engine.dispose()
    assert (reply.state, reply.author_name, reply.confirmed_by_name) == ("recorded", "Сейткали Айдос Болатұлы", "Нурланов Ерлан Маратович")
    assert reasons and f"REPLY-{reply.id}" in reasons[0].reason
    # the event started a run for this reply (its state reaches the server just after its work)
    wait_until(lambda: f"record-responses REPLY-{reply.id}" in _flow_runs(site.api, "record-responses"), 120,
               "the run started by followup.response.submitted")
    # and the ministry's acknowledgement arrives
    ack = _mail_to(site.smtp, MINISTRY_MAIL, f"REPLY-{reply.id}", 180)
    assert "NPM-2026-101" in ack.text and "NPM-2026-102" in ack.text


def _deployed(api: str) -> bool:
    async def names() -> set[str]:
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: api}):
            async with get_client() as client:
                return {d.name for d in await client.read_deployments()}

    try:
        return {"check-deadlines", "dispatch", "record-responses"} <= asyncio.run(names())
    except Exception:  # noqa: BLE001 - the server or the deployments are not up yet
        return False


def _flow_runs(api: str, flow_name: str) -> list[str]:
    async def names() -> list[str]:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import FlowFilter, FlowFilterName
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: api}):
            async with get_client() as client:
                runs = await client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])), limit=50)
                return [r.name for r in runs if r.state and r.state.is_completed()]

    return asyncio.run(names())
