"""The daily pass: check deadlines, escalate, announce.

The rules are in `models/policy.py` (pure functions); this module only loads the
registry into a frame, applies the decisions in one transaction per step (status changes,
their history and the queued notifications together), and announces what changed as
Prefect events after the commit. Work is done in sets: one query to load, one statement
batch per kind of write, one Prefect task per step or per ministry, never per recommendation.

Idempotent and safe with two workers: each step takes a lock (a PostgreSQL advisory lock,
SQLite's write lock) before reading, so the second run reads what the first wrote and finds
nothing left to do; unique keys (reminder once per offset, one individualized
recommendation per ministry and day, one notification per dedupe key) back that up.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, insert, null, select, update
from sqlalchemy.orm import Session

from followup.config.notifications import load_notification_config
from followup.config.office import office_contact
from followup.config.policy import Policy, load_policy
from followup.config.settings import get_settings
from followup.models.backend import backend_of
from followup.models.dates import as_date, as_date_or_none
from followup.models.db import (
    columns_of,
    defer_checkpoint,
    get_engine,
    insert_absent,
    one_of,
    update_by_id,
)
from followup.models.domain import IndividualizedStatus, Status
from followup.models.followup import (
    IndividualizedItem,
    IndividualizedRecommendation,
    Reminder,
    reminder_reference,  # one definition: the item page names the letters too
)
from followup.models.links import expiry, generations, ministry_link
from followup.models.policy import CLOCK_RUNNING, WATCHED, decide, level2
from followup.models.registry import Facility, Ministry, Recommendation, table_of
from followup.models.transitions import TransitionRequest, record_edits, transition_many
from followup.models.types import utcnow
from followup.notifications.outbox import queue
from followup.notifications.render import deadline_order, items_csv, render, strings

ACTOR = "followup:scheduler"
#: `load_watched(ministry=NO_MINISTRY)`: the open items that have no ministry
NO_MINISTRY = "\x00no ministry"


@dataclass(slots=True)
class Change:
    """One status change of the run, for events and the run's artifact (a backlog's pass makes
    hundreds of thousands of them: no instance dictionary each)."""

    external_id: str
    ministry_code: str | None
    from_status: str
    to_status: str
    note: str = ""


@dataclass
class StepResult:
    as_of: date
    changes: list[Change] = field(default_factory=list)
    derived_deadlines: int = 0
    reminders: int = 0
    notifications: list[str] = field(default_factory=list)  # dedupe keys queued
    individualized: list[str] = field(default_factory=list)  # references issued
    drafts: list[str] = field(default_factory=list)  # references drafted, waiting for a head's approval

    def counts(self) -> dict[str, int]:
        by_status: dict[str, int] = {}
        for c in self.changes:
            by_status[c.to_status] = by_status.get(c.to_status, 0) + 1
        return {
            "derived_deadlines": self.derived_deadlines,
            "reminders": self.reminders,
            "notifications": len(self.notifications),
            "individualized": len(self.individualized),
            **({"drafts": len(self.drafts)} if self.drafts else {}),
            **{f"to_{k}": v for k, v in sorted(by_status.items())},
        }


def lock(session: Session, name: str) -> None:
    """Serialize one kind of run per registry until the transaction ends."""
    connection = session.connection()
    # PostgreSQL: an advisory lock; SQLite: its single write lock (models/backend.py)
    backend_of(connection).lock(connection, name)


def load_watched(
    session: Session, *, ministry: str | None = None, statuses: Sequence[Status] = WATCHED,
    due_by: date | None = None, overdue_since_by: date | None = None,
) -> pd.DataFrame:
    """The frame `models.policy.decide` reads: open items with their clock (`decide` counts a running hold) and last reminder.

    `due_by` and `overdue_since_by` leave out, in SQL, items for which `decide` cannot find
    anything to do today (most of a large registry: reading and judging every open item
    was a third of the daily pass over 1,000,000). Both are safe bounds, not the decision:
    - `due_by` (as_of + the longest reminder offset): an item whose clock runs and whose
      deadline is later needs no reminder yet and is not late (days on hold only push the
      deadline later); an item on hold with a deadline waits. Items without a deadline (to
      derive) and overdue ones (the letter lists them) are always read.
    - `overdue_since_by` (as_of - the shortest escalation's working days, in calendar days):
      an item overdue since a later day cannot have been overdue long enough to escalate.
    """
    r, m = table_of(Recommendation), table_of(Reminder)
    sent = (
        select(m.c.recommendation_id, m.c.due_on, func.min(m.c.offset_days).label("last_reminder_offset"))
        .group_by(m.c.recommendation_id, m.c.due_on)
        .subquery()
    )
    # reminders go only to items whose clock runs (issued, in_progress): escalation's read of
    # overdue items needs no join with them
    reminded = any(Status(s) in CLOCK_RUNNING for s in statuses)
    stmt = (
        select(
            r.c.id, r.c.external_id, r.c.ministry_code, r.c.source, r.c.priority, r.c.status, r.c.issued_on,
            r.c.due_on, r.c.days_on_hold, r.c.on_hold_since, r.c.overdue_since, r.c.awaiting_review,
            sent.c.last_reminder_offset if reminded else null().label("last_reminder_offset"),
        )
        .select_from(r.outerjoin(sent, (sent.c.recommendation_id == r.c.id) & (sent.c.due_on == r.c.due_on)) if reminded else r)
        .where(r.c.status.in_([str(s) for s in statuses]))
        .order_by(r.c.id)  # letters list items in this order, so a capped list is the same every time
    )
    if due_by is not None:
        stmt = stmt.where(
            r.c.due_on.is_(None) | (r.c.status == Status.OVERDUE.value)
            | (r.c.status.in_([str(s) for s in CLOCK_RUNNING]) & (r.c.due_on <= due_by))
        )
    if overdue_since_by is not None:
        stmt = stmt.where(r.c.overdue_since.is_(None) | (r.c.overdue_since <= overdue_since_by))
    if ministry is NO_MINISTRY:
        stmt = stmt.where(r.c.ministry_code.is_(None))
    elif ministry is not None:
        stmt = stmt.where(r.c.ministry_code == ministry)
    # codes, statuses and dates repeat across a ministry's items: one object per distinct value
    read = columns_of(session.connection().execute(stmt), shared=_SHARED)
    return pd.DataFrame(read, columns=[c.name for c in stmt.selected_columns], dtype=object)


#: the columns of `load_watched` with few distinct values
_SHARED = ("ministry_code", "source", "priority", "status", "issued_on", "due_on", "days_on_hold", "on_hold_since",
           "overdue_since", "awaiting_review", "last_reminder_offset")


def _items(session: Session, ids: list[int]) -> dict[int, tuple[Any, ...]]:
    """What a letter lists about each item, by id: (external_id, facility, text, deadline)."""
    r, f = table_of(Recommendation), table_of(Facility)
    details: dict[int, tuple[Any, ...]] = {}
    for start in range(0, len(ids), 10_000):
        chunk = ids[start : start + 10_000]
        rows = session.connection().execute(  # all at once: iterating a result fetches row by row
            select(r.c.id, r.c.external_id, f.c.name.label("facility"), r.c.text, r.c.due_on)
            .select_from(r.outerjoin(f, r.c.facility_id == f.c.id))
            .where(one_of(session.connection(), r.c.id, chunk))
        ).all()
        details.update((row[0], tuple(row[1:])) for row in rows)
    return details


def _deadline(due: Any, stored_due: Any) -> Any:
    """The deadline a letter shows for an item: the one the step judged it by (moved by days on
    hold), else the stored one."""
    return due if due is not None and not pd.isna(due) else stored_due


def _item(details: dict[int, tuple[Any, ...]], rec_id: Any, due: Any = None) -> dict[str, Any]:
    """One item as the letter templates list it (notifications/templates)."""
    external_id, facility, text, stored_due = details[int(rec_id)]
    return {"external_id": external_id, "facility": facility, "text": str(text), "due_on": as_date_or_none(_deadline(due, stored_due))}


def _escalating_today(frame: pd.DataFrame, late: pd.DataFrame, escalate: pd.DataFrame, policy: Policy, as_of: date) -> set[Any]:
    """The ids of the items that today's escalation will put into an individualized recommendation:
    what `decide` says of the overdue items (`escalate`: it judged them already, row by row, in this
    step's call), and of the newly late ones counted as overdue since the day after their deadline
    (as the overdue mark just written says). The same rule, the same data."""
    escalating = set(escalate["id"])
    if len(late):
        newly = frame[frame["id"].isin(late["id"])].copy()
        since = dict(zip(late["id"], late["overdue_since"], strict=True))
        newly["status"] = Status.OVERDUE.value
        newly["overdue_since"] = [since[i] for i in newly["id"]]
        escalating |= set(decide(newly, policy, as_of).escalate["id"])
    return escalating


def _addressee(session: Session, code: str) -> tuple[str, str]:
    """The ministry's language and its name in that language (config/ministries.yaml)."""
    ministry = session.get(Ministry, code)
    if ministry is None:
        return "ru", code
    language = ministry.language or "ru"
    return language, getattr(ministry, f"name_{language}", None) or ministry.name_ru


def _letter(kind: str, language: str, context: dict[str, Any]) -> dict[str, Any]:
    rendered = render(kind, language, context)
    return {"language": language, "subject": rendered.subject, "body_text": rendered.text, "body_html": rendered.html}


def _how_to_answer(session: Session, code: str, language: str, as_of: date, policy: Policy, *, key: str,
                   generation: int | None = None) -> dict[str, Any]:
    """What a letter to a ministry needs so that it can be answered: the ministry's reply link (signed,
    the same for the same letter date), the link's last day and the office's contact in the letter's
    language. The link goes into the letter and its payload, never into a log or an event."""
    days = policy.replies.link_days
    return {"reply_link": ministry_link(session, code, as_of, days, key=key, generation=generation),
            "link_expires_on": expiry(as_of, days), "contact": office_contact(language)}


def _signing_key() -> str:
    """The key that signs the letters' reply links, read before a step writes anything: without one
    (FOLLOWUP_SECRET_KEY on PostgreSQL) `MissingSecretKey` stops the run with a message saying so."""
    return get_settings().signing_key()


# --- step 1: check deadlines -------------------------------------------------------------------


def check_deadlines(as_of: date, *, engine: Engine | None = None, policy: Policy | None = None) -> StepResult:
    """Derive missing deadlines, mark overdue items, queue each ministry's reminder letter."""
    key = _signing_key()
    engine = engine or get_engine()
    policy = policy or load_policy()
    result = StepResult(as_of=as_of)
    now = utcnow()
    with Session(engine) as session, session.begin():
        lock(session, "check-deadlines")
        link_generations = generations(session)  # each ministry's reply-link generation, read once per run
        # ministry by ministry, in the one transaction: memory is bounded by the largest
        # ministry's open items, not by the registry's (see bench/README.md). Every ministry of
        # the ministry table (an item's ministry is one of them), then the items without one: a
        # ministry with nothing watched reads nothing (an index seek), where a DISTINCT over the
        # watched items scanned the whole registry (2.4 s of 20 at 500,000 items on SQLite)
        codes: list[str | None] = [*sorted(link_generations), None]
        for code in codes:
            _check_ministry(session, code, as_of, policy, now, result, key=key, generation=link_generations.get(code or ""))
    return result


def _check_ministry(session: Session, code: str | None, as_of: date, policy: Policy, now: datetime, result: StepResult, *,
                    key: str, generation: int | None) -> None:
    """check_deadlines for one ministry's open items (or the ones without a ministry)."""
    frame = load_watched(session, ministry=code if code is not None else NO_MINISTRY,
                         due_by=as_of + timedelta(days=policy.longest_reminder()))
    if frame.empty:
        return
    decisions = decide(frame, policy, as_of)

    derived = decisions.derived_due
    if len(derived):
        update_by_id(session.connection(), table_of(Recommendation), [int(i) for i in derived["id"]],
                     {"due_on": [as_date(d) for d in derived["due_on"]]})
        record_edits(
            session,
            [(int(i), s, {"due_on": [None, as_date(d).isoformat()]}) for i, d, s in
             zip(derived["id"], derived["due_on"], frame.set_index("id").loc[derived["id"], "status"], strict=True)],
            actor=ACTOR, reason="deadline derived from config/policy.yaml (none was given)", at=now,
        )
        result.derived_deadlines += len(derived)
        # the frame as now stored (reminders are keyed by the stored deadline). `decide` needs no
        # second call: it judged these items by the very deadline it derived, and no earlier
        # reminder can be keyed by a deadline that was not stored, so it would decide the same
        new_due = {int(i): as_date(d) for i, d in zip(derived["id"], derived["due_on"], strict=True)}
        frame = frame.assign(due_on=[new_due.get(int(i), d) for i, d in zip(frame["id"], frame["due_on"], strict=True)])
    stored_due = frame.set_index("id")["due_on"]  # reminders are keyed by the stored deadline

    late = decisions.overdue
    status_of = dict(zip(frame["id"], frame["status"], strict=True))
    if len(late):
        status = {value: Status(value) for value in set(status_of.values())}  # one Status per distinct value, not per item
        requests = [TransitionRequest(int(i), status[status_of[i]], Status.OVERDUE, e) for i, e in zip(late["id"], late["external_id"], strict=True)]
        # each distinct deadline's words made once, and shared by its items (a backlog marks hundreds of thousands)
        shown = {d: f"deadline {as_date(d):%d.%m.%Y}" for d in set(late["due_on"])}
        why = {d: f"{words} passed without a final answer" for d, words in shown.items()}
        since = {d: as_date(d) for d in set(late["overdue_since"])}
        transition_many(
            session, requests, actor=ACTOR, at=now, reason="deadline passed without a final answer",
            reasons=[why[d] for d in late["due_on"]],
            effective_on=[since[d] for d in late["overdue_since"]],
            recorded_on=as_of,  # the run's day: a pass for a past day is counted on that day, not today
        )
        del requests
        result.changes += [
            Change(e, m, status_of[i], Status.OVERDUE.value, shown[d])
            for i, e, m, d in zip(late["id"], late["external_id"], late["ministry_code"], late["due_on"], strict=True)
        ]

    reminders = decisions.reminders
    if code is None:
        return  # a letter needs an addressee
    # items that escalate in today's pass go into the individualized recommendation, a formal
    # letter of its own: the reminder does not repeat them
    escalating = _escalating_today(frame, late, decisions.escalate, policy, as_of)
    late = late[~late["id"].isin(escalating)]
    if reminders.empty and late.empty:
        return  # nothing to say
    # the ministry's letter: due soon, newly late, and what was overdue already, each section in
    # the order a clerk works through it; the items' texts are read for the listed ones only, and
    # for the annex as it is written (a backlog's section has tens of thousands)
    overdue_now = frame[(frame["status"] == Status.OVERDUE) & ~frame["id"].isin(escalating)]
    due_of = dict(zip(late["id"], late["due_on"], strict=True)) | dict(zip(reminders["id"], reminders["due_on"], strict=True))
    external_id = dict(zip(frame["id"], frame["external_id"], strict=True))
    stored = dict(zip(frame["id"], frame["due_on"], strict=True))

    def in_order(ids: Iterable[Any]) -> list[int]:
        return sorted(map(int, ids), key=lambda i: deadline_order(as_date_or_none(_deadline(due_of.get(i), stored[i])), external_id[i]))

    soon_ids, overdue_ids = in_order(reminders["id"]), in_order([*late["id"], *overdue_now["id"]])
    listed = policy.letters.listed_items
    details = _items(session, soon_ids[:listed] + overdue_ids[:listed])
    language, name = _addressee(session, code)
    dedupe_key = f"reminder:{code}:{as_of.isoformat()}"
    reference = reminder_reference(code, as_of)
    answering = _how_to_answer(session, code, language, as_of, policy, key=key, generation=generation)
    # a long letter lists the first items of each section and carries the complete list as a spreadsheet
    attachment = f"reminder-{code}-{as_of.isoformat()}.csv" if max(len(soon_ids), len(overdue_ids)) > listed else None
    letter = _letter("reminder", language, {
        "as_of": as_of, "reference": reference, "ministry": name,
        "due_soon": [_item(details, i, due_of.get(i)) for i in soon_ids[:listed]], "due_soon_total": len(soon_ids),
        "overdue": [_item(details, i, due_of.get(i)) for i in overdue_ids[:listed]], "overdue_total": len(overdue_ids),
        "listed_items": listed, "attachment": attachment, **answering})
    del details
    if attachment:
        labels = strings(language)["labels"]
        letter["attachment"] = items_csv([(labels["due_soon"], _each_item(session, soon_ids, due_of)),
                                          (labels["overdue"], _each_item(session, overdue_ids, due_of))], language)
    queued = queue(session, [{
        "recipient": f"ministry:{code}",
        "kind": "reminder",
        **letter,
        "payload": {"as_of": as_of.isoformat(), "reference": reference, "reply_link": answering["reply_link"],
                    "due_soon": [external_id[i] for i in soon_ids],
                    "overdue": [external_id[i] for i in overdue_ids], **({"attachment": attachment} if attachment else {})},
        "dedupe_key": dedupe_key,
    }])
    reminder_rows = [
        {"recommendation_id": int(i), "due_on": as_date(stored_due[i]), "offset_days": int(o),
         "sent_on": as_of, "notification_id": queued.get(dedupe_key)}
        for i, o in zip(reminders["id"], reminders["offset"], strict=True)
    ]
    if reminder_rows:
        session.connection().execute(insert_absent(session.connection(), table_of(Reminder), "recommendation_id", "due_on", "offset_days"), reminder_rows)
    result.reminders += len(reminder_rows)
    result.notifications += list(queued)


# --- step 2: escalate --------------------------------------------------------------------------


def plan_escalations(as_of: date, *, engine: Engine | None = None, policy: Policy | None = None) -> list[str]:
    """The ministries that may have items to escalate today: each is then done in its own
    transaction, which reads its items and asks `decide`.

    A cheap filter, not the decision: an item escalates after N working days overdue, so it
    has been overdue at least N calendar days (N the shortest of any rule). Deciding here too
    read and judged every overdue item twice (a tenth of the pass over 1,000,000 items); a
    ministry listed here whose items turn out not to be due yet gets no letter.
    """
    engine = engine or get_engine()
    policy = policy or load_policy()
    r = table_of(Recommendation)
    cutoff = as_of - timedelta(days=policy.shortest_escalation())
    with Session(engine) as session:
        codes = session.connection().execute(
            select(r.c.ministry_code).distinct().where(
                r.c.status == Status.OVERDUE.value, r.c.ministry_code.is_not(None),
                (r.c.overdue_since.is_(None)) | (r.c.overdue_since <= cutoff),
            )
        ).scalars().all()
    return sorted(codes)


def reference_for(code: str, as_of: date) -> str:
    """The individualized recommendation's number: readable, unique per ministry and day."""
    return f"IR-{as_of:%Y%m%d}-{code.upper()}"




def escalate_ministry(code: str, as_of: date, *, engine: Engine | None = None, policy: Policy | None = None) -> StepResult:
    """One individualized recommendation to one ministry: its newly escalated items, a new deadline.

    With `individualized.approval: required` the letter is only drafted: the items are escalated
    and listed in it, but nothing is queued and it has no response deadline until a head approves
    it with the office's outgoing number and date (`steps.office.approve`), so a draft never
    reaches level 2. With `automatic` it leaves at once, numbered with its reference.
    """
    key = _signing_key()
    engine = engine or get_engine()
    policy = policy or load_policy()
    result = StepResult(as_of=as_of)
    now = utcnow()
    with Session(engine) as session, session.begin():
        lock(session, f"escalate:{code}")
        defer_checkpoint(session.connection())  # level 2, after the ministries, checkpoints them all
        frame = load_watched(session, ministry=code, statuses=(Status.OVERDUE,),
                             overdue_since_by=as_of - timedelta(days=policy.shortest_escalation()))
        items = decide(frame, policy, as_of).escalate if len(frame) else frame
        del frame  # not held while the letter (every item, in HTML and text) is rendered and queued
        if items.empty:
            return result
        reference = reference_for(code, as_of)
        draft = policy.individualized.approval == "required"
        ir_table = table_of(IndividualizedRecommendation)
        ir_id = session.connection().execute(
            insert(ir_table).returning(ir_table.c.id),
            {"reference": reference, "ministry_code": code, "issued_on": as_of, "response_due_on": None,
             "status": (IndividualizedStatus.DRAFT if draft else IndividualizedStatus.ISSUED).value, "created_at": now},
        ).scalar_one()
        ids = [int(i) for i in items["id"]]
        session.connection().execute(
            insert(table_of(IndividualizedItem)), [{"individualized_id": ir_id, "recommendation_id": i} for i in ids]
        )
        transition_many(
            session, [TransitionRequest(i, Status.OVERDUE, Status.ESCALATED, e) for i, e in zip(ids, items["external_id"], strict=True)],
            actor=ACTOR, at=now, reason=f"included in individualized recommendation {reference}"
                                        + (" (a draft, for a head's approval)" if draft else ""),
            effective_on=[as_of] * len(ids),  # the run's day, also when a missed day is run later
            recorded_on=as_of,
        )
        result.changes = [Change(e, code, Status.OVERDUE.value, Status.ESCALATED.value, reference) for e in items["external_id"]]
        if draft:
            result.drafts = [reference]
            return result
        due_of = {int(i): d for i, d in zip(items["id"], items["due_on"], strict=True)}
        result.notifications = issue_individualized(
            session, letter_id=ir_id, outgoing_number=reference, outgoing_date=as_of, policy=policy, key=key, now=now,
            approved_by=ACTOR, due_of=due_of)
        result.individualized = [reference]
    return result


def issue_individualized(session: Session, *, letter_id: int, outgoing_number: str, outgoing_date: date, policy: Policy, key: str,
                         now: datetime, approved_by: str, signer: tuple[str, str | None] | None = None,
                         due_of: dict[int, Any] | None = None) -> list[str]:
    """Send an individualized recommendation drawn up by escalation: number and date it, set its
    response deadline from the outgoing date, render its letter (signed by `signer`, (full name,
    position), when a head approved it; blank signature lines otherwise) and queue it, in the
    session's transaction. Returns the queued dedupe keys.

    The letter lists its first `letters.listed_items` items, like a reminder; when it has more,
    it says how many and names its annex, the complete list as a spreadsheet that travels with
    it (a backlog's letter lists tens of thousands: as a page of text no one could read or mail,
    and held in memory as template context, HTML and text at once). The letter is also attached
    as its own HTML document, for the ministry to file.

    The reply link and the deadline are dated from the outgoing date, the day the letter leaves.
    `due_of` gives each item's deadline as escalation saw it (moved by days on hold); without it,
    the stored deadline moved by the item's days on hold.
    """
    ir, link, r = table_of(IndividualizedRecommendation), table_of(IndividualizedItem), table_of(Recommendation)
    connection = session.connection()
    letter = connection.execute(select(ir.c.reference, ir.c.ministry_code, ir.c.issued_on).where(ir.c.id == letter_id)).one()
    rows = connection.execute(
        select(r.c.id, r.c.external_id, r.c.due_on, r.c.days_on_hold)
        .select_from(link.join(r, r.c.id == link.c.recommendation_id))
        .where(link.c.individualized_id == letter_id).order_by(r.c.id)
    ).all()
    if due_of is None:
        due_of = {row.id: (row.due_on + timedelta(days=row.days_on_hold or 0)) if row.due_on else None for row in rows}
    response_due = policy.individualized.response_deadline.after(outgoing_date)
    code = letter.ministry_code
    connection.execute(update(ir).where(ir.c.id == letter_id).values(
        status=IndividualizedStatus.ISSUED.value, response_due_on=response_due, outgoing_number=outgoing_number,
        outgoing_date=outgoing_date, approved_by=approved_by, approved_at=now,
        signer_name=signer[0] if signer else None, signer_position=signer[1] if signer else None))
    language, name = _addressee(session, code)
    ids = [int(row.id) for row in rows]
    external_ids = [row.external_id for row in rows]
    del rows
    listed = policy.letters.listed_items
    annex = f"{letter.reference}-items.csv" if len(ids) > listed else None
    details = _items(session, ids[:listed])
    answering = _how_to_answer(session, code, language, outgoing_date, policy, key=key)
    message = {
        "recipient": f"ministry:{code}",
        "kind": "individualized",
        **_letter("individualized", language, {
            "as_of": letter.issued_on, "reference": outgoing_number, "issued_on": outgoing_date, "ministry": name,
            "legal_basis": policy.legal_basis.of(language).strip(), "response_due_on": response_due,
            "items": [_item(details, i, due_of.get(i)) for i in ids[:listed]], "total": len(ids),
            "listed_items": listed, "attachment": annex, **answering,
            "signer": {"name": signer[0], "position": signer[1]} if signer else None,
        }),
        "payload": {"reference": letter.reference, "outgoing_number": outgoing_number, "issued_on": outgoing_date.isoformat(),
                    "response_due_on": response_due.isoformat(), "reply_link": answering["reply_link"],
                    "items": external_ids, "document": f"{letter.reference}.html", **({"attachment": annex} if annex else {})},
        "dedupe_key": f"individualized:{letter.reference}",
    }
    del details
    if annex:
        message["attachment"] = items_csv([(strings(language)["labels"]["overdue"], _each_item(session, ids, due_of))], language)
    return list(queue(session, [message]))


def _each_item(session: Session, ids: list[int], due_of: dict[int, Any] | None = None) -> Iterator[dict[str, Any]]:
    """The items as the letter templates list them (`due_of`: deadlines other than the stored
    ones), read as they are consumed, a chunk at a time: an annex of a backlog's letter never
    holds every item's text at once."""
    for start in range(0, len(ids), 10_000):
        chunk = ids[start : start + 10_000]
        details = _items(session, chunk)
        for i in chunk:
            yield _item(details, i, due_of.get(i) if due_of else None)


def refer_to_level2(as_of: date, *, engine: Engine | None = None, policy: Policy | None = None) -> StepResult:
    """Individualized recommendations unanswered past their deadline go to the Ombudsman for a decision.

    Only silence counts: `models.policy.level2` decides which items are still waiting
    (`escalated` after the deadline, no reply on the item reached the registry, no claim of the
    ministry waiting for the office's review). They become `awaiting_decision` and the office
    gets one notice per letter, which lists them apart from the items the ministry did answer
    (with where each stands now): a partial reply is never reported as no reply. A letter past
    its deadline none of whose items still waits was answered, and makes no notice. SQL only
    narrows the read to the letters still open whose deadline has passed. Like the letters, a
    notice lists the first `letters.listed_items` of each list, all of them in its annex.
    """
    engine = engine or get_engine()
    policy = policy or load_policy()
    result = StepResult(as_of=as_of)
    now = utcnow()
    office_language = load_notification_config().language_of("ombudsman")
    ir, link, r = table_of(IndividualizedRecommendation), table_of(IndividualizedItem), table_of(Recommendation)
    with Session(engine) as session, session.begin():
        lock(session, "level2")
        due = session.connection().execute(
            # a draft (status draft, no deadline) is never read; a letter's date is the day it left
            select(ir.c.id, ir.c.reference, ir.c.ministry_code, func.coalesce(ir.c.outgoing_date, ir.c.issued_on).label("issued_on"),
                   ir.c.response_due_on)
            .where(ir.c.status == IndividualizedStatus.ISSUED.value, ir.c.response_due_on.is_not(None), ir.c.response_due_on < as_of)
        ).all()
        if not due:
            return result
        deadline_of = {d.id: d.response_due_on for d in due}
        letter_items = pd.DataFrame(
            session.connection().execute(
                select(r.c.id, link.c.individualized_id.label("letter"), r.c.status, r.c.external_id,
                       link.c.answered_on.is_not(None).label("answered"), link.c.answered_on, r.c.awaiting_review)
                .select_from(link.join(r, r.c.id == link.c.recommendation_id))
                .where(link.c.individualized_id.in_(list(deadline_of)))
                .order_by(link.c.individualized_id, r.c.id)
            ).all(),
            columns=["id", "letter", "status", "external_id", "answered", "answered_on", "awaiting_review"], dtype=object,
        )
        letter_items["response_due_on"] = letter_items["letter"].map(deadline_of)
        silent: dict[int, list[tuple[int, str]]] = {}
        for rec_id, letter_id, ext in level2(letter_items, as_of)[["id", "letter", "external_id"]].itertuples(index=False):
            silent.setdefault(int(letter_id), []).append((int(rec_id), ext))
        # the rest of each letter's items: answered, or moved on otherwise (where each stands now)
        silent_ids = {(letter_id, rec_id) for letter_id, items in silent.items() for rec_id, _ in items}
        answered: dict[int, list[tuple[int, str, bool, date | None]]] = {}
        for rec_id, letter_id, state, review, answered_on in letter_items[
                ["id", "letter", "status", "awaiting_review", "answered_on"]].itertuples(index=False):
            if (int(letter_id), int(rec_id)) not in silent_ids:
                answered.setdefault(int(letter_id), []).append(
                    (int(rec_id), str(state), bool(review), as_date(answered_on) if answered_on is not None else None))
        for letter in due:
            items = silent.get(letter.id, [])
            new_status = IndividualizedStatus.LEVEL2 if items else IndividualizedStatus.ANSWERED
            session.connection().execute(
                update(ir).where(ir.c.id == letter.id).values(
                    status=new_status.value, **({"level2_on": as_of} if items else {"answered_on": as_of}))
            )
            if not items:
                continue
            transition_many(
                session, [TransitionRequest(i, Status.ESCALATED, Status.AWAITING_DECISION, e) for i, e in items],
                actor=ACTOR, at=now,
                reason=f"no reply to individualized recommendation {letter.reference} by {letter.response_due_on:%d.%m.%Y}: "
                       "for the Ombudsman's decision (report to Parliament, referral to the prosecutor)",
                effective_on=[as_of] * len(items),
                recorded_on=as_of,
            )
            result.changes += [Change(e, letter.ministry_code, Status.ESCALATED.value, Status.AWAITING_DECISION.value, letter.reference) for _, e in items]
            replied = answered.get(letter.id, [])
            listed = policy.letters.listed_items
            annex = f"level2-{letter.reference}-items.csv" if max(len(items), len(replied)) > listed else None
            details = _items(session, [i for i, _ in items[:listed]] + [i for i, *_ in replied[:listed]])
            _, name = _addressee(session, letter.ministry_code)
            message = {
                "recipient": "ombudsman",
                "kind": "level2",
                **_letter("level2", office_language, {
                    "as_of": as_of, "reference": letter.reference, "ministry": name, "issued_on": letter.issued_on,
                    "response_due_on": letter.response_due_on, "items": [_item(details, i) for i, _ in items[:listed]],
                    "total": len(items), "answered_total": len(replied), "listed_items": listed, "attachment": annex,
                    "answered": [{**_item(details, i), "status": state, "awaiting_review": review, "answered_on": on}
                                 for i, state, review, on in replied[:listed]],
                }),
                "payload": {"as_of": as_of.isoformat(), "reference": letter.reference, "ministry": letter.ministry_code,
                            "items": [e for _, e in items], **({"attachment": annex} if annex else {})},
                "dedupe_key": f"level2:{letter.reference}",
            }
            del details
            if annex:
                labels = strings(office_language)["labels"]
                message["attachment"] = items_csv([(labels["no_reply"], _each_item(session, [i for i, _ in items])),
                                                   (labels["replied"], _each_item(session, [i for i, *_ in replied]))], office_language)
            result.notifications += list(queue(session, [message]))
    return result
