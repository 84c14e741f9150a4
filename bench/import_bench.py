"""Benchmark: `followup.spreadsheets.ingest.import_recommendations` against its floor and a baseline.

    python bench/import_bench.py [--rows 500000,1000000] [--database sqlite|postgresql|both]

Generates a deterministic CSV of N recommendations (for each N of `--rows`), then for each
chosen database:

* imports it with the project (`import_recommendations`) into a fresh registry,
* imports the same file a second time (idempotent re-import: 0 created, N unchanged),
* writes the same rows with a "plain" baseline (pd.read_csv + raw DBAPI executemany, ids
  looked up by name and external_id, one transaction) into a second fresh registry,
* writes the same rows with the **floor** (issue 20): the least work that gives the same
  registry, without any validation: `pd.read_csv`, the facilities and visits in one
  executemany each, the recommendations (with their facility, visit and ministry ids and the
  folded search text) in one executemany (PostgreSQL: one COPY, the fastest way in), the
  SQLite full-text index in one `INSERT ... SELECT` (not by its trigger, row by row), and
  their first history row in one `INSERT ... SELECT`,

each in its own spawned child process, which reports its wall time and its own peak RSS
(`ru_maxrss`). With `--heap`, a second pass repeats the runs under `tracemalloc` on more
fresh registries to get the Python-heap peak without slowing the timed runs.
The parent process stays small (standard library only: it never imports pandas, SQLAlchemy
or the project), because on Linux a child's `ru_maxrss` starts at its parent's high-water
mark.

The registries written by the import, the baseline and the floor are compared: counts and
aggregates (all three), and a fingerprint of every recommendation row and every history row
(import against floor). The script exits non-zero on a crash, on wrong counts or when the
writes differ, never on time.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import random
import resource
import shutil
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

from common import child_pg_admin, libpq_conninfo, maxrss_mb, quiet, run_child


def cpu_seconds() -> float:
    """This process's CPU time (user + system): steadier than wall time on a shared machine; not
    the PostgreSQL server's."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ACTOR = "bench"
SEED = 20261122

#: the labels the file uses for ministries -> registry codes (the baseline's "plain dict")
MINISTRY_CODES = {
    "interior": "interior",
    "МВД": "interior",
    "health": "health",
    "Ministry of Health": "health",
    "education": "education",
    "labour": "labour",
    "defence": "defence",
    "nsc": "nsc",
}

COLUMNS = [
    "external_id", "text", "issued_on", "due_on", "ministry", "facility", "facility_type",
    "region", "category", "source", "mechanism_ref", "priority", "visit_id",
]

# --- the data ----------------------------------------------------------------------------------

CITIES = [
    ("Астана", "г. Астана"), ("Алматы", "г. Алматы"), ("Шымкент", "г. Шымкент"),
    ("Караганда", "Карагандинская область"), ("Актобе", "Актюбинская область"),
    ("Павлодар", "Павлодарская область"), ("Усть-Каменогорск", "Восточно-Казахстанская область"),
    ("Семей", "область Абай"), ("Костанай", "Костанайская область"), ("Кокшетау", "Акмолинская область"),
    ("Петропавловск", "Северо-Казахстанская область"), ("Уральск", "Западно-Казахстанская область"),
    ("Атырау", "Атырауская область"), ("Актау", "Мангистауская область"),
    ("Кызылорда", "Кызылординская область"), ("Тараз", "Жамбылская область"),
    ("Талдыкорган", "область Жетісу"), ("Туркестан", "Туркестанская область"),
    ("Конаев", "Алматинская область"), ("Жезказган", "область Ұлытау"),
]

#: facility type -> (how many of the 500, name pattern, genitive "of the facility", ministry labels)
FACILITY_TYPES = {
    "prison": (120, "Учреждение ЕЦ-166/{n} г. {city}", "учреждения", ("interior", "МВД")),
    "police_temporary_detention": (130, "ИВС Департамента полиции г. {city} №{n}", "изолятора временного содержания", ("interior", "МВД")),
    "psychiatric_hospital": (60, "Центр психического здоровья №{n} г. {city}", "центра психического здоровья", ("health", "Ministry of Health")),
    "social_care_home": (110, "Центр оказания специальных социальных услуг №{n} г. {city}", "центра социальных услуг", ("labour",)),
    "childrens_home": (80, "Детский дом №{n} г. {city}", "детского дома", ("education",)),
}

CATEGORIES = [
    "условия содержания", "медицинская помощь", "питание", "обращение с лицами",
    "правовые гарантии", "связь с внешним миром", "персонал", "жалобы и запросы",
    "доступность для лиц с инвалидностью", "психиатрическая помощь", "образование",
]

MAIN = [
    "Обеспечить соблюдение нормы жилой площади не менее {n} кв. м на одного человека в помещениях {of}; в ходе визита выявлено переполнение.",
    "Принять меры по обеспечению круглосуточного доступа к питьевой воде и к санитарным узлам с перегородками во всех помещениях {of}.",
    "Организовать медицинский осмотр каждого поступающего в помещения {of} с фиксацией телесных повреждений и уведомлением прокурора.",
    "Оборудовать прогулочные дворики {of} навесами и скамьями, обеспечить ежедневную прогулку продолжительностью не менее {h} часов.",
    "Провести капитальный ремонт системы вентиляции и отопления {of}; температура в жилых помещениях не должна опускаться ниже {t} градусов.",
    "Разместить в общедоступных местах {of} информацию о правах содержащихся лиц и о порядке подачи жалоб на казахском и русском языках.",
    "Обеспечить конфиденциальность обращений к врачу и к адвокату; исключить присутствие сотрудников {of} при медицинском осмотре.",
    "Укомплектовать штат {of} психологом и социальным работником; провести обучение персонала по вопросам предупреждения пыток.",
    "Обеспечить доступ к телефонной связи не реже {k} раз в неделю и возможность свиданий с родственниками в помещениях {of}.",
    "Привести меню {of} в соответствие с нормами питания, обеспечить диетическое питание по медицинским показаниям.",
    "Исключить применение мер физического стеснения без назначения врача и без записи в журнале {of}; вести видеозапись каждого случая.",
    "Обеспечить доступность здания {of} для лиц с инвалидностью: пандусы, поручни, адаптированные санитарные узлы.",
]

#: one of these (with numbers and dates) follows every main sentence, so that texts rarely repeat
DETAIL = [
    "На момент визита {d} в учреждении находились {p} человек при лимите {lim}.",
    "Нарушение зафиксировано в акте посещения от {d} (пункт {k2}).",
    "При посещении {d} члены НПМ опросили {p} человек, {k} из них сообщили об этом нарушении.",
    "Замечание повторяется с визита {d}; ранее было дано {k} аналогичных рекомендаций.",
]

EXTRA = [
    "Срок исполнения — {m} месяцев с даты получения рекомендации.",
    "Информацию о принятых мерах направить в адрес НПМ.",
    "Рекомендация повторяется: по итогам предыдущего визита она не была исполнена.",
    "Особое внимание уделить несовершеннолетним и лицам с инвалидностью.",
    "Нарушение отмечено в {k} из {k2} осмотренных помещений.",
    "Жалобы на данное нарушение поступали от содержащихся лиц неоднократно.",
    "Предусмотреть необходимые средства в бюджете на {y} год.",
]


def _facilities(rng: random.Random) -> list[tuple[str, str, str, tuple[str, ...], str]]:
    """500 facilities: (name, type, region, ministry labels, genitive phrase)."""
    out = []
    n = 0
    for kind, (count, pattern, genitive, labels) in FACILITY_TYPES.items():
        for _ in range(count):
            n += 1
            city, region = CITIES[rng.randrange(len(CITIES))]
            out.append((pattern.format(n=n, city=city), kind, region, labels, genitive))
    rng.shuffle(out)
    return out


def _text(rng: random.Random, genitive: str, visited: date) -> str:
    """A Russian recommendation of 150-250 characters."""
    # the main sentence, a detail with figures and dates, then extras while they fit
    text = rng.choice(MAIN).format(of=genitive, n=rng.choice((4, 6, 8)), h=rng.choice((1, 2)), t=rng.choice((18, 20)), k=rng.randint(1, 3))
    p = rng.randint(12, 480)
    details = rng.sample(DETAIL, len(DETAIL))
    extras = rng.sample(EXTRA, len(EXTRA))
    for i, sentence in enumerate(details[:1] + extras + details[1:]):
        if len(text) >= 150 and i > 0 and rng.random() < 0.5:
            break
        k = rng.randint(1, 9)
        candidate = text + " " + sentence.format(
            d=visited.strftime("%d.%m.%Y"), p=p, lim=p + rng.randint(-20, 60), k=k, k2=k + rng.randint(1, 30),
            m=rng.choice((3, 6, 12)), y=visited.year + 1,
        )
        if len(candidate) <= 250:
            text = candidate
    return text


def generate_csv(path: Path, rows: int, seed: int = SEED) -> dict[str, int]:
    """Write the file; returns how many rows, distinct facilities and distinct visits it has."""
    rng = random.Random(seed)
    facilities = _facilities(rng)
    visits = []
    for v in range(5000):
        day = date(2021, 1, 4) + timedelta(days=rng.randrange(1400))
        visits.append((f"V-{day.year}-{v + 1:05d}", day, facilities[v % len(facilities)]))
    seen_facilities: set[str] = set()
    seen_visits: set[str] = set()
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for i in range(rows):
            visit_id, visited, (name, kind, region, labels, genitive) = visits[rng.randrange(len(visits))]
            issued = visited + timedelta(days=rng.randrange(45))
            due = issued + timedelta(days=rng.choice((30, 60, 90, 180, 365)))
            roll = rng.random()
            ministry = "defence" if roll < 0.03 else "nsc" if roll < 0.05 else rng.choice(labels)
            writer.writerow((
                f"REC-{issued.year}-{i + 1:07d}",
                _text(rng, genitive, visited),
                issued.strftime("%d.%m.%Y"),
                due.isoformat(),
                ministry,
                name,
                kind,
                region,
                rng.choice(CATEGORIES),
                "npm_visit",
                "" if rng.random() < 0.1 else f"Отчёт НПМ №{visit_id[-5:]}/{visited.year}",
                "high" if rng.random() < 0.2 else "normal",
                visit_id,
            ))
            seen_facilities.add(name)
            seen_visits.add(visit_id)
    return {"rows": rows, "facilities": len(seen_facilities), "visits": len(seen_visits)}


# --- child processes (everything heavy is imported in them, never in the parent) ----------------










def child_init(url: str) -> None:
    quiet()
    from followup.models.crud import init_db
    from followup.models.db import get_engine

    init_db(url)
    get_engine(url).dispose()


def child_import(url: str, csv_path: str, heap: bool) -> dict:
    """One measured `import_recommendations` call."""
    quiet()
    import gc
    import tracemalloc

    from followup.models.db import get_engine
    from followup.spreadsheets.ingest import import_recommendations

    engine = get_engine(url)
    gc.collect()
    before = maxrss_mb()
    if heap:
        tracemalloc.start()
    started = time.perf_counter()
    cpu_started = cpu_seconds()
    result = import_recommendations(Path(csv_path), engine=engine, actor=ACTOR)
    seconds = time.perf_counter() - started
    heap_peak = tracemalloc.get_traced_memory()[1] / 2**20 if heap else None
    tracemalloc.stop()
    peak = maxrss_mb()
    engine.dispose()
    return {"seconds": seconds, "cpu": cpu_seconds() - cpu_started, "rss_before": before, "rss_peak": peak, "heap_peak": heap_peak, "counts": result.counts()}


def child_profile(url: str, csv_path: str, top: int) -> str:
    """cProfile one import; returns the top functions by own time and by cumulative time."""
    quiet()
    import cProfile
    import io
    import pstats

    from followup.models.db import get_engine
    from followup.spreadsheets.ingest import import_recommendations

    engine = get_engine(url)
    profiler = cProfile.Profile()
    result = profiler.runcall(import_recommendations, Path(csv_path), engine=engine, actor=ACTOR)
    engine.dispose()
    out = io.StringIO()
    out.write(f"import counts: {result.counts()}\n")
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def child_baseline(dialect: str, target: str, csv_path: str, heap: bool) -> dict:
    """Plain pandas + raw DBAPI executemany: the same writes as the import, one transaction."""
    import gc
    import tracemalloc
    from datetime import UTC, datetime

    import pandas as pd

    if dialect == "sqlite":
        import sqlite3

        def connect():
            connection = sqlite3.connect(target, timeout=30)
            for pragma in ("PRAGMA foreign_keys=ON", "PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=30000"):
                connection.execute(pragma)  # what models.db sets on every connection
            return connection

        mark = "?"
    else:
        import psycopg

        def connect():
            return psycopg.connect(target)

        mark = "%s"

    def sql(statement: str) -> str:
        return statement.replace("?", mark)

    def days(series: pd.Series) -> list:
        """datetime64 -> what the DBAPI stores for a Date column (ISO text on SQLite, date on PostgreSQL)."""
        values = series.dt.strftime("%Y-%m-%d") if dialect == "sqlite" else series.dt.date
        return values.astype(object).where(series.notna(), None).tolist()

    gc.collect()
    before = maxrss_mb()
    if heap:
        tracemalloc.start()
    started = time.perf_counter()
    cpu_started = cpu_seconds()

    df = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    issued = pd.to_datetime(df["issued_on"], format="%d.%m.%Y")
    due = pd.to_datetime(df["due_on"], format="%Y-%m-%d")
    ministry = df["ministry"].map(MINISTRY_CODES)
    now = datetime.now(UTC)
    stamp = now.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else now

    connection = connect()
    cursor = connection.cursor()
    # facilities: the first row naming each one gives its type, region and ministry
    firsts = df.assign(_ministry=ministry).drop_duplicates("facility")
    cursor.executemany(
        sql("INSERT INTO facility (name, facility_type, region, ministry_code) VALUES (?, ?, ?, ?)"),
        list(zip(firsts["facility"].tolist(), firsts["facility_type"].tolist(), firsts["region"].tolist(), firsts["_ministry"].tolist(), strict=True)),
    )
    cursor.execute("SELECT name, id FROM facility")
    facility_ids = df["facility"].map(dict(cursor.fetchall()))
    # visits: dated by their earliest recommendation
    visits = df.assign(_issued=issued, _facility=facility_ids).sort_values("_issued", kind="stable").drop_duplicates("visit_id")
    cursor.executemany(
        sql("INSERT INTO visit (external_id, visited_on, kind, facility_id) VALUES (?, ?, 'planned', ?)"),
        list(zip(visits["visit_id"].tolist(), days(visits["_issued"]), visits["_facility"].tolist(), strict=True)),
    )
    cursor.execute("SELECT external_id, id FROM visit")
    visit_ids = df["visit_id"].map(dict(cursor.fetchall()))
    # recommendations
    n = len(df)
    cursor.executemany(
        sql(
            "INSERT INTO recommendation (external_id, text, source, mechanism_ref, category, priority, issued_on, due_on, "
            "ministry_code, facility_id, visit_id, status, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'issued', ?, ?)"
        ),
        list(zip(
            df["external_id"].tolist(), df["text"].tolist(), df["source"].tolist(),
            [v or None for v in df["mechanism_ref"].tolist()], [v or None for v in df["category"].tolist()],
            df["priority"].tolist(), days(issued), days(due), ministry.tolist(),
            facility_ids.tolist(), visit_ids.tolist(), [stamp] * n, [stamp] * n, strict=True,
        )),
    )
    # their first history entry
    cursor.execute("SELECT external_id, id FROM recommendation")
    rec_ids = df["external_id"].map(dict(cursor.fetchall())).tolist()
    reason = f"created by import of {Path(csv_path).name}"
    cursor.executemany(
        sql("INSERT INTO status_change (recommendation_id, from_status, to_status, at, actor, reason) VALUES (?, NULL, 'issued', ?, ?, ?)"),
        [(rec_id, stamp, ACTOR, reason) for rec_id in rec_ids],
    )
    connection.commit()
    connection.close()

    seconds = time.perf_counter() - started
    heap_peak = tracemalloc.get_traced_memory()[1] / 2**20 if heap else None
    tracemalloc.stop()
    return {"seconds": seconds, "cpu": cpu_seconds() - cpu_started, "rss_before": before, "rss_peak": maxrss_mb(), "heap_peak": heap_peak, "counts": {"created": n}}


def child_floor(dialect: str, target: str, csv_path: str, heap: bool) -> dict:
    """The floor: the least work that writes the same rows as the import, without validation.

    `pd.read_csv`, then one statement per table: the file's facilities and visits (firsts of
    each, as the import creates them), the recommendations with their facility, visit and
    ministry ids and the folded text the search indexes (SQLite: one executemany; PostgreSQL:
    one COPY), and their first history row (`INSERT ... SELECT` over the new rows).
    """
    import gc
    import tracemalloc
    from datetime import UTC, datetime

    import pandas as pd

    from followup.models.search import fold

    gc.collect()
    before = maxrss_mb()
    if heap:
        tracemalloc.start()
    started = time.perf_counter()
    cpu_started = cpu_seconds()

    df = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    issued = pd.to_datetime(df["issued_on"], format="%d.%m.%Y")
    due = pd.to_datetime(df["due_on"], format="%Y-%m-%d")
    ministry = df["ministry"].map(MINISTRY_CODES)
    now = datetime.now(UTC)
    if dialect == "sqlite":
        import sqlite3

        connection = sqlite3.connect(target, timeout=30)
        for pragma in ("PRAGMA foreign_keys=ON", "PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=30000"):
            connection.execute(pragma)  # what models.db sets on every connection
        stamp: object = now.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        issued_days = issued.dt.strftime("%Y-%m-%d").tolist()
        due_days = due.dt.strftime("%Y-%m-%d").tolist()
        mark = "?"
    else:
        import psycopg

        connection = psycopg.connect(target)
        stamp = now
        issued_days = issued.dt.date.tolist()
        due_days = due.dt.date.tolist()
        mark = "%s"
    cursor = connection.cursor()
    firsts = df.assign(_ministry=ministry).drop_duplicates("facility")
    cursor.executemany(
        f"INSERT INTO facility (name, facility_type, region, ministry_code) VALUES ({mark}, {mark}, {mark}, {mark})",
        list(zip(firsts["facility"], firsts["facility_type"], firsts["region"], firsts["_ministry"], strict=True)),
    )
    cursor.execute("SELECT name, id FROM facility")
    facility_ids = df["facility"].map(dict(cursor.fetchall()))
    visits = df.assign(_issued=issued_days, _facility=facility_ids).iloc[issued.argsort(kind="stable")].drop_duplicates("visit_id")
    cursor.executemany(
        f"INSERT INTO visit (external_id, visited_on, kind, facility_id) VALUES ({mark}, {mark}, 'planned', {mark})",
        list(zip(visits["visit_id"], visits["_issued"], visits["_facility"].tolist(), strict=True)),
    )
    cursor.execute("SELECT external_id, id FROM visit")
    visit_ids = df["visit_id"].map(dict(cursor.fetchall()))
    n = len(df)
    names = ("external_id, text, source, mechanism_ref, category, priority, issued_on, due_on, ministry_code, "
             "facility_id, visit_id, status, created_at, updated_at, search_text")
    rows = zip(
        df["external_id"], df["text"], df["source"], [v or None for v in df["mechanism_ref"]], [v or None for v in df["category"]],
        df["priority"], issued_days, due_days, ministry, facility_ids.tolist(), visit_ids.tolist(),
        ["issued"] * n, [stamp] * n, [stamp] * n, map(fold, df["text"]), strict=True,
    )
    if dialect == "sqlite":
        # the full-text index in one statement after the rows, not by the insert trigger row by
        # row (each of which makes FTS5 write and merge a segment): the trigger is set aside and
        # put back inside the transaction
        cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'recommendation_fts_insert'")
        (trigger,) = cursor.fetchone()
        cursor.execute("DROP TRIGGER recommendation_fts_insert")
        cursor.executemany(f"INSERT INTO recommendation ({names}) VALUES ({', '.join(['?'] * 15)})", rows)
        cursor.execute("INSERT INTO recommendation_fts(rowid, search_text) SELECT id, search_text FROM recommendation")
        cursor.execute(trigger)
    else:
        with cursor.copy(f"COPY recommendation ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    cursor.execute(
        "INSERT INTO status_change (recommendation_id, from_status, to_status, at, actor, reason) "
        f"SELECT id, NULL, status, {mark}, {mark}, {mark} FROM recommendation",
        (stamp, ACTOR, f"created by import of {Path(csv_path).name}"),
    )
    connection.commit()
    connection.close()

    seconds = time.perf_counter() - started
    heap_peak = tracemalloc.get_traced_memory()[1] / 2**20 if heap else None
    tracemalloc.stop()
    return {"seconds": seconds, "cpu": cpu_seconds() - cpu_started, "rss_before": before, "rss_peak": maxrss_mb(), "heap_peak": heap_peak, "counts": {"created": n}}


def child_inspect(url: str) -> dict:
    """Counts and fingerprints of a registry, comparable between the import and the baseline."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    queries = {
        "counts": "SELECT (SELECT count(*) FROM facility), (SELECT count(*) FROM visit), "
        "(SELECT count(*) FROM recommendation), (SELECT count(*) FROM status_change)",
        "recommendations": "SELECT ministry_code, status, priority, source, count(*), min(issued_on), max(issued_on), "
        "min(due_on), max(due_on), sum(length(text)), count(mechanism_ref), count(category) "
        "FROM recommendation GROUP BY ministry_code, status, priority, source ORDER BY 1, 2, 3, 4",
        "facilities": "SELECT f.name, f.facility_type, f.region, f.ministry_code, count(r.id) FROM facility f "
        "LEFT JOIN recommendation r ON r.facility_id = f.id GROUP BY f.name, f.facility_type, f.region, f.ministry_code ORDER BY f.name",
        "visits": "SELECT v.external_id, v.visited_on, v.kind, f.name, count(r.id) FROM visit v JOIN facility f ON f.id = v.facility_id "
        "LEFT JOIN recommendation r ON r.visit_id = v.id GROUP BY v.external_id, v.visited_on, v.kind, f.name ORDER BY v.external_id",
        "consistent": "SELECT count(*) FROM recommendation r JOIN visit v ON v.id = r.visit_id WHERE v.facility_id = r.facility_id",
        "history": "SELECT from_status, to_status, actor, reason, count(*), count(DISTINCT recommendation_id) FROM status_change "
        "GROUP BY from_status, to_status, actor, reason ORDER BY 1, 2",
        "history_changes_sql_null": "SELECT count(*) FROM status_change WHERE changes IS NULL",
    }
    #: every recommendation row and every history row, as a fingerprint (not the timestamps:
    #: each run has its own; the history's `at` must be the recommendation's created_at)
    fingerprints = {
        "recommendation_rows": "SELECT r.external_id, r.text, r.source, r.mechanism_ref, r.category, r.priority, r.issued_on, "
        "r.due_on, r.ministry_code, f.name, f.facility_type, f.region, f.ministry_code, v.external_id, v.visited_on, v.kind, "
        "r.status, r.grade, r.recommending_state, r.response, r.follow_up, r.search_text, r.overdue_since, r.on_hold_since, "
        "r.days_on_hold, r.awaiting_review, r.created_at = r.updated_at "
        "FROM recommendation r LEFT JOIN facility f ON f.id = r.facility_id LEFT JOIN visit v ON v.id = r.visit_id ORDER BY r.external_id",
        "history_rows": "SELECT r.external_id, h.from_status, h.to_status, h.at = r.created_at, h.actor, h.reason, h.evidence, "
        "h.effective_on, h.changes, h.recorded_on FROM status_change h JOIN recommendation r ON r.id = h.recommendation_id "
        "ORDER BY r.external_id, h.id",
    }
    out = {}
    with engine.connect() as connection:
        for key, query in queries.items():
            out[key] = [tuple(str(v) for v in row) for row in connection.execute(text(query)).all()]
        for key, query in fingerprints.items():
            digest = hashlib.sha256()
            first = None
            for row in connection.execution_options(yield_per=20_000).execute(text(query)):
                line = "\x1f".join(str(v) for v in row)
                first = first or line
                digest.update(line.encode() + b"\x1e")
            out[key] = [(digest.hexdigest(), (first or "")[:200])]
    engine.dispose()
    return out


# --- the parent: orchestration and the table ------------------------------------------------


class Registry:
    """A fresh, empty database: a SQLite file or a PostgreSQL database on the server."""

    def __init__(self, dialect: str, workdir: Path, label: str, admin_url: str):
        self.dialect = dialect
        self.admin_url = admin_url
        if dialect == "sqlite":
            path = workdir / f"registry_{label}.db"
            self.url = f"sqlite:///{path}"
            self.target = str(path)
            self.name = None
        else:
            base, _, _ = admin_url.rpartition("/")
            self.name = f"followup_bench_{uuid.uuid4().hex[:8]}"
            self.url = f"{base}/{self.name}"
            self.target = libpq_conninfo(self.url)  # for the raw psycopg baseline
            run_child(child_pg_admin, admin_url, "create", self.name)
        run_child(child_init, self.url)

    def drop(self) -> None:
        if self.name:
            run_child(child_pg_admin, self.admin_url, "drop", self.name)


def _row(variant: str, database: str, rows: int, run: dict, heap_run: dict | None) -> dict:
    return {
        "variant": variant, "database": database, "rows": rows, "seconds": run["seconds"], "cpu": run["cpu"],
        "rss_peak": run["rss_peak"], "rss_growth": run["rss_peak"] - run["rss_before"],
        "heap_peak": heap_run["heap_peak"] if heap_run else None,
    }


def _print_table(lines: list[dict]) -> None:
    """Every variant beside the floor and the baseline measured in the same run, size and database."""
    reference = {(line["database"], line["rows"], line["variant"]): line for line in lines}
    header = (
        f"{'variant':<10} {'database':<11} {'rows':>8} {'seconds':>9} {'CPU s':>7} {'rows/s':>9} {'peak RSS MB':>12} "
        f"{'RSS growth MB':>14} {'heap peak MB':>13} {'x floor':>8} {'CPU x floor':>12} {'x baseline':>11}"
    )
    print(header)
    print("-" * len(header))
    for line in lines:
        heap = f"{line['heap_peak']:.0f}" if line["heap_peak"] is not None else "-"
        floor = reference[(line["database"], line["rows"], "floor")]
        base = reference[(line["database"], line["rows"], "baseline")]
        print(
            f"{line['variant']:<10} {line['database']:<11} {line['rows']:>8} {line['seconds']:>9.2f} {line['cpu']:>7.1f} "
            f"{line['rows'] / line['seconds']:>9.0f} {line['rss_peak']:>12.0f} {line['rss_growth']:>14.0f} {heap:>13} "
            f"{line['seconds'] / floor['seconds']:>7.2f}x {line['cpu'] / floor['cpu']:>11.2f}x {line['seconds'] / base['seconds']:>10.2f}x"
        )


AGGREGATES = ("counts", "recommendations", "facilities", "visits", "consistent", "history")
FINGERPRINTS = ("recommendation_rows", "history_rows")


def _compare(label: str, imported: dict, other: dict, keys: tuple[str, ...], failures: list[str]) -> None:
    for key in keys:
        if imported[key] != other[key]:
            failures.append(f"{label}: the registries differ in {key}: {imported[key][:3]} vs {other[key][:3]}")


def bench_database(dialect: str, csv_path: Path, expected: dict, args, workdir: Path, failures: list[str]) -> tuple[list[dict], dict]:
    n = expected["rows"]
    registries: list[Registry] = []

    def fresh(label: str) -> Registry:
        registry = Registry(dialect, workdir, f"{dialect}_{n}_{label}", args.pg_url)
        registries.append(registry)
        return registry

    def check_counts(what: str, got: dict, want: dict) -> None:
        if got != want:
            failures.append(f"{dialect} {n} {what}: counts {got}, expected {want}")

    def check_registry(what: str, registry: Registry) -> dict:
        seen = run_child(child_inspect, registry.url)
        want = [(str(expected["facilities"]), str(expected["visits"]), str(n), str(n))]
        if seen["counts"] != want:
            failures.append(f"{dialect} {n} {what}: facility/visit/recommendation/status_change rows {seen['counts'][0]}, expected {want[0]}")
        if seen["consistent"] != [(str(n),)]:
            failures.append(f"{dialect} {n} {what}: {seen['consistent'][0][0]} of {n} recommendations point at their visit's facility")
        return seen

    tag = f"[{dialect} {n:,}]"
    try:
        print(f"{tag} import into a fresh registry ...", flush=True)
        a = fresh("import")
        first = run_child(child_import, a.url, str(csv_path), False)
        check_counts("import", first["counts"], {"created": n, "updated": 0, "unchanged": 0, "rejected": 0})
        imported = check_registry("import", a)
        print(f"{tag}   {first['seconds']:.1f} s, {first['rss_peak']:.0f} MB, counts {first['counts']}", flush=True)

        print(f"{tag} re-import of the same file ...", flush=True)
        again = run_child(child_import, a.url, str(csv_path), False)
        check_counts("re-import", again["counts"], {"created": 0, "updated": 0, "unchanged": n, "rejected": 0})
        reimported = check_registry("re-import", a)
        _compare(f"{dialect} {n} re-import", imported, reimported, AGGREGATES + FINGERPRINTS, failures)
        print(f"{tag}   {again['seconds']:.1f} s, {again['rss_peak']:.0f} MB, counts {again['counts']}", flush=True)

        print(f"{tag} baseline (pandas + executemany, ids looked up) into a fresh registry ...", flush=True)
        b = fresh("baseline")
        base = run_child(child_baseline, dialect, b.target, str(csv_path), False)
        _compare(f"{dialect} {n} import vs baseline", imported, check_registry("baseline", b), AGGREGATES, failures)
        print(f"{tag}   {base['seconds']:.1f} s, {base['rss_peak']:.0f} MB", flush=True)

        print(f"{tag} floor (read_csv + one statement per table, no validation) into a fresh registry ...", flush=True)
        f = fresh("floor")
        floor = run_child(child_floor, dialect, f.target, str(csv_path), False)
        _compare(f"{dialect} {n} import vs floor", imported, check_registry("floor", f), AGGREGATES + FINGERPRINTS, failures)
        print(f"{tag}   {floor['seconds']:.1f} s, {floor['rss_peak']:.0f} MB", flush=True)

        heaps: dict[str, dict | None] = {"import": None, "re-import": None, "baseline": None, "floor": None}
        if args.heap:
            print(f"{tag} tracemalloc pass (Python-heap peaks; not timed) ...", flush=True)
            c = fresh("import_heap")
            heaps["import"] = run_child(child_import, c.url, str(csv_path), True)
            heaps["re-import"] = run_child(child_import, c.url, str(csv_path), True)
            heaps["baseline"] = run_child(child_baseline, dialect, fresh("baseline_heap").target, str(csv_path), True)
            heaps["floor"] = run_child(child_floor, dialect, fresh("floor_heap").target, str(csv_path), True)

        profile = None
        if args.profile:
            print(f"{tag} cProfile of one import ...", flush=True)
            profile = run_child(child_profile, fresh("profile").url, str(csv_path), args.profile_top)

        lines = [
            _row("import", dialect, n, first, heaps["import"]),
            _row("re-import", dialect, n, again, heaps["re-import"]),
            _row("baseline", dialect, n, base, heaps["baseline"]),
            _row("floor", dialect, n, floor, heaps["floor"]),
        ]
        notes = {"changes_sql_null": imported["history_changes_sql_null"][0][0], "profile": profile}
        return lines, notes
    finally:
        for registry in registries:
            try:
                registry.drop()
            except Exception as exc:  # noqa: BLE001 - report and carry on cleaning up
                print(f"could not drop {registry.name}: {exc}", file=sys.stderr)


def _sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=_sizes, default=[500_000], help="one size or several, comma-separated: 500000,1000000")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--pg-url", default=PG_ADMIN_URL, help="admin URL of the PostgreSQL server (AUTOCOMMIT; creates and drops databases)")
    parser.add_argument("--heap", dest="heap", action="store_true", help="also run each variant under tracemalloc (Python-heap peaks)")
    parser.add_argument("--no-heap", dest="heap", action="store_false", help="skip the tracemalloc pass (the default)")
    parser.add_argument("--profile", action="store_true", help="also cProfile one import and print the hot spots")
    parser.add_argument("--profile-top", type=int, default=25)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (CSV and SQLite files)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.set_defaults(heap=False)
    args = parser.parse_args(argv)
    quiet()

    workdir = Path(tempfile.mkdtemp(prefix="followup_bench_"))
    failures: list[str] = []
    lines: list[dict] = []
    notes: dict[tuple[str, int], dict] = {}
    dialects = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    try:
        for rows in args.rows:
            csv_path = workdir / f"recommendations_{rows}.csv"
            started = time.perf_counter()
            expected = generate_csv(csv_path, rows, args.seed)
            print(
                f"generated {csv_path} in {time.perf_counter() - started:.1f} s: {expected['rows']} rows, "
                f"{expected['facilities']} facilities, {expected['visits']} visits, {csv_path.stat().st_size / 2**20:.0f} MB",
                flush=True,
            )
            for dialect in dialects:
                found, note = bench_database(dialect, csv_path, expected, args, workdir, failures)
                lines += found
                notes[(dialect, rows)] = note
            if not args.keep:
                csv_path.unlink()
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, parent peak RSS {maxrss_mb():.0f} MB (the children's RSS starts from it)")
    print()
    _print_table(lines)
    print()
    print("aims (for the first import, against the floor measured in the same run):")
    for line in lines:
        if line["variant"] != "import":
            continue
        floor = next(f for f in lines if f["variant"] == "floor" and f["database"] == line["database"] and f["rows"] == line["rows"])
        ratio = line["seconds"] / floor["seconds"]
        where = f"{line['database']:<10} {line['rows']:>9,}"
        print(f"  {where}  within 2x of the floor: {ratio:.2f}x (CPU {line['cpu'] / floor['cpu']:.2f}x) -> {'MET' if ratio <= 2 else 'MISSED'}")
        print(
            f"  {where}  under 1 GB peak: {line['rss_peak']:.0f} MB peak RSS ({line['rss_growth']:.0f} MB growth during the call) "
            f"-> {'MET' if line['rss_peak'] < 1024 else 'MISSED'}"
        )
    for (dialect, rows), note in notes.items():
        if note["profile"]:
            print()
            print(f"--- cProfile, {dialect}, {rows:,} rows ---")
            print(note["profile"])
        print(f"note: {dialect} {rows:,}: status_change rows written by the import whose `changes` is SQL NULL: {note['changes_sql_null']} of {rows}")
    if failures:
        print()
        print("WRONG WRITES:")
        for failure in failures:
            print(f"  {failure}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
