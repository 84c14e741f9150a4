"""The office's workspace in a real browser (headless Debian Chromium, JavaScript off: the pages
need none). A clerk signs in, filters the registry, opens an item and puts it on hold with a
reason; the Commissioner (a head) signs in, approves the drafted individualized recommendation
with the office's outgoing number (the letter then reaches a real SMTP server, numbered and
signed) and decides a level-2 item.

Screenshots at 1280 px go to tests/screenshots/ (office-registry.png, office-item.png,
office-queues.png) for the README.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from followup.config.policy import Policy, copy_with_approval, load_policy
from followup.interfaces.web import events
from followup.interfaces.web.app import create_app
from followup.models.domain import IndividualizedStatus, Status
from followup.models.followup import IndividualizedRecommendation
from followup.models.registry import StatusChange, table_of
from followup.notifications.dispatch import dispatch
from tests.receivers import JsonReceiver, SmtpReceiver
from tests.test_dispatch import INTERIOR, QUICK, routes
from tests.test_web_office import PASSWORD, TODAY, prepare_office, status_of
from tests.test_web_portal import serving

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = "/usr/bin/chromium"
DRAFT = f"IR-{TODAY:%Y%m%d}-INTERIOR"


def sign_in(page: Any, base: str, name: str) -> None:
    page.goto(f"{base}/office/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    assert page.url == f"{base}/office/"


def test_a_clerk_holds_an_item_and_the_head_approves_a_draft_and_decides_level_two(
        registry: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from playwright.sync_api import sync_playwright

    queued: list[dict[str, Any]] = []
    monkeypatch.setattr(events, "prefect_configured", lambda: True)
    monkeypatch.setattr(events, "emit_event", lambda **kwargs: queued.append(kwargs))
    policy: Policy = load_policy(copy_with_approval(tmp_path / "policy-required.yaml", "required"))
    engine = prepare_office(registry, policy)
    SCREENSHOTS.mkdir(exist_ok=True)
    app = create_app(engine=engine, policy=policy, today=lambda: TODAY)
    with serving(app) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
            # the clerk: the registry, filtered to one ministry
            sign_in(page, base, "anna")
            page.select_option("#f-ministry", "interior")
            page.click("form[role=search] button[type=submit]")
            assert "ministry=interior" in page.url
            rows = page.locator("table.registry tbody tr")
            assert rows.count() == 2
            assert "NPM-3" not in page.inner_text("table.registry")
            page.screenshot(path=str(SCREENSHOTS / "office-registry.png"), full_page=True)
            # an item, put on hold with a reason
            page.click("text=NPM-2")
            assert page.url == f"{base}/office/items/NPM-2"
            page.click("summary:has-text('Приостановить')")
            page.fill("#hold-reason", "Ждём заключения прокуратуры по жалобе")
            page.click("details[open] button[type=submit]")
            assert "приостановлена" in page.inner_text(".notice")
            assert "Ждём заключения прокуратуры по жалобе" in page.inner_text("ol.timeline")
            page.screenshot(path=str(SCREENSHOTS / "office-item.png"), full_page=True)
            assert status_of(engine, "NPM-2") == Status.ON_HOLD.value
            page.goto(f"{base}/office/?status=on_hold")
            assert page.locator("table.registry tbody tr").count() == 1 and "NPM-2" in page.inner_text("table.registry")
            page.click("button:has-text('Выйти')")
            assert page.url == f"{base}/office/login"

            # the head: the queues, the draft approved with the outgoing number
            sign_in(page, base, "head")
            page.goto(f"{base}/office/queues")
            assert DRAFT in page.inner_text("#drafts") and "NPM-3" in page.inner_text("#level2")
            page.screenshot(path=str(SCREENSHOTS / "office-queues.png"), full_page=True)
            page.fill("#drafts input[name=number]", "04-1/77")
            page.click("#drafts button[type=submit]")
            assert "04-1/77" in page.inner_text(".notice")
            # the level-2 item: reported to Parliament
            page.select_option("#level2 select[name=decision]", "parliament_report")
            page.fill("#level2 input[name=reason]", "Включить в ежегодный доклад Парламенту")
            page.click("#level2 button[type=submit]")
            assert status_of(engine, "NPM-3") == Status.REPORTED_TO_PARLIAMENT.value
            page.goto(f"{base}/office/items/NPM-3")
            timeline = page.inner_text("ol.timeline")
            assert "Включить в ежегодный доклад Парламенту" in timeline and "head" in timeline
        finally:
            browser.close()
    ir = table_of(IndividualizedRecommendation)
    with engine.connect() as c:
        assert c.execute(select(ir.c.status).where(ir.c.reference == DRAFT)).scalar_one() == IndividualizedStatus.ISSUED.value
        actors = set(c.execute(select(table_of(StatusChange).c.actor)).scalars())
    assert {"anna", "head"} <= actors
    assert any(e["event"] == "followup.notification.queued" for e in queued)
    # the approved letter leaves with the next dispatch: numbered and signed by the head
    with SmtpReceiver() as smtp, JsonReceiver() as hook:
        dispatch(engine=engine, apprise_file=routes(tmp_path, smtp, hook), delivery=QUICK)
        mails = smtp.to(INTERIOR)
    letter = next(m for m in mails if "04-1/77" in m.subject + m.text)
    document = "".join(body.decode("utf-8", "replace") for body in letter.attachments.values()) + letter.text + letter.html
    assert "04-1/77" in document and "Е. Азимова" in document and "Уполномоченный по правам человека" in document
