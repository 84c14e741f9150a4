"""Message templates: every kind in every language renders, names every item, escapes HTML."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml
from jinja2 import UndefinedError
from markupsafe import escape

from followup.notifications.render import (
    ADMIN_KINDS,
    KINDS,
    LANGUAGES,
    TEMPLATES_DIR,
    Rendered,
    format_date,
    period,
    render,
)

MINISTRY = {
    "ru": "Министерство внутренних дел Республики Казахстан",
    "kk": "Қазақстан Республикасы Ішкі істер министрлігі",
    "en": "Ministry of Internal Affairs",
}
LEGAL_BASIS = (
    "В соответствии со статьёй 22 Факультативного протокола к Конвенции против пыток и Конституционным законом "
    "«Об Уполномоченном по правам человека в Республике Казахстан» направляется настоящая индивидуальная рекомендация."
)
REPLY_LINK = "http://127.0.0.1:8000/r/WyJpbnRlcmlvciIsMSwiMjAyNy0wMi0yMSJd.sIgNaTuRe"
CONTACT = {"name": "Ахметова Айгерим Серикқызы", "position": "главный эксперт Центра НПМ", "phone": "+7 (7172) 74-05-36",
           "email": "npm@ombudsman.kz"}
KAZAKH_TEXT = "Уақытша ұстау изоляторының камераларын табиғи жарықпен қамтамасыз ету (әғқңөұүһі ӘҒҚҢӨҰҮҺІ)"
SCRIPT = "<script>alert('x')</script>"


def _items() -> list[dict]:
    return [
        {
            "external_id": "NPM-2026-0042",
            "facility": "ИВС ДП г. Алматы",
            "due_on": date(2026, 10, 1),
            "text": "Обеспечить камеры естественным освещением\nи приточно-вытяжной вентиляцией.",
        },
        {
            "external_id": "NPM-2026-0107",
            "facility": None,
            "due_on": "2026-09-15",
            "text": f"Провести обучение персонала {SCRIPT} & проверить журналы.",
        },
        {
            "external_id": "CAT-KAZ-CO-4-12",
            "facility": "ЛА-155/14",
            "due_on": datetime(2026, 8, 31, 20, 0, tzinfo=UTC),
            "text": KAZAKH_TEXT,
        },
    ]


def _digest_sections(empty: str | None = None) -> list[dict]:
    items = _items()
    frames = {
        "new_overdue": pd.DataFrame(
            [
                {
                    "external_id": i["external_id"],
                    "ministry": "МВД",
                    "facility": i["facility"],
                    "due_on": i["due_on"],
                    "overdue_since": i["due_on"],
                    "text": i["text"] * 3,
                }
                for i in items
            ]
        ),
        "individualized": pd.DataFrame(
            [
                {
                    "reference": "IR-20261123-INTERIOR",
                    "ministry": "МВД",
                    "issued_on": date(2026, 11, 23),
                    "response_due_on": date(2026, 12, 23),
                    "items": [i["external_id"] for i in items],
                },
            ]
        ),
        "awaiting_decision": pd.DataFrame(
            [
                {
                    "reference": "IR-20261020-HEALTH",
                    "ministry": "Минздрав",
                    "issued_on": date(2026, 10, 20),
                    "response_due_on": date(2026, 11, 19),
                    "items": 4,
                },
            ]
        ),
        "unassigned": pd.DataFrame(
            [{"external_id": "UPR-4-145.12", "source": "upr", "category": "conditions", "text": "Ratify ... " * 20}]
        ),
        "response_rates": pd.DataFrame(
            [
                {"ministry": "interior", "sent": 150, "due": 120, "answered": 80, "response_rate": 80 / 120},
                {"ministry": "prosecutor", "sent": 4, "due": 0, "answered": 0, "response_rate": float("nan")},
            ]
        ),
        "failed_notifications": pd.DataFrame(
            [
                {
                    "recipient": "ministry:health",
                    "kind": "reminder",
                    "attempts": 5,
                    "last_error": "550 <mailbox unavailable>",
                    "mystery_column": "x",
                },
            ]
        ),
    }
    if empty is not None:
        frames[empty] = frames[empty].iloc[0:0]
    return [{"key": key, "rows": frame} for key, frame in frames.items()]


def _answered() -> list[dict]:
    """Items of a level-2 letter the ministry did answer: where each stands now."""
    return [
        {"external_id": "NPM-2026-0300", "facility": "ИВС г. Кокшетау", "due_on": date(2026, 9, 1),
         "text": "Установить видеонаблюдение", "status": "implemented", "awaiting_review": False, "answered_on": date(2026, 11, 10)},
        {"external_id": "NPM-2026-0301", "facility": None, "due_on": date(2026, 9, 1),
         "text": "Отремонтировать душевые", "status": "escalated", "awaiting_review": True, "answered_on": date(2026, 11, 12)},
    ]


def _context(kind: str, language: str = "ru") -> dict:
    base = {"as_of": date(2026, 11, 23)}
    ministry = MINISTRY[language]
    answering = {"reply_link": REPLY_LINK, "link_expires_on": date(2027, 2, 21), "contact": CONTACT}
    if kind == "reminder":
        items = _items()
        return {**base, "reference": "REM-20261123-INTERIOR", "ministry": ministry, "due_soon": items[:1], "overdue": items[1:],
                **answering}
    if kind == "individualized":
        return {
            **answering,
            **base,
            "reference": "IR-20261123-INTERIOR",
            "issued_on": date(2026, 11, 23),
            "ministry": ministry,
            "legal_basis": LEGAL_BASIS,
            "items": _items(),
            "response_due_on": date(2026, 12, 23),
        }
    if kind == "level2":
        return {
            **base,
            "reference": "IR-20261020-INTERIOR",
            "issued_on": date(2026, 10, 20),
            "ministry": ministry,
            "response_due_on": date(2026, 11, 19),
            "items": _items(),
            "answered": [],
        }
    if kind == "digest":
        return {**base, "since": date(2026, 11, 16), "sections": _digest_sections()}
    # ministries' replies: each item with the status claimed, the measures and (acknowledgement) the outcome
    claims = [{**item, "claimed_status": claimed, "measures": f"Приняты меры {SCRIPT}", "outcome": outcome}
              for item, claimed, outcome in zip(_items(), ("implemented", "in_progress", "rejected"),
                                                ("under_review", "applied", "refused"), strict=True)]
    reply = {"ministry": ministry, "reference": "REPLY-12", "responded_on": date(2026, 11, 20),
             "letter_reference": "IR-20261020-INTERIOR", "items": claims, "contact": CONTACT}
    if kind == "acknowledgement":
        return {**base, **reply}
    if kind == "reply_returned":
        return {**base, **reply, "comment": "Приложите акт приёмки работ."}
    if kind == "reply_confirm":  # no as_of: the link's last day dates it
        return {"ministry": ministry, "reply_reference": "REPLY-12", "author_name": "Иванов Иван", "author_position": "главный специалист",
                "author_email": "ivanov@mvd.gov.kz", "items": claims, "confirm_url": "http://127.0.0.1:8000/c/WyIxMiJd.sIgNaTuRe",
                "expires_on": date(2026, 11, 23), "contact": CONTACT}
    raise AssertionError(kind)


ALL = [(kind, language) for kind in KINDS for language in LANGUAGES]


@pytest.mark.parametrize(("kind", "language"), ALL)
def test_every_kind_and_language_renders(kind: str, language: str) -> None:
    r = render(kind, language, _context(kind, language))
    assert isinstance(r, Rendered)
    assert r.subject and "\n" not in r.subject and "{{" not in r.subject
    assert r.text.strip() and "{{" not in r.text and "{%" not in r.text
    assert r.html.lower().startswith("<!doctype html>")
    assert f'<html lang="{language}">' in r.html
    assert '<meta charset="utf-8">' in r.html
    assert r.html.rstrip().endswith("</html>")
    # no external resources: the document must print and file on its own; the one kind of link
    # is a letter's reply link and the office's e-mail (a real <a href>, followed only when clicked)
    assert not re.search(r"""src\s*=|@import|url\(""", r.html)
    assert set(re.findall(r'href="([^"]*)"', r.html)) <= {REPLY_LINK, f"mailto:{CONTACT['email']}"}
    assert "23.11.2026" in r.text + r.subject
    # a date that ends a sentence ends it with its year mark ("23.11.2026 г."), not "г.."
    assert not re.search(r"\d{4} (г|ж)\.\.", r.text + re.sub(r"<[^>]*>", "", r.html) + r.subject)


@pytest.mark.parametrize(("kind", "language"), ALL)
def test_every_external_id_is_named(kind: str, language: str) -> None:
    r = render(kind, language, _context(kind, language))
    for item in _items():
        assert item["external_id"] in r.text
        assert item["external_id"] in r.html


@pytest.mark.parametrize(("kind", "language"), ALL)
def test_html_escapes_item_text(kind: str, language: str) -> None:
    r = render(kind, language, _context(kind, language))
    assert "<script>" not in r.html
    assert "&lt;script&gt;" in r.html
    if kind != "digest":  # plain text is not HTML: left as written
        assert SCRIPT in r.text


def test_html_escapes_every_caller_string() -> None:
    context = _context("individualized")
    context.update(ministry="<b>Ministry</b>", reference="IR-<1>", legal_basis="Art. 22 <i>OPCAT</i> & law")
    r = render("individualized", "ru", context)
    assert "<b>Ministry</b>" not in r.html and "&lt;b&gt;Ministry&lt;/b&gt;" in r.html
    assert "IR-&lt;1&gt;" in r.html
    assert "Art. 22 &lt;i&gt;OPCAT&lt;/i&gt; &amp; law" in r.html
    assert "<b>Ministry</b>" in r.text  # text and subject are not escaped
    assert "IR-<1>" in r.subject


@pytest.mark.parametrize("kind", KINDS)
def test_kazakh_letters_survive(kind: str) -> None:
    r = render(kind, "kk", _context(kind, "kk"))
    letters = "әғқңөұүһі"
    if kind != "digest":  # the digest's text table cuts long text; the html keeps it
        assert "әғқңөұүһі ӘҒҚҢӨҰҮҺІ" in r.text
    assert "әғқңөұүһі ӘҒҚҢӨҰҮҺІ" in r.html
    kazakh_template_text = r.subject + r.text
    assert sum(letter in kazakh_template_text for letter in letters) >= 5


def test_kazakh_and_english_wording() -> None:
    kk = render("reminder", "kk", _context("reminder", "kk"))
    assert kk.subject == "Ұсынымдарды орындау мерзімдері туралы еске салу (23.11.2026 ж.)"
    assert "Қазақстан Республикасындағы Адам құқықтары жөніндегі уәкіл" in kk.text
    assert "Ұлттық алдын алу тетігі (ҰАТ)" in kk.text
    assert "Жеке ұсыным" in render("individualized", "kk", _context("individualized", "kk")).subject
    en = render("individualized", "en", _context("individualized", "en"))
    assert "Commissioner for Human Rights in the Republic of Kazakhstan" in en.text
    assert "National Preventive Mechanism (NPM)" in en.text
    assert "individualized recommendation" in en.text.lower()


def test_reminder_subject_and_sections() -> None:
    r = render("reminder", "ru", _context("reminder"))
    assert r.subject == "Напоминание о сроках исполнения рекомендаций НПМ (23.11.2026 г.)"
    assert "СРОК ИСПОЛНЕНИЯ ИСТЕКАЕТ (1)" in r.text and "ПРОСРОЧЕНО (2)" in r.text
    assert r.text.index("NPM-2026-0042") < r.text.index("ПРОСРОЧЕНО") < r.text.index("NPM-2026-0107")
    # dates: date, ISO string and an aware datetime (shown in Asia/Almaty, UTC+5)
    assert "01.10.2026" in r.text and "15.09.2026" in r.text and "01.09.2026" in r.text
    # multi-line item text stays readable, indented under its item
    assert "   Обеспечить камеры естественным освещением\n   и приточно-вытяжной вентиляцией." in r.text


def test_reminder_empty_list_omits_its_section() -> None:
    context = _context("reminder")
    context["due_soon"] = []
    r = render("reminder", "ru", context)
    assert "ИСТЕКАЕТ" not in r.text and "Срок исполнения истекает" not in r.html
    assert "ПРОСРОЧЕНО (2)" in r.text
    context = _context("reminder")
    context["overdue"] = []
    r = render("reminder", "en", context)
    assert "OVERDUE" not in r.text and "NPM-2026-0107" not in r.text
    assert "DEADLINE APPROACHING (1)" in r.text


def test_individualized_letter() -> None:
    r = render("individualized", "ru", _context("individualized"))
    assert r.subject == "Индивидуальная рекомендация № IR-20261123-INTERIOR от 23.11.2026 г.: неисполненные рекомендации НПМ"
    for body in (r.text, r.html):
        assert "IR-20261123-INTERIOR" in body
        assert "23.12.2026" in body  # response deadline
        assert "Министерство внутренних дел Республики Казахстан" in body
        assert "Уполномоченный по правам человека в Республике Казахстан" in body
    assert "Факультативного протокола к Конвенции против пыток" in r.html
    assert LEGAL_BASIS in r.text
    assert "в срок до 23.12.2026" in r.html
    # the table: header row and one row per item, in order
    assert r.html.count("<tr>") >= 1 + len(_items())
    for header in ("№", "Номер рекомендации", "Учреждение", "Текст рекомендации", "Срок исполнения (истёк)"):
        assert f">{header}</th>" in r.html
    ids = [i["external_id"] for i in _items()]
    assert [r.html.index(i) for i in ids] == sorted(r.html.index(i) for i in ids)
    # printable: A4 page, serif
    assert "@page" in r.html and "A4" in r.html and "serif" in r.html


def test_level2_to_the_office() -> None:
    r = render("level2", "ru", _context("level2"))
    assert "IR-20261020-INTERIOR" in r.subject
    assert "прокуратур" in r.text and "Парламент" in r.text
    assert "19.11.2026" in r.text and "20.10.2026" in r.text


def test_digest_sections_counts_and_subject() -> None:
    r = render("digest", "ru", _context("digest"))
    assert r.subject == "Дайджест НПМ: просрочено 3, индивидуальных рекомендаций 1, требуют решения 1 (16.11–23.11.2026)"
    assert "Новые просроченные рекомендации за период" in r.text
    assert "Новые просроченные рекомендации: 3" in r.text  # summary line
    # the figure says what it counts: answers of the items past their deadline, not the number of bodies
    assert "Ответы госорганов: ответ получен на 80 из 120 рекомендаций с истёкшим сроком" in r.text
    assert "Ответы госорганов: 2" not in r.text
    # column headers translated, unknown column kept as is
    assert "Номер рекомендации" in r.text and ">Номер рекомендации</th>" in r.html
    assert "mystery_column" in r.text and ">mystery_column</th>" in r.html
    # cells: dates, percentages, empty values, translated codes, joined lists
    assert "67%" in r.text and "67%" in r.html
    assert "напоминание" in r.text
    assert "NPM-2026-0042, NPM-2026-0107, CAT-KAZ-CO-4-12" in r.text
    assert "15.09.2026" in r.text and "2026-09-15" not in r.text
    # long text cut in the text table, kept in full in HTML
    assert max(len(line) for line in r.text.splitlines() if "NPM-2026-0042" in line) < 250
    assert "…" in r.text
    assert (KAZAKH_TEXT * 3) in r.html
    assert "&lt;mailbox unavailable&gt;" in r.html


def test_digest_english_subject_counts() -> None:
    sections = [s for s in _digest_sections() if s["key"] != "awaiting_decision"]
    r = render("digest", "en", {"since": date(2026, 12, 28), "as_of": date(2027, 1, 4), "sections": sections})
    assert r.subject == "NPM digest: 3 overdue, 1 individualized recommendation (28.12.2026–04.01.2027)"


@pytest.mark.parametrize(("language", "none"), [("ru", "нет"), ("kk", "жоқ"), ("en", "none")])
def test_digest_empty_section_says_none(language: str, none: str) -> None:
    context = _context("digest", language)
    context["sections"] = _digest_sections(empty="awaiting_decision")
    r = render("digest", language, context)
    heading = yaml.safe_load((TEMPLATES_DIR / language / "strings.yaml").read_text("utf-8"))["sections"]["awaiting_decision"][
        "heading"
    ]
    after = r.text[r.text.index(heading.upper() + " (0)") :]
    assert after.splitlines()[3] == none  # heading, explanation, blank line, then "none"
    assert f"<em>{none}</em>" in r.html
    assert "IR-20261020-HEALTH" not in r.text


def test_digest_subject_counts_zero_when_sections_missing() -> None:
    r = render("digest", "ru", {"since": date(2026, 11, 16), "as_of": date(2026, 11, 23), "sections": []})
    assert r.subject == "Дайджест НПМ: просрочено 0, индивидуальных рекомендаций 0 (16.11–23.11.2026)"


@pytest.mark.parametrize("kind", KINDS)
def test_missing_context_key_raises(kind: str) -> None:
    context = _context(kind)
    context.pop(next(k for k in context if k != "as_of"))
    with pytest.raises(UndefinedError):
        render(kind, "ru", context)
    context = _context(kind)
    if "as_of" not in context:  # reply_confirm: dated by its link's last day
        return
    context.pop("as_of")
    with pytest.raises(UndefinedError):
        render(kind, "ru", context)


def test_missing_item_key_raises() -> None:
    context = _context("individualized")
    del context["items"][0]["facility"]
    with pytest.raises(UndefinedError):
        render("individualized", "ru", context)


@pytest.mark.parametrize("language", [None, "", "de", "xx-YY", "fr"])
def test_unknown_language_falls_back_to_russian(language: str | None) -> None:
    assert render("reminder", language, _context("reminder")) == render("reminder", "ru", _context("reminder"))


def test_language_variants() -> None:
    assert render("reminder", "kk-KZ", _context("reminder", "kk")) == render("reminder", "kk", _context("reminder", "kk"))
    assert render("reminder", "EN", _context("reminder", "en")).subject.startswith("Reminder")


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="reminder, individualized, level2, digest"):
        render("letter", "ru", {})


def test_office_default_and_override() -> None:
    assert "Уполномоченный по правам человека в Республике Казахстан" in render("reminder", "ru", _context("reminder")).text
    context = {**_context("reminder"), "office": "Национальный центр по правам человека"}
    r = render("reminder", "ru", context)
    assert "Национальный центр по правам человека" in r.text and "Национальный центр по правам человека" in r.html


def test_caller_context_is_not_modified() -> None:
    context = _context("digest")
    before = dict(context)
    render("digest", "ru", context)
    assert context.keys() == before.keys() and context["sections"] is before["sections"]
    assert isinstance(context["sections"][0]["rows"], pd.DataFrame)


def test_one_ministry_per_message() -> None:
    """Nothing leaks from one render to the next (no global state)."""
    first = _context("individualized")
    render("individualized", "ru", first)
    second = {
        **_context("individualized"),
        "ministry": "Министерство здравоохранения Республики Казахстан",
        "reference": "IR-20261123-HEALTH",
        "items": [{"external_id": "NPM-2026-0500", "facility": "РПБ", "text": "x", "due_on": date(2026, 9, 1)}],
    }
    r = render("individualized", "ru", second)
    assert "Министерство внутренних дел" not in r.text + r.html
    assert "NPM-2026-0042" not in r.text + r.html and "IR-20261123-INTERIOR" not in r.text + r.html


def test_format_date_and_period() -> None:
    assert format_date(date(2026, 3, 1)) == "01.03.2026"
    assert format_date(datetime(2026, 3, 1, 23, 30)) == "01.03.2026"
    assert format_date(datetime(2026, 2, 28, 20, 0, tzinfo=UTC)) == "01.03.2026"  # Asia/Almaty
    assert format_date("2026-03-01") == "01.03.2026"
    assert format_date("2026-03-01T10:00:00+05:00") == "01.03.2026"
    assert format_date(None) == "—" and format_date(pd.NaT) == "—"
    with pytest.raises(ValueError):
        format_date("01/03/2026")
    assert period(date(2026, 11, 16), date(2026, 11, 23)) == "16.11–23.11.2026"


def test_template_files_and_strings_are_complete() -> None:
    for language in LANGUAGES:
        for kind in KINDS + ADMIN_KINDS:
            assert (TEMPLATES_DIR / language / f"{kind}.txt").is_file()
            assert (TEMPLATES_DIR / language / f"{kind}.html").is_file()

    def shape(node: object) -> object:
        return {k: shape(v) for k, v in node.items()} if isinstance(node, dict) else None

    strings = {lang: yaml.safe_load(Path(TEMPLATES_DIR / lang / "strings.yaml").read_text("utf-8")) for lang in LANGUAGES}
    for language in LANGUAGES:
        assert set(strings[language]["subjects"]) == set(KINDS + ADMIN_KINDS)
        assert shape(strings[language]) == shape(strings["ru"]), f"{language}/strings.yaml has other keys than ru"


LETTER_KINDS = [(kind, language) for kind in ("reminder", "individualized") for language in LANGUAGES]


@pytest.mark.parametrize(("kind", "language"), LETTER_KINDS)
def test_a_letter_to_a_ministry_says_how_to_answer_it(kind: str, language: str) -> None:
    """The link (a real link in HTML), its last day, the reference to quote and who to call."""
    context = _context(kind, language)
    r = render(kind, language, context)
    reference = context["reference"]
    how = yaml.safe_load((TEMPLATES_DIR / language / "strings.yaml").read_text("utf-8"))["reply"]
    for body in (r.text, r.html):
        assert "21.02.2027" in body  # the link's last day
        assert body.count(reference) >= 3  # at the top, in the request and in "how to answer"
        for value in CONTACT.values():
            assert value in body
        assert ": ____" not in body  # no blank executor line left to fill by hand
    assert f"\n{REPLY_LINK}\n" in r.text  # on a line of its own: nothing glued to it when copied
    assert f'<a href="{REPLY_LINK}"' in r.html and f">{REPLY_LINK}</a>" in r.html
    assert how["until"].replace("{until}", "21.02.2027") in r.text
    assert how["letter"].replace("{reference}", reference) in r.text  # or answer by letter, quoting it


def test_the_reminder_names_its_reference_and_the_executor() -> None:
    r = render("reminder", "ru", _context("reminder"))
    assert "Исх. № REM-20261123-INTERIOR от 23.11.2026" in r.text
    assert ("Исполнитель: Ахметова Айгерим Серикқызы, главный эксперт Центра НПМ, тел. +7 (7172) 74-05-36, "
            "эл. почта npm@ombudsman.kz") in r.text
    assert r.text.index("КАК НАПРАВИТЬ ОТВЕТ") < r.text.index("СРОК ИСПОЛНЕНИЯ ИСТЕКАЕТ")  # before a long list
    en = render("individualized", "en", _context("individualized", "en"))
    assert "Officer in charge: Ахметова Айгерим Серикқызы" in en.text and '<a href="mailto:npm@ombudsman.kz">' in en.html


@pytest.mark.parametrize("language", LANGUAGES)
def test_level2_after_a_partial_reply_lists_answered_and_silent_items_apart(language: str) -> None:
    context = {**_context("level2", language), "answered": _answered()}
    r = render("level2", language, context)
    s = yaml.safe_load((TEMPLATES_DIR / language / "strings.yaml").read_text("utf-8"))
    labels, statuses = s["labels"], s["values"]["status"]
    silent_heading, answered_heading = f"{labels['no_reply'].upper()} (3)", f"{labels['replied'].upper()} (2)"
    assert r.text.index(silent_heading) < r.text.index("NPM-2026-0042") < r.text.index(answered_heading) < r.text.index("NPM-2026-0300")
    assert f">{labels['no_reply']} (3)</h2>" in r.html and f">{labels['replied']} (2)</h2>" in r.html
    assert f"{labels['current_status']}: {statuses['implemented']} ({labels['answered_on']} 10.11.2026)" in r.text
    assert f"{labels['current_status']}: {labels['awaiting_review']} ({labels['answered_on']} 12.11.2026)" in r.text
    assert str(escape(labels["awaiting_review"])) in r.html and statuses["implemented"] in r.html
    # it never says "no reply" of the letter as a whole
    silence = render("level2", language, _context("level2", language))
    for said_of_silence in (silence.subject, silence.text.splitlines()[3]):
        assert said_of_silence not in r.subject + r.text
    assert r.subject != silence.subject and "IR-20261020-INTERIOR" in r.subject


def test_level2_without_a_reply_is_as_before() -> None:
    r = render("level2", "ru", _context("level2"))
    assert r.subject == "Требуется решение: нет ответа на индивидуальную рекомендацию № IR-20261020-INTERIOR (" + MINISTRY["ru"] + ")"
    assert "в установленный срок не поступил" in r.text and "РЕКОМЕНДАЦИИ БЕЗ ОТВЕТА" not in r.text


def _strings_used(path: Path) -> tuple[set[str], set[tuple[str, ...]]]:
    """A template's context variables, and the strings.yaml keys it reads (`l.x` is `labels.x`)."""
    from jinja2 import meta, nodes

    from followup.notifications.render import _ENV  # its filters (d, dd) and globals

    tree = _ENV.parse(path.read_text("utf-8"))

    def chain(node: nodes.Node) -> list[str] | None:
        parts: list[str] = []
        while isinstance(node, (nodes.Getattr, nodes.Getitem)):
            if isinstance(node, nodes.Getattr):
                parts.append(node.attr)
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                parts.append(node.arg.value)
            else:
                return None
            node = node.node
        return [node.name, *reversed(parts)] if isinstance(node, nodes.Name) else None

    keys = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        names = chain(node)
        if names and names[0] in ("l", "labels"):
            keys.add(("labels", *names[1:]))
        elif names and names[0] == "strings" and len(names) > 1:
            keys.add(tuple(names[1:]))
    return meta.find_undeclared_variables(tree), keys


def test_every_language_has_the_same_templates_reading_the_same_keys() -> None:
    """A key or a variable used in one language only (or only in a branch no test renders, such as a
    partial reply's notice) fails here rather than in a letter."""
    strings = {lang: yaml.safe_load(Path(TEMPLATES_DIR / lang / "strings.yaml").read_text("utf-8")) for lang in LANGUAGES}
    names = {lang: sorted(p.name for p in (TEMPLATES_DIR / lang).iterdir() if p.suffix in (".txt", ".html")) for lang in LANGUAGES}
    assert names["kk"] == names["en"] == names["ru"]
    shared = [p for p in TEMPLATES_DIR.iterdir() if p.suffix in (".txt", ".html")]  # _macros, _base, _digest…
    for language in LANGUAGES:
        for path in [*(TEMPLATES_DIR / language / n for n in names[language]), *shared]:
            variables, keys = _strings_used(path)
            if path.parent.name == language:
                assert variables == _strings_used(TEMPLATES_DIR / "ru" / path.name)[0], f"{language}/{path.name}: other variables than ru"
            for key in keys:
                node: object = strings[language]
                for part in key:
                    assert isinstance(node, dict) and part in node, f"{path.name} reads {'.'.join(key)}: not in {language}/strings.yaml"
                    node = node[part]
    # the subject lines (Jinja strings in strings.yaml) read the same variables in every language
    from jinja2 import meta

    from followup.notifications.render import _ENV

    def subject_variables(language: str) -> dict[str, set[str]]:
        return {kind: meta.find_undeclared_variables(_ENV.parse(line)) for kind, line in strings[language]["subjects"].items()}

    assert subject_variables("kk") == subject_variables("en") == subject_variables("ru")


def _key_tree(node: object, path: str = "") -> set[str]:
    """Every key path of a strings.yaml (`labels.due_soon`, `report.months[]`), to compare languages."""
    if isinstance(node, dict):
        return {p for key, value in node.items() for p in {f"{path}{key}", *_key_tree(value, f"{path}{key}.")}}
    if isinstance(node, list):
        return {f"{path[:-1]}[{len(node)}]"}
    return set()


def test_every_text_a_letter_carries_exists_in_each_language() -> None:
    """A string present in one language's strings.yaml and missing in another, or a text of the
    configuration that letters print in one language only (the legal basis was one Russian string,
    so Kazakh letters carried a Russian paragraph), fails here."""
    from followup.config.loader import Names
    from followup.config.office import load_office
    from followup.config.policy import load_policy

    trees = {lang: _key_tree(yaml.safe_load((TEMPLATES_DIR / lang / "strings.yaml").read_text("utf-8"))) for lang in LANGUAGES}
    for language in LANGUAGES:
        assert not trees["ru"] - trees[language], f"{language}/strings.yaml lacks {sorted(trees['ru'] - trees[language])}"
        assert not trees[language] - trees["ru"], f"ru/strings.yaml lacks {sorted(trees[language] - trees['ru'])}"
    # what letters print from config/: every text has a version in each language
    policy, executor = load_policy(), load_office().executor
    for texts in (policy.legal_basis, executor.name, executor.position):
        assert isinstance(texts, Names) and all(texts.of(lang).strip() for lang in LANGUAGES)
    assert policy.legal_basis.of("kk") != policy.legal_basis.of("ru")
    assert not re.search(r"[ёЁ]|\b(и|в|с|по|обязаны)\b", policy.legal_basis.of("kk"))  # no Russian words in the Kazakh text


def test_a_new_executor_in_office_yaml_signs_the_next_letter_without_a_restart(tmp_path: Path) -> None:
    """`followup serve` and the web app live for weeks: the office changes its executor in
    config/office.yaml and the next letter they write names the new one."""
    import os

    from followup.config.office import office_contact
    from followup.config.settings import CONFIG_DIR

    office = tmp_path / "office.yaml"
    office.write_text((CONFIG_DIR / "office.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    assert office_contact("ru", str(office))["phone"] == "+7 (7172) 74-05-36"
    office.write_text(office.read_text(encoding="utf-8").replace("74-05-36", "74-05-37"), encoding="utf-8")
    later = office.stat().st_mtime_ns + 1_000_000_000
    os.utime(office, ns=(later, later))  # a coarse file system could give the edit the same time
    assert office_contact("ru", str(office))["phone"] == "+7 (7172) 74-05-37"
