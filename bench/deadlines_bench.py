"""Benchmark: the daily deadline pass (Prefect `daily_flow`) against hand-written set-based SQL.

    python bench/deadlines_bench.py [--rows 1000000 | --rows 500000,1000000] [--database sqlite|postgresql|both]
        [--variants prefect,bare,floor,...] [--late-share 0.10] [--as-of 2026-11-23]

The issue asks: "`bench/` sweeps 1,000,000 open recommendations and prints time and peak
memory next to a hand-written set-based SQL baseline doing the same writes in the same run;
aim: within 2x, under 1 GB, and a Prefect task count that does not grow with N."

What it does, for each chosen database and for two sizes (`--rows` and `--rows`/10, so that
the task count can be seen not to grow with N):

1. Populates one fresh registry (schema and the 9 ministries through `init_db`, then bulk SQL:
   a few hundred facilities, N recommendations, their history, earlier reminders and earlier
   individualized recommendations). Not through the import: that would take longer than the
   runs being measured. The data is deterministic (`--seed`) and identical on both databases.
   It is shaped so that, as of `--as-of`, a realistic share of the open items needs a reminder,
   a share becomes overdue, a share has been overdue long enough to be escalated, some have no
   deadline of their own (the policy's deadline is derived), some are on hold or were (the
   clock stopped), and a few earlier individualized recommendations went unanswered (level 2)
   or were answered. Every recommendation's history ends in its current status.
2. Copies that registry for each measured variant (SQLite: the file; PostgreSQL:
   CREATE DATABASE ... TEMPLATE), so all variants start from the same contents:
   * `prefect`: the real `followup.flows.pipeline.daily_flow(as_of)` on a temporary Prefect server
     (`prefect_test_harness`), timed until the flow returned and its events were delivered
     (EventsWorker drained). Its task runs are then counted through the Prefect client.
   * `prefect-noevents`: the same flow with `followup.flows.pipeline.emit_event` replaced by a no-op
     (monkeypatched in the child, the project is not changed): the difference to `prefect`
     is what the per-change Prefect events cost.
   * `bare`: the step functions without Prefect (`check_deadlines`, `plan_escalations`,
     `escalate_ministry` per ministry, `refer_to_level2`), so the Prefect overhead is visible.
   * `floor` (issue 20): the least work that makes the same outputs, the variant every other is
     compared with and measured against (`x floor`, per step too): the baseline's set-based SQL
     reading only the running items that may need something (the project's own SQL bound) and
     building a reminder's text and HTML for its listed items only (`letters.listed_items`), every
     item in the attached CSV. Each kind of write is one statement for all ministries: the overdue
     marks one UPDATE and one INSERT ... SELECT of their history (who, why, from when), the
     reminder rows one INSERT ... SELECT, the letters one INSERT ... SELECT of a row per ministry;
     escalation and level 2 the same, with their letters.
   * `baseline`: hand-written set-based SQL over the raw DBAPI (sqlite3 / psycopg), doing the
     same writes: derived deadlines and their history entries, overdue marks with history,
     the reminder letters and reminder rows, individualized recommendations with their items,
     status changes, history and letters, level 2 and its notices. Letters are built in SQL
     (string_agg / group_concat). The policy is read from config/policy.yaml and the working
     calendar from the `holidays` package directly, not through the project's code.
3. Compares what each variant wrote with what the floor wrote (the baseline's, without a floor), row by row
   (fingerprints of every recommendation's status and deadline clock, every new history
   entry, reminders, individualized recommendations and items, and notifications). Timestamps
   and ids are left out. Letter bodies list their items in the order of an unordered query, so
   they are compared with the item lines sorted within each section (and level 2's list of
   items sorted); payload lists are compared sorted.
4. Prints the table (seconds, rows/s, peak RSS, RSS growth, Prefect task runs, events,
   x baseline), where the time went inside the project runs (the step functions are wrapped
   with timers in the child), and the aims with MET / MISSED.

Each measured run happens in its own spawned child process (ProcessPoolExecutor with the
spawn context), so that its `ru_maxrss` is its own; the parent stays standard-library-only
(on Linux a child's `ru_maxrss` starts at its parent's high-water mark). The Prefect server
of the harness runs in a grandchild; its peak RSS is reported separately, not counted.

`--profile` adds a cProfile run of `bare` and of `prefect` at the larger size and prints the
hot spots. The script exits non-zero on a crash or when a project variant's writes differ
from the baseline's, never because of time or memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

from common import child_pg_admin, libpq_conninfo, maxrss_mb, quiet, run_child

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SEED = 20261123
AS_OF = "2026-11-23"
#: created_at / updated_at of every populated row: older than any run, so that "updated by the
#: run" is `updated_at > UPDATED_CUTOFF` in the comparison
POPULATED_AT = "2020-01-01 00:00:00"
UPDATED_CUTOFF = "2020-01-02 00:00:00"
POPULATE_ACTOR = "bench:populate"
ACTOR = "followup:scheduler"  # followup.steps.deadlines.ACTOR: the baseline writes the same actor
VARIANTS = ("prefect", "prefect-noevents", "bare", "baseline", "floor")
#: the project's steps and the floor's (and baseline's) transactions, for the ratio per step
STEPS = ("check-deadlines", "escalate", "level2")
HISTORY = ("INSERT INTO status_change (recommendation_id, from_status, to_status, at, actor, reason, evidence, effective_on, "
           "changes) ")
ROOT = Path(__file__).resolve().parent.parent


# --- process helpers (standard library only: the parent uses them too) -------------------------






def _rss_now_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20




def _child_setup(workdir: str) -> None:
    """Project on sys.path, quiet Prefect, and temp files inside the bench's work dir.

    A spawned worker leaves without running atexit handlers, so the Prefect harness's temporary
    database would stay in /tmp: with `tempfile.tempdir` here, the parent's cleanup removes it.
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    quiet()
    tmp = Path(workdir) / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    tempfile.tempdir = str(tmp)
    os.environ["TMPDIR"] = str(tmp)
    os.environ["PREFECT_HOME"] = str(Path(workdir) / "prefect_home")
    # the letters carry signed reply links: the deadline flows refuse to run without the key (on
    # PostgreSQL), and the baseline signs the same links with it
    os.environ.setdefault("FOLLOWUP_SECRET_KEY", "bench-deadlines-key-not-a-secret")


class _output_to:
    """Send this process's stdout and stderr (fd 1 and 2, so also those of the Prefect server it
    starts) into a file: the server logs a line per message its in-memory queue drops."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = os.dup(1), os.dup(2)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        return self

    def __exit__(self, *exc) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)
        os.close(self.saved[0])
        os.close(self.saved[1])




# --- 1. populate one registry --------------------------------------------------------------------

#: share of recommendations per ministry (codes of config/ministries.yaml)
MINISTRY_WEIGHTS = {
    "interior": 0.42, "health": 0.15, "education": 0.12, "labour": 0.13, "justice": 0.06,
    "defence": 0.04, "nsc": 0.02, "foreign": 0.03, "prosecutor": 0.03,
}
#: facilities per ministry and their name pattern (foreign affairs and the prosecutor have none)
FACILITY_PLAN = {
    "interior": (200, "Учреждение ЕЦ-166/{n} г. {city}"),
    "health": (60, "Центр психического здоровья №{n} г. {city}"),
    "education": (50, "Детский дом №{n} г. {city}"),
    "labour": (60, "Центр оказания специальных социальных услуг №{n} г. {city}"),
    "justice": (15, "Центр временной изоляции №{n} г. {city}"),
    "defence": (15, "Гарнизонная гауптвахта №{n} г. {city}"),
    "nsc": (5, "Следственный изолятор КНБ №{n} г. {city}"),
}
CITIES = [
    "Астана", "Алматы", "Шымкент", "Караганда", "Актобе", "Павлодар", "Семей", "Костанай", "Кокшетау", "Тараз", "Атырау", "Актау",
]
SOURCES = ["npm_visit", "treaty_body", "upr", "spt", "other"]
SOURCE_SHARES = [0.82, 0.06, 0.05, 0.04, 0.03]
#: the policy's deadline of each source in days, roughly (used only to place issued_on)
SOURCE_TERM_DAYS = {"npm_visit": 90, "treaty_body": 365, "upr": 913, "spt": 182, "other": 90}
PRIORITIES = ["normal", "high", "urgent", "low"]
PRIORITY_SHARES = [0.80, 0.15, 0.03, 0.02]
CATEGORIES = ["условия содержания", "медицинская помощь", "питание", "правовые гарантии", "связь с внешним миром", "персонал"]
#: single-spaced texts of 90-230 characters (longer than 160 ones are shortened in letters)
MAIN = [
    "Обеспечить соблюдение нормы жилой площади не менее {k} кв. м на одного человека; в ходе визита выявлено переполнение.",
    "Обеспечить круглосуточный доступ к питьевой воде и к санитарным узлам с перегородками.",
    "Организовать медицинский осмотр каждого поступающего с фиксацией телесных повреждений.",
    "Оборудовать прогулочные дворики навесами и обеспечить ежедневную прогулку не менее {k} часов.",
    "Провести ремонт вентиляции и отопления; температура в помещениях не должна опускаться ниже {t} градусов.",
    "Разместить информацию о правах и о порядке подачи жалоб на казахском и русском языках.",
    "Исключить присутствие сотрудников при медицинском осмотре.",
    "Укомплектовать штат психологом и провести обучение персонала по предупреждению пыток.",
]
TAIL = [
    "Нарушение зафиксировано в акте посещения №{a} (пункт {k}).",
    "При посещении опрошено {p} человек.",
    "Рекомендация повторяется: по итогам предыдущего визита она не была исполнена.",
    "",
    "Предусмотреть необходимые средства в бюджете на {y} год.",
]


def child_populate(url: str, dialect: str, target: str, rows: int, seed: int, as_of_iso: str, workdir: str,
                   late_share: float = 0.10) -> dict:
    """Schema and ministries via `init_db`, then everything else in bulk; returns what was made.

    `late_share`: the share of running items whose deadline passed 1-40 days ago (they become
    overdue today, and those past 10 working days escalate too); 0.10 by default, about 0.7 for
    issue 20's backlog (half of all items marked overdue in one pass)."""
    _child_setup(workdir)
    from datetime import UTC, datetime

    import numpy as np

    from followup.models.crud import init_db
    from followup.models.db import get_engine
    from followup.models.search import fold

    started = time.perf_counter()
    init_db(url)
    get_engine(url).dispose()

    rng = np.random.default_rng(seed)
    as_of = np.datetime64(as_of_iso, "D")
    n = rows
    ids = np.arange(1, n + 1)

    def randint(low: int, high: int) -> np.ndarray:  # inclusive bounds, one per row
        return rng.integers(low, high + 1, n)

    # who and what
    codes = list(MINISTRY_WEIGHTS)
    ministry = np.array(codes, dtype=object)[rng.choice(len(codes), n, p=list(MINISTRY_WEIGHTS.values()))]
    source = np.array(SOURCES, dtype=object)[rng.choice(len(SOURCES), n, p=SOURCE_SHARES)]
    priority = np.array(PRIORITIES, dtype=object)[rng.choice(len(PRIORITIES), n, p=PRIORITY_SHARES)]
    roll = rng.random(n)
    status = np.select(
        [roll < 0.45, roll < 0.70, roll < 0.88, roll < 0.98], ["issued", "in_progress", "overdue", "on_hold"], "escalated"
    ).astype(object)
    running = (status == "issued") | (status == "in_progress")
    overdue, on_hold, escalated = status == "overdue", status == "on_hold", status == "escalated"

    # the effective deadline (stored due_on + days on hold) relative to as_of
    pick = rng.random(n)
    days_left = np.where(pick < late_share, -randint(1, 40),  # running
                         np.where(pick < min(late_share + 0.10, 1.0), randint(0, 14), randint(15, 365)))
    days_left = np.where(overdue, -randint(1, 30), days_left)
    days_left = np.where(on_hold, randint(-10, 200), days_left)
    days_left = np.where(escalated, -randint(60, 120), days_left)
    hold = np.where(running & (rng.random(n) < 0.10), randint(1, 40), 0)  # came back from hold earlier
    hold = np.where(overdue & (rng.random(n) < 0.10), randint(1, 10), hold)
    hold = np.where(on_hold & (rng.random(n) < 0.30), randint(1, 30), hold)
    eff_due = as_of + days_left.astype("timedelta64[D]")
    due = eff_due - hold.astype("timedelta64[D]")
    null_due = (running | on_hold) & (rng.random(n) < 0.06)  # no deadline given: the policy's applies
    on_hold_since = np.where(on_hold, as_of - randint(1, 90).astype("timedelta64[D]"), np.datetime64("NaT"))
    # overdue since the day after the effective deadline; a few were marked later than that
    late_mark = np.where(overdue & (rng.random(n) < 0.05), randint(1, 7), 0).astype("timedelta64[D]")
    marked = np.minimum(eff_due + np.timedelta64(1, "D") + late_mark, as_of)
    overdue_since = np.where(overdue | escalated, marked, np.datetime64("NaT"))

    # issued_on: a term before the deadline, spread over ~2 years, never after as_of (or a hold)
    policy_term = np.vectorize(SOURCE_TERM_DAYS.get, otypes=[np.int64])(source)
    term = np.where(null_due, policy_term, rng.choice([30, 60, 90, 180, 365, 730], n))
    issued = due - term.astype("timedelta64[D]")
    issued = np.where(issued > as_of - 1, as_of - randint(1, 60).astype("timedelta64[D]"), issued)
    issued = np.where(on_hold, np.minimum(issued, on_hold_since - randint(1, 30).astype("timedelta64[D]")), issued)
    due = np.where(null_due, np.datetime64("NaT"), due)

    def iso(values: np.ndarray) -> list:
        text = np.datetime_as_string(values, unit="D").astype(object)
        text[np.isnat(values)] = None
        return list(text) if dialect == "sqlite" else [date.fromisoformat(t) if t else None for t in text]

    # texts and external ids
    main_i, tail_i = rng.integers(0, len(MAIN), n), rng.integers(0, len(TAIL), n)
    k, p, a = randint(2, 9), randint(12, 480), randint(100, 9999)
    category = np.array(CATEGORIES, dtype=object)[rng.integers(0, len(CATEGORIES), n)]
    years = issued.astype("datetime64[Y]").astype(int) + 1970
    texts = [
        (MAIN[mi].format(k=kk, t=18 + kk % 3) + " " + TAIL[ti].format(a=aa, k=kk, p=pp, y=yy + 1)).strip()
        for mi, ti, kk, pp, aa, yy in zip(main_i, tail_i, k, p, a, years, strict=True)
    ]
    external = [f"REC-{y}-{i:07d}" for y, i in zip(years, ids, strict=True)]

    if dialect == "sqlite":
        import sqlite3

        connection = sqlite3.connect(target, timeout=30)
        connection.execute("PRAGMA foreign_keys=ON")
        mark = "?"
        stamp: object = POPULATED_AT + ".000000"
    else:
        import psycopg

        connection = psycopg.connect(target)
        mark = "%s"
        stamp = datetime.fromisoformat(POPULATED_AT).replace(tzinfo=UTC)
    cursor = connection.cursor()

    # facilities, then each recommendation at one of its ministry's facilities (treaty bodies and
    # the UPR address the ministry, not a facility)
    facility_rows, number = [], 0
    for code, (count, pattern) in FACILITY_PLAN.items():
        for _ in range(count):
            number += 1
            city = CITIES[number % len(CITIES)]
            facility_rows.append((pattern.format(n=number, city=city), "other", city, code))
    four = ", ".join([mark] * 4)
    cursor.executemany(f"INSERT INTO facility (name, facility_type, region, ministry_code) VALUES ({four})", facility_rows)
    cursor.execute("SELECT id, ministry_code FROM facility ORDER BY id")
    by_ministry: dict[str, list[int]] = {}
    for fid, code in cursor.fetchall():
        by_ministry.setdefault(code, []).append(fid)
    facility = np.full(n, None, dtype=object)
    at_facility = np.isin(source, ["npm_visit", "spt", "other"])
    for code, fids in by_ministry.items():
        rows_of = at_facility & (ministry == code)
        facility[rows_of] = np.array(fids, dtype=object)[rng.integers(0, len(fids), int(rows_of.sum()))]

    columns = (
        "id", "external_id", "text", "source", "category", "priority", "issued_on", "due_on", "ministry_code", "facility_id",
        "status", "overdue_since", "on_hold_since", "days_on_hold", "created_at", "updated_at", "search_text",
    )
    folded = {t: fold(t) for t in set(texts)}  # what the import writes beside each text (the search's copy)
    data = zip(
        ids.tolist(), external, texts, source.tolist(), category.tolist(), priority.tolist(), iso(issued), iso(due),
        ministry.tolist(), facility.tolist(), status.tolist(), iso(overdue_since), iso(on_hold_since), hold.tolist(),
        [stamp] * n, [stamp] * n, [folded[t] for t in texts], strict=True,
    )
    if dialect == "sqlite":
        cursor.executemany(f"INSERT INTO recommendation ({', '.join(columns)}) VALUES ({', '.join(['?'] * len(columns))})", data)
    else:
        with cursor.copy(f"COPY recommendation ({', '.join(columns)}) FROM STDIN") as copy:
            for row in data:
                copy.write_row(row)
        cursor.execute("SELECT setval(pg_get_serial_sequence('recommendation', 'id'), (SELECT max(id) FROM recommendation))")

    # history: created as issued, then the step to where the item stands, so the latest entry
    # of every recommendation is its current status (set-based)
    def history(select: str) -> None:
        cursor.execute(HISTORY + select)

    history(f"SELECT id, NULL, 'issued', created_at, '{POPULATE_ACTOR}', 'created', NULL, NULL, NULL FROM recommendation "
            "ORDER BY id")
    history(
        f"SELECT id, 'issued', status, created_at, '{POPULATE_ACTOR}', 'populated', NULL, NULL, NULL FROM recommendation "
        "WHERE status IN ('in_progress', 'on_hold') ORDER BY id"
    )
    history(
        f"SELECT id, 'issued', 'overdue', created_at, '{POPULATE_ACTOR}', 'populated', NULL, overdue_since, NULL "
        "FROM recommendation WHERE status IN ('overdue', 'escalated') ORDER BY id"
    )
    history(
        f"SELECT id, 'overdue', 'escalated', created_at, '{POPULATE_ACTOR}', 'populated', NULL, NULL, NULL FROM recommendation "
        "WHERE status = 'escalated' ORDER BY id"
    )

    # earlier reminders: most items inside the 14-day window got that reminder already, and
    # some of those at 0-1 days left the 3-day one too (keyed by the stored deadline)
    window = running & ~null_due & (days_left >= 0) & (days_left <= 10)
    got14 = window & (rng.random(n) < 0.6)
    got3 = got14 & (days_left <= 1) & (rng.random(n) < 0.5)
    reminders = []
    for got, offset in ((got14, 14), (got3, 3)):
        sent_on = iso(eff_due[got] - np.timedelta64(offset, "D"))
        reminders += [(int(i), d, offset, s) for i, d, s in zip(ids[got], iso(due[got]), sent_on, strict=True)]
    cursor.executemany(f"INSERT INTO reminder (recommendation_id, due_on, offset_days, sent_on) VALUES ({four})", reminders)

    # earlier individualized recommendations, per ministry: one unanswered past its response
    # deadline (level 2 today), one answered (its items moved on), one still within its deadline
    as_of_day = date.fromisoformat(as_of_iso)

    def day(offset: int):
        value = as_of_day.fromordinal(as_of_day.toordinal() + offset)
        return value.isoformat() if dialect == "sqlite" else value

    letters = []
    for code in codes:
        for label, issued_offset, due_offset in (("old", -50, -20), ("answered", -49, -19), ("recent", -10, 20)):
            when = as_of_day.fromordinal(as_of_day.toordinal() + issued_offset)
            letters.append((f"IR-{when:%Y%m%d}-{code.upper()}", code, day(issued_offset), day(due_offset), label))
    cursor.executemany(
        f"INSERT INTO individualized_recommendation (reference, ministry_code, issued_on, response_due_on, status, created_at) "
        f"VALUES ({mark}, {mark}, {mark}, {mark}, 'issued', {mark})",
        [(ref, code, issued_on, due_on, stamp) for ref, code, issued_on, due_on, _ in letters],
    )
    pct = "%" if dialect == "sqlite" else "%%"  # psycopg reads a lone % as a placeholder
    for ref, code, _, _, label in letters:
        which = {
            "old": f"status = 'escalated' AND id {pct} 5 <> 0",
            "recent": f"status = 'escalated' AND id {pct} 5 = 0",
            "answered": f"status = 'in_progress' AND id {pct} 1000 = 7",
        }[label]
        cursor.execute(
            f"INSERT INTO individualized_item (individualized_id, recommendation_id) "
            f"SELECT (SELECT id FROM individualized_recommendation WHERE reference = {mark}), id FROM recommendation "
            f"WHERE ministry_code = {mark} AND {which} ORDER BY 2",
            (ref, code),
        )
    connection.commit()

    cursor.execute("SELECT status, count(*), count(due_on) FROM recommendation GROUP BY status ORDER BY status")
    statuses = {s: (c, c - d) for s, c, d in cursor.fetchall()}
    cursor.execute("SELECT max(id), count(*) FROM status_change")
    history_max_id, history_rows = cursor.fetchone()
    if dialect == "sqlite":
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.close()
    else:
        connection.close()
        with psycopg.connect(target, autocommit=True) as maintenance:
            maintenance.execute("VACUUM ANALYZE")  # a live registry has its statistics
    return {
        "seconds": time.perf_counter() - started, "statuses": statuses, "history_max_id": history_max_id,
        "history_rows": history_rows, "reminders": len(reminders), "facilities": len(facility_rows),
    }


# --- 2. the project: the Prefect flow, or the bare step functions --------------------------------


class _Probes:
    """Timers around module-level functions: calls, seconds, and RSS right after each call."""

    def __init__(self) -> None:
        self.calls: dict[str, list[float]] = {}

    def wrap(self, name: str, fn, rss: bool = True):
        import functools

        entry = self.calls.setdefault(name, [0, 0.0, 0.0, 0.0])  # calls, seconds, RSS after, peak RSS after

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                entry[0] += 1
                entry[1] += time.perf_counter() - start
                if rss:
                    entry[2] = max(entry[2], _rss_now_mb())
                    entry[3] = maxrss_mb()

        return wrapper

    def patch(self, module, *names: str, rss: bool = True) -> None:
        for name in names:
            if not hasattr(module, name):
                continue  # another version of the project
            setattr(module, name, self.wrap(f"{module.__name__.rsplit('.', 1)[-1]}.{name}", getattr(module, name), rss))


def _sum_counts(*counts: dict) -> dict:
    total: dict[str, int] = {}
    for c in counts:
        for key, value in c.items():
            total[key] = total.get(key, 0) + value
    return total


def child_project(url: str, as_of_iso: str, mode: str, workdir: str, profile_top: int, event_wait: float) -> dict:
    """One measured run of the project: mode `prefect`, `prefect-noevents` or `bare`."""
    _child_setup(workdir)
    os.environ["FOLLOWUP_DATABASE_URL"] = url  # the Prefect tasks call the steps without an engine
    import cProfile
    import gc
    import io
    import pstats
    from collections import Counter

    from followup.config.policy import load_policy
    from followup.models.db import get_engine
    from followup.steps import deadlines

    as_of = date.fromisoformat(as_of_iso)
    probes = _Probes()
    # inner pieces of the steps (few calls each): where the time of a step goes; `render` and
    # `_item` (one call per listed item) come with the notifications issue's templates
    probes.patch(deadlines, "load_watched", "decide", "_items", "transition_many", "record_edits", "queue", "render")
    probes.patch(deadlines, "_item", rss=False)
    out: dict = {"mode": mode}
    profiler = cProfile.Profile() if profile_top else None

    def timed(run) -> tuple[object, float]:
        gc.collect()
        started = time.perf_counter()
        value = profiler.runcall(run) if profiler else run()
        return value, time.perf_counter() - started

    if mode == "bare":
        engine = get_engine(url)
        policy = load_policy()
        probes.patch(deadlines, "check_deadlines", "plan_escalations", "escalate_ministry", "refer_to_level2")

        def bare_pass() -> dict:
            checked = deadlines.check_deadlines(as_of, engine=engine, policy=policy)
            results = [deadlines.escalate_ministry(code, as_of, engine=engine, policy=policy)
                       for code in deadlines.plan_escalations(as_of, engine=engine, policy=policy)]
            results.append(deadlines.refer_to_level2(as_of, engine=engine))
            return {"check-deadlines": checked.counts(), "escalate": _sum_counts(*(r.counts() for r in results)),
                    "changes": len(checked.changes) + sum(len(r.changes) for r in results)}

        out["rss_before"] = maxrss_mb()
        counts, seconds = timed(bare_pass)
        out.update(seconds=seconds, flow_seconds=seconds, rss_peak=maxrss_mb(), counts=counts)
        engine.dispose()
    else:
        from prefect.events.worker import EventsWorker
        from prefect.testing.utilities import prefect_test_harness

        from followup.flows import pipeline

        probes.patch(pipeline, "check_deadlines", "plan_escalations", "escalate_ministry", "refer_to_level2", "_publish")
        emitted: Counter = Counter()
        real_emit = pipeline.emit_event

        def counting_emit(*args, **kwargs):
            name = kwargs.get("event") or args[0]
            emitted[name] += 1
            return real_emit(*args, **kwargs) if mode == "prefect" else None

        pipeline.emit_event = probes.wrap("pipeline.emit_event", counting_emit, rss=False)
        harness_started = time.perf_counter()
        log = Path(workdir) / f"prefect_{mode}_{os.getpid()}.log"
        with _output_to(log), prefect_test_harness(server_startup_timeout=180):
            out["harness_seconds"] = time.perf_counter() - harness_started
            out["rss_before"] = maxrss_mb()

            def flow_and_events() -> dict:
                started_at = time.perf_counter()
                # daily_flow's two deadline flows; daily_flow itself now also runs `dispatch`, which
                # delivers the outbox through Apprise: no part of the sweep, and not for a bench to do
                counts = {"check-deadlines": pipeline.check_deadlines_flow(as_of), "escalate": pipeline.escalate_flow(as_of)}
                out["flow_seconds"] = time.perf_counter() - started_at
                EventsWorker.drain_all()  # every event handed over to the server
                return counts

            counts, seconds = timed(flow_and_events)
            out.update(seconds=seconds, rss_peak=maxrss_mb(), counts=counts, emitted=dict(emitted))
            out["task_runs"], out["flow_runs"], out["task_run_names"], out["task_runs_not_final"] = _count_runs()
            sent = sum(emitted.values()) if mode == "prefect" else 0
            out["events_persisted"], out["events_wait"] = _count_followup_events(sent, event_wait)
        out["server_rss_peak"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        # the server's in-memory message bus drops what does not fit its queue: count it
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        out["server_dropped"] = sum("dropping message" in line for line in lines)
        warnings = [line.split(" | ", 3)[-1][:160] for line in lines if "WARNING" in line or "ERROR" in line]
        out["log_warnings"] = list(dict.fromkeys(w for w in warnings if "dropping message" not in w))[:5]
        get_engine(url).dispose()

    out["probes"] = probes.calls
    prefix = "deadlines" if mode == "bare" else "pipeline"

    def spent(*names: str) -> float:
        return sum(probes.calls.get(f"{prefix}.{n}", [0, 0.0])[1] for n in names)

    out["steps"] = {"check-deadlines": spent("check_deadlines"), "escalate": spent("plan_escalations", "escalate_ministry"),
                    "level2": spent("refer_to_level2")}
    if profiler:
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("tottime").print_stats(profile_top)
        stats.sort_stats("cumulative").print_stats(profile_top)
        out["profile"] = text.getvalue()
    return out


def _count_runs() -> tuple[int, int, dict, int]:
    """Task runs of every flow run on the (fresh) harness server, once the server recorded them all.

    Prefect 3 records task runs from the events the client sends, so they may arrive a little
    after the flow returned: poll until every task run is final and the count stays the same.
    """
    from collections import Counter

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    last, stable, deadline = -1, 0, time.monotonic() + 300
    with get_client(sync_client=True) as client:
        while True:
            flow_runs = client.read_flow_runs(limit=200)
            task_runs: list = []
            while True:
                runs_of = FlowRunFilter(id=FlowRunFilterId(any_=[f.id for f in flow_runs]))
                page = client.read_task_runs(flow_run_filter=runs_of, limit=200, offset=len(task_runs))
                task_runs += page
                if len(page) < 200:
                    break
            final = all(t.state is not None and t.state.is_final() for t in task_runs)
            stable = stable + 1 if final and len(task_runs) == last else 0
            last = len(task_runs)
            if stable >= 2 or time.monotonic() > deadline:
                names = Counter((t.name or "?").split(" ")[0] for t in task_runs)
                not_final = sum(not (t.state is not None and t.state.is_final()) for t in task_runs)
                return len(task_runs), len(flow_runs), dict(names), not_final
            time.sleep(1)


def _count_followup_events(expected: int, wait: float) -> tuple[int, float]:
    """How many `followup.*` events the server has stored, waiting up to `wait` s for `expected`."""
    from prefect.client.orchestration import get_client

    started = time.monotonic()
    total = 0
    with get_client(sync_client=True) as client:
        while True:
            response = client._client.post("/events/filter", json={"filter": {"event": {"prefix": ["followup."]}}, "limit": 1})
            total = int(response.json().get("total") or 0)
            if total >= expected or time.monotonic() - started > wait:
                return total, time.monotonic() - started
            time.sleep(2)


# --- 3. the baseline: hand-written set-based SQL --------------------------------------------------


PG_TYPES = {"text": "text", "date": "date", "ts": "timestamptz", "int": "integer"}


class _Sql:
    """The few expressions SQLite and PostgreSQL write differently."""

    def __init__(self, dialect: str):
        self.pg = dialect == "postgresql"
        self.nl = "chr(10)" if self.pg else "char(10)"
        self.jobj = "json_build_object" if self.pg else "json_object"
        self.jarr = "json_build_array" if self.pg else "json_array"

    def p(self, name: str, kind: str = "text") -> str:
        """A bound parameter; PostgreSQL gets its type (psycopg sends text as unknown)."""
        if self.pg:
            return f"CAST(%({name})s AS {PG_TYPES[kind]})"
        return f":{name}"

    def days(self, day: str, n: str) -> str:
        return f"({day} + ({n}))" if self.pg else f"date({day}, ({n}) || ' days')"

    def months(self, day: str, months: int) -> str:
        """+N months, the last day of the month when the day does not exist (as relativedelta)."""
        if self.pg:
            return f"({day} + interval '{months} months')::date"
        shifted = f"date({day}, '+{months} months')"
        return (f"(CASE WHEN strftime('%d', {shifted}) = strftime('%d', {day}) THEN {shifted} "
                f"ELSE date({shifted}, 'start of month', '-1 day') END)")

    def diff(self, a: str, b: str) -> str:
        """Days from b to a."""
        return f"({a} - {b})" if self.pg else f"CAST(julianday({a}) - julianday({b}) AS INTEGER)"

    def greatest(self, a: str, b: str) -> str:
        return f"GREATEST({a}, {b})" if self.pg else f"max({a}, {b})"

    def ddmm(self, day: str) -> str:
        return f"to_char({day}, 'DD.MM.YYYY')" if self.pg else f"strftime('%d.%m.%Y', {day})"

    def iso(self, day: str) -> str:
        return f"to_char({day}, 'YYYY-MM-DD')" if self.pg else day

    def joined(self, expr: str, sep: str, order: str) -> str:
        """String aggregate; on SQLite the order is that of the (ordered) subquery it reads."""
        return f"string_agg({expr}, {sep} ORDER BY {order})" if self.pg else f"group_concat({expr}, {sep})"

    def jagg(self, expr: str, order: str) -> str:
        return f"json_agg({expr} ORDER BY {order})" if self.pg else f"json_group_array({expr})"

    def jcol(self, column: str, default: str = "") -> str:
        """A JSON value kept in a temp table, as JSON again (SQLite keeps it as text)."""
        if self.pg:
            return f"coalesce({column}, '{default}'::json)" if default else column
        return f"json(coalesce({column}, '{default}'))" if default else f"json({column})"


def _duration_sql(sql: _Sql, day: str, duration: dict) -> str:
    """`day` + a policy duration ({days, weeks, months, years}): months first, then days (relativedelta)."""
    months = 12 * duration.get("years", 0) + duration.get("months", 0)
    days = 7 * duration.get("weeks", 0) + duration.get("days", 0)
    expr = sql.months(day, months) if months else day
    return sql.days(expr, str(days)) if days else expr


def _day_from_yaml(value) -> date:
    """A date of config/policy.yaml: a YAML date, DD.MM.YYYY or YYYY-MM-DD."""
    from datetime import datetime

    if isinstance(value, date):
        return value
    text = str(value).strip()
    return datetime.strptime(text, "%d.%m.%Y").date() if "." in text else date.fromisoformat(text)


#: the inline styles of the project's HTML item table (notifications/templates/_macros.html)
TD = "border:1px solid #000000;padding:3pt 5pt;vertical-align:top;"


def child_baseline(dialect: str, target: str, as_of_iso: str, workdir: str, floor: bool = False) -> dict:
    """The same writes as the daily pass in set-based SQL: one transaction per step, as the project.

    With `floor`, the least work that makes the same outputs (issue 20's floor): the running
    items read are only those that may need something (deadline within the longest reminder
    offset: the project's own SQL bound), and a reminder letter's text and HTML are built for the
    first `letters.listed_items` items of each section only (every item goes into the CSV). Per
    step: the overdue marks are one UPDATE and one INSERT ... SELECT of history, the reminder rows
    one INSERT ... SELECT, each ministry's letter one row of one INSERT ... SELECT; escalation is
    one statement per kind of write for all ministries plus the letters (the items listed in full,
    as the individualized recommendation lists them); level 2 the same.

    Temp tables hold each step's sets (the derived deadlines, the running items with their
    effective deadline, those due soon, those late, ...); every write is one INSERT ... SELECT
    or UPDATE ... FROM over them. Letters are assembled in SQL: a numbered plain-text list and
    an HTML table row per item, aggregated per letter, in the shape of the project's templates
    (not byte for byte: the comparison reads which items, with which dates, a letter lists).
    """
    _child_setup(workdir)
    import gc
    from datetime import UTC, datetime, timedelta

    import holidays
    import yaml
    from dateutil.relativedelta import relativedelta

    policy = yaml.safe_load((ROOT / "config" / "policy.yaml").read_text(encoding="utf-8"))
    if policy.get("ministries") or policy.get("priorities"):
        raise SystemExit("the baseline knows only defaults and per-source deadlines: policy.yaml has ministry/priority rules")
    if any(set(rule) - {"deadline"} for rule in (policy.get("sources") or {}).values()):
        raise SystemExit("the baseline knows only per-source deadlines: policy.yaml overrides other terms per source")
    offsets = sorted(policy["defaults"]["reminder_days_before"])
    escalate_after = int(policy["defaults"]["escalate_after_working_days"])
    listed = int((policy.get("letters") or {}).get("listed_items", 100))  # per reminder section; the rest in a CSV
    as_of = date.fromisoformat(as_of_iso)
    response = policy["individualized"]["response_deadline"]
    response_due = as_of + relativedelta(**{k: response.get(k, 0) for k in ("years", "months", "weeks", "days")})
    notifications_file = ROOT / "config" / "notifications.yaml"  # the office's language (notifications issue)
    office = yaml.safe_load(notifications_file.read_text(encoding="utf-8")) if notifications_file.exists() else {}
    office_language = ((office.get("recipients") or {}).get("ombudsman") or {}).get("language", "ru")

    sql = _Sql(dialect)
    if dialect == "sqlite":
        import sqlite3

        connection = sqlite3.connect(target, timeout=30, isolation_level=None)  # explicit BEGIN / COMMIT
        for pragma in ("PRAGMA foreign_keys=ON", "PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=30000"):
            connection.execute(pragma)  # what models.db sets on every connection

        def begin() -> None:
            connection.execute("BEGIN IMMEDIATE")  # the write lock, as the SQLite backend's lock (models/backend.py)

        def day_param(d: date) -> object:
            return d.isoformat()
    else:
        import psycopg

        connection = psycopg.connect(target)

        def begin() -> None:
            pass  # psycopg opens the transaction with the first statement

        def day_param(d: date) -> object:
            return d

    timings: dict[str, float] = {}

    def run(label: str, statement: str, params: dict | None = None) -> None:
        started = time.perf_counter()
        connection.execute(statement, params or {})
        timings[label] = timings.get(label, 0.0) + time.perf_counter() - started

    def temp(name: str, select: str, params: dict | None = None, index: str | None = "id") -> None:
        run(f"temp {name}", f"CREATE TEMP TABLE {name} AS {select}", params)
        if index:
            run(f"temp {name}", f"CREATE INDEX {name}_ix ON {name} ({index})")
        if sql.pg:
            run(f"temp {name}", f"ANALYZE {name}")

    gc.collect()
    before = maxrss_mb()
    started = step_started = time.perf_counter()  # check-deadlines: with the calendar and the links it needs
    steps: dict[str, float] = {}
    now = datetime.now(UTC)
    params = {
        "as_of": day_param(as_of), "as_of_iso": as_of.isoformat(), "as_of_ddmm": f"{as_of:%d.%m.%Y}",
        "as_of_compact": f"{as_of:%Y%m%d}", "now": now if sql.pg else now.replace(tzinfo=None).isoformat(" ", "microseconds"),
        "actor": ACTOR, "response_due": day_param(response_due), "response_iso": response_due.isoformat(),
        "response_ddmm": f"{response_due:%d.%m.%Y}", "legal": policy["legal_basis"]["ru"].strip(), "office_language": office_language,
    }
    AS_OF_, NOW, ACTOR_, NL, NOTHING = sql.p("as_of", "date"), sql.p("now", "ts"), sql.p("actor"), sql.nl, "''"
    CRLF, BOM = ("chr(13) || chr(10)", "chr(65279)") if sql.pg else ("char(13, 10)", "char(65279)")
    WATCHED = "('issued', 'in_progress', 'on_hold', 'overdue')"
    # days on hold move the deadline: those recorded, plus the current hold up to as_of
    held = sql.greatest(sql.diff(AS_OF_, "r.on_hold_since"), "0")
    hold = f"(r.days_on_hold + CASE WHEN r.on_hold_since IS NULL THEN 0 ELSE {held} END)"
    derived = "CASE r.source " + " ".join(
        f"WHEN '{source}' THEN {_duration_sql(sql, 'r.issued_on', rule['deadline'])}"
        for source, rule in (policy.get("sources") or {}).items() if rule.get("deadline")
    ) + f" ELSE {_duration_sql(sql, 'r.issued_on', policy['defaults']['deadline'])} END"
    name = "CASE m.language WHEN 'kk' THEN m.name_kk WHEN 'en' THEN m.name_en ELSE m.name_ru END"  # the addressee's language
    history = HISTORY.replace("changes) ", "changes, recorded_on) ")  # the run's day on each entry it writes
    notify = ("INSERT INTO notification (recipient, kind, language, subject, body_text, body_html, payload, dedupe_key, status, "
              "attempts, last_error, created_at, sent_at) ")

    def quoted(expr: str) -> str:
        return f"'\"' || replace({expr}, '\"', '\"\"') || '\"'"

    def numbered(select: str, partition: str, order: str, csv: bool = False) -> str:
        """`select` (id, due, label, ...) with n = its number in its letter, and the item's text line and HTML row.

        With `csv`, also its line of the attached spreadsheet (`select` then has section_label);
        the floor then builds the text line and HTML row of the listed items only.
        """
        facility = quoted("coalesce(f.name, '')")
        csv_line = (f", z.n || ';' || z.section_label || ';' || z.external_id || ';' || {sql.ddmm('z.due')} || ';' "
                    f"|| {facility} || ';' || {quoted('r.text')} AS csv_line") if csv else ""
        text_line = (f"z.n || '. ' || z.external_id || coalesce(' — ' || f.name, '') || {NL} || '   ' || z.label || ': ' "
                     f"|| {sql.ddmm('z.due')} || {NL} || '   ' || r.text || {NL}")
        html_row = (f"'<tr><td style=\"{TD}text-align:center;\">' || z.n || '</td><td style=\"{TD}font-weight:bold;\">' "
                    f"|| z.external_id || '</td><td style=\"{TD}\">' || coalesce(f.name, '—') "
                    f"|| '</td><td class=\"pre\" style=\"{TD}white-space:pre-line;\">' || r.text "
                    f"|| '</td><td style=\"{TD}text-align:center;white-space:nowrap;\">' || {sql.ddmm('z.due')} "
                    "|| '</td></tr>'")
        if floor and csv:
            text_line, html_row = (f"CASE WHEN z.n <= {listed} THEN {e} END" for e in (text_line, html_row))
        return (
            f"SELECT z.*, {text_line} AS text_line, {html_row} AS html_row{csv_line} "
            f"FROM (SELECT y.*, row_number() OVER (PARTITION BY {partition} ORDER BY {order}) AS n FROM ({select}) y) z "
            "JOIN recommendation r ON r.id = z.id LEFT JOIN facility f ON f.id = r.facility_id"
        )

    def letters(table: str, keys: str, order: str, cap: int | None = None) -> str:
        """Per letter: item count, text lines, HTML rows and the external ids (payload), in item order.

        With `cap`, the lines and rows of the first `cap` items only, and every item's CSV line.
        """
        line, row, csv = ("text_line", "html_row", "") if cap is None else (
            f"CASE WHEN n <= {cap} THEN text_line END", f"CASE WHEN n <= {cap} THEN html_row END",
            f"{sql.joined('csv_line', CRLF, order)} AS csv, ")
        return (
            f"SELECT {keys}, count(*) AS n, {sql.joined(line, NL, order)} AS lines, "
            f"{sql.joined(row, NOTHING, order)} AS rows_html, {csv}"
            f"{sql.jagg('external_id', order)} AS ids FROM (SELECT * FROM {table} ORDER BY {keys}, {order}) i GROUP BY {keys}"
        )

    def html(*parts: str) -> str:
        head = "'<!doctype html><html><head><meta charset=\"utf-8\"></head><body>'"
        return " || ".join([head, *parts, "'</body></html>'"])

    def table(rows: str) -> str:
        return f"'<table style=\"border-collapse:collapse;\"><tbody>' || {rows} || '</tbody></table>'"  # no % (psycopg)

    # the working calendar: cumulative working days per day, so "working days in (a, b]" is
    # cum(b) - cum(a); weekends and the country's public holidays (with the days moved by
    # decree) off, plus the policy's extra days off, minus its working Saturdays
    calendar_policy = policy.get("calendar") or {}
    first_day = date(as_of.year - 6, 1, 1)
    public = holidays.country_holidays(calendar_policy.get("country", "KZ"), years=range(first_day.year, as_of.year + 2))
    extra_off = {_day_from_yaml(d) for d in calendar_policy.get("extra_days_off") or []}
    working_saturdays = {_day_from_yaml(d) for d in calendar_policy.get("working_saturdays") or []}
    working_weekend = set(getattr(public, "weekend_workdays", ())) | working_saturdays
    calendar, cum, day_ = [], 0, first_day
    while day_ <= as_of:
        if (day_.weekday() < 5 and day_ not in public and day_ not in extra_off) or day_ in working_weekend:
            cum += 1
        calendar.append((day_param(day_), cum))
        day_ += timedelta(days=1)
    params.update(cum_as_of=cum, cal_start=day_param(first_day), due_by=day_param(as_of + timedelta(days=max(offsets, default=0))))
    run("calendar", "CREATE TEMP TABLE bench_cal (day DATE PRIMARY KEY, cum INTEGER NOT NULL)")
    started_cal = time.perf_counter()
    if sql.pg:
        with connection.cursor() as cursor:
            cursor.executemany("INSERT INTO bench_cal (day, cum) VALUES (%s, %s)", calendar)
    else:
        connection.executemany("INSERT INTO bench_cal (day, cum) VALUES (?, ?)", calendar)
    timings["calendar"] += time.perf_counter() - started_cal
    # each ministry's reply link in letters dated as_of, signed as followup.models.links signs it
    # (itsdangerous, salt, [code, generation, last day]): the same letter date gives the same link
    from itsdangerous import URLSafeSerializer

    signer = URLSafeSerializer(os.environ["FOLLOWUP_SECRET_KEY"], salt="followup.ministry-link.v1")
    public_url = os.environ.get("FOLLOWUP_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
    link_until = (as_of + timedelta(days=int((policy.get("replies") or {}).get("link_days", 90)))).isoformat()
    links = [(code, f"{public_url}/r/{signer.dumps([code, int(generation), link_until])}")
             for code, generation in connection.execute("SELECT code, link_generation FROM ministry").fetchall()]
    run("links", "CREATE TEMP TABLE bench_links (code TEXT PRIMARY KEY, link TEXT NOT NULL)")
    if sql.pg:
        with connection.cursor() as cursor:
            cursor.executemany("INSERT INTO bench_links (code, link) VALUES (%s, %s)", links)
    else:
        connection.executemany("INSERT INTO bench_links (code, link) VALUES (?, ?)", links)

    # --- step 1: check deadlines (one transaction) ---
    begin()
    # deadlines derived from the policy where none was given, with their history entries
    temp("bench_derived",
         f"SELECT r.id, r.status, {derived} AS due FROM recommendation r WHERE r.status IN {WATCHED} AND r.due_on IS NULL",
         params)
    run("derived: history", history +
        f"SELECT id, status, status, {NOW}, {ACTOR_}, {sql.p('reason_derived')}, NULL, NULL, "
        f"{sql.jobj}('due_on', {sql.jarr}(NULL, {sql.iso('due')})), NULL FROM bench_derived ORDER BY id",
        {**params, "reason_derived": "deadline derived from config/policy.yaml (none was given)"})
    run("derived: update", "UPDATE recommendation SET due_on = d.due FROM bench_derived AS d WHERE d.id = recommendation.id")
    # the running items with their effective deadline and the smallest reminder offset sent for it
    temp("bench_run",
         f"SELECT r.id, r.external_id, r.ministry_code, r.status, r.due_on, {sql.days('r.due_on', hold)} AS eff_due, "
         "sent.last_offset FROM recommendation r LEFT JOIN (SELECT recommendation_id, due_on, min(offset_days) AS last_offset "
         "FROM reminder GROUP BY recommendation_id, due_on) sent ON sent.recommendation_id = r.id AND sent.due_on = r.due_on "
         "WHERE r.status IN ('issued', 'in_progress') AND r.due_on IS NOT NULL"
         + (f" AND r.due_on <= {sql.p('due_by', 'date')}" if floor else ""), params)
    # reminders: the smallest offset not below the days left, unless that one (or a later one) went out
    whens = [f"WHEN left_days BETWEEN 0 AND {o} THEN {o}" for o in offsets]
    offset_case = " ".join(["CASE", *whens, "END"]) if offsets else "NULL"
    temp("bench_soon",
         f"SELECT id, external_id, ministry_code, due_on, eff_due, off FROM (SELECT x.*, {offset_case} AS off FROM "
         f"(SELECT b.*, {sql.diff('b.eff_due', AS_OF_)} AS left_days FROM bench_run b) x) y "
         "WHERE off IS NOT NULL AND (last_offset IS NULL OR last_offset > off)", params)
    temp("bench_late", f"SELECT id, external_id, ministry_code, status, eff_due FROM bench_run WHERE eff_due < {AS_OF_}", params)
    temp("bench_overdue_now", "SELECT id, external_id, ministry_code, due_on FROM recommendation WHERE status = 'overdue'")
    # overdue marks: status, clock and history
    run("overdue: update",
        f"UPDATE recommendation SET status = 'overdue', updated_at = {NOW}, overdue_since = {sql.days('l.eff_due', '1')}, "
        "on_hold_since = NULL FROM bench_late AS l WHERE l.id = recommendation.id AND recommendation.status = l.status", params)
    run("overdue: history", history +
        f"SELECT id, status, 'overdue', {NOW}, {ACTOR_}, "
        f"'deadline ' || {sql.ddmm('eff_due')} || ' passed without a final answer', "
        f"NULL, {sql.days('eff_due', '1')}, NULL, {AS_OF_} FROM bench_late ORDER BY id", params)
    # the items today's escalation takes (overdue now, newly late included): the individualized
    # recommendation lists them, the reminder does not repeat them
    temp("bench_esc_all",
         f"SELECT r.id, r.external_id, r.ministry_code, {sql.days('r.due_on', hold)} AS eff_due, r.overdue_since "
         "FROM recommendation r WHERE r.status = 'overdue' AND r.due_on IS NOT NULL AND r.ministry_code IS NOT NULL", params)
    # working days overdue, counted from the later of overdue_since and the day after the
    # effective deadline (before the calendar's first day: certainly more than enough)
    first_late = sql.days("a.eff_due", "1")
    temp("bench_esc",
         "SELECT e.id, e.external_id, e.ministry_code, e.eff_due FROM (SELECT a.*, CASE WHEN a.overdue_since IS NULL "
         f"OR a.overdue_since < {first_late} THEN {first_late} ELSE a.overdue_since END AS since FROM bench_esc_all a) e "
         f"LEFT JOIN bench_cal c ON c.day = e.since WHERE (CASE WHEN e.since >= {AS_OF_} THEN 0 "
         f"WHEN e.since < {sql.p('cal_start', 'date')} THEN {sql.p('cum_as_of', 'int')} "
         f"ELSE {sql.p('cum_as_of', 'int')} - c.cum END) >= {escalate_after}", params)
    # anti-joins as NOT EXISTS: PostgreSQL plans `NOT IN (subquery)` over a set larger than
    # work_mem as a scan per row (the backlog shape at 1,000,000: 490,200 x 412,849, hours)
    temp("bench_late_kept", "SELECT * FROM bench_late l WHERE NOT EXISTS (SELECT 1 FROM bench_esc e WHERE e.id = l.id)")
    # the reminder letters: one per ministry with something due soon or newly late (and not
    # escalating today), listing those (part 1: due soon; part 2: newly late and those that were
    # overdue already), each part by deadline, then by number
    temp("bench_items", numbered(
        "SELECT x.*, CASE WHEN x.section = 1 THEN 1 ELSE 2 END AS part, CASE WHEN x.section = 1 THEN 'Срок исполнения' "
        "ELSE 'Срок исполнения (истёк)' END AS label, CASE WHEN x.section = 1 THEN 'Срок исполнения истекает' "
        "ELSE 'Просрочено' END AS section_label FROM ("
        "SELECT ministry_code, 1 AS section, id, external_id, eff_due AS due FROM bench_soon "
        "UNION ALL SELECT ministry_code, 2, id, external_id, eff_due FROM bench_late_kept "
        "UNION ALL SELECT ministry_code, 3, id, external_id, due_on FROM bench_overdue_now "
        "WHERE NOT EXISTS (SELECT 1 FROM bench_esc e WHERE e.id = bench_overdue_now.id)) x "
        "WHERE x.ministry_code IN (SELECT ministry_code FROM bench_soon UNION SELECT ministry_code FROM bench_late_kept)",
        "y.ministry_code, y.part", "y.due, y.external_id", csv=True), params, index="ministry_code")
    temp("bench_sections", letters("bench_items", "ministry_code, part", "due, external_id", cap=listed), params,
         index="ministry_code")
    # a section longer than `listed` shows its first items and names the attached spreadsheet of all of them
    file_name = f"'reminder-' || w.code || '-' || {sql.p('as_of_iso')} || '.csv'"
    long_letter = f"(coalesce(s1.n, 0) > {listed} OR coalesce(s2.n, 0) > {listed})"
    note = (f"CASE WHEN {{s}}.n > {listed} THEN {{before}}'Здесь приведены первые {listed} из ' || {{s}}.n || '. Полный перечень — в приложенном "
            f"файле ' || {file_name} || '.'{{after}} ELSE '' END")  # {s}, {before}, {after} (braces doubled): filled by .format below
    section = "coalesce({nl} || '{title} (' || {s}.n || ')' || {nl} || {nl} || {s}.lines || " + note.format(
        before="{nl} || ", after="", s="{s}") + ", '')"
    html_note = note.format(before="'<p class=\"muted\">' || ", after=" || '</p>'", s="{s}")
    payload = (f"{sql.jobj}('as_of', {sql.p('as_of_iso')}, 'reference', 'REM-' || {sql.p('as_of_compact')} || '-' || upper(w.code), "
               f"'reply_link', k.link, 'due_soon', {sql.jcol('s1.ids', '[]')}, "
               f"'overdue', {sql.jcol('s2.ids', '[]')}{{extra}})")
    payload_attached = payload.format(extra=", 'attachment', " + file_name)
    run("reminders: letters", notify.replace(", payload,", ", payload, attachment,") +
        f"SELECT 'ministry:' || w.code, 'reminder', m.language, {sql.p('subject')}, "
        f"'Кому: ' || {name} || {NL} || 'По состоянию на ' || {sql.p('as_of_ddmm')} || {NL} "
        f"|| {section.format(nl=NL, title='СРОК ИСПОЛНЕНИЯ ИСТЕКАЕТ', s='s1')} "
        f"|| {section.format(nl=NL, title='ПРОСРОЧЕНО', s='s2')}, "
        + html(f"'<p><strong>Кому:</strong> ' || {name} || '</p>'",
               f"coalesce('<h2>Срок исполнения истекает (' || s1.n || ')</h2>' || {table('s1.rows_html')} "
               f"|| {html_note.format(s='s1')}, '')",
               f"coalesce('<h2>Просрочено (' || s2.n || ')</h2>' || {table('s2.rows_html')} "
               f"|| {html_note.format(s='s2')}, '')") + ", "
        f"CASE WHEN {long_letter} THEN {payload_attached} "
        f"ELSE {payload.format(extra='')} END, "
        f"CASE WHEN {long_letter} THEN {BOM} || '№;Раздел;Номер рекомендации;Срок исполнения;Учреждение;Текст рекомендации' "
        f"|| {CRLF} || coalesce(s1.csv || {CRLF}, '') || coalesce(s2.csv || {CRLF}, '') END, "
        f"'reminder:' || w.code || ':' || {sql.p('as_of_iso')}, 'queued', 0, NULL, {NOW}, NULL "
        "FROM (SELECT ministry_code AS code FROM bench_soon WHERE ministry_code IS NOT NULL "
        "UNION SELECT ministry_code FROM bench_late_kept WHERE ministry_code IS NOT NULL) w JOIN ministry m ON m.code = w.code "
        "JOIN bench_links k ON k.code = w.code LEFT JOIN bench_sections s1 ON s1.ministry_code = w.code AND s1.part = 1 "
        "LEFT JOIN bench_sections s2 ON s2.ministry_code = w.code AND s2.part = 2 "
        "WHERE true ORDER BY w.code ON CONFLICT (dedupe_key) DO NOTHING",
        {**params, "subject": f"Напоминание о сроках исполнения рекомендаций НПМ ({as_of:%d.%m.%Y})"})
    run("reminders: rows",
        "INSERT INTO reminder (recommendation_id, due_on, offset_days, sent_on, notification_id) "
        f"SELECT s.id, s.due_on, s.off, {AS_OF_}, n.id FROM bench_soon s "
        f"JOIN notification n ON n.dedupe_key = 'reminder:' || s.ministry_code || ':' || {sql.p('as_of_iso')} "
        "WHERE s.ministry_code IS NOT NULL ORDER BY s.id ON CONFLICT (recommendation_id, due_on, offset_days) DO NOTHING", params)
    connection.commit()
    steps["check-deadlines"] = time.perf_counter() - step_started

    # --- step 2: escalate (one transaction for all ministries: set-based; its items were found in step 1) ---
    step_started = time.perf_counter()
    begin()
    reference = f"'IR-' || {sql.p('as_of_compact')} || '-' || upper(COLUMN)"  # followup.steps.deadlines.reference_for
    run("escalate: letters",
        "INSERT INTO individualized_recommendation (reference, ministry_code, issued_on, response_due_on, status, answered_on, "
        f"level2_on, created_at) SELECT {reference.replace('COLUMN', 'm.ministry_code')}, m.ministry_code, {AS_OF_}, "
        f"{sql.p('response_due', 'date')}, 'issued', NULL, NULL, {NOW} FROM (SELECT DISTINCT ministry_code FROM bench_esc) m "
        "WHERE true ORDER BY m.ministry_code", params)
    run("escalate: items",
        "INSERT INTO individualized_item (individualized_id, recommendation_id) SELECT ir.id, e.id FROM bench_esc e "
        f"JOIN individualized_recommendation ir ON ir.ministry_code = e.ministry_code AND ir.issued_on = {AS_OF_} "
        "ORDER BY ir.id, e.id", params)
    run("escalate: update",
        f"UPDATE recommendation SET status = 'escalated', updated_at = {NOW}, on_hold_since = NULL "
        "FROM bench_esc AS e WHERE e.id = recommendation.id AND recommendation.status = 'overdue'", params)
    run("escalate: history", history +
        f"SELECT e.id, 'overdue', 'escalated', {NOW}, {ACTOR_}, "
        f"'included in individualized recommendation ' || {reference.replace('COLUMN', 'e.ministry_code')}, NULL, {AS_OF_}, NULL, "
        f"{AS_OF_} "
        "FROM bench_esc e ORDER BY e.id", params)
    # the letter lists its first `listed` items like a reminder, and a longer one names its annex,
    # the spreadsheet of every item (followup.steps.deadlines.issue_individualized)
    temp("bench_esc_items", numbered("SELECT ministry_code, id, external_id, eff_due AS due, 'Срок исполнения (истёк)' AS label, "
                                     "'Просрочено' AS section_label FROM bench_esc", "y.ministry_code", "y.id", csv=True),
         params, index=None)
    temp("bench_esc_letters", letters("bench_esc_items", "ministry_code", "id", cap=listed), params, index=None)
    ref = reference.replace("COLUMN", "g.ministry_code")
    annex = f"{ref} || '-items.csv'"
    esc_note = (f"CASE WHEN g.n > {listed} THEN {{before}}'Здесь приведены первые {listed} из ' || g.n || '. Полный перечень — в "
                f"приложенном файле ' || {annex} || '.'{{after}} ELSE '' END")
    esc_payload = (f"{sql.jobj}('reference', {ref}, 'outgoing_number', {ref}, 'issued_on', {sql.p('as_of_iso')}, "
                   f"'response_due_on', {sql.p('response_iso')}, "
                   f"'reply_link', k.link, 'items', {sql.jcol('g.ids')}, 'document', {ref} || '.html'{{extra}})")
    esc_annexed = ", 'attachment', " + annex
    run("escalate: notices", notify.replace(", payload,", ", payload, attachment,") +
        f"SELECT 'ministry:' || m.code, 'individualized', m.language, 'Индивидуальная рекомендация № ' || {ref} || ' от ' "
        f"|| {sql.p('as_of_ddmm')}, 'Исх. № ' || {ref} || ' от ' || {sql.p('as_of_ddmm')} || {NL} || {NL} || 'Кому: ' || {name} "
        f"|| {NL} || {NL} || 'ИНДИВИДУАЛЬНАЯ РЕКОМЕНДАЦИЯ' || {NL} || {NL} || {sql.p('legal')} || {NL} || {NL} "
        f"|| 'Следующие рекомендации (' || g.n || ') не исполнены в установленный срок:' || {NL} || {NL} || g.lines || {NL} "
        f"|| {esc_note.format(before='', after=f' || {NL}')} "
        f"|| 'Просим проинформировать о принятых мерах в срок до ' || {sql.p('response_ddmm')} || '.', "
        + html(f"'<p>Исх. № ' || {ref} || '</p><p><strong>Кому:</strong> ' || {name} || '</p><p>' || {sql.p('legal')} || '</p>'",
               table("g.rows_html"), esc_note.format(before="'<p class=\"muted\">' || ", after=" || '</p>'"),
               f"'<p>Срок ответа: ' || {sql.p('response_ddmm')} || '</p>'") + ", "
        f"CASE WHEN g.n > {listed} THEN {esc_payload.format(extra=esc_annexed)} "
        f"ELSE {esc_payload.format(extra='')} END, "
        f"CASE WHEN g.n > {listed} THEN {BOM} || '№;Раздел;Номер рекомендации;Срок исполнения;Учреждение;Текст рекомендации' "
        f"|| {CRLF} || g.csv || {CRLF} END, "
        f"'individualized:' || {ref}, 'queued', 0, NULL, {NOW}, NULL "
        "FROM bench_esc_letters g JOIN ministry m ON m.code = g.ministry_code JOIN bench_links k ON k.code = m.code "
        "WHERE true ORDER BY m.code "
        "ON CONFLICT (dedupe_key) DO NOTHING", params)
    connection.commit()
    steps["escalate"] = time.perf_counter() - step_started

    # --- step 3: level 2 (one transaction) ---
    step_started = time.perf_counter()
    begin()
    temp("bench_due_ir", "SELECT id, reference, ministry_code, issued_on, response_due_on FROM individualized_recommendation "
         f"WHERE status = 'issued' AND response_due_on < {AS_OF_}", params)
    temp("bench_l2",
         "SELECT d.id AS ir_id, d.reference, d.ministry_code, d.issued_on, d.response_due_on, r.id, r.external_id, r.due_on "
         "FROM bench_due_ir d JOIN individualized_item i ON i.individualized_id = d.id "
         "JOIN recommendation r ON r.id = i.recommendation_id WHERE r.status = 'escalated' "
         "AND i.answered_on IS NULL AND NOT r.awaiting_review")  # level 2 counts only silent items
    run("level2: letters",
        f"UPDATE individualized_recommendation SET status = 'level2', level2_on = {AS_OF_} "
        "WHERE id IN (SELECT ir_id FROM bench_l2)", params)
    run("level2: letters",
        f"UPDATE individualized_recommendation SET status = 'answered', answered_on = {AS_OF_} "
        "WHERE id IN (SELECT id FROM bench_due_ir) AND NOT EXISTS (SELECT 1 FROM bench_l2 l "
        "WHERE l.ir_id = individualized_recommendation.id)", params)
    run("level2: update",
        f"UPDATE recommendation SET status = 'awaiting_decision', updated_at = {NOW}, on_hold_since = NULL "
        "WHERE id IN (SELECT id FROM bench_l2) AND status = 'escalated'", params)
    run("level2: history", history +
        f"SELECT id, 'escalated', 'awaiting_decision', {NOW}, {ACTOR_}, "
        f"'no reply to individualized recommendation ' || reference || ' by ' || {sql.ddmm('response_due_on')} "
        f"|| {sql.p('l2_tail')}, "
        f"NULL, {AS_OF_}, NULL, {AS_OF_} FROM bench_l2 ORDER BY id",
        {**params, "l2_tail": ": for the Ombudsman's decision (report to Parliament, referral to the prosecutor)"})
    # like the letters, a notice lists the first `listed` silent items and annexes them all
    # (refer_to_level2; this bench's letters have no answered items, so no second list)
    temp("bench_l2_items", numbered("SELECT ir_id, reference, ministry_code, issued_on, response_due_on, id, external_id, "
                                    "due_on AS due, 'Срок исполнения (истёк)' AS label, 'Рекомендации без ответа' AS section_label "
                                    "FROM bench_l2", "y.ir_id", "y.id", csv=True),
         params, index=None)
    temp("bench_l2_letters", letters("bench_l2_items", "ir_id, reference, ministry_code, issued_on, response_due_on", "id",
                                     cap=listed), params, index=None)
    l2_annex = "'level2-' || g.reference || '-items.csv'"
    l2_note = (f"CASE WHEN g.n > {listed} THEN {NL} || 'Здесь приведены первые {listed} из ' || g.n || '. Полный перечень — в "
               f"приложенном файле ' || {l2_annex} || '.' ELSE '' END")
    l2_payload = (f"{sql.jobj}('as_of', {sql.p('as_of_iso')}, 'reference', g.reference, 'ministry', g.ministry_code, "
                  f"'items', {sql.jcol('g.ids')}{{extra}})")
    l2_annexed = ", 'attachment', " + l2_annex
    # the notice lists, apart from the silent items, the letter's other items with where each stands now
    temp("bench_l2_answered",
         f"SELECT d.id AS ir_id, r.id, r.external_id || coalesce(' — ' || f.name, '') || {NL} || '   Текущий статус: ' "
         f"|| r.status || {NL} || '   ' || r.text || {NL} AS text_line, '<tr><td style=\"{TD}\">' || r.external_id "
         f"|| '</td><td style=\"{TD}\">' || coalesce(f.name, '—') || '</td><td style=\"{TD}\">' || r.text "
         f"|| '</td><td style=\"{TD}\">' || r.status || '</td></tr>' AS html_row "
         "FROM bench_due_ir d JOIN individualized_item i ON i.individualized_id = d.id "
         "JOIN recommendation r ON r.id = i.recommendation_id LEFT JOIN facility f ON f.id = r.facility_id "
         "WHERE d.id IN (SELECT ir_id FROM bench_l2) AND NOT EXISTS (SELECT 1 FROM bench_l2 l WHERE l.ir_id = d.id AND l.id = r.id)",
         index=None)
    temp("bench_l2_answered_letters",
         f"SELECT ir_id, count(*) AS n, {sql.joined('text_line', NL, 'id')} AS lines, {sql.joined('html_row', NOTHING, 'id')} "
         "AS rows_html FROM (SELECT * FROM bench_l2_answered ORDER BY ir_id, id) a GROUP BY ir_id", index=None)
    run("level2: notices", notify.replace(", payload,", ", payload, attachment,") +
        f"SELECT 'ombudsman', 'level2', {sql.p('office_language')}, "
        f"'Требуется решение: нет ответа на индивидуальную рекомендацию № ' || g.reference || ' (' || {name} || ')', "
        f"'ТРЕБУЕТСЯ РЕШЕНИЕ: ИНДИВИДУАЛЬНАЯ РЕКОМЕНДАЦИЯ ОСТАЛАСЬ БЕЗ ОТВЕТА' || {NL} || {NL} "
        "|| 'Исх. №: ' || g.reference || ' от ' "
        f"|| {sql.ddmm('g.issued_on')} || {NL} || 'Министерство: ' || {name} || {NL} || 'Срок представления ответа: ' "
        f"|| {sql.ddmm('g.response_due_on')} || ' (истёк)' || {NL} || {NL} || 'Рекомендации без ответа (' || g.n || '):' || {NL} "
        f"|| {NL} || g.lines || {l2_note} || coalesce({NL} || 'Рекомендации, по которым получен ответ (' || a.n || '):' || {NL} "
        f"|| {NL} || a.lines, ''), "
        + html("'<h1>Требуется решение</h1><p>Исх. №: ' || g.reference || '</p><p>Министерство: ' || " + name + " || '</p>'",
               table("g.rows_html"), f"'<p class=\"muted\">' || {l2_note} || '</p>'",
               f"coalesce('<h2>Рекомендации, по которым получен ответ (' || a.n || ')</h2>' || {table('a.rows_html')}, '')")
        + ", "
        f"CASE WHEN g.n > {listed} THEN {l2_payload.format(extra=l2_annexed)} ELSE {l2_payload.format(extra='')} END, "
        f"CASE WHEN g.n > {listed} THEN {BOM} || '№;Раздел;Номер рекомендации;Срок исполнения;Учреждение;Текст рекомендации' "
        f"|| {CRLF} || g.csv || {CRLF} END, "
        "'level2:' || g.reference, "
        f"'queued', 0, NULL, {NOW}, NULL FROM bench_l2_letters g JOIN ministry m ON m.code = g.ministry_code "
        "LEFT JOIN bench_l2_answered_letters a ON a.ir_id = g.ir_id "
        "WHERE true ORDER BY g.reference ON CONFLICT (dedupe_key) DO NOTHING", params)
    connection.commit()
    steps["level2"] = time.perf_counter() - step_started
    seconds = time.perf_counter() - started
    connection.close()
    return {"seconds": seconds, "flow_seconds": seconds, "rss_before": before, "rss_peak": maxrss_mb(), "timings": timings,
            "steps": steps}


# --- 4. compare: fingerprints of what a run wrote -------------------------------------------------


def _listed(body: str | None) -> list | None:
    """What a letter lists: (external id, the first DD.MM.YYYY date after it), sorted.

    Letters come from templates (notifications/templates) in the project and from SQL in the
    baseline, so they are not compared byte for byte but by the items they name, each with its
    deadline (the templates print an item's deadline after its number, before the next item).
    """
    import re

    if body is None:
        return None
    parts = re.split(r"(REC-\d{4}-\d{7})", body)
    dates = [re.search(r"\d{2}\.\d{2}\.\d{4}", chunk) for chunk in parts[2::2]]
    return sorted(zip(parts[1::2], [d.group(0) if d else None for d in dates], strict=True))  # re.split: id, chunk, id, chunk...


def child_inspect(url: str, dialect: str, history_max_id: int, workdir: str) -> dict:
    """Per table: row count and sha256 of its normalised rows, plus small summaries to show."""
    _child_setup(workdir)
    import hashlib
    import json
    from datetime import UTC, datetime

    from sqlalchemy import create_engine, text

    def jsonish(value):
        """JSON from either database as one canonical string (lists sorted: their order is a query's)."""
        if isinstance(value, str):
            value = json.loads(value)
        if isinstance(value, dict):
            value = {k: sorted(v) if isinstance(v, list) and all(isinstance(x, str) for x in v) else v for k, v in value.items()}
        return json.dumps(value, sort_keys=True, ensure_ascii=False)

    cutoff = UPDATED_CUTOFF if dialect == "sqlite" else datetime.fromisoformat(UPDATED_CUTOFF).replace(tzinfo=UTC)
    engine = create_engine(url)
    fingerprints: dict[str, tuple[int, str]] = {}
    summary: dict[str, list] = {}
    with engine.connect() as connection:

        def digest(name: str, query: str, params: dict | None = None, row=lambda r: r) -> None:
            sha, count = hashlib.sha256(), 0
            result = connection.execution_options(stream_results=True, yield_per=20_000).execute(text(query), params or {})
            for r in result:
                sha.update(repr(tuple(str(v) for v in row(r))).encode())
                count += 1
            fingerprints[name] = (count, sha.hexdigest())

        def show(name: str, query: str, params: dict | None = None) -> None:
            summary[name] = [tuple(str(v) for v in r) for r in connection.execute(text(query), params or {}).all()]

        digest("recommendation",
               "SELECT id, status, due_on, overdue_since, on_hold_since, days_on_hold, "
               "CASE WHEN updated_at > :cutoff THEN 1 ELSE 0 END FROM recommendation ORDER BY id", {"cutoff": cutoff})
        digest("status_change (new)",
               "SELECT recommendation_id, from_status, to_status, actor, reason, evidence, effective_on, "
               "CASE WHEN changes IS NULL THEN 1 ELSE 0 END, changes, recorded_on FROM status_change WHERE id > :h "
               "ORDER BY recommendation_id, from_status, to_status", {"h": history_max_id},
               row=lambda r: (*r[:8], None if r[8] is None else jsonish(r[8]), r[9]))
        # the letter of each reminder by its key, looked up here: on SQLite a join would read past the
        # letter's body (hundreds of MB at 1M rows, stored before dedupe_key) once per reminder row
        key_of = {str(i): k for i, k in connection.execute(text("SELECT id, dedupe_key FROM notification")).all()}
        digest("reminder",
               "SELECT recommendation_id, due_on, offset_days, sent_on, notification_id FROM reminder ORDER BY 1, 2, 3",
               row=lambda r: (*r[:4], key_of.get(str(r[4]))))
        digest("individualized_recommendation",
               "SELECT reference, ministry_code, issued_on, response_due_on, status, answered_on, level2_on "
               "FROM individualized_recommendation ORDER BY reference")
        digest("individualized_item",
               "SELECT ir.reference, i.recommendation_id FROM individualized_item i "
               "JOIN individualized_recommendation ir ON ir.id = i.individualized_id ORDER BY 1, 2")
        # letters: not the wording (subject, text around the items), but who gets what: recipient,
        # kind, language, payload, and the items with their deadlines listed in the text and HTML
        digest("notification",
               "SELECT dedupe_key, recipient, kind, language, status, attempts, last_error, sent_at, payload, "
               "body_text, body_html, attachment FROM notification ORDER BY dedupe_key",
               row=lambda r: (*r[:8], jsonish(r[8]), _listed(r[9]), _listed(r[10]), _listed(r[11])))
        show("recommendation", "SELECT status, count(*), count(overdue_since), "
             "sum(CASE WHEN updated_at > :cutoff THEN 1 ELSE 0 END) FROM recommendation GROUP BY status ORDER BY status",
             {"cutoff": cutoff})
        show("status_change (new)", "SELECT from_status, to_status, count(*), count(effective_on) FROM status_change "
             "WHERE id > :h GROUP BY from_status, to_status ORDER BY 1, 2", {"h": history_max_id})
        show("reminder", "SELECT offset_days, sent_on, count(*) FROM reminder GROUP BY offset_days, sent_on ORDER BY 1, 2")
        show("individualized_recommendation",
             "SELECT status, count(*) FROM individualized_recommendation GROUP BY status ORDER BY 1")
        show("individualized_item", "SELECT count(*) FROM individualized_item")
        show("notification", "SELECT kind, count(*), sum(length(body_text)), sum(length(body_html)), count(attachment), "
             "sum(length(attachment)) FROM notification "
             "GROUP BY kind ORDER BY 1")
        # every recommendation's latest history entry is its current status
        inconsistent = connection.execute(text(
            "SELECT count(*) FROM recommendation r JOIN (SELECT recommendation_id, max(id) AS id FROM status_change "
            "GROUP BY recommendation_id) l ON l.recommendation_id = r.id JOIN status_change s ON s.id = l.id "
            "WHERE s.to_status <> r.status"
        )).scalar_one()
    engine.dispose()
    return {"fingerprints": fingerprints, "summary": summary, "inconsistent_history": int(inconsistent)}


# --- the parent: registries, runs, table and aims --------------------------------------------------


class Registry:
    """A database for one run: a SQLite file, or a PostgreSQL database on the server.

    With `template`, a copy of that registry (SQLite: the file; PostgreSQL: CREATE DATABASE ...
    TEMPLATE); without, an empty one that `child_populate` fills.
    """

    def __init__(self, dialect: str, workdir: Path, label: str, admin_url: str, template: Registry | None = None):
        self.dialect, self.admin_url = dialect, admin_url
        if dialect == "sqlite":
            self.path = workdir / f"registry_{label}.db"
            if template is not None:
                shutil.copyfile(template.path, self.path)
            self.url = f"sqlite:///{self.path}"
            self.target = str(self.path)
            self.name = None
        else:
            base = admin_url.rpartition("/")[0]
            self.name = f"bench_{label.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
            self.url = f"{base}/{self.name}"
            self.target = libpq_conninfo(self.url)  # for the raw psycopg baseline
            run_child(child_pg_admin, admin_url, "create", self.name, template.name if template else None)

    def drop(self) -> None:
        if self.name:
            run_child(child_pg_admin, self.admin_url, "drop", self.name)
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)


def _compare(label: str, variant: str, got: dict, want: dict, failures: list[str], reference: str = "baseline") -> None:
    for table, fingerprint in want["fingerprints"].items():
        if got["fingerprints"].get(table) != fingerprint:
            rows = got["fingerprints"].get(table, ("-",))[0]
            failures.append(
                f"{label}: {variant} and {reference} differ in {table}: {rows} vs {fingerprint[0]} rows; "
                f"{variant}: {got['summary'].get(table)} / {reference}: {want['summary'].get(table)}"
            )
    if got["inconsistent_history"]:
        failures.append(
            f"{label}: {variant}: {got['inconsistent_history']} recommendations whose latest history entry is not their status"
        )


def bench_size(dialect: str, rows: int, args, workdir: Path, failures: list[str]) -> dict:
    """Populate once, then each variant on its own copy; returns the runs and what they wrote."""
    label = f"{dialect} {rows}"
    made: list[Registry] = []

    def registry(name: str, template: Registry | None = None) -> Registry:
        made.append(Registry(dialect, workdir, f"{name}_{rows}", args.pg_url, template))
        return made[-1]

    try:
        print(f"[{label}] populating ...", flush=True)
        source = registry("src")
        populated = run_child(child_populate, source.url, dialect, source.target, rows, args.seed, args.as_of, str(workdir),
                              args.late_share)
        statuses = ", ".join(
            f"{s} {c} ({nulls} without due_on)" if nulls else f"{s} {c}" for s, (c, nulls) in populated["statuses"].items()
        )
        print(f"[{label}]   {populated['seconds']:.1f} s: {statuses}; {populated['history_rows']} history rows, "
              f"{populated['reminders']} earlier reminders, {populated['facilities']} facilities", flush=True)
        runs, seen = {}, {}
        for variant in args.variants:
            copy = registry(variant, source)
            try:
                print(f"[{label}] {variant} ...", flush=True)
                if variant in ("baseline", "floor"):
                    runs[variant] = run_child(child_baseline, dialect, copy.target, args.as_of, str(workdir), variant == "floor")
                else:
                    runs[variant] = run_child(child_project, copy.url, args.as_of, variant, str(workdir), 0, args.event_wait)
                print(f"[{label}]   {runs[variant]['seconds']:.1f} s, peak RSS {runs[variant]['rss_peak']:.0f} MB", flush=True)
                seen[variant] = run_child(child_inspect, copy.url, dialect, populated["history_max_id"], str(workdir))
            finally:
                copy.drop()
                made.remove(copy)
        reference = next((v for v in ("floor", "baseline") if v in seen), None)
        if reference:  # every other variant must have written what the floor (or the baseline) wrote
            for variant, got in seen.items():
                if variant != reference:
                    _compare(label, variant, got, seen[reference], failures, reference)
        elif len(seen) > 1:  # no baseline chosen: the project variants must at least agree with each other
            first = next(iter(seen))
            for variant, got in seen.items():
                _compare(label, variant, got, seen[first], failures)
        profiles = {}
        if args.profile and rows == max(args.sizes):
            for variant in ("bare", "prefect"):
                copy = registry(f"profile_{variant}", source)
                try:
                    print(f"[{label}] cProfile of {variant} ...", flush=True)
                    profiled = run_child(child_project, copy.url, args.as_of, variant, str(workdir), args.profile_top, 0)
                    profiles[variant] = profiled["profile"]
                finally:
                    copy.drop()
                    made.remove(copy)
        return {"populated": populated, "runs": runs, "seen": seen, "profiles": profiles}
    finally:
        for r in made:
            try:
                r.drop()
            except Exception as exc:  # noqa: BLE001 - report and carry on cleaning up
                print(f"could not drop {r.name or r.path}: {exc}", file=sys.stderr)


def _print_table(results: dict) -> None:
    header = (f"{'variant':<17} {'database':<10} {'rows':>8} {'seconds':>8} {'flow s':>7} {'rows/s':>8} {'peak RSS MB':>11} "
              f"{'RSS growth':>10} {'task runs':>9} {'events':>8} {'x floor':>8} {'x baseline':>10}")
    print(header)
    print("-" * len(header))
    for (dialect, rows), result in results.items():
        runs = result["runs"]
        base = runs.get("baseline", {}).get("seconds")
        floor = runs.get("floor", {}).get("seconds")
        for variant, run in runs.items():
            events = {"prefect": sum(run.get("emitted", {}).values()), "prefect-noevents": 0}.get(variant, "-")
            ratio = f"{run['seconds'] / base:>9.2f}x" if base else f"{'-':>10}"
            to_floor = f"{run['seconds'] / floor:>7.2f}x" if floor else f"{'-':>8}"
            print(f"{variant:<17} {dialect:<10} {rows:>8} {run['seconds']:>8.2f} {run['flow_seconds']:>7.2f} "
                  f"{rows / run['seconds']:>8.0f} {run['rss_peak']:>11.0f} {run['rss_peak'] - run['rss_before']:>10.0f} "
                  f"{run.get('task_runs', '-'):>9} {events:>8} {to_floor} {ratio}")
    _print_steps(results)


def _print_steps(results: dict) -> None:
    """Seconds per step (the project's step functions; the floor's and baseline's transactions) and x floor."""
    if not any("floor" in r["runs"] for r in results.values()):
        return
    print()
    header = f"{'variant':<17} {'database':<10} {'rows':>8} " + " ".join(f"{s + ' s (x floor)':>24}" for s in STEPS)
    print(header)
    print("-" * len(header))
    for (dialect, rows), result in results.items():
        runs = result["runs"]
        floor = runs.get("floor", {}).get("steps", {})
        for variant, run in runs.items():
            cells = []
            for step in STEPS:
                took, least = run.get("steps", {}).get(step), floor.get(step)
                cells.append(f"{took:>12.2f} ({took / least:>6.2f}x)" if took is not None and least else f"{'-':>24}")
            print(f"{variant:<17} {dialect:<10} {rows:>8} " + " ".join(f"{c:>24}" for c in cells))


def _print_details(results: dict) -> None:
    for (dialect, rows), result in results.items():
        runs = result["runs"]
        print(f"--- {dialect}, {rows} rows ---")
        some = next((runs[v] for v in ("bare", "prefect", "prefect-noevents") if v in runs), None)
        if some:
            print(f"  what the pass did: {some['counts']}")
        for variant in ("prefect", "prefect-noevents"):
            if variant in runs:
                run = runs[variant]
                not_final = f" ({run['task_runs_not_final']} not final on the server)" if run["task_runs_not_final"] else ""
                print(f"  {variant}: {run['flow_runs']} flow runs, {run['task_runs']} task runs{not_final} "
                      f"{run['task_run_names']}; "
                      f"flow returned after {run['flow_seconds']:.1f} s, events drained after {run['seconds']:.1f} s; "
                      f"Prefect server (grandchild) peak RSS {run['server_rss_peak']:.0f} MB")
                print(f"    the server's in-memory message bus dropped {run['server_dropped']} messages (queue of 10,000)"
                      + (f"; other warnings: {run['log_warnings']}" if run["log_warnings"] else ""))
                if variant == "prefect":
                    print(f"    events emitted {sum(run['emitted'].values())} {run['emitted']}; stored by the server: "
                          f"{run['events_persisted']} (waited {run['events_wait']:.0f} s after the drain)")
        for variant in ("prefect", "prefect-noevents", "bare"):
            if variant in runs:
                print(f"  where the time of '{variant}' went (seconds, calls, RSS MB right after, peak RSS MB so far):")
                for name, (calls, seconds, rss, peak) in sorted(runs[variant]["probes"].items(), key=lambda kv: -kv[1][1]):
                    if calls:
                        after = f"{rss:>7.0f} {peak:>7.0f}" if rss else f"{'':>15}"
                        print(f"    {name:<32} {seconds:>8.2f} s {int(calls):>8} calls {after}")
        for variant in ("floor", "baseline"):
            if variant in runs:
                slowest = sorted(runs[variant]["timings"].items(), key=lambda kv: -kv[1])
                print(f"  {variant} statements (seconds): " + ", ".join(f"{k} {v:.2f}" for k, v in slowest))
        for variant, text in result["profiles"].items():
            print(f"  --- cProfile of {variant} ---")
            print(text)


def _print_aims(results: dict, sizes: list[int]) -> None:
    print("aims (the project = the Prefect flow 'prefect', or the bare step functions when it did not run):")
    for (dialect, rows), result in results.items():
        runs = result["runs"]
        project = next((v for v in ("prefect", "bare") if v in runs), None)
        if project is None:
            continue
        run = runs[project]
        for reference, aim in (("floor", 3), ("baseline", 2)):
            if reference in runs:
                ratio = run["seconds"] / runs[reference]["seconds"]
                bare = (f" (bare step functions: {runs['bare']['seconds'] / runs[reference]['seconds']:.2f}x)"
                        if project != "bare" and "bare" in runs else "")
                print(f"  {dialect:<10} {rows:>8} {project} within {aim}x of the {reference}: {ratio:.2f}x -> "
                      f"{'MET' if ratio <= aim else 'MISSED'}{bare}")
        peak = run["rss_peak"]
        print(f"  {dialect:<10} {rows:>8} {project} under 1 GB peak RSS: {peak:.0f} MB -> {'MET' if peak < 1024 else 'MISSED'}")
    for dialect in dict.fromkeys(d for d, _ in results):
        big = results.get((dialect, max(sizes)), {}).get("runs", {})
        small = results.get((dialect, min(sizes)), {}).get("runs", {})
        if "prefect" in big and "prefect" in small and len(sizes) > 1:
            a, b = small["prefect"]["task_runs"], big["prefect"]["task_runs"]
            print(f"  {dialect:<10} task runs do not grow with N: {a} at {min(sizes)} rows, {b} at {max(sizes)} rows -> "
                  f"{'MET' if b <= a else 'MISSED'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="1000000",
                        help="recommendations: one size (then also a tenth of it, unless --single-size), or a comma-separated "
                             "list of sizes (e.g. 500000,1000000)")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--as-of", default=AS_OF, help="the day of the pass, YYYY-MM-DD")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {','.join(VARIANTS)}")
    parser.add_argument("--single-size", action="store_true", help="only --rows, not also --rows/10")
    parser.add_argument("--event-wait", type=float, default=120,
                        help="seconds to wait for the server to store the events after the drain")
    parser.add_argument("--pg-url", default=PG_ADMIN_URL, help="admin URL of the PostgreSQL server (creates and drops databases)")
    parser.add_argument("--profile", action="store_true", help="also cProfile 'bare' and 'prefect' at the larger size")
    parser.add_argument("--profile-top", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--late-share", type=float, default=0.10,
                        help="share of running items whose deadline passed (0.10; 0.7: issue 20's backlog, half of all items "
                             "marked overdue in one pass)")
    args = parser.parse_args(argv)
    date.fromisoformat(args.as_of)
    args.variants = [v for v in args.variants.split(",") if v]
    if unknown := set(args.variants) - set(VARIANTS):
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    sizes = [int(n.replace("_", "")) for n in args.rows.split(",") if n.strip()]
    if len(sizes) == 1 and not args.single_size:
        sizes.append(max(sizes[0] // 10, 100))
    args.sizes = sorted(set(sizes))
    quiet()

    workdir = Path(tempfile.mkdtemp(prefix="followup_deadlines_bench_"))
    failures: list[str] = []
    results: dict = {}
    try:
        for dialect in ["sqlite", "postgresql"] if args.database == "both" else [args.database]:
            for rows in args.sizes:
                results[(dialect, rows)] = bench_size(dialect, rows, args, workdir, failures)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, as of {args.as_of}, "
          f"parent peak RSS {maxrss_mb():.0f} MB (a child's RSS starts from it)")
    print("seconds: the whole pass (prefect: until the flow returned and its events were handed to the server); "
          "flow s: until the flow returned")
    print()
    _print_table(results)
    print()
    _print_details(results)
    print()
    _print_aims(results, args.sizes)
    if failures:
        print()
        print("WRONG RESULTS (a variant's writes vs the floor's, or the baseline's when the floor did not run):")
        for failure in failures:
            print(f"  {failure}")
        return 1
    print()
    print("the writes of every variant match the floor's (or the baseline's) row by row (see the module docstring)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
