"""What the ministries and the office read, as they see it: the reminder, the individualized
recommendation and the digest, in Russian and in Kazakh, and the annual report, rendered by
headless Chromium (Debian's, as the other browser tests). Each page is checked for what its reader
must find there, and for nothing of the other language where a letter is in one; the screenshots
go to tests/screenshots/ for the README.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from followup.config.policy import load_policy
from followup.models.calendar import WorkingCalendar
from followup.models.followup import Notification
from followup.models.registry import Ministry, table_of
from followup.spreadsheets.ingest import import_recommendations
from followup.steps.deadlines import check_deadlines, escalate_ministry, plan_escalations
from tests.conftest import write_csv

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = "/usr/bin/chromium"

#: words only Russian has (a Kazakh letter carrying one of them carries a Russian paragraph)
RUSSIAN_ONLY = re.compile(r"\b(?:Уважаем|В соответствии|рекомендаци[йия]|исполнени[яе]|Министерств[оа])\w*")
#: letters only Kazakh has
KAZAKH_LETTERS = re.compile(r"[әғқңөұүһі]", re.IGNORECASE)


def _year(engine: Engine, tmp_path: Path) -> date:
    """Interior (letters in Russian) and Education (letters in Kazakh) with three items each, due on
    10.03.2026: reminded on 24.02, overdue on 11.03, escalated ten working days later. Returns that day."""
    with engine.begin() as connection:
        m = table_of(Ministry)
        connection.execute(update(m).where(m.c.code == "education").values(language="kk"))
    import_recommendations(write_csv(
        tmp_path / "visits.csv", "external_id,text,issued_on,due_on,ministry,facility,category",
        "NPM-2026-0101-01,Обеспечить камеры ИВС естественным освещением и приточной вентиляцией,05.01.2026,10.03.2026,"
        "interior,ИВС г. Кокшетау,detention_conditions",
        "NPM-2026-0101-02,Провести обучение персонала по предупреждению пыток (16 академических часов),05.01.2026,"
        "10.03.2026,interior,ИВС г. Кокшетау,legal_training",
        "NPM-2026-0102-01,Оборудовать прогулочный двор навесом и обеспечить ежедневную прогулку не менее 2 часов,"
        "06.01.2026,12.03.2026,interior,СИЗО-1 г. Астана,detention_conditions",
        "NPM-2026-0201-01,Тәрбиеленушілердің жатын бөлмелерін жеке төсек орындарымен жабдықтау,05.01.2026,10.03.2026,"
        "education,№ 2 балалар үйі (Кентау қ.),detention_conditions",
        "NPM-2026-0201-02,Медициналық бөлімді қажетті дәрі-дәрмекпен қамтамасыз ету,05.01.2026,10.03.2026,"
        "education,№ 2 балалар үйі (Кентау қ.),medical_care",
        "NPM-2026-0202-01,Балалардың құқықтары туралы жадынаманы қазақ және орыс тілдерінде орналастыру,06.01.2026,"
        "12.03.2026,education,№ 1 балалар үйі (Шымкент қ.),legal_training",
    ), engine=engine, actor="clerk")
    calendar = WorkingCalendar.from_policy(load_policy().calendar)
    check_deadlines(date(2026, 2, 24), engine=engine)
    check_deadlines(date(2026, 3, 11), engine=engine)
    as_of = calendar.add_working_days(date(2026, 3, 13), 10)
    check_deadlines(as_of, engine=engine)
    for code in plan_escalations(as_of, engine=engine):
        escalate_ministry(code, as_of, engine=engine)
    return as_of


def _letters(engine: Engine) -> dict[tuple[str, str], str]:
    """(kind, language) -> the HTML of the first such message in the outbox."""
    n = table_of(Notification)
    found: dict[tuple[str, str], str] = {}
    with engine.connect() as connection:
        for kind, language, html in connection.execute(select(n.c.kind, n.c.language, n.c.body_html).order_by(n.c.id)):
            found.setdefault((kind, language), html)
    return found


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_letters_the_digest_and_the_report_read_right_in_russian_and_in_kazakh(engine: Engine, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    from followup.flows.alerts import alert_message
    from followup.notifications.digest import build_digest, digest_message
    from followup.reports.annual import compute, read_year, write_report

    as_of = _year(engine, tmp_path)
    texts: dict[str, str] = {}
    letters = _letters(engine)
    digest = build_digest(engine, as_of)
    pages = {f"letter-{kind}-{lang}": letters[(kind, lang)]
             for kind in ("reminder", "individualized") for lang in ("ru", "kk")}
    pages.update({f"digest-{lang}": digest_message(digest, lang)["body_html"] for lang in ("ru", "kk")})
    failure = "var/import/visits-2026-04-02.csv: row 7: due_on: 31.02.2026 is not a date (DD.MM.YYYY)"
    for lang in ("ru", "kk"):
        alert = alert_message("0b5c3f1e-8d2a-4f6e-9c1d-7a2b3c4d5e6f", "import-recommendations-visits-2026-04-02",
                              "import-recommendations", failure, language=lang, ui_url="http://127.0.0.1:4200")
        pages[f"alert-{lang}"] = alert["body_html"]
        texts[f"alert-{lang}-text"] = alert["body_text"]
    report_dir = tmp_path / "report"
    written = write_report(compute(read_year(engine, 2026, today=date(2026, 12, 1))), report_dir, "kk")

    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 900, "height": 1200}, java_script_enabled=False)
            for name, html in pages.items():
                page.set_content(html)
                texts[name] = page.inner_text("body")
                page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
            page.goto(written.html.resolve().as_uri())
            texts["report-kk"] = page.inner_text("body")
            page.screenshot(path=str(SCREENSHOTS / "report-kk.png"))
        finally:
            browser.close()

    reminder_ru, reminder_kk = texts["letter-reminder-ru"], texts["letter-reminder-kk"]
    assert "Министерство внутренних дел Республики Казахстан" in reminder_ru and "24.02.2026 г." in reminder_ru
    assert "Қазақстан Республикасы Оқу-ағарту министрлігі" in reminder_kk and "24.02.2026 ж." in reminder_kk
    formal_ru, formal_kk = texts["letter-individualized-ru"], texts["letter-individualized-kk"]
    assert "ИНДИВИДУАЛЬНАЯ РЕКОМЕНДАЦИЯ" in formal_ru.upper() and "NPM-2026-0101-01" in formal_ru
    assert "ЖЕКЕ ҰСЫНЫМ" in formal_kk.upper() and "NPM-2026-0201-01" in formal_kk and "ж." in formal_kk
    # a Kazakh letter is Kazakh from the heading to the signature (the items' own texts aside:
    # they are the registry's, in the language the NPM wrote them)
    for name in ("letter-reminder-kk", "letter-individualized-kk", "digest-kk", "alert-kk"):
        own_words = texts[name]
        for item_text in re.findall(r"(?m)^.*(?:Обеспечить|Провести|Оборудовать).*$", own_words):
            own_words = own_words.replace(item_text, "")
        assert not RUSSIAN_ONLY.search(own_words), (name, RUSSIAN_ONLY.search(own_words))
        assert KAZAKH_LETTERS.search(own_words), name
    # the digest names what escalated, by name, in the office's language
    assert "Министерство внутренних дел Республики Казахстан" in texts["digest-ru"] and "NPM-2026-0101-02" in texts["digest-ru"]
    assert "Қазақстан Республикасы Ішкі істер министрлігі" in texts["digest-kk"]
    assert "interior" not in texts["digest-ru"] and "education" not in texts["digest-kk"]
    assert "ұсынымдардың орындалуы" in texts["report-kk"].lower() or "ұсынымдар" in texts["report-kk"]
    # the admin's alert: the failure in one sentence and the link to the run, in both parts
    for lang in ("ru", "kk"):
        for part in (texts[f"alert-{lang}"], texts[f"alert-{lang}-text"]):
            assert "31.02.2026 is not a date" in part and "http://127.0.0.1:4200/runs/flow-run/0b5c3f1e" in part
        assert "&nbsp;" not in texts[f"alert-{lang}-text"] and "<br" not in texts[f"alert-{lang}-text"]
