"""Deterministic demo data modelled on the 2023 NPM report of Kazakhstan.

Why: the tracker needs a realistic, reproducible data set (474 facilities,
461 visits, ~3,000 recommendations, ~40 % implemented) for demos, import tests
and benchmarks without touching real, sensitive reports.  Everything is drawn
from one ``random.Random(seed)`` so equal arguments give equal frames.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

# region -> (centre, other towns, population in millions); weights spread facilities.
REGIONS: dict[str, tuple[str, tuple[str, ...], float]] = {
    "Абайская область": ("Семей", ("Аягоз", "Курчатов"), 0.6),
    "Акмолинская область": ("Кокшетау", ("Степногорск", "Щучинск"), 0.8),
    "Актюбинская область": ("Актобе", ("Хромтау", "Кандыагаш"), 0.9),
    "Алматинская область": ("Конаев", ("Каскелен", "Есик", "Талгар"), 1.5),
    "Атырауская область": ("Атырау", ("Кульсары",), 0.7),
    "Восточно-Казахстанская область": ("Усть-Каменогорск", ("Риддер", "Зайсан"), 0.7),
    "Жамбылская область": ("Тараз", ("Шу", "Каратау"), 1.2),
    "Жетысуская область": ("Талдыкорган", ("Текели", "Жаркент"), 0.7),
    "Западно-Казахстанская область": ("Уральск", ("Аксай",), 0.7),
    "Карагандинская область": ("Караганда", ("Темиртау", "Балхаш", "Шахтинск"), 1.1),
    "Костанайская область": ("Костанай", ("Рудный", "Лисаковск"), 0.8),
    "Кызылординская область": ("Кызылорда", ("Аральск", "Казалинск"), 0.8),
    "Мангистауская область": ("Актау", ("Жанаозен",), 0.8),
    "Павлодарская область": ("Павлодар", ("Экибастуз", "Аксу"), 0.75),
    "Северо-Казахстанская область": ("Петропавловск", ("Булаево",), 0.55),
    "Туркестанская область": ("Туркестан", ("Кентау", "Сарыагаш", "Арысь"), 2.1),
    "Улытауская область": ("Жезказган", ("Сатпаев",), 0.25),
    "г. Астана": ("Астана", (), 1.4),
    "г. Алматы": ("Алматы", (), 2.2),
    "г. Шымкент": ("Шымкент", (), 1.2),
}
CITY_DISTRICTS = {
    "г. Астана": ("Алматинского", "Есильского", "Сарыаркинского", "Байконурского", "Нуринского"),
    "г. Алматы": ("Алмалинского", "Ауэзовского", "Бостандыкского", "Жетысуского",
                  "Медеуского", "Наурызбайского", "Турксибского", "Алатауского"),
    "г. Шымкент": ("Абайского", "Аль-Фарабийского", "Енбекшинского", "Каратауского", "Туранского"),
}

# type -> (count, ministry, RU place, RU persons (gen.), RU staff (gen.), KK place, KK persons (gen.))
TYPES: dict[str, tuple[int, str, str, str, str, str, str]] = {
    "police_temporary_detention": (190, "interior", "камерах ИВС", "задержанных", "сотрудников ИВС",
                                   "уақытша ұстау изоляторының камераларында", "ұсталғандардың"),
    "pre_trial_detention": (23, "interior", "камерах следственного изолятора", "подследственных",
                            "сотрудников СИЗО", "тергеу изоляторының камераларында", "тергеудегі адамдардың"),
    "prison": (80, "interior", "жилых секциях учреждения", "осужденных", "персонала учреждения",
               "тұрғын секцияларда", "сотталғандардың"),
    "psychiatric_hospital": (25, "health", "палатах отделений", "пациентов", "медицинского персонала",
                             "бөлімшелердің палаталарында", "пациенттердің"),
    "social_care_home": (70, "labour", "жилых комнатах", "получателей услуг", "персонала центра",
                         "тұрғын бөлмелерде", "қызмет алушылардың"),
    "childrens_home": (40, "education", "спальных комнатах", "воспитанников", "педагогов и воспитателей",
                       "жатын бөлмелерде", "тәрбиеленушілердің"),
    "special_school": (15, "education", "спальном корпусе", "учащихся", "педагогов школы",
                       "жатақхана корпусында", "оқушылардың"),
    "military_guardhouse": (30, "defence", "камерах гауптвахты", "военнослужащих", "командиров подразделений",
                            "гауптвахта камераларында", "әскери қызметшілердің"),
    "other": (1, "interior", "камерах спецприемника", "арестованных в административном порядке",
              "сотрудников спецприемника", "арнайы қабылдау орнының камераларында", "қамалғандардың"),
}
NSC_REGIONS = ("г. Астана", "г. Алматы", "Карагандинская область")  # pre-trial centres run by the NSC
NSC_PRE_TRIAL = len(NSC_REGIONS)
PRISON_CODES = ("ЕЦ-166", "АП-162", "АК-159", "ЛА-155", "УК-161", "ЖД-158", "КА-168", "ОВ-156")

CATEGORY_WEIGHTS = {
    "detention_conditions": 22, "procurement": 19, "legal_training": 15, "medical_care": 16,
    "sanitary_standards": 13, "food": 4, "contact_with_outside_world": 3, "complaints_procedure": 3,
    "staff_conduct": 3, "accessibility": 2,
}
_OBJ = ("матрасы", "одеяла", "комплекты постельного белья", "средства личной гигиены", "холодильники",
        "стиральные машины", "электрочайники", "настольные игры и книги", "бахилы и халаты")
_DRUG = ("антибиотики", "инсулин", "противотуберкулезные препараты", "обезболивающие средства",
         "перевязочный материал")
_TOPIC = ("Предупреждение пыток и жестокого обращения", "Стамбульский протокол",
          "Права лиц, лишенных свободы", "Правила Нельсона Манделы", "Деэскалация конфликтов")
RU: dict[str, tuple[str, ...]] = {
    "detention_conditions": (
        "Обеспечить естественное освещение и приточную вентиляцию в {place}; заменить {n} оконных блоков.",
        "Провести текущий ремонт {n} помещений, используемых для содержания {who}, устранить сырость и грибок.",
        "Обеспечить в {place} не менее {m} кв. м жилой площади на одного человека.",
        "Оборудовать {place} кнопками вызова дежурного и индивидуальными спальными местами ({n} шт.).",
        "Обеспечить ежедневную прогулку {who} продолжительностью не менее {h} часа на оборудованной площадке."),
    "procurement": (
        "Закупить {obj} в количестве {n} шт. для нужд {who}.",
        "Предусмотреть в бюджете на {next} год средства на приобретение: {obj}.",
        "Заменить изношенный инвентарь в {place}: {obj} ({n} ед.)."),
    "legal_training": (
        "Провести для {staff} обучение по теме «{topic}» с охватом не менее {n} сотрудников.",
        "Разместить в {place} памятки о правах {who} на казахском и русском языках.",
        'Привести локальные акты в соответствие с приказом "Об утверждении Правил внутреннего '
        'распорядка" и ознакомить с ними {who}.',
        "Включить в программу повышения квалификации {staff} модуль «{topic}» ({h} академ. часов)."),
    "medical_care": (
        "Обеспечить медицинскую часть необходимыми лекарственными средствами, в том числе: {drug}.",
        "Обеспечить медицинский осмотр {who} в течение {h} часов с момента поступления и фиксацию телесных повреждений.",
        "Укомплектовать штат медицинских работников: вакантны {n} ставки.",
        "Организовать осмотр {who} врачом-психиатром и стоматологом не реже одного раза в {m} месяцев."),
    "sanitary_standards": (
        "Оборудовать санузлы в {place} приватными перегородками и обеспечить круглосуточный доступ к воде.",
        "Обеспечить помывку {who} не реже одного раза в неделю и отремонтировать душевую на {n} леек.",
        "Провести дезинсекцию и дератизацию помещений, акт представить в НПМ в течение {h} дней.",
        "Устранить в {place} нарушения санитарных норм: протечки кровли, отсутствие горячей воды."),
    "food": (
        "Обеспечить {who} {n}-разовым горячим питанием в соответствии с утвержденными нормами.",
        "Организовать диетическое питание для {who} с хроническими заболеваниями."),
    "contact_with_outside_world": (
        "Обеспечить {who} возможность звонков родственникам не реже {n} раз в месяц.",
        "Оборудовать комнату для свиданий и обеспечить конфиденциальность встреч с адвокатом."),
    "complaints_procedure": (
        "Установить в {place} ящики для жалоб, недоступные персоналу, и вскрывать их с участием прокурора.",
        "Вести журнал жалоб {who} и рассматривать их в срок не более {h} дней."),
    "staff_conduct": (
        "Провести служебную проверку по сообщениям о применении физической силы и сообщить о результатах в НПМ.",
        "Оснастить персонал нагрудными видеорегистраторами ({n} шт.) и хранить записи не менее {h} суток."),
    "accessibility": (
        "Обеспечить доступ лиц с инвалидностью: установить пандус и поручни, адаптировать {n} санузла.",),
}
KK: dict[str, tuple[str, ...]] = {
    "detention_conditions": ("{kplace} табиғи жарық пен желдетуді қамтамасыз ету, {n} терезе блогын ауыстыру.",
                             "{kplace} {n} үй-жайға ағымдағы жөндеу жүргізу, ылғал мен зеңді жою."),
    "procurement": ("{kwho} қажеттіліктері үшін {n} жиынтық төсек-орын жабдықтарын сатып алу.",
                    "{next} жылға арналған бюджетте матрастар мен көрпелер сатып алуға қаражат қарастыру."),
    "legal_training": ("Қызметкерлер үшін «Азаптаудың алдын алу» тақырыбында оқыту өткізу, кемінде {n} қызметкерді қамту.",
                       "{kplace} {kwho} құқықтары туралы жадынаманы қазақ және орыс тілдерінде орналастыру."),
    "medical_care": ("Медициналық бөлімді қажетті дәрі-дәрмекпен қамтамасыз ету, {n} атау бойынша қорды толықтыру.",
                     "{kwho} түскен сәттен бастап {h} сағат ішінде медициналық тексеруден өтуін қамтамасыз ету.",
                     "Медицина қызметкерлерінің бос {n} штат бірлігін толықтыру."),
    "sanitary_standards": ("Санитариялық тораптарды қалқалармен жабдықтау және суға тәулік бойы қолжетімділікті қамтамасыз ету.",
                           "{kwho} аптасына кемінде бір рет жуынуын қамтамасыз ету, {n} душ торын жөндеу."),
    "food": ("{kwho} тамақтану сапасын жақсарту, күніне {n} рет ыстық тамақ беру.",),
    "contact_with_outside_world": ("{kwho} туыстарымен айына кемінде {n} рет телефон арқылы сөйлесуін қамтамасыз ету.",),
    "complaints_procedure": ("{kplace} шағымдарға арналған жәшіктер орнату және оларды прокурордың қатысуымен ашу.",),
    "staff_conduct": ("Күш қолдану фактілері бойынша қызметтік тексеру жүргізу және нәтижесі туралы ҰАМ-ға хабарлау.",),
    "accessibility": ("Мүмкіндігі шектеулі адамдар үшін пандус пен тұтқалар орнату, {n} санитариялық торапты бейімдеу.",),
}
TAIL_RU = ("Информацию об исполнении направить в НПМ.", "О принятых мерах сообщить Уполномоченному по правам человека.")
TAIL_KK = "Орындалуы туралы ақпаратты ҰАМ-ға жіберу."

MINISTRY_ABBR = {"interior": "МВД", "health": "МЗ", "education": "МП", "labour": "МТСЗН",
                 "defence": "МО", "nsc": "КНБ"}
DONE = {"detention_conditions": "выполнен ремонт помещений", "procurement": "закуплены матрасы и постельное белье",
        "legal_training": "проведено обучение персонала", "medical_care": "аптечный запас пополнен",
        "sanitary_standards": "проведена санитарная обработка", "food": "рацион питания пересмотрен",
        "contact_with_outside_world": "установлен таксофон", "complaints_procedure": "установлены ящики для жалоб",
        "staff_conduct": "проведена служебная проверка", "accessibility": "установлен пандус"}
OTHER_NOTE = {"partially_implemented": "работы выполнены частично, завершение запланировано на {next} год",
              "rejected": "рекомендация не принята в связи с отсутствием финансирования",
              "in_progress": "вопрос включен в бюджетную заявку на {next} год"}
# raw shares sit above the targets (40/8/3/15 %) because replies after 20 November are dropped
RESPONSE_P = {"implemented": 47, "partially_implemented": 9, "rejected": 3.5, "in_progress": 16.5, "": 24}

KZ_NAMES = (("Айгуль", "Гульнара", "Динара", "Жанар", "Сауле", "Асель"),
            ("Ерлан", "Нурлан", "Асхат", "Данияр", "Бауыржан", "Канат"),
            ("Сарсенов", "Ахметов", "Жумабаев", "Касымов", "Нурпеисов", "Исабеков", "Омаров"))
RU_NAMES = (("Елена", "Ольга", "Наталья", "Татьяна"), ("Игорь", "Сергей", "Андрей", "Виктор"),
            ("Иванов", "Соколов", "Кузнецов", "Ким*", "Петренко*"))  # '*' = same form for both sexes

FACILITY_COLUMNS = ["name", "facility_type", "region", "ministry"]
VISIT_COLUMNS = ["visit_id", "date", "kind", "facility", "team"]
REC_COLUMNS = ["external_id", "text", "issued_on", "due_on", "ministry", "facility", "facility_type",
               "region", "category", "source", "mechanism_ref", "priority", "visit_id"]
RESPONSE_COLUMNS = ["external_id", "status", "responded_on", "note", "evidence"]


@dataclass(frozen=True)
class DemoData:
    """The four frames an NPM import works with; every cell is a plain ``str``."""

    facilities: pd.DataFrame
    visits: pd.DataFrame
    recommendations: pd.DataFrame
    responses: pd.DataFrame


def _facility_name(rng: random.Random, ftype: str, region: str, seq: int, nsc: bool) -> str:
    """Realistic Russian name; ``seq`` numbers facilities of one type within one region."""
    centre, towns, _ = REGIONS[region]
    town = rng.choice((centre,) + towns)
    code = PRISON_CODES[list(REGIONS).index(region) % len(PRISON_CODES)]
    if ftype == "police_temporary_detention":
        if region in CITY_DISTRICTS:
            districts = CITY_DISTRICTS[region]
            return f"ИВС ОП {districts[(seq - 1) % len(districts)]} района {region}"
        if seq == 1:
            return f"ИВС ДП {region.replace('ая область', 'ой области')}"
        return f"ИВС ОП №{seq} г. {town} ({region})"
    if ftype == "pre_trial_detention":
        return f"Следственный изолятор КНБ, г. {centre}" if nsc else f"Учреждение {code}/{seq + 17} (СИЗО, {region})"
    if ftype == "prison":
        return f"Учреждение {code}/{seq} ({region})"
    if ftype == "psychiatric_hospital":
        level = "Городская" if region.startswith("г. ") else "Областная"
        return (f"{level} психиатрическая больница, г. {centre}" if seq == 1
                else f"Центр психического здоровья №{seq}, г. {centre}")
    if ftype == "social_care_home":
        kind = rng.choice(("Центр оказания специальных социальных услуг", "Дом-интернат для лиц с инвалидностью"))
        return f"{kind} №{seq}, г. {town}"
    if ftype == "childrens_home":
        return f"Детский дом №{seq}, г. {town}"
    if ftype == "special_school":
        return f"Специальная школа-интернат для детей с девиантным поведением №{seq}, г. {centre}"
    if ftype == "military_guardhouse":
        return f"Гауптвахта воинской части {rng.randint(1000, 99999)}"
    return f"Специальный приемник УП г. {centre}"


def _facilities(rng: random.Random) -> list[dict[str, str]]:
    """474 facilities spread over regions by population, with unique names."""
    regions, weights = list(REGIONS), [v[2] for v in REGIONS.values()]
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    counters: dict[tuple[str, str], int] = {}
    for ftype, (count, ministry, *_rest) in TYPES.items():
        for i in range(count):
            nsc = ftype == "pre_trial_detention" and i < NSC_PRE_TRIAL
            region = NSC_REGIONS[i] if nsc else rng.choices(regions, weights)[0]
            seq = counters[(ftype, region)] = counters.get((ftype, region), 0) + 1
            base = name = _facility_name(rng, ftype, region, seq, nsc)
            k = 1
            while name in seen:
                k += 1
                name = f"{base} №{k}" if "№" not in base else f"{base} ({k})"
            seen.add(name)
            rows.append({"name": name, "facility_type": ftype, "region": region,
                         "ministry": "nsc" if nsc else ministry})
    return rows


def _roster(rng: random.Random) -> list[str]:
    """A fixed pool of NPM participants (mixed Kazakh and Russian names)."""
    people: set[str] = set()
    while len(people) < 36:
        female, male, surnames = rng.choice((KZ_NAMES, KZ_NAMES, RU_NAMES))
        is_f = rng.random() < 0.6
        surname = rng.choice(surnames)
        surname = surname[:-1] if surname.endswith("*") else surname + ("а" if is_f else "")
        people.add(f"{rng.choice(female if is_f else male)} {surname}")
    return sorted(people)


def _visits(rng: random.Random, year: int, names: list[str]) -> list[dict[str, str]]:
    """461 visits on working days mid-January..mid-October; follow-ups revisit earlier facilities."""
    start, end = date(year, 1, 15), date(year, 10, 15)
    workdays = [d for k in range((end - start).days + 1) if (d := start + timedelta(days=k)).weekday() < 5]
    dates = sorted(rng.choices(workdays, k=461))
    follow = set(rng.sample(range(150, 461), 6))
    special = set(rng.sample([i for i in range(461) if i not in follow], 33))
    targets, roster = iter(rng.sample(names, 461 - len(follow))), _roster(rng)
    rows: list[dict[str, str]] = []
    for i, when in enumerate(dates):
        if i in follow:
            earlier = [r["facility"] for r in rows if r["kind"] != "follow_up" and r["date"] < when.isoformat()]
            kind, facility = "follow_up", rng.choice(earlier)
        else:
            kind, facility = ("special" if i in special else "planned"), next(targets)
        team = "; ".join(rng.sample(roster, rng.randint(2, 4)))
        rows.append({"visit_id": f"NPM-{year}-{i + 1:04d}", "date": when.isoformat(), "kind": kind,
                     "facility": facility, "team": team})
    return rows


def _text(rng: random.Random, ftype: str, category: str, year: int) -> str:
    """One recommendation sentence; ~20 % Kazakh, a few with a second line."""
    _, _, place, who, staff, kplace, kwho = TYPES[ftype]
    kazakh = rng.random() < 0.2
    template = rng.choice(KK[category] if kazakh else RU[category])
    text = template.format(place=place, who=who, staff=staff, kplace=kplace, kwho=kwho, next=year + 1,
                           n=rng.randint(2, 40), m=rng.choice((2, 3, 4, 6)), h=rng.choice((1, 2, 3, 24, 30)),
                           obj=", ".join(rng.sample(_OBJ, rng.randint(1, 2))), drug=rng.choice(_DRUG),
                           topic=rng.choice(_TOPIC))
    text = text[0].upper() + text[1:]
    if rng.random() < 0.01:
        text += "\n" + (TAIL_KK if kazakh else rng.choice(TAIL_RU))
    return text


def _recommendations(rng: random.Random, year: int, total: int, visits: list[dict[str, str]],
                     facilities: dict[str, dict[str, str]]) -> list[dict[str, str]]:
    """Spread ``total`` items over visits (at least one each); one report date per visit."""
    weight = {"planned": 1.0, "special": 0.7, "follow_up": 0.4}
    counts = [1 if i < total else 0 for i in range(len(visits))]
    for i in rng.choices(range(len(visits)), [weight[v["kind"]] * rng.uniform(0.4, 1.6) for v in visits],
                         k=max(total - len(visits), 0)):
        counts[i] += 1
    categories, cat_weights = list(CATEGORY_WEIGHTS), list(CATEGORY_WEIGHTS.values())
    rows: list[dict[str, str]] = []
    for visit, count in zip(visits, counts, strict=True):
        fac = facilities[visit["facility"]]
        issued = date.fromisoformat(visit["date"]) + timedelta(days=rng.randint(5, 20))
        for item in range(1, count + 1):
            roll, category = rng.random(), rng.choices(categories, cat_weights)[0]
            term = rng.choice((30, 60)) if roll < 0.20 else 90  # explicit short deadline for ~15 %
            due = "" if roll < 0.05 else (issued + timedelta(days=term)).isoformat()
            priority = rng.choices(("low", "normal", "high", "urgent"), (10, 72, 15, 3))[0]
            rows.append({"external_id": f"{visit['visit_id']}-{item:02d}",
                         "text": _text(rng, fac["facility_type"], category, year),
                         "issued_on": issued.isoformat(), "due_on": due, "ministry": fac["ministry"],
                         "facility": fac["name"], "facility_type": fac["facility_type"], "region": fac["region"],
                         "category": category, "source": "npm_visit", "mechanism_ref": visit["visit_id"],
                         "priority": priority, "visit_id": visit["visit_id"]})
    for i in rng.sample(range(len(rows)), min(10, len(rows))):
        rows[i]["ministry"] = ""  # left to the office to assign
    return rows


def _responses(rng: random.Random, year: int, recs: list[dict[str, str]]) -> list[dict[str, str]]:
    """Ministry replies up to ``{year}-11-20``; later replies are dropped and the item stays open."""
    cutoff, rows = date(year, 11, 20), []
    for rec in recs:
        status = rng.choices(list(RESPONSE_P), list(RESPONSE_P.values()))[0]
        if not status or not rec["ministry"]:
            continue
        responded = date.fromisoformat(rec["issued_on"]) + timedelta(days=round(rng.triangular(0, 120, 40)))
        if responded > cutoff:
            continue
        action = DONE[rec["category"]] if status == "implemented" else OTHER_NOTE[status].format(next=year + 1)
        note = (f"Письмо {MINISTRY_ABBR[rec['ministry']]} №{rng.randint(1, 40)}-{rng.randint(1, 12)}/"
                f"{rng.randint(100, 9999)} от {responded:%d.%m.%Y}: {action}")
        evidence = ""
        if status in ("implemented", "partially_implemented") and rng.random() < 0.75:
            evidence = rng.choice(("Акт выполненных работ №{n}", "Накладная №{n}", "Фотоотчет, {n} л.",
                                   "Протокол обучения №{n}")).format(n=rng.randint(1, 480))
        rows.append({"external_id": rec["external_id"], "status": status, "responded_on": responded.isoformat(),
                     "note": note, "evidence": evidence})
    return rows


def generate(*, year: int = 2026, seed: int = 2023, recommendations: int = 3050) -> DemoData:
    """Build the demo data set; the same arguments always give equal frames."""
    rng = random.Random(seed)
    facilities = _facilities(rng)
    visits = _visits(rng, year, [f["name"] for f in facilities])
    recs = _recommendations(rng, year, recommendations, visits, {f["name"]: f for f in facilities})
    recs.sort(key=lambda r: r["external_id"])
    responses = _responses(rng, year, recs)
    return DemoData(facilities=pd.DataFrame(facilities, columns=FACILITY_COLUMNS),
                    visits=pd.DataFrame(visits, columns=VISIT_COLUMNS),
                    recommendations=pd.DataFrame(recs, columns=REC_COLUMNS),
                    responses=pd.DataFrame(responses, columns=RESPONSE_COLUMNS))


def main() -> None:
    """Print shapes, samples and the key distributions for a quick eyeball check."""
    data = generate()
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 60):
        for name in ("facilities", "visits", "recommendations", "responses"):
            frame = getattr(data, name)
            print(f"== {name} {frame.shape}\n{frame.sample(3, random_state=1)}\n")
        print(data.facilities["facility_type"].value_counts(), "\n")
        print(data.visits["kind"].value_counts(), "\n")
        print(data.responses["status"].value_counts(), "\n")


if __name__ == "__main__":
    main()
