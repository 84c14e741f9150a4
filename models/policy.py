"""The escalation ladder as one pure function: which items to remind, mark overdue, escalate.

`decide` takes a frame of recommendations (built by the caller from the registry) and the
policy, and returns what should happen on `as_of`; it changes nothing. The flows turn the
result into letters and status changes (`transition_many`). Everything is vectorised: work
per row is numpy/pandas, and Python only loops over distinct dates and distinct rules.

The ladder:
1. no deadline given: derive one from the policy (`derived_due`, for the caller to store);
2. days spent on hold (waiting on the office) move the deadline: effective = due_on + days_on_hold;
3. reminders N days before the effective deadline (issued / in_progress only);
4. overdue the day after the effective deadline (issued / in_progress only);
5. escalate an overdue item after `escalate_after_working_days` working days overdue;
6. `level2`: an individualized recommendation with no reply by its response deadline.

Left alone: closed items (implemented, rejected, withdrawn), unassigned ones (no ministry to
write to), on_hold ones (the clock is stopped), escalated ones (they are level 2's business),
and partially_implemented ones: a partial answer is an answer, so it never becomes overdue by
itself; escalating it is the office's decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from followup.config.policy import Duration, Policy
from followup.models.calendar import WorkingCalendar
from followup.models.domain import CLOSED_STATUSES, Status

COLUMNS = (
    "id", "external_id", "ministry_code", "source", "priority", "status", "issued_on", "due_on",
    "days_on_hold", "overdue_since", "last_reminder_offset",
)  # fmt: skip
CLOCK_RUNNING = (Status.ISSUED, Status.IN_PROGRESS)
_EPOCH = date(1970, 1, 1)
_WHO = ["id", "external_id", "ministry_code"]


@dataclass(frozen=True)
class Decisions:
    """What a run should do; every frame has one row per recommendation, in input order."""

    reminders: pd.DataFrame  # id, external_id, ministry_code, due_on (effective), offset
    overdue: pd.DataFrame  # id, external_id, ministry_code, due_on (effective), overdue_since (= due_on + 1)
    escalate: pd.DataFrame  # id, external_id, ministry_code, due_on, overdue_since, working_days_overdue
    derived_due: pd.DataFrame  # id, external_id, due_on (derived from the policy, before any hold)


def _days(column: pd.Series) -> np.ndarray:
    """Any date-like column as datetime64[D], NaT where missing."""
    return pd.to_datetime(column).to_numpy().astype("datetime64[D]")


def _plus(days: np.ndarray, durations: list[Duration], which: np.ndarray) -> np.ndarray:
    """days[i] + durations[which[i]], with relativedelta's month arithmetic, once per distinct pair."""
    out = np.full(len(days), np.datetime64("NaT"), dtype="datetime64[D]")
    ok = ~np.isnat(days)
    if not ok.any():
        return out
    keys, inverse = np.unique(days[ok].astype(np.int64) * len(durations) + which[ok], return_inverse=True)
    shifted = [durations[k % len(durations)].after(_EPOCH + timedelta(days=int(k // len(durations)))) for k in keys]
    out[ok] = np.array(shifted, dtype="datetime64[D]")[inverse]
    return out


def _rule_index(frame: pd.DataFrame, policy: Policy):
    """Per row, the index of its resolved Terms in the returned list (one per distinct combination)."""
    combined = np.zeros(len(frame), dtype=np.int64)
    for column in ("source", "ministry_code", "priority"):
        codes, uniques = pd.factorize(frame[column], use_na_sentinel=False)
        combined = combined * max(len(uniques), 1) + codes
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    label = lambda v: None if pd.isna(v) else str(v)  # noqa: E731
    rows = frame[["source", "ministry_code", "priority"]].to_numpy()[first]
    return [policy.terms_for(*map(label, row)) for row in rows], inverse


def _distinct(values: list) -> tuple[list, np.ndarray]:
    """Distinct values (hashable) and, per original position, the index of its distinct value."""
    index: dict = {}
    codes = np.array([index.setdefault(v, len(index)) for v in values], dtype=np.int64)
    return list(index), codes


def _out(frame: pd.DataFrame, mask: np.ndarray, **columns: np.ndarray) -> pd.DataFrame:
    """Selected rows' id columns plus extra columns; datetime64 columns become `date` objects."""
    result = frame.loc[mask, _WHO].reset_index(drop=True)
    for name, values in columns.items():
        values = values[mask]
        result[name] = values.astype(object) if values.dtype.kind == "M" else values
    return result


def decide(recommendations: pd.DataFrame, policy: Policy, as_of: date) -> Decisions:
    """Decide reminders, overdue marks and escalations for `as_of` (a date in Asia/Almaty).

    Input columns, one row per recommendation:
      id, external_id, ministry_code (None when unassigned), source, priority (may be None),
      status (a `Status` value), issued_on (date),
      due_on (date or None: then issued_on + the policy's deadline for its source/ministry/priority),
      days_on_hold (int: whole days spent on_hold up to as_of; None counts as 0),
      overdue_since (date or None: when it became overdue; None -> the day after the effective deadline),
      last_reminder_offset (int or None: smallest reminder offset already sent for the current
        deadline; 14 means the 14-day reminder went out).
    Dates may be `date` objects or datetime64. A row with neither due_on nor issued_on has no
    deadline and is skipped.
    """
    missing = [c for c in COLUMNS if c not in recommendations.columns]
    if missing:
        raise ValueError(f"recommendations frame lacks columns: {', '.join(missing)}")
    frame = recommendations
    today = np.datetime64(as_of, "D")
    status = frame["status"]
    active = (~status.isin([*CLOSED_STATUSES, Status.UNASSIGNED])).to_numpy()
    running = status.isin(CLOCK_RUNNING).to_numpy()

    terms, rule = _rule_index(frame, policy)
    deadlines, deadline_of_rule = _distinct([t.deadline for t in terms])
    given = _days(frame["due_on"])
    derived = _plus(_days(frame["issued_on"]), deadlines, deadline_of_rule[rule])
    derive = active & np.isnat(given) & ~np.isnat(derived)
    due = np.where(np.isnat(given), derived, given)
    hold = pd.to_numeric(frame["days_on_hold"]).fillna(0).to_numpy(np.int64)
    due = due + hold.astype("timedelta64[D]")  # the clock stopped while on hold
    has_due = ~np.isnat(due)

    # reminders: the smallest offset not below the days left, unless that one (or a later one) went out
    days_left = np.where(has_due, (due - today).astype(np.int64), -1)
    last = pd.to_numeric(frame["last_reminder_offset"]).to_numpy(np.float64)  # NaN: none sent
    offset = np.full(len(frame), -1, dtype=np.int64)
    offsets, offsets_of_rule = _distinct([t.reminder_days_before for t in terms])
    for k, days in enumerate(offsets):
        if not days:
            continue
        ascending = np.array(sorted(days), dtype=np.int64)
        rows = running & (days_left >= 0) & (offsets_of_rule[rule] == k)
        pos = np.searchsorted(ascending, days_left[rows], side="left")
        offset[rows] = np.where(pos < len(ascending), ascending[np.minimum(pos, len(ascending) - 1)], -1)
    remind = (offset >= 0) & ~(last <= offset)

    late = running & has_due & (due < today)

    # escalation counts working days from the later of overdue_since and the day after the
    # effective deadline, so days on hold after going overdue also push escalation back
    first_late = due + np.timedelta64(1, "D")
    since = _days(frame["overdue_since"])
    since = np.where(np.isnat(since) | (since < first_late), first_late, since)
    waiting = (status == Status.OVERDUE).to_numpy() & ~np.isnat(since)
    worked = np.zeros(len(frame), dtype=np.int64)
    if waiting.any():
        calendar = WorkingCalendar.from_policy(policy.calendar)
        starts, inverse = np.unique(since[waiting], return_inverse=True)
        counts = [calendar.working_days_between(s.astype(date), as_of) for s in starts]
        worked[waiting] = np.array(counts, dtype=np.int64)[inverse]
    needed = np.array([t.escalate_after_working_days for t in terms], dtype=np.int64)[rule]
    escalate = waiting & (worked >= needed)

    return Decisions(
        reminders=_out(frame, remind, due_on=due, offset=offset),
        overdue=_out(frame, late, due_on=due, overdue_since=first_late),
        escalate=_out(frame, escalate, due_on=due, overdue_since=since, working_days_overdue=worked),
        derived_due=_out(frame, derive, due_on=derived)[["id", "external_id", "due_on"]],
    )


def level2(individualized: pd.DataFrame, policy: Policy, as_of: date) -> pd.DataFrame:
    """Individualized recommendations whose response deadline passed (< as_of) with no reply.

    Input columns: id, reference, ministry_code, issued_on, response_due_on (None: issued_on +
    the policy's `individualized.response_deadline`), answered (bool; None counts as no).
    Returns id, reference, ministry_code, issued_on, response_due_on for level 2.
    """
    frame = individualized
    given = _days(frame["response_due_on"])
    issued = _days(frame["issued_on"])
    derived = _plus(issued, [policy.individualized.response_deadline], np.zeros(len(frame), dtype=np.int64))
    due = np.where(np.isnat(given), derived, given)
    answered = frame["answered"].astype("boolean").fillna(False).to_numpy(bool)
    silent = ~answered & ~np.isnat(due) & (due < np.datetime64(as_of, "D"))
    result = frame.loc[silent, ["id", "reference", "ministry_code"]].reset_index(drop=True)
    result["issued_on"] = issued[silent].astype(object)
    result["response_due_on"] = due[silent].astype(object)
    return result
