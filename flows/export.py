"""Getting recommendations out: the import's columns plus status, grade and updated_at,
so that an exported file re-imports unchanged and a clerk can edit it in Excel."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, select

from flows.ingest import EXPORT_COLUMNS
from flows.tabular import write_table
from models.db import get_engine, tuples
from models.registry import Facility, Recommendation, Visit


def recommendations_frame(engine: Engine | None = None) -> pd.DataFrame:
    """All recommendations as the import columns, ordered by external_id."""
    engine = engine or get_engine()
    r, f, v = Recommendation.__table__, Facility.__table__, Visit.__table__
    stmt = (
        select(
            r.c.external_id, r.c.text, r.c.issued_on, r.c.due_on, r.c.ministry_code.label("ministry"),
            f.c.name.label("facility"), f.c.facility_type, f.c.region, r.c.category, r.c.source,
            r.c.mechanism_ref, r.c.priority, v.c.external_id.label("visit_id"), r.c.status, r.c.grade,
            r.c.updated_at,
        )
        .select_from(r.outerjoin(f, r.c.facility_id == f.c.id).outerjoin(v, r.c.visit_id == v.c.id))
        .order_by(r.c.external_id)
    )
    with engine.connect() as connection:
        rows = tuples(connection.execute(stmt))
    frame = pd.DataFrame(rows, columns=list(EXPORT_COLUMNS), dtype=object)
    return frame


def export_recommendations(path: Path, *, engine: Engine | None = None) -> int:
    """Write every recommendation to a .csv (UTF-8, comma) or .xlsx file; returns the row count."""
    frame = recommendations_frame(engine)
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
