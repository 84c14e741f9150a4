"""The current picture per ministry (`followup stats`, the workspace's scorecards), and the rule
every report reads the history with: an item's status on a given day.

Plain Python, without pandas: `followup stats` must start fast (issue 20), and at the office's
scale (a few thousand items, a few changes each) counting them in Python takes milliseconds.
The annual report (`reports.annual`, pandas) applies the same rule through `day_of` and
`latest_by`, so an item counts in the same status in both.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import Engine, select

from followup.config.settings import get_settings
from followup.models.calendar import local_today
from followup.models.dates import day_of
from followup.models.db import get_engine
from followup.models.domain import Status
from followup.models.policy import (
    ANSWERED_STATUSES,
    CLOCK_RUNNING,
    CLOSED_STATUSES,
    DECIDED_STATUSES,
    LATE_STATUSES,
    OPEN_STATUSES,
    effective_due_on,
)
from followup.models.registry import Recommendation, StatusChange, table_of

NOT_GIVEN = "—"  # a recommendation without a ministry or a category, a facility without a region

STATS_COLUMNS = ["open", "due_soon", "overdue", "escalated", "awaiting_decision", "implemented", "partially_implemented",
                 "rejected", "total"]

#: status on the day -> the picture's column (answers count only when given this year; the
#: others, like withdrawn items and those the Commissioner closed, are not counted). Level 2:
#: before the Commissioner, or decided (reported, referred) and still unanswered
_PICTURE_GROUPS: dict[str, str] = {**dict.fromkeys(OPEN_STATUSES, "open"), **{s: str(s) for s in LATE_STATUSES},
                                   **dict.fromkeys(DECIDED_STATUSES - CLOSED_STATUSES, Status.AWAITING_DECISION.value)}


def latest_by(history: Iterable[tuple[int, int, str, date]], cutoff: date) -> dict[int, tuple[str, date]]:
    """Per recommendation, the status and day of its entry that says what its status was at the
    cutoff: of the entries (recommendation_id, id, to_status, on) that took effect by the cutoff,
    the last RECORDED one (the highest id). Each change was made on the state before it, whatever
    day it is dated: an item imported in November (its first entry dated by the import) and
    answered with a reply dated in March counts as implemented from March; a reply dated before
    an overdue mark, filed after it, ends it. A recommendation with no entry by the cutoff has
    none here: it counts as issued.
    """
    latest: dict[int, tuple[int, str, date]] = {}
    for recommendation_id, entry_id, to_status, on in history:
        if on <= cutoff:
            known = latest.get(recommendation_id)
            if known is None or entry_id > known[0]:
                latest[recommendation_id] = (entry_id, to_status, on)
    return {recommendation_id: (to_status, on) for recommendation_id, (_, to_status, on) in latest.items()}


def current_picture(engine: Engine | None = None, as_of: date | None = None, *, due_within: int = 14) -> list[dict[str, Any]]:
    """Per ministry, the recommendations by status on `as_of` (from the history), and those falling due soon.

    open: issued, in progress, on hold or unassigned; due_soon: of those, the ones whose clock
    runs (issued, in progress) and whose deadline, moved by their days on hold, falls within
    `due_within` days (what `followup list --due-within` lists); overdue, escalated (in an individualized recommendation) and
    awaiting_decision (level 2: before the Commissioner, or reported to Parliament or referred to
    the prosecutor and still unanswered) as recorded; implemented etc. since the first of January
    (like withdrawn ones, items the Commissioner closed are not counted).

    One row per ministry with something counted (`NOT_GIVEN` for items without one), most items
    first, then the `total` row: {"ministry": code, column: count for each of STATS_COLUMNS}.
    """
    engine = engine or get_engine()
    as_of = as_of or local_today()
    r, h = table_of(Recommendation), table_of(StatusChange)
    with engine.connect() as c:
        recs = c.execute(select(r.c.id, r.c.ministry_code, r.c.due_on, r.c.days_on_hold, r.c.on_hold_since)
                         .where(r.c.issued_on <= as_of)).all()
        history = c.execute(select(h.c.recommendation_id, h.c.id, h.c.to_status, h.c.effective_on, h.c.at)).all()
    tz = get_settings().tz
    latest = latest_by(((rid, hid, status, day_of(effective_on, at, tz)) for rid, hid, status, effective_on, at in history), as_of)
    new_year = date(as_of.year, 1, 1)
    counts: dict[str, dict[str, int]] = {}
    clock_running = {s.value for s in CLOCK_RUNNING}
    for rec_id, ministry_code, due_on, held, hold_since in recs:
        status, on = latest.get(rec_id, (Status.ISSUED.value, None))
        group = _PICTURE_GROUPS.get(status)
        if group is None and status in ANSWERED_STATUSES and on is not None and on >= new_year:
            group = status
        if group is None:
            continue
        row = counts.setdefault(NOT_GIVEN if ministry_code is None else ministry_code, dict.fromkeys(STATS_COLUMNS[:-1], 0))
        row[group] += 1
        if status in clock_running:
            due = effective_due_on(due_on, held, hold_since, as_of)
            if due is not None and 0 <= (due - as_of).days <= due_within:
                row["due_soon"] += 1
    rows: list[dict[str, Any]] = [
        {"ministry": code, **row, "total": sum(n for column, n in row.items() if column != "due_soon")}
        for code, row in sorted(counts.items())
    ]
    rows.sort(key=lambda row: -row["total"])  # stable: equal totals stay in the codes' order
    rows.append({"ministry": "total", **{column: sum(row[column] for row in rows) for column in STATS_COLUMNS}})
    return rows
