"""The reply portal in a real browser (headless Debian Chromium, no JavaScript needed by the pages):
a ministry clerk opens the link from the letter, answers two recommendations with a scanned act as
evidence and confirms the reply (the ministry has no second validating official).

Screenshots of each page, at 1280 px and at a phone's width, are written to tests/artifacts/
(ignored by git) for the README and for a look at how the pages read.
"""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from followup.models.links import ministry_token
from followup.models.registry import table_of
from followup.models.replies import Evidence, Reply, ReplyClaim
from tests.test_web_portal import portal_app, serving, set_approval

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"


def scanned_act() -> bytes:
    """A small real PDF, as a ministry's scanner would send (drawn by matplotlib, already installed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4, 2))
    figure.text(0.1, 0.5, "Act No. 12, 16.03.2026: windows replaced")
    out = io.BytesIO()
    figure.savefig(out, format="pdf")
    return out.getvalue()


def test_a_clerk_answers_two_items_with_evidence_and_confirms(registry: Engine, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch):
    from playwright.sync_api import sync_playwright

    from followup.interfaces.web import events

    monkeypatch.setattr(events, "emit_event", lambda **_: None)
    set_approval(registry, "interior", "none")
    evidence = tmp_path / "акт-12.pdf"
    evidence.write_bytes(scanned_act())
    ARTIFACTS.mkdir(exist_ok=True)
    token = ministry_token("interior", 1, date(2026, 6, 30))
    with serving(portal_app(registry)) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
            page.goto(f"{base}/r/{token}")
            assert page.url == f"{base}/m/"  # the token is gone from the address bar
            page.get_by_role("heading", name="Рекомендации, ожидающие ответа").wait_for()
            page.screenshot(path=ARTIFACTS / "portal-ministry.png", full_page=True)

            page.get_by_label("Выбрать NPM-1").check()
            page.get_by_label("Выбрать NPM-2").check()
            page.get_by_role("button", name="Ответить на отмеченные").first.click()
            page.get_by_role("heading", name="Ответ на рекомендации: 2").wait_for()
            page.select_option("#common_status", "in_progress")
            page.fill("#common_measures", "Работы начаты, смета утверждена")
            second = page.locator("fieldset.item-claim").nth(1)
            second.locator("select").select_option("implemented")
            second.locator("textarea").fill("Окна заменены, акт № 12 от 16.03.2026")
            page.fill("#responded_on", "2026-03-16")
            page.fill("#author_name", "Сейткали Айдос Болатұлы")
            page.fill("#author_position", "начальник управления")
            page.fill("#author_email", "a.seitkali@mvd.gov.kz")
            page.set_input_files("#evidence", str(evidence))
            page.screenshot(path=ARTIFACTS / "portal-reply-form.png", full_page=True)
            page.get_by_role("button", name="Сохранить и проверить").click()

            page.get_by_role("heading", name="Проверьте и подтвердите ответ").wait_for()
            assert "акт-12.pdf" in page.content()
            page.screenshot(path=ARTIFACTS / "portal-reply-review.png", full_page=True)
            page.get_by_role("button", name="Подтвердить и направить").click()
            page.get_by_text("Ответ подтверждён и направлен в аппарат Уполномоченного.").first.wait_for()
            page.screenshot(path=ARTIFACTS / "portal-reply-confirmed.png", full_page=True)

            phone = browser.new_page(viewport={"width": 390, "height": 844}, java_script_enabled=False)
            phone.goto(f"{base}/r/{token}")
            phone.screenshot(path=ARTIFACTS / "portal-ministry-phone.png", full_page=True)
            phone.goto(f"{base}/m/replies/1")
            phone.screenshot(path=ARTIFACTS / "portal-reply-phone.png", full_page=True)
        finally:
            browser.close()
    with registry.connect() as connection:
        reply = connection.execute(select(table_of(Reply))).one()
        claims = connection.execute(select(table_of(ReplyClaim).c.claimed_status).order_by(table_of(ReplyClaim).c.id)).scalars().all()
        files = connection.execute(select(table_of(Evidence).c.filename, table_of(Evidence).c.content_type)).all()
    assert (reply.state, reply.responded_on, reply.confirmed_by_name) == ("confirmed", date(2026, 3, 16), "Сейткали Айдос Болатұлы")
    assert claims == ["in_progress", "implemented"]
    assert files == [("акт-12.pdf", "application/pdf")]
