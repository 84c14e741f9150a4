"""Getting recommendations out: the import's columns plus status, grade and updated_at,
so that an exported file re-imports unchanged and a clerk can edit it in Excel."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, Engine, select

from followup.models.db import get_engine, tuples
from followup.models.international import (
    TAG_COLUMNS,
    join_tags,
    parse_tag_filter,
    tag_matches,
)
from followup.models.listing import RegistryFilter, all_items
from followup.models.registry import Facility, Recommendation, RecommendationTag, Visit, table_of
from followup.spreadsheets.ingest import EXPORT_COLUMNS, tags_of
from followup.spreadsheets.tabular import write_table, xlsx_bytes


def tagged_ids(connection: Connection, filters: Sequence[str]) -> set[int] | None:
    """The recommendations that carry every `KIND:VALUE` filter (`theme:torture`, `sdg:16`); None: no filter.

    The distinct tag values of a kind are few (UHRI has a few hundred themes): they are matched
    in Python (case-insensitive in every script, which SQLite's lower() is not), then the
    recommendations are read by value in one statement.
    """
    if not filters:
        return None
    t = table_of(RecommendationTag)
    ids: set[int] | None = None
    for text in filters:
        kind, wanted = parse_tag_filter(text)
        values = [v for (v,) in connection.execute(select(t.c.value).where(t.c.kind == kind).distinct()).all()]
        matching = [v for v in values if tag_matches(kind, v, wanted)]
        found = {i for (i,) in connection.execute(
            select(t.c.recommendation_id).where(t.c.kind == kind, t.c.value.in_(matching)).distinct()
        ).all()} if matching else set()
        ids = found if ids is None else ids & found
    return ids


def recommendations_frame(engine: Engine | None = None, *, tags: Sequence[str] = ()) -> pd.DataFrame:
    """All recommendations (or those carrying every tag filter) as the import columns, ordered by external_id."""
    engine = engine or get_engine()
    r, f, v = table_of(Recommendation), table_of(Facility), table_of(Visit)
    stmt = (
        select(
            r.c.external_id, r.c.text, r.c.issued_on, r.c.due_on, r.c.ministry_code.label("ministry"),
            f.c.name.label("facility"), f.c.facility_type, f.c.region, r.c.category, r.c.source,
            r.c.mechanism_ref, r.c.priority, v.c.external_id.label("visit_id"), r.c.status, r.c.grade,
            r.c.updated_at, r.c.recommending_state, r.c.response, r.c.follow_up, r.c.id,
        )
        .select_from(r.outerjoin(f, r.c.facility_id == f.c.id).outerjoin(v, r.c.visit_id == v.c.id))
        .order_by(r.c.external_id)
    )
    with engine.connect() as connection:
        wanted = tagged_ids(connection, tags)
        rows = tuples(connection.execute(stmt))
        columns = [c for c in EXPORT_COLUMNS if c not in TAG_COLUMNS] + ["id"]
        frame = pd.DataFrame(rows, columns=columns, dtype=object)
        if wanted is not None:
            frame = frame[frame["id"].isin(wanted)].reset_index(drop=True)
        found = tags_of(connection, [int(i) for i in frame["id"]])
    for name, kind in TAG_COLUMNS.items():
        frame[name] = [join_tags(found.get(i, {}).get(kind, [])) or None for i in frame["id"]]
    frame["follow_up"] = frame["follow_up"].map(lambda x: "yes" if x else None)  # empty: not selected (and keeps a selection on re-import)
    return frame[list(EXPORT_COLUMNS)]


def export_recommendations(path: Path, *, engine: Engine | None = None, tags: Sequence[str] = ()) -> int:
    """Write every recommendation (or those with the tags) to a .csv (UTF-8, comma) or .xlsx file; returns the row count."""
    frame = recommendations_frame(engine, tags=tags)
    path = Path(path)
    if path.suffix.lower() == ".csv":
        for column in ("issued_on", "due_on"):
            frame[column] = frame[column].map(lambda d: d.isoformat() if d is not None else "")
        frame["updated_at"] = frame["updated_at"].map(lambda t: t.isoformat(timespec="seconds") if t is not None else "")
        frame = frame.fillna("")
    else:
        # Excel has no time zones: write the UTC instant as a naive timestamp (column says UTC)
        frame["updated_at"] = frame["updated_at"].map(lambda t: t.replace(tzinfo=None) if t is not None else None)
    write_table(frame, path, date_columns=("issued_on", "due_on"))
    return len(frame)


#: the registry list's columns as the XLSX download names them
LIST_COLUMNS = ("external_id", "text", "ministry", "facility", "facility_type", "region", "status", "due_on", "issued_on",
                "source", "category", "priority", "awaiting_review")


def export_items_xlsx(connection: Connection, filters: RegistryFilter, *, today: date) -> bytes:
    """Every item the registry's list shows for `filters` (all pages, in its order) as an XLSX
    workbook, through the writer that keeps every cell a value (a text starting with "=" stays text)."""
    rows = all_items(connection, filters, today=today)
    frame = pd.DataFrame(
        [(i.external_id, i.text, i.ministry_code, i.facility, i.facility_type, i.region, i.status, i.due_on, i.issued_on,
          i.source, i.category, i.priority, "yes" if i.awaiting_review else None) for i in rows],
        columns=list(LIST_COLUMNS), dtype=object,
    )
    return xlsx_bytes(frame, date_columns=("due_on", "issued_on"))
