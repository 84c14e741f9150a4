"""The demo's texts as a member of the office reads them: grammatical Russian and Kazakh, numbers a
visit report would carry. Today's bad examples ("24-разовым горячим питанием", "вакантны 17 ставки",
"Оборудовать камерах") are how the class was found; the checks below look for the class."""

from __future__ import annotations

import random
import re

import pytest

from followup.interfaces.demo_data import COUNTED, KK, RU, TYPES, generate, plural_ru, render

YEAR = 2026
KAZAKH = re.compile("[әғқңөұүһі]", re.IGNORECASE)
#: what the office saw in the demo before: none may come back
SEEN_WRONG = ("24-разовым горячим питанием", "34 рет ыстық тамақ", "прогулку не менее 24 часа",
              "вакантны 17 ставки", "Оборудовать камерах", "3 оконных блоков")
#: wrong-case or wrong-number patterns of the same class
WRONG_PATTERNS = (
    r"\d+-разов",  # meals counted in digits glued to an adjective
    r"Оборудовать (в )?\w+(ах|ях)\b",  # "Оборудовать камерах": the object is accusative
    r"Обеспечить (задержанных|осужденных|пациентов|воспитанников) возможность",  # dative needed
    r"\b1 \w+(ов|ей|ок)\b",  # "1 санузлов", "1 рабочих дней"
    r"\b(1[1-4]|[5-9]) (вакантные|оконных блока|санузла|лейки|месяца)\b",  # 2–4 form after 5+
    r"вакантн\w+ \d+ ставк",  # the count goes before the noun phrase
)
#: a reader's bounds: (what the number counts, smallest, largest)
PLAUSIBLE = (
    (r"не менее (\d+) час", 1, 4),  # a daily walk
    (r"тәулігіне (\d+) рет", 2, 6),  # hot meals a day
    (r"(\d+) рет ыстық тамақ", 2, 6),
    (r"хранить записи не менее (\d+) сут", 30, 90),  # body-camera video
    (r"в течение (\d+) час", 1, 72),  # medical examination on admission
    (r"(\d+) сағат ішінде", 1, 72),
    (r"не реже (\d+) раз", 1, 8),  # calls a month
    (r"айына кемінде (\d+) рет", 1, 8),
    (r"(\d+) вакантн", 1, 10),
    (r"(\d+) бос штат", 1, 10),
    (r"(\d+) кв\. м", 2, 10),  # living space per person
    (r"(\d+) академических час", 2, 72),
    (r"(\d+) оконн", 1, 20),
    (r"(\d+) терезе", 1, 20),
    (r"(\d+) санузл", 1, 6),
    (r"(\d+) санитариялық торап", 1, 6),
    (r"в течение (\d+) календарн", 3, 60),
    (r"не более (\d+) рабоч", 1, 30),
    (r"раза? в (\d+) месяц", 1, 12),
    (r"\((\d+) шт\.\)", 1, 120),
)
#: the reader's Russian: how each counted noun reads after 1, 3 and 5 (and 12, 21, 22)
READ_AS = {
    "windows": {1: "оконный блок", 3: "оконных блока", 5: "оконных блоков", 12: "оконных блоков"},
    "toilets": {1: "санузел", 3: "санузла", 5: "санузлов"},
    "showers": {1: "лейку", 3: "лейки", 5: "леек"},
    "vacancies": {1: "вакантную ставку", 3: "вакантные ставки", 5: "вакантных ставок"},
    "months": {1: "месяц", 3: "месяца", 6: "месяцев"},
    "training_hours": {1: "академический час", 4: "академических часа", 8: "академических часов",
                       24: "академических часа"},
    "rooms": {1: "помещения", 3: "помещений", 5: "помещений", 21: "помещения"},
    "walk_hours": {1: "часа", 2: "часов", 21: "часа"},
    "exam_hours": {1: "часа", 12: "часов", 24: "часов"},
    "trainees": {1: "сотрудника", 3: "сотрудников", 21: "сотрудника", 22: "сотрудников"},
    "calls": {1: "раза", 2: "раз", 5: "раз"},
    "report_days": {1: "календарного дня", 10: "календарных дней", 21: "календарного дня"},
    "complaint_days": {1: "рабочего дня", 5: "рабочих дней", 21: "рабочего дня"},
}


def every_text() -> list[str]:
    """The demo's 3,050 texts, and every template rendered for every facility type with many draws."""
    texts = list(generate(year=YEAR).recommendations["text"])
    for table in (RU, KK):
        for templates in table.values():
            for template, _done in templates:
                for ftype in TYPES:
                    texts += [render(template, random.Random(seed), ftype, YEAR) for seed in range(12)]
    return texts


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return every_text()


def test_russian_counts_agree_with_their_nouns():
    stavka = ("ставка", "ставки", "ставок")
    expected = {0: "ставок", 1: "ставка", 2: "ставки", 4: "ставки", 5: "ставок", 11: "ставок", 12: "ставок",
                14: "ставок", 20: "ставок", 21: "ставка", 22: "ставки", 25: "ставок", 101: "ставка", 111: "ставок",
                112: "ставок", 122: "ставки"}
    assert {n: plural_ru(n, stavka) for n in expected} == expected
    for slot, readings in READ_AS.items():
        assert {n: plural_ru(n, COUNTED[slot].forms) for n in readings} == readings, slot


def test_no_text_carries_what_the_office_saw_wrong(texts):
    for text in texts:
        for wrong in SEEN_WRONG:
            assert wrong not in text
        for pattern in WRONG_PATTERNS:
            assert not re.search(pattern, text), f"{pattern!r} in {text!r}"


def test_each_count_agrees_with_the_noun_it_counts(texts):
    """The inverse of plural_ru: a number followed by any form of a slot's noun must be followed by the
    form plural_ru gives for that number; and no number in a text escapes these checks."""
    nouns: dict[tuple[str, str, str], set[int]] = {}  # slots counting the same noun ("часа", "часов") share it
    for counted in COUNTED.values():
        nouns.setdefault(counted.forms, set()).update(counted.values)
    ordered = sorted(nouns.items(), key=lambda kv: -max(map(len, kv[0])))  # "академических часов" before "часов"
    for text in texts:
        rest = re.sub(rf"\b({YEAR}|{YEAR + 1}) (год|жыл)", "", text)
        rest = re.sub(r"\(\d+ шт\.\)|в количестве \d+ шт\.", "", rest)
        for forms, values in ordered:
            either = "|".join(re.escape(f) for f in sorted(set(forms), key=len, reverse=True))
            for match in re.finditer(rf"\b(\d+) ({either})(?!\w)", rest):
                n, said = int(match.group(1)), match.group(2)
                assert said == plural_ru(n, forms), f"'{n} {said}' in {text!r}: {plural_ru(n, forms)!r} expected"
                assert n in values, f"{n} {said} in {text!r}"
            rest = re.sub(rf"\b\d+ ({either})(?!\w)", "", rest)
        assert not re.search(r"\d", rest), f"a number no check covers: {text!r}"


def test_every_number_is_one_a_visit_report_would_carry(texts):
    for text in texts:
        for pattern, low, high in PLAUSIBLE:
            for found in re.findall(pattern, text):
                assert low <= int(found) <= high, f"{pattern!r}: {found} in {text!r}"
        numbers = [int(n) for n in re.findall(r"\d+", text) if int(n) not in (YEAR, YEAR + 1)]
        assert all(n <= 300 for n in numbers), text


def test_kazakh_keeps_the_noun_singular_after_a_number(texts):
    kazakh = [t for t in texts if KAZAKH.search(t)]
    assert len(kazakh) > 500
    plural = re.compile(r"(лар|лер|дар|дер|тар|тер)(ы|і|ын|ін|ды|ді|ға|ге|да|де|дың|дің|ның|нің)?$")
    for text in kazakh:
        for phrase in re.findall(r"\b\d+((?: [\w-]+){1,3})", text):  # the counted noun phrase
            for word in phrase.split():
                assert not plural.search(word), f"'{word}' after a number in {text!r}"
    assert any("тәулігіне 3 рет ыстық тамақ" in t for t in kazakh)
    assert any(re.search(r"\b3 терезе блогын", t) for t in kazakh)


def test_meals_and_walks_follow_the_facility():
    """Children eat five times a day, hospitals and care homes four, detention three; Russian says it in
    words ("трехразовым"), Kazakh in digits before "рет"."""
    for ftype, meals in (("childrens_home", "пятиразовым"), ("psychiatric_hospital", "четырехразовым"),
                         ("police_temporary_detention", "трехразовым")):
        template = RU["food"][0][0]
        assert meals in render(template, random.Random(1), ftype, YEAR)
    assert "тәулігіне 5 рет" in render(KK["food"][0][0], random.Random(1), "special_school", YEAR)
    walks = {render(RU["detention_conditions"][4][0], random.Random(seed), "prison", YEAR) for seed in range(40)}
    assert {re.search(r"не менее (\d+ \w+)", w).group(1) for w in walks} == {"1 часа", "2 часов"}  # type: ignore[union-attr]


def test_replies_and_names_read_right():
    data = generate(year=YEAR)
    names = data.facilities["name"]
    assert not names.str.contains(r"№\d+.*№\d+|\(\d+\)$|района г\. \w+ №").any()
    assert names.str.fullmatch(r"ИВС (ОП №\d+ )?УП \S+ района г\. (Астана|Алматы|Шымкент)").sum() > 20
    replies = data.responses.merge(data.recommendations[["external_id", "category", "text"]], on="external_id")
    for reply in replies.itertuples():
        assert re.fullmatch(r"Письмо [А-Я]+ №\d+-\d+/\d+ от \d\d\.\d\d\.\d{4}: [а-яё].+", reply.note), reply.note
        for sheets in re.findall(r"(\d+) л\.", reply.evidence):
            assert 1 <= int(sheets) <= 20, reply.evidence
    done = replies[replies["status"] == "implemented"]
    # a reply names the work its recommendation asked for (not "training held" for a purchase)
    bought = done[done["text"].str.startswith("Закупить")]
    assert len(bought) and bought["note"].str.contains("закупка произведена").all()
    assert not done[done["category"] == "procurement"]["evidence"].str.contains("Протокол обучения").any()
