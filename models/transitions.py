"""The one way a recommendation's status changes.

`TRANSITIONS` is the explicit table of what may follow what. `transition_many` is the only
code that changes `recommendation.status`: it checks every requested change against the
table, updates the rows and appends their StatusChange entries in the caller's transaction,
so a status and its history commit together or not at all. It works on sets (one statement
per batch), so a daily run over 100,000 items costs a handful of statements, not 100,000.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from followup.models.backend import backend_of
from followup.models.dates import day_of
from followup.models.db import bulk_insert
from followup.models.domain import Status
from followup.models.policy import ANSWERED_STATUSES, days_held
from followup.models.registry import Recommendation, StatusChange, table_of
from followup.models.types import utcnow

S = Status
_ANSWERS = ANSWERED_STATUSES
#: the statuses a level-2 decision of the Commissioner puts an item in (besides a new deadline)
_DECIDED = (S.REPORTED_TO_PARLIAMENT, S.REFERRED_TO_PROSECUTOR, S.CLOSED)

#: from-status -> the statuses it may move to. `None` is a recommendation being created.
TRANSITIONS: Mapping[Status | None, frozenset[Status]] = {
    None: frozenset({S.UNASSIGNED, S.ISSUED}),
    # the office assigns a responsible body, or drops the item
    S.UNASSIGNED: frozenset({S.ISSUED, S.WITHDRAWN}),
    S.ISSUED: frozenset({S.IN_PROGRESS, S.ON_HOLD, S.OVERDUE, S.WITHDRAWN, S.UNASSIGNED} | _ANSWERS),
    S.IN_PROGRESS: frozenset({S.ON_HOLD, S.OVERDUE, S.WITHDRAWN} | _ANSWERS),
    # waiting on the office: resumes where it was, or is answered or dropped meanwhile
    S.ON_HOLD: frozenset({S.ISSUED, S.IN_PROGRESS, S.OVERDUE, S.ESCALATED, S.WITHDRAWN} | _ANSWERS),
    S.OVERDUE: frozenset({S.ESCALATED, S.IN_PROGRESS, S.ON_HOLD, S.WITHDRAWN} | _ANSWERS),
    S.ESCALATED: frozenset({S.IN_PROGRESS, S.ON_HOLD, S.AWAITING_DECISION, S.WITHDRAWN} | _ANSWERS),
    # level 2: the Ombudsman decides (report to Parliament, referral to the prosecutor, closing the
    # case, or a new deadline: back to issued, the clock running again); a late reply still counts
    S.AWAITING_DECISION: frozenset({S.IN_PROGRESS, S.WITHDRAWN, *_DECIDED, S.ISSUED} | _ANSWERS),
    # a decision taken: the ministry still owes an answer, and a late one still counts; the
    # Commissioner may take a further decision (refer after reporting, close, a new deadline)
    S.REPORTED_TO_PARLIAMENT: frozenset({S.IN_PROGRESS, S.WITHDRAWN, S.REFERRED_TO_PROSECUTOR, S.CLOSED, S.ISSUED} | _ANSWERS),
    S.REFERRED_TO_PROSECUTOR: frozenset({S.IN_PROGRESS, S.WITHDRAWN, S.REPORTED_TO_PARLIAMENT, S.CLOSED, S.ISSUED} | _ANSWERS),
    # closed by the Commissioner: nobody chases it any more, but a late reply is still recorded
    S.CLOSED: frozenset({S.IN_PROGRESS} | _ANSWERS),
    # a partial answer stays open: the rest may follow, or the office may escalate it
    S.PARTIALLY_IMPLEMENTED: frozenset({S.IMPLEMENTED, S.IN_PROGRESS, S.ESCALATED, S.REJECTED, S.WITHDRAWN}),
    # a follow-up visit may find an "implemented" item not implemented in practice
    S.IMPLEMENTED: frozenset({S.IN_PROGRESS}),
    # a refusal is escalated, or reconsidered by the ministry
    S.REJECTED: frozenset({S.ESCALATED, S.IN_PROGRESS, S.WITHDRAWN}),
    S.WITHDRAWN: frozenset(),
}


class IllegalTransition(ValueError):
    """A requested status change is not in the transition table."""


class ConcurrentChange(RuntimeError):
    """A recommendation's status changed under us since it was read: nothing was written."""


@dataclass(frozen=True, slots=True)
class TransitionRequest:
    recommendation_id: int
    from_status: Status | None  # the status the caller read; None when the row is being created
    to_status: Status
    external_id: str | None = None  # only used to word errors


def allowed(from_status: str | None, to_status: str) -> bool:
    """Whether the table allows going from `from_status` to `to_status`."""
    try:
        src = None if from_status is None else Status(from_status)
        return Status(to_status) in TRANSITIONS[src]
    except ValueError:
        return False


def path_between(from_status: str | None, to_status: str) -> list[Status] | None:
    """The shortest chain of legal moves from one status to another (excluding the start).

    Used when a file states where an item already stands (an export from another registry,
    an office's old spreadsheet): the item walks the table step by step, each step in the
    history, instead of jumping past the rules. None when no chain exists.
    """
    start = None if from_status is None else Status(from_status)
    target = Status(to_status)
    if start == target:
        return []
    frontier: list[tuple[Status | None, list[Status]]] = [(start, [])]
    seen = {start}
    while frontier:
        nxt: list[tuple[Status | None, list[Status]]] = []
        for status, path in frontier:
            for step in sorted(TRANSITIONS[status]):
                if step == target:
                    return [*path, step]
                if step not in seen:
                    seen.add(step)
                    nxt.append((step, [*path, step]))
        frontier = nxt
    return None


def check_transition(from_status: str | None, to_status: str, *, label: str = "recommendation") -> None:
    """Raise IllegalTransition with a sentence a clerk can act on."""
    if to_status not in Status.__members__.values():
        known = ", ".join(s.value for s in Status)
        raise IllegalTransition(f"{label}: unknown status {to_status!r} (known: {known})")
    if from_status == to_status:
        raise IllegalTransition(f"{label}: already {to_status}")
    problem = illegal_move(from_status, to_status)
    if problem:
        raise IllegalTransition(f"{label}: {problem}")


def illegal_move(from_status: str | None, to_status: str) -> str | None:
    """Why the table refuses the move, naming the moves it allows (None when it allows it):
    `cannot go from implemented to overdue; allowed: in_progress`."""
    if allowed(from_status, to_status):
        return None
    nexts = sorted(s.value for s in TRANSITIONS.get(Status(from_status) if from_status else None, ()))
    return f"cannot go from {from_status or '(new)'} to {to_status}; allowed: {', '.join(nexts) or 'nothing (final status)'}"


def transition_many(
    session: Session,
    requests: Sequence[TransitionRequest],
    *,
    actor: str,
    reason: str,
    evidence: str | None = None,
    at: datetime | None = None,
    evidences: Sequence[str | None] | None = None,
    reasons: Sequence[str] | None = None,
    effective_on: Sequence[date | None] | None = None,
    recorded_on: date | None = None,
) -> int:
    """Apply a set of status changes and append their history, in the session's transaction.

    All requests are checked first: one illegal change means nothing is written. The UPDATE
    only matches rows still in the status the caller read, so two concurrent runs cannot both
    move the same item; if any row moved meanwhile, ConcurrentChange is raised and the caller's
    transaction must roll back. `reasons`/`evidences`/`effective_on`, when given, are per
    request. `recorded_on`: the day of the run writing them (a scheduled pass's `as_of`).
    """
    if not requests:
        return 0
    if not actor or not actor.strip():
        raise ValueError("a status change needs an actor: who made it")
    if not reasons and (not reason or not reason.strip()):
        raise ValueError("a status change needs a reason: why it was made")
    checked: set[tuple[Status | None, Status]] = set()  # each distinct (from, to) once: an import moves 500,000 items the same way
    for req in requests:
        pair = (req.from_status, req.to_status)
        if pair not in checked:  # a pair that fails raises here, naming its first item
            check_transition(req.from_status, req.to_status, label=req.external_id or f"recommendation {req.recommendation_id}")
            checked.add(pair)
    at = at or utcnow()
    updates = [
        {"b_id": r.recommendation_id, "b_from": str(r.from_status), "b_to": str(r.to_status)}
        for r in requests
        if r.from_status is not None
    ]
    if updates:
        _clock_columns(session, requests, updates, at=at, effective_on=effective_on)
        rowcount = _update_statuses(session.connection(), updates, at)
        if rowcount != len(updates):
            raise ConcurrentChange(
                f"{len(updates) - rowcount} of {len(updates)} recommendations changed status "
                "since they were read; nothing was written, run again"
            )
    n = len(requests)
    bulk_insert(session.connection(), table_of(StatusChange), {
        "recommendation_id": [r.recommendation_id for r in requests],
        "from_status": [None if r.from_status is None else str(r.from_status) for r in requests],
        "to_status": [str(r.to_status) for r in requests],
        "at": [at] * n,
        "actor": [actor] * n,
        "reason": list(reasons) if reasons else [reason] * n,
        "evidence": list(evidences) if evidences else [evidence] * n,
        "effective_on": list(effective_on) if effective_on else [None] * n,
        "changes": [None] * n,
        "recorded_on": [recorded_on] * n,
    })
    return n


def _update_statuses(connection: Connection, updates: list[dict[str, Any]], at: datetime) -> int:
    """Move each item from the status its caller read to its new one, with the clock columns;
    returns how many rows matched (fewer means another run moved some meanwhile).

    Set-based where the database allows (PostgreSQL: arrays joined with `unnest`; SQLite: the
    driver's executemany): see `Backend.update_statuses` in models/backend.py.
    """
    return backend_of(connection).update_statuses(connection, table_of(Recommendation), updates, at)


def _clock_columns(session: Session, requests: Sequence[TransitionRequest], updates: list[dict[str, Any]], *, at: datetime,
                   effective_on: Sequence[date | None] | None) -> None:
    """Keep the deadline clock in step with the status: when an item became overdue, since when
    it waits on the office (on_hold), and how many days it has waited in all (the clock stops)."""
    tz = _tz()
    days: list[date] = [day_of(effective_on[i] if effective_on else None, at, tz)
                        for i, r in enumerate(requests) if r.from_status is not None]
    leaving_hold = [u["b_id"] for u in updates if u["b_from"] == Status.ON_HOLD]
    held_since: dict[int, date] = {}
    if leaving_hold:
        table = table_of(Recommendation)
        held_since = dict(session.connection().execute(
            select(table.c.id, table.c.on_hold_since).where(table.c.id.in_(leaving_hold))
        ).all())
    for u, day in zip(updates, days, strict=True):
        u["b_overdue_since"] = day if u["b_to"] == Status.OVERDUE else None
        u["b_on_hold_since"] = day if u["b_to"] == Status.ON_HOLD else None
        since = held_since.get(u["b_id"])
        u["b_hold_days"] = days_held(since, day) if u["b_from"] == Status.ON_HOLD and since else 0


def _tz() -> tzinfo:
    from followup.config.settings import get_settings

    return get_settings().tz


def transition(
    session: Session,
    recommendation: Recommendation,
    to_status: Status | str,
    *,
    actor: str,
    reason: str,
    evidence: str | None = None,
    at: datetime | None = None,
) -> None:
    """Change one recommendation's status (through `transition_many`) and keep the object in step."""
    assert recommendation.id is not None, "flush the recommendation before changing its status"
    if to_status not in Status.__members__.values():  # raises, naming the unknown status
        check_transition(recommendation.status, to_status, label=recommendation.external_id)
    to_status = Status(to_status)
    transition_many(
        session,
        [TransitionRequest(recommendation.id, Status(recommendation.status), to_status, recommendation.external_id)],
        actor=actor,
        reason=reason,
        evidence=evidence,
        at=at,
    )
    set_committed_value(recommendation, "status", str(to_status))


def record_edits(
    session: Session,
    edits: Iterable[tuple[int, str, dict[str, Any]]],
    *,
    actor: str,
    reason: str,
    at: datetime | None = None,
) -> int:
    """Append history entries for field edits that leave the status as it is.

    Each edit is (recommendation_id, current status, {field: [old, new]}).
    """
    at = at or utcnow()
    edits = list(edits)
    n = len(edits)
    # straight through the driver, like the status changes: the daily pass records tens of
    # thousands of derived deadlines at once
    bulk_insert(session.connection(), table_of(StatusChange), {
        "recommendation_id": [rec_id for rec_id, _, _ in edits],
        "from_status": [status for _, status, _ in edits],
        "to_status": [status for _, status, _ in edits],
        "at": [at] * n,
        "actor": [actor] * n,
        "reason": [reason] * n,
        "evidence": [None] * n,
        "effective_on": [None] * n,
        "changes": [changes for _, _, changes in edits],
    })
    return n
