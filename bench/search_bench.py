"""Benchmark: the registry's list and text search (models/listing.py) at 1,000,000 items.

    python bench/search_bench.py [--rows 1000000] [--database sqlite|postgresql|both] [--repeat 5]

The issue asks: "A filtered page and a search at 1,000,000 items answer in under 300 ms on both
databases (a benchmark prints them)."

For each chosen database: one registry populated as `deadlines_bench.py` populates it (its
`child_populate`: schema through `init_db`, the 9 ministries, facilities, N recommendations
with Russian texts and their folded copies, history), then every tenth item's text replaced by
a Kazakh one (through the table, so the search index follows as it does for an import), and
PostgreSQL's statistics gathered (a live registry has them). Then, in a fresh process, each query
through `models.listing.list_items` (the page and its COUNT, as the CLI and the web ask for them:
on PostgreSQL a search's count stops at `search_count_limit`, and the list says "1000+") and, for
comparison, a whole COUNT of the same conditions; once to warm the caches, then `--repeat` times; the median and the slowest
are printed. It also checks the answers: the Russian and Kazakh searches find items whose texts
hold the words, the filtered page holds only the ministry's late items, by deadline.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import quiet, run_child
from deadlines_bench import AS_OF, PG_ADMIN_URL, SEED, Registry, child_populate

#: Kazakh texts for every tenth item (the NPM writes to some bodies in Kazakh)
KAZAKH = [
    "Қамаудағы адамдарды ауыз сумен және санитариялық тораптармен тәулік бойы қамтамасыз ету.",
    "Тергеу изоляторында бейнебақылау жүйесін орнату және жазбаларды кемінде {k} ай сақтау.",
    "Медициналық қызметкерлердің қатысуымен әрбір келіп түскен адамды тексеруді ұйымдастыру.",
    "Серуендеу аулаларын шатырмен жабдықтау және күн сайын кемінде {k} сағат серуендеуді қамтамасыз ету.",
]
#: the measured queries: name -> RegistryFilter arguments
QUERIES = {
    "filtered page (ministry + status + overdue, by deadline)": {"ministry": "interior", "statuses": ("overdue",), "overdue": True},
    "search in Russian ('прогулоч дворик')": {"search": "прогулоч дворик"},
    "search in Kazakh ('бейнебақылау')": {"search": "бейнебақылау"},
    "search + ministry ('питьевой', health)": {"search": "питьевой", "ministry": "health"},
    "first page, nothing filtered (by deadline)": {},
}


def child_kazakh(url: str, workdir: str) -> dict:
    """Every tenth item's text in Kazakh, with its folded copy (the index follows)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    quiet()
    os.environ["TMPDIR"] = workdir
    from sqlalchemy import bindparam, select, update

    from followup.models.db import get_engine
    from followup.models.registry import Recommendation, table_of
    from followup.models.search import fold

    started = time.perf_counter()
    r = table_of(Recommendation)
    engine = get_engine(url)
    with engine.begin() as connection:
        ids = connection.execute(select(r.c.id).where(r.c.id % 10 == 3).order_by(r.c.id)).scalars().all()
        texts = [KAZAKH[i % len(KAZAKH)].format(k=2 + i % 7) for i in ids]
        statement = update(r).where(r.c.id == bindparam("b_id")).values(text=bindparam("b_text"), search_text=bindparam("b_folded"))
        for start in range(0, len(ids), 20_000):
            connection.execute(statement, [{"b_id": i, "b_text": t, "b_folded": fold(t)}
                                           for i, t in zip(ids[start:start + 20_000], texts[start:start + 20_000], strict=True)])
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE recommendation")
    else:
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return {"kazakh": len(ids), "seconds": time.perf_counter() - started}


def child_measure(url: str, repeat: int, as_of_iso: str) -> dict:
    """Each query once to warm up, then `repeat` times: milliseconds, and what it found."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    quiet()
    from datetime import date

    from sqlalchemy import func, select

    from followup.models.db import get_engine
    from followup.models.listing import RegistryFilter, conditions, list_items
    from followup.models.registry import Recommendation, table_of
    from followup.models.search import fold

    today = date.fromisoformat(as_of_iso)
    engine = get_engine(url)
    r = table_of(Recommendation)
    results: dict[str, dict] = {}
    problems: list[str] = []
    with engine.connect() as connection:
        for name, arguments in QUERIES.items():
            filters = RegistryFilter(**arguments)  # type: ignore[arg-type]
            times, count_times = [], []
            page = list_items(connection, filters, today=today)
            count_statement = select(func.count()).select_from(r).where(*conditions(connection, filters, today=today))
            connection.execute(count_statement).scalar_one()
            for _ in range(repeat):
                started = time.perf_counter()
                page = list_items(connection, filters, today=today)
                times.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                counted = connection.execute(select(func.count()).select_from(r).where(
                    *conditions(connection, filters, today=today))).scalar_one()
                count_times.append((time.perf_counter() - started) * 1000)
            results[name] = {"median": statistics.median(times), "max": max(times), "count_median": statistics.median(count_times),
                             "count_max": max(count_times), "total": counted, "shown": page.total_label, "rows": len(page.rows)}
            if (counted < page.total) if page.at_least else (counted != page.total):
                problems.append(f"{name}: COUNT {counted} but the page says {page.total_label}")
            for word in fold(arguments.get("search", "")).split():
                if any(not any(w.startswith(word) for w in fold(i.text).split()) for i in page.rows):
                    problems.append(f"{name}: an item without a word beginning with {word!r}")
            if "ministry" in arguments and any(i.ministry_code != arguments["ministry"] for i in page.rows):
                problems.append(f"{name}: an item of another ministry")
            if arguments.get("overdue") and any(i.status != "overdue" for i in page.rows):
                problems.append(f"{name}: an item that is not overdue")
            dues = [i.due_on for i in page.rows if i.due_on is not None]
            if dues != sorted(dues):
                problems.append(f"{name}: not by deadline")
            if not page.rows:
                problems.append(f"{name}: nothing found")
    engine.dispose()
    return {"results": results, "problems": problems}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pg-url", default=PG_ADMIN_URL, help="admin URL of the PostgreSQL server (creates and drops databases)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (and the SQLite registry in it)")
    args = parser.parse_args(argv)
    quiet()
    workdir = Path(tempfile.mkdtemp(prefix="followup_search_bench_"))
    failures: list[str] = []
    table: list[tuple[str, str, dict]] = []
    try:
        for dialect in ["sqlite", "postgresql"] if args.database == "both" else [args.database]:
            registry = Registry(dialect, workdir, f"search_{args.rows}", args.pg_url)
            try:
                print(f"[{dialect} {args.rows}] populating ...", flush=True)
                made = run_child(child_populate, registry.url, dialect, registry.target, args.rows, SEED, AS_OF, str(workdir))
                print(f"[{dialect} {args.rows}]   {made['seconds']:.1f} s", flush=True)
                kazakh = run_child(child_kazakh, registry.url, str(workdir))
                print(f"[{dialect} {args.rows}]   {kazakh['kazakh']} texts in Kazakh, {kazakh['seconds']:.1f} s", flush=True)
                measured = run_child(child_measure, registry.url, args.repeat, AS_OF)
                failures += [f"{dialect}: {p}" for p in measured["problems"]]
                for name, figures in measured["results"].items():
                    table.append((dialect, name, figures))
            finally:
                if not args.keep:
                    registry.drop()
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(f"{args.rows:,} items, median / slowest of {args.repeat} runs after one warm-up, milliseconds")
    print("| database | query | matching | the list says | page + its count | a whole COUNT | under 300 ms |")
    print("|---|---|---|---|---|---|---|")
    for dialect, name, f in table:
        met = "yes" if f["max"] < 300 else "NO"
        print(f"| {dialect} | {name} | {f['total']:,} | {f['shown']} | {f['median']:.0f} / {f['max']:.0f} | "
              f"{f['count_median']:.0f} / {f['count_max']:.0f} | {met} |")
    if failures:
        print()
        print("WRONG ANSWERS:")
        for failure in failures:
            print(f"  {failure}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
