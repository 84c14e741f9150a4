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
from string import Formatter
from typing import NamedTuple

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

class FacilityType(NamedTuple):
    """How the texts name one type of facility: the Russian phrases in the case each template needs
    (``place`` after "в", ``place_acc`` after "Оборудовать"/"Заменить"), the Kazakh ones in the
    locative and the genitive."""

    facilities: int  # how many the country has
    ministry: str
    place: str  # RU prepositional: "в камерах ИВС"
    place_acc: str  # RU accusative: "Оборудовать камеры ИВС"
    who: str  # RU genitive plural (= accusative for persons): "прогулку задержанных"
    staff: str  # RU genitive: "для сотрудников ИВС"
    kplace: str  # KK locative: "камераларында"
    kwho: str  # KK genitive: "ұсталғандардың"


TYPES: dict[str, FacilityType] = {
    "police_temporary_detention": FacilityType(
        190, "interior", "камерах ИВС", "камеры ИВС", "задержанных", "сотрудников ИВС",
        "уақытша ұстау изоляторының камераларында", "ұсталғандардың"),
    "pre_trial_detention": FacilityType(
        23, "interior", "камерах следственного изолятора", "камеры следственного изолятора", "подследственных",
        "сотрудников СИЗО", "тергеу изоляторының камераларында", "тергеудегі адамдардың"),
    "prison": FacilityType(
        80, "interior", "жилых секциях учреждения", "жилые секции учреждения", "осужденных",
        "персонала учреждения", "тұрғын секцияларда", "сотталғандардың"),
    "psychiatric_hospital": FacilityType(
        25, "health", "палатах отделений", "палаты отделений", "пациентов", "медицинского персонала",
        "бөлімшелердің палаталарында", "пациенттердің"),
    "social_care_home": FacilityType(
        70, "labour", "жилых комнатах", "жилые комнаты", "получателей услуг", "персонала центра",
        "тұрғын бөлмелерде", "қызмет алушылардың"),
    "childrens_home": FacilityType(
        40, "education", "спальных комнатах", "спальные комнаты", "воспитанников", "педагогов и воспитателей",
        "жатын бөлмелерде", "тәрбиеленушілердің"),
    "special_school": FacilityType(
        15, "education", "спальном корпусе", "спальный корпус", "учащихся", "педагогов школы",
        "жатақхана корпусында", "оқушылардың"),
    "military_guardhouse": FacilityType(
        30, "defence", "камерах гауптвахты", "камеры гауптвахты", "военнослужащих", "командиров подразделений",
        "гауптвахта камераларында", "әскери қызметшілердің"),
    "other": FacilityType(
        1, "interior", "камерах спецприемника", "камеры спецприемника", "арестованных в административном порядке",
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


def plural_ru(n: int, forms: tuple[str, str, str]) -> str:
    """The form of a Russian noun phrase that agrees with the number ``n``.

    Why: a count written in digits still governs its noun ("1 оконный блок", "3 оконных блока",
    "5 оконных блоков"; after "не менее": "1 часа", "2 часов"), and a wrong ending is the first thing a
    reader of the demo notices. ``forms`` are the phrase after 1 / after 2–4 / after 5–20 in the case the
    template puts it in; 11–14 take the third form, 21 the first, 22–24 the second.
    """
    if n % 10 == 1 and n % 100 != 11:
        return forms[0]
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return forms[1]
    return forms[2]


class Counted(NamedTuple):
    """A number slot of the templates: the plausible values and the noun it counts, in the template's
    case (Kazakh keeps the noun singular after a number, so its three forms are one)."""

    values: tuple[int, ...]
    forms: tuple[str, str, str]


def _kk(noun: str) -> tuple[str, str, str]:
    return (noun, noun, noun)


#: every number a recommendation carries comes from one of these slots
COUNTED: dict[str, Counted] = {
    # Russian, accusative after "заменить", "адаптировать", "отремонтировать душевую на", "заполнить"
    "windows": Counted(tuple(range(1, 13)), ("оконный блок", "оконных блока", "оконных блоков")),
    "toilets": Counted((1, 2, 3, 4), ("санузел", "санузла", "санузлов")),
    "showers": Counted(tuple(range(2, 9)), ("лейку", "лейки", "леек")),
    "vacancies": Counted((1, 2, 3, 4, 5), ("вакантную ставку", "вакантные ставки", "вакантных ставок")),
    "months": Counted((3, 6), ("месяц", "месяца", "месяцев")),  # "не реже одного раза в 6 месяцев"
    "training_hours": Counted((4, 8, 12, 16, 24, 36), ("академический час", "академических часа",
                                                       "академических часов")),
    # Russian, genitive after "ремонт", "не менее", "не реже", "в течение", "не более"
    "rooms": Counted(tuple(range(1, 9)), ("помещения", "помещений", "помещений")),
    "walk_hours": Counted((1, 2), ("часа", "часов", "часов")),
    "exam_hours": Counted((24,), ("часа", "часов", "часов")),
    "trainees": Counted(tuple(range(10, 41)), ("сотрудника", "сотрудников", "сотрудников")),
    "calls": Counted((2, 3, 4), ("раза", "раз", "раз")),
    "report_days": Counted((10, 15, 30), ("календарного дня", "календарных дней", "календарных дней")),
    "complaint_days": Counted((5, 10, 15), ("рабочего дня", "рабочих дней", "рабочих дней")),
    "video_days": Counted((30, 60, 90), ("суток", "суток", "суток")),
    "area": Counted((4, 5, 6), ("кв. м", "кв. м", "кв. м")),
    "beds": Counted(tuple(range(4, 41)), ("шт.", "шт.", "шт.")),
    "bodycams": Counted(tuple(range(5, 31)), ("шт.", "шт.", "шт.")),
    # Kazakh: the noun after a number stays singular
    "kk_windows": Counted(tuple(range(1, 13)), _kk("терезе блогын")),
    "kk_rooms": Counted(tuple(range(1, 9)), _kk("үй-жайда")),
    "kk_bedding": Counted(tuple(range(10, 61)), _kk("жиынтығын")),
    "kk_trainees": Counted(tuple(range(10, 41)), _kk("қызметкерді")),
    "kk_drugs": Counted(tuple(range(5, 21)), _kk("атау")),
    "kk_exam_hours": Counted((24,), _kk("сағат")),
    "kk_vacancies": Counted((1, 2, 3, 4, 5), _kk("бос штат бірлігін")),
    "kk_showers": Counted(tuple(range(2, 9)), _kk("душ қондырғысын")),
    "kk_meals": Counted((3, 4, 5), _kk("рет")),
    "kk_calls": Counted((2, 3, 4), _kk("рет")),
    "kk_toilets": Counted((1, 2, 3, 4), _kk("санитариялық торапты")),
}
#: hot meals a day by facility type (children five times, hospitals and care homes four, detention three)
MEALS_PER_DAY = {"childrens_home": 5, "special_school": 5, "psychiatric_hospital": 4, "social_care_home": 4}
MEALS_RU = {3: "трехразовым", 4: "четырехразовым", 5: "пятиразовым"}

#: what to buy and how many one facility plausibly needs; the first six wear out and are replaced
ITEMS: tuple[tuple[str, int, int], ...] = (
    ("матрасы", 10, 60), ("одеяла", 10, 60), ("комплекты постельного белья", 20, 120), ("холодильники", 1, 3),
    ("стиральные машины", 1, 3), ("электрочайники", 2, 8), ("средства личной гигиены", 50, 200),
    ("настольные игры и книги", 10, 50), ("бахилы и халаты", 20, 100))
DURABLE = ITEMS[:6]
_DRUG = ("антибиотики", "инсулин", "противотуберкулезные препараты", "обезболивающие средства",
         "перевязочный материал")
_TOPIC = ("Предупреждение пыток и жестокого обращения", "Стамбульский протокол",
          "Права лиц, лишенных свободы", "Правила Нельсона Манделы", "Деэскалация конфликтов")

# (template, what the ministry's reply says was done); the fields are TYPES' phrases, COUNTED's slots
# (a slot writes "<number> <noun>"), {meals}, {item} or {durable} with {qty}, {items}, {drug}, {topic}, {next}
RU: dict[str, tuple[tuple[str, str], ...]] = {
    "detention_conditions": (
        ("Обеспечить естественное освещение и приточную вентиляцию в {place}; заменить {windows}.",
         "заменены оконные блоки, приточная вентиляция восстановлена"),
        ("Провести текущий ремонт {rooms} для содержания {who}, устранить сырость и грибок.",
         "выполнен текущий ремонт помещений"),
        ("Обеспечить в {place} не менее {area} жилой площади на одного человека.",
         "проведено перераспределение мест, норма жилой площади соблюдается"),
        ("Оборудовать {place_acc} индивидуальными спальными местами ({beds}) и системой вызова дежурного.",
         "установлены спальные места и система вызова дежурного"),
        ("Обеспечить ежедневную прогулку {who} продолжительностью не менее {walk_hours} на оборудованной площадке.",
         "график прогулок изменен, площадка оборудована")),
    "procurement": (
        ("Закупить {item} в количестве {qty} шт. для нужд {who}.", "закупка произведена, товар поставлен"),
        ("Предусмотреть в бюджете на {next} год средства на приобретение: {items}.",
         "средства предусмотрены в бюджете на {next} год"),
        ("Заменить изношенный инвентарь в {place}: {durable} ({qty} шт.).", "изношенный инвентарь заменен")),
    "legal_training": (
        ("Провести для {staff} обучение по теме «{topic}» с охватом не менее {trainees}.",
         "проведено обучение персонала"),
        ("Разместить в {place} памятки о правах {who} на казахском и русском языках.", "памятки размещены"),
        ('Привести локальные акты в соответствие с приказом "Об утверждении Правил внутреннего '
         'распорядка" и ознакомить с ними {who}.', "локальные акты приведены в соответствие"),
        ("Включить в программу повышения квалификации {staff} модуль «{topic}» ({training_hours}).",
         "модуль включен в программу повышения квалификации")),
    "medical_care": (
        ("Обеспечить медицинскую часть необходимыми лекарственными средствами, в том числе: {drug}.",
         "аптечный запас пополнен"),
        ("Обеспечить медицинский осмотр {who} в течение {exam_hours} с момента поступления и фиксацию "
         "телесных повреждений.", "порядок медицинского осмотра при поступлении утвержден"),
        ("Укомплектовать штат медицинских работников, заполнив {vacancies}.", "вакантные ставки заполнены"),
        ("Организовать осмотр {who} врачом-психиатром и стоматологом не реже одного раза в {months}.",
         "утвержден график осмотров узкими специалистами")),
    "sanitary_standards": (
        ("Оборудовать санузлы в {place} приватными перегородками и обеспечить круглосуточный доступ к воде.",
         "санузлы оборудованы перегородками"),
        ("Обеспечить помывку {who} не реже одного раза в неделю и отремонтировать душевую на {showers}.",
         "душевая отремонтирована"),
        ("Провести дезинсекцию и дератизацию помещений, акт представить в НПМ в течение {report_days}.",
         "проведена санитарная обработка"),
        ("Устранить в {place} нарушения санитарных норм: протечки кровли, отсутствие горячей воды.",
         "кровля отремонтирована, горячее водоснабжение восстановлено")),
    "food": (
        ("Обеспечить {who} {meals} горячим питанием в соответствии с утвержденными нормами.",
         "рацион питания пересмотрен"),
        ("Организовать диетическое питание для {who} с хроническими заболеваниями.",
         "введено диетическое питание")),
    "contact_with_outside_world": (
        ("Обеспечить возможность телефонных звонков {who} родственникам не реже {calls} в месяц.",
         "установлен таксофон"),
        ("Оборудовать комнату для свиданий и обеспечить конфиденциальность встреч с адвокатом.",
         "комната для свиданий оборудована")),
    "complaints_procedure": (
        ("Установить в {place} ящики для жалоб, недоступные персоналу, и вскрывать их с участием прокурора.",
         "установлены ящики для жалоб"),
        ("Вести журнал жалоб {who} и рассматривать их в срок не более {complaint_days}.",
         "журнал учета жалоб заведен")),
    "staff_conduct": (
        ("Провести служебную проверку по сообщениям о применении физической силы и сообщить о результатах "
         "в НПМ.", "проведена служебная проверка"),
        ("Оснастить персонал нагрудными видеорегистраторами ({bodycams}) и хранить записи не менее {video_days}.",
         "персонал оснащен видеорегистраторами")),
    "accessibility": (
        ("Обеспечить доступ лиц с инвалидностью: установить пандус и поручни, адаптировать {toilets}.",
         "установлен пандус"),),
}
KK: dict[str, tuple[tuple[str, str], ...]] = {
    "detention_conditions": (
        ("{kplace} табиғи жарық пен желдетуді қамтамасыз ету, {kk_windows} ауыстыру.",
         "заменены оконные блоки, приточная вентиляция восстановлена"),
        ("{kk_rooms} ағымдағы жөндеу жүргізу, ылғал мен зеңді жою.", "выполнен текущий ремонт помещений")),
    "procurement": (
        ("{kwho} қажеттіліктері үшін төсек-орын жабдықтарының {kk_bedding} сатып алу.",
         "закуплены комплекты постельного белья"),
        ("{next} жылға арналған бюджетте матрастар мен көрпелер сатып алуға қаражат қарастыру.",
         "средства предусмотрены в бюджете на {next} год")),
    "legal_training": (
        ("Қызметкерлер үшін «Азаптаудың алдын алу» тақырыбында оқыту өткізу, кемінде {kk_trainees} қамту.",
         "проведено обучение персонала"),
        ("{kplace} {kwho} құқықтары туралы жадынаманы қазақ және орыс тілдерінде орналастыру.",
         "памятки размещены")),
    "medical_care": (
        ("Медициналық бөлімді қажетті дәрі-дәрмекпен қамтамасыз ету, қорды {kk_drugs} бойынша толықтыру.",
         "аптечный запас пополнен"),
        ("{kwho} түскен сәттен бастап {kk_exam_hours} ішінде медициналық тексеруден өтуін қамтамасыз ету.",
         "порядок медицинского осмотра при поступлении утвержден"),
        ("Медицина қызметкерлерінің {kk_vacancies} толықтыру.", "вакантные ставки заполнены")),
    "sanitary_standards": (
        ("Санитариялық тораптарды қалқалармен жабдықтау және суға тәулік бойы қолжетімділікті қамтамасыз ету.",
         "санузлы оборудованы перегородками"),
        ("{kwho} аптасына кемінде бір рет жуынуын қамтамасыз ету, {kk_showers} жөндеу.",
         "душевая отремонтирована")),
    "food": (("{kwho} тамақтану сапасын жақсарту, тәулігіне {kk_meals} ыстық тамақ беру.",
              "рацион питания пересмотрен"),),
    "contact_with_outside_world": (
        ("{kwho} туыстарымен айына кемінде {kk_calls} телефон арқылы сөйлесуін қамтамасыз ету.",
         "установлен таксофон"),),
    "complaints_procedure": (
        ("{kplace} шағымдарға арналған жәшіктер орнату және оларды прокурордың қатысуымен ашу.",
         "установлены ящики для жалоб"),),
    "staff_conduct": (
        ("Күш қолдану фактілері бойынша қызметтік тексеру жүргізу және нәтижесі туралы ҰАМ-ға хабарлау.",
         "проведена служебная проверка"),),
    "accessibility": (
        ("Мүмкіндігі шектеулі адамдар үшін пандус пен тұтқалар орнату, {kk_toilets} бейімдеу.",
         "установлен пандус"),),
}
TAIL_RU = ("Информацию об исполнении направить в НПМ.", "О принятых мерах сообщить Уполномоченному по правам человека.")
TAIL_KK = "Орындалуы туралы ақпаратты ҰАМ-ға жіберу."

MINISTRY_ABBR = {"interior": "МВД", "health": "МЗ", "education": "МП", "labour": "МТСЗН",
                 "defence": "МО", "nsc": "КНБ"}
#: the documents a ministry attaches to a reply, by category: (wording, smallest and largest number)
EVIDENCE: dict[str, tuple[tuple[str, int, int], ...]] = {
    "detention_conditions": (("Акт выполненных работ №{n}", 1, 480), ("Фотоотчет, {n} л.", 2, 12)),
    "procurement": (("Накладная №{n}", 1, 480), ("Договор о государственных закупках №{n}", 1, 480)),
    "legal_training": (("Протокол обучения №{n}", 1, 60), ("Приказ №{n}", 1, 300)),
    "medical_care": (("Приказ №{n}", 1, 300), ("Накладная №{n}", 1, 480)),
    "sanitary_standards": (("Акт выполненных работ №{n}", 1, 480), ("Фотоотчет, {n} л.", 2, 12)),
    "food": (("Приказ №{n}", 1, 300), ("Меню-раскладка, {n} л.", 2, 8)),
    "contact_with_outside_world": (("Фотоотчет, {n} л.", 2, 12), ("Приказ №{n}", 1, 300)),
    "complaints_procedure": (("Приказ №{n}", 1, 300), ("Фотоотчет, {n} л.", 2, 12)),
    "staff_conduct": (("Заключение служебной проверки №{n}", 1, 120), ("Накладная №{n}", 1, 480)),
    "accessibility": (("Акт выполненных работ №{n}", 1, 480), ("Фотоотчет, {n} л.", 2, 12)),
}
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
            districts = CITY_DISTRICTS[region]  # one per district first, then a second police station's
            rank, district = divmod(seq - 1, len(districts))
            return f"ИВС {f'ОП №{rank + 1} ' if rank else ''}УП {districts[district]} района {region}"
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


def _slot(rng: random.Random, ftype: str, name: str) -> str:
    """One field of a template, drawn from its plausible values and written in agreement."""
    kind = TYPES[ftype]
    if name in ("place", "place_acc", "who", "staff", "kplace", "kwho"):
        return str(getattr(kind, name))
    if name in ("meals", "kk_meals"):
        meals = MEALS_PER_DAY.get(ftype, 3)
        return MEALS_RU[meals] if name == "meals" else f"{meals} {COUNTED[name].forms[0]}"
    if name == "drug":
        return rng.choice(_DRUG)
    if name == "topic":
        return rng.choice(_TOPIC)
    if name == "items":
        return ", ".join(item for item, _, _ in rng.sample(ITEMS, rng.randint(1, 2)))
    counted = COUNTED[name]
    n = rng.choice(counted.values)
    return f"{n} {plural_ru(n, counted.forms)}"


def render(template: str, rng: random.Random, ftype: str, year: int) -> str:
    """Fill one template for a facility type: every field in agreement, every number plausible."""
    fields: dict[str, str] = {"next": str(year + 1)}
    for field, choices in (("item", ITEMS), ("durable", DURABLE)):
        if f"{{{field}}}" in template:
            item, low, high = rng.choice(choices)
            fields |= {field: item, "qty": str(rng.randint(low, high))}
    for _, name, _, _ in Formatter().parse(template):
        if name and name not in fields:
            fields[name] = _slot(rng, ftype, name)
    text = template.format(**fields)
    return text[0].upper() + text[1:]


def _text(rng: random.Random, ftype: str, category: str, year: int) -> tuple[str, str]:
    """One recommendation sentence and what the ministry replies once it is done; ~20 % Kazakh,
    a few with a second line."""
    kazakh = rng.random() < 0.2
    template, done = rng.choice(KK[category] if kazakh else RU[category])
    text = render(template, rng, ftype, year)
    if rng.random() < 0.01:
        text += "\n" + (TAIL_KK if kazakh else rng.choice(TAIL_RU))
    return text, done.format(next=year + 1)


def _recommendations(rng: random.Random, year: int, total: int, visits: list[dict[str, str]],
                     facilities: dict[str, dict[str, str]]) -> list[dict[str, str]]:
    """Spread ``total`` items over visits (at least one each); one report date per visit.

    Each row also carries ``done``, what the ministry's reply says once the item is implemented; it is
    not a column of the import file (the frame keeps ``REC_COLUMNS`` only)."""
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
            text, done = _text(rng, fac["facility_type"], category, year)
            rows.append({"external_id": f"{visit['visit_id']}-{item:02d}", "text": text, "done": done,
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
        action = rec["done"] if status == "implemented" else OTHER_NOTE[status].format(next=year + 1)
        note = (f"Письмо {MINISTRY_ABBR[rec['ministry']]} №{rng.randint(1, 40)}-{rng.randint(1, 12)}/"
                f"{rng.randint(100, 9999)} от {responded:%d.%m.%Y}: {action}")
        evidence = ""
        if status in ("implemented", "partially_implemented") and rng.random() < 0.75:
            wording, low, high = rng.choice(EVIDENCE[rec["category"]])
            evidence = wording.format(n=rng.randint(low, high))
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
