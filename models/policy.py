"""The follow-up policy, whole: status groups, the effective deadline and the escalation ladder.

Every part of the project that asks "is this item open?", "when is it due?" or "what happens
to it today?" calls this module: the daily pass (`steps/deadlines.py`), the digest, the annual
report and `followup stats`. The numbers (deadlines, reminder offsets, working days before
escalation, the calendar) are data in `config/policy.yaml`; the rules are here, as pure
functions over frames that change nothing. SQL elsewhere may narrow what is read, never decide.

The ladder:
1. no deadline given: derive one from the policy (`derived_due`, for the caller to store);
2. days spent on hold (waiting on the office) move the deadline: `effective_due` =
   due_on + days on hold (the finished holds, and the one running now);
3. reminders N days before the effective deadline (clock running: issued / in_progress);
4. overdue the day after the effective deadline (clock running only);
5. escalate an overdue item after `escalate_after_working_days` working days overdue, into
   one individualized recommendation per ministry;
6. `level2`: an item still `escalated` after its individualized recommendation's response
   deadline goes before the Ombudsman for a decision.

Left alone: closed items (implemented, rejected, withdrawn), unassigned ones (no ministry to
write to), on_hold ones (the clock is stopped), escalated ones (they are level 2's business),
and partially_implemented ones: a partial answer is an answer, so it never becomes overdue by
itself; escalating it is the office's decision.

`decide` is vectorised: work per row is numpy/pandas, and Python only loops over distinct
dates and distinct rules.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from followup.config.policy import Duration, Policy, Terms
from followup.models.calendar import WorkingCalendar
from followup.models.domain import ClaimOutcome, Status

# pandas and numpy are imported by the frame rules that call them: the status groups and the
# plain rules are read by commands that must start fast (`followup list`, `show`, `history`)
# and never touch a frame
if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

#: the columns `decide` reads (`on_hold_since`, the start of a hold running now, is optional)
COLUMNS = (
    "id", "external_id", "ministry_code", "source", "priority", "status", "issued_on", "due_on",
    "days_on_hold", "overdue_since", "last_reminder_offset",
)  # fmt: skip

# --- status groups: each group of statuses the project talks about, defined once ----------------

#: nobody is expected to act any more
CLOSED_STATUSES = frozenset({Status.IMPLEMENTED, Status.REJECTED, Status.WITHDRAWN, Status.CLOSED})
#: the ministry answered (a final answer, or a partial one); withdrawn is the office's own act
ANSWERED_STATUSES = frozenset({Status.IMPLEMENTED, Status.PARTIALLY_IMPLEMENTED, Status.REJECTED})
#: what a ministry's reply may record: work under way, or an answer
REPLY_STATUSES = (Status.IN_PROGRESS, Status.IMPLEMENTED, Status.PARTIALLY_IMPLEMENTED, Status.REJECTED)
#: the deadline clock runs: reminders go out and the item becomes overdue after its deadline
CLOCK_RUNNING = (Status.ISSUED, Status.IN_PROGRESS)
#: the deadline is watched by the daily pass (escalated items wait for level 2)
WATCHED = (Status.ISSUED, Status.IN_PROGRESS, Status.ON_HOLD, Status.OVERDUE)
#: open and not late: no ministry yet, or its deadline has not passed (or is stopped)
OPEN_STATUSES = frozenset({Status.UNASSIGNED, Status.ISSUED, Status.IN_PROGRESS, Status.ON_HOLD})
#: late, and the office must still chase it: overdue, in an individualized recommendation, at level 2,
#: or decided at level 2 but still unanswered (reported to Parliament, referred to the prosecutor)
LATE_STATUSES = frozenset({Status.OVERDUE, Status.ESCALATED, Status.AWAITING_DECISION, Status.REPORTED_TO_PARLIAMENT,
                           Status.REFERRED_TO_PROSECUTOR})
#: a decision of the Commissioner at level 2 put the item there
DECIDED_STATUSES = frozenset({Status.REPORTED_TO_PARLIAMENT, Status.REFERRED_TO_PROSECUTOR, Status.CLOSED})
#: what the clock sets as deadlines pass (the daily pass and escalation), never an answer: a reply
#: dated before one of these marks is an answer in time
CLOCK_MARKS = LATE_STATUSES - DECIDED_STATUSES
#: what a ministry still has to answer, shown on its reply page and answerable there: open or late,
#: assigned to it (not unassigned), and not closed by an answer (partially_implemented is the office's to chase)
ANSWERABLE_STATUSES = (Status.ISSUED, Status.IN_PROGRESS, Status.OVERDUE, Status.ESCALATED, Status.AWAITING_DECISION,
                       Status.ON_HOLD, Status.REPORTED_TO_PARLIAMENT, Status.REFERRED_TO_PROSECUTOR)

H = TypeVar("H", bound=Hashable)
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
    import pandas as pd

    days: np.ndarray = pd.to_datetime(column).to_numpy().astype("datetime64[D]")
    return days


def _plus(days: np.ndarray, durations: list[Duration], which: np.ndarray) -> np.ndarray:
    """days[i] + durations[which[i]], with relativedelta's month arithmetic, once per distinct pair."""
    import numpy as np

    out = np.full(len(days), np.datetime64("NaT"), dtype="datetime64[D]")
    ok = ~np.isnat(days)
    if not ok.any():
        return out
    keys, inverse = np.unique(days[ok].astype(np.int64) * len(durations) + which[ok], return_inverse=True)
    shifted = [durations[k % len(durations)].after(_EPOCH + timedelta(days=int(k // len(durations)))) for k in keys]
    out[ok] = np.array(shifted, dtype="datetime64[D]")[inverse]
    return out


def _label(value: Any) -> str | None:
    import pandas as pd

    return None if pd.isna(value) else str(value)


def _rule_index(frame: pd.DataFrame, policy: Policy) -> tuple[list[Terms], np.ndarray]:
    """Per row, the index of its resolved Terms in the returned list (one per distinct combination)."""
    import numpy as np
    import pandas as pd

    combined = np.zeros(len(frame), dtype=np.int64)
    for column in ("source", "ministry_code", "priority"):
        codes, uniques = pd.factorize(frame[column], use_na_sentinel=False)
        combined = combined * max(len(uniques), 1) + codes
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    rows = frame[["source", "ministry_code", "priority"]].to_numpy()[first]
    return [policy.terms_for(*map(_label, row)) for row in rows], inverse


def _distinct(values: list[H]) -> tuple[list[H], np.ndarray]:
    """Distinct values (hashable) and, per original position, the index of its distinct value."""
    import numpy as np

    index: dict[H, int] = {}
    codes = np.array([index.setdefault(v, len(index)) for v in values], dtype=np.int64)
    return list(index), codes


def _out(frame: pd.DataFrame, mask: np.ndarray, **columns: np.ndarray) -> pd.DataFrame:
    """Selected rows' id columns plus extra columns; datetime64 columns become `date` objects."""
    result = frame.loc[mask, _WHO].reset_index(drop=True)
    for name, values in columns.items():
        values = values[mask]
        result[name] = values.astype(object) if values.dtype.kind == "M" else values
    return result


# --- the effective deadline -------------------------------------------------------------------------


def days_held(since: date, until: date) -> int:
    """Whole days an item waited on the office, on hold from `since` until `until` (the clock stops)."""
    return max((until - since).days, 0)


def effective_due_on(due_on: date | None, days_on_hold: int | None, on_hold_since: date | None, as_of: date) -> date | None:
    """`effective_due` of one item, for the places that judge a few items without frames (the
    registry list's "due within N days"): its deadline moved by the finished holds and the one
    running now. tests/test_policy.py checks that both give the same dates."""
    if due_on is None:
        return None
    held = (days_on_hold or 0) + (days_held(on_hold_since, as_of) if on_hold_since is not None else 0)
    return due_on + timedelta(days=held)


def days_on_hold(frame: pd.DataFrame, as_of: date) -> np.ndarray:
    """Per row, the days its clock stood still up to `as_of`: the finished holds (`days_on_hold`,
    None counts as 0) plus the hold running now (from `on_hold_since`, when the column is there)."""
    import numpy as np
    import pandas as pd

    held: np.ndarray = pd.to_numeric(frame["days_on_hold"]).fillna(0).to_numpy(np.int64)
    if "on_hold_since" in frame.columns and len(frame):
        since = _days(frame["on_hold_since"])
        running = ~np.isnat(since)
        held = held + np.where(running, np.maximum((np.datetime64(as_of, "D") - since).astype(np.int64), 0), 0)
    return held


def effective_due(frame: pd.DataFrame, as_of: date, due: np.ndarray | None = None) -> np.ndarray:
    """The effective deadline of each row as datetime64[D] (NaT: none yet): the deadline
    (`due_on`, or `due` when given) moved by the days on hold up to `as_of`."""
    deadline = _days(frame["due_on"]) if due is None else due
    moved: np.ndarray = deadline + days_on_hold(frame, as_of).astype("timedelta64[D]")
    return moved


# --- the ladder ----------------------------------------------------------------------------------


def decide(recommendations: pd.DataFrame, policy: Policy, as_of: date) -> Decisions:
    """Decide reminders, overdue marks and escalations for `as_of` (a date in Asia/Almaty).

    Input columns, one row per recommendation:
      id, external_id, ministry_code (None when unassigned), source, priority (may be None),
      status (a `Status` value), issued_on (date),
      due_on (date or None: then issued_on + the policy's deadline for its source/ministry/priority),
      days_on_hold (int: whole days of the finished holds; None counts as 0),
      on_hold_since (optional; date or None: the start of the hold running now, counted up to as_of),
      overdue_since (date or None: when it became overdue; None -> the day after the effective deadline),
      last_reminder_offset (int or None: smallest reminder offset already sent for the current
        deadline; 14 means the 14-day reminder went out),
      awaiting_review (optional; bool: a ministry's claim on it waits for the office's review,
        which holds the item: no reminder, overdue mark or escalation meanwhile).
    Dates may be `date` objects or datetime64. A row with neither due_on nor issued_on has no
    deadline and is skipped.
    """
    import numpy as np
    import pandas as pd

    missing = [c for c in COLUMNS if c not in recommendations.columns]
    if missing:
        raise ValueError(f"recommendations frame lacks columns: {', '.join(missing)}")
    frame = recommendations
    today = np.datetime64(as_of, "D")
    status = frame["status"]
    active = (~status.isin([*CLOSED_STATUSES, Status.UNASSIGNED])).to_numpy()
    # a claim the office is reviewing holds the item where it is: no reminder, no overdue mark,
    # no escalation until the office accepts or returns it
    reviewing = under_review(frame)
    running = status.isin(CLOCK_RUNNING).to_numpy() & ~reviewing

    terms, rule = _rule_index(frame, policy)
    deadlines, deadline_of_rule = _distinct([t.deadline for t in terms])
    given = _days(frame["due_on"])
    derived = _plus(_days(frame["issued_on"]), deadlines, deadline_of_rule[rule])
    derive = active & np.isnat(given) & ~np.isnat(derived)
    due = effective_due(frame, as_of, np.where(np.isnat(given), derived, given))  # the clock stopped while on hold
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
    waiting = (status == Status.OVERDUE).to_numpy() & ~np.isnat(since) & ~reviewing
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


def under_review(frame: pd.DataFrame) -> np.ndarray:
    """Rows whose ministry's claim waits for the office's review (optional column `awaiting_review`)."""
    import numpy as np

    if "awaiting_review" not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    reviewing: np.ndarray = frame["awaiting_review"].fillna(False).astype(bool).to_numpy(bool)
    return reviewing


def needs_review(claimed: str, policy: Policy) -> bool:
    """Whether a ministry's claim waits for the office before it moves the item (`replies.review`)."""
    return str(claimed) in policy.replies.review


def claim_outcome(*, current: str, claimed: str, policy: Policy, reachable: bool, own_item: bool = True,
                  reviewed: bool = False) -> ClaimOutcome:
    """What one claim of a ministry's reply does to its item when the reply reaches the registry.

    In this order:
    - a status no reply may claim (`REPLY_STATUSES`), or an item of another body: refused;
    - the item already stands where the claim puts it: unchanged (nothing to move or review);
    - no chain of legal moves from where the item stands now (`reachable`, from the transition
      table: a withdrawn item, say): refused. Refused claims stay with the reply and are listed
      for the office; they never undo the reply's other claims;
    - a claim the policy has the office review first (`replies.review`), unless the office is
      the reviewer already (`reviewed`: it accepts it now, or typed the paper reply itself):
      under_review, the item keeps its status and is held meanwhile;
    - otherwise applied: the item moves to the claimed status.
    """
    if claimed not in {s.value for s in REPLY_STATUSES} or not own_item:
        return ClaimOutcome.REFUSED
    if claimed == current:
        return ClaimOutcome.UNCHANGED
    if not reachable:
        return ClaimOutcome.REFUSED
    if not reviewed and needs_review(claimed, policy):
        return ClaimOutcome.UNDER_REVIEW
    return ClaimOutcome.APPLIED


def level2(items: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """The items to put before the Ombudsman: still `escalated` and unanswered after their
    individualized recommendation's response deadline (< as_of) passed.

    Input, one row per item of each letter: id (the recommendation), letter (the individualized
    recommendation), status, response_due_on (the letter's deadline; None: not due), and
    optionally answered (bool: a reply on the item reached the registry) and awaiting_review.
    An item the ministry answered, or that moved on otherwise, is not silent; a letter none of
    whose items is returned was answered. Returns the selected rows, in input order.
    """
    import numpy as np

    due = _days(items["response_due_on"])
    answered = items["answered"].fillna(False).astype(bool).to_numpy(bool) if "answered" in items.columns else np.zeros(len(items), dtype=bool)
    silent = ((items["status"] == Status.ESCALATED).to_numpy(bool) & ~np.isnat(due) & (due < np.datetime64(as_of, "D"))
              & ~answered & ~under_review(items))
    selected: pd.DataFrame = items.loc[silent].reset_index(drop=True)
    return selected
