"""The office's own actions on recommendations and individualized recommendations.

What a clerk or the Commissioner does by hand, from the workspace or the command line, with the
same rules and the same errors: put an item on hold, resume it, withdraw it, record a reply typed
from a letter, decide an item at level 2, approve (number, date, sign) a drafted individualized
recommendation. Each action is one transaction through the transition table, recorded in the
history under the user who made it; a refusal is an `OfficeError` in one sentence a clerk can act on.

Who may do what (models/users.py): deciding and approving need an active `head`. Holding,
resuming, withdrawing and recording a reply need an active `clerk` or above once the office has
any workspace user; a registry without users (scripts written before the workspace, the demo)
keeps working with `FOLLOWUP_ACTOR` as a plain name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlmodel import Session

from followup.config.policy import Policy, load_policy
from followup.models.answers import PaperRow, paper_replies, reply_reason
from followup.models.calendar import WorkingCalendar, local_today
from followup.models.db import get_engine
from followup.models.domain import IndividualizedStatus, ReplyChannel, Status
from followup.models.followup import CommissionerDecision, IndividualizedItem, IndividualizedRecommendation
from followup.models.policy import REPLY_STATUSES
from followup.models.registry import Facility, Recommendation, StatusChange, table_of
from followup.models.transitions import TRANSITIONS, TransitionRequest, allowed, record_edits, transition_many
from followup.models.types import utcnow
from followup.models.users import NotAllowed, OfficeUser, Role, require_user
from followup.steps.deadlines import Change, issue_individualized, lock


class OfficeError(ValueError):
    """An office action that cannot be done, in one sentence a clerk can act on."""


class NotPermitted(OfficeError):
    """The user may not do this: unknown, disabled, or their role is not enough (`require_user`'s sentence)."""


class Decision(StrEnum):
    """What the Commissioner decides on an item nobody answered at level 2."""

    PARLIAMENT_REPORT = "parliament_report"  # included in the report to Parliament
    PROSECUTOR_REFERRAL = "prosecutor_referral"  # referred to the prosecutor's office
    NEW_DEADLINE = "new_deadline"  # a last chance: back to issued with a new deadline (--due)
    CLOSED = "closed"  # the case is closed without implementation


#: where each decision puts the item. A new deadline puts it back to `issued` (not in_progress:
#: the ministry has reported nothing), its clock running again towards the new date
DECISION_STATUS: dict[Decision, Status] = {
    Decision.PARLIAMENT_REPORT: Status.REPORTED_TO_PARLIAMENT,
    Decision.PROSECUTOR_REFERRAL: Status.REFERRED_TO_PROSECUTOR,
    Decision.NEW_DEADLINE: Status.ISSUED,
    Decision.CLOSED: Status.CLOSED,
}
DECISION_WORDS: dict[Decision, str] = {
    Decision.PARLIAMENT_REPORT: "report to Parliament",
    Decision.PROSECUTOR_REFERRAL: "referral to the prosecutor",
    Decision.NEW_DEADLINE: "a new deadline",
    Decision.CLOSED: "case closed",
}


@dataclass(frozen=True)
class Level2Line:
    """An item awaiting the Commissioner's decision, with the letter it went unanswered in."""

    reference: str | None  # the individualized recommendation (None: it reached level 2 otherwise)
    ministry_code: str | None
    external_id: str
    text: str
    facility: str | None
    since: date | None  # the day it went to level 2


@dataclass(frozen=True)
class DraftLine:
    """A drafted individualized recommendation waiting for a head's approval."""

    reference: str
    ministry_code: str
    items: int
    created: date  # the day escalation drew it up
    working_days: int  # working days it has waited (the calendar of config/policy.yaml)
    overdue: bool  # waited longer than `individualized.approval_days`


# --- who may --------------------------------------------------------------------------------------

#: the role each of the office's actions needs, asked by these functions and by the workspace
#: (which shows only what the user may do)
NEEDED_ROLE: dict[str, Role] = {
    "assign": Role.CLERK, "hold": Role.CLERK, "resume": Role.CLERK, "withdraw": Role.CLERK, "reply": Role.CLERK,
    "grade": Role.CLERK, "decide": Role.HEAD, "approve": Role.HEAD,
}


def _require(session: Session, actor: str, role: Role, *, only_with_users: bool = False) -> OfficeUser | None:
    """The acting user if allowed; NotPermitted otherwise. `only_with_users`: a registry with no
    workspace user at all lets any named actor through (scripts predating the workspace)."""
    if not actor or not actor.strip():
        raise OfficeError("say who acts: sign in, or set FOLLOWUP_ACTOR to your workspace user name")
    if only_with_users and session.connection().execute(select(func.count()).select_from(table_of(OfficeUser))).scalar_one() == 0:
        return None
    try:
        return require_user(session=session, name=actor, role=role)
    except NotAllowed as exc:
        raise NotPermitted(str(exc)) from exc


def _reason(reason: str | None) -> str:
    text = " ".join((reason or "").split())
    if not text:
        raise OfficeError("give a reason: it is recorded in the item's history")
    return text


# --- one item -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    id: int
    external_id: str
    status: str
    ministry_code: str | None
    issued_on: date | None
    due_on: date | None
    days_on_hold: int


def _item(session: Session, external_id: str) -> _Item:
    r = table_of(Recommendation)
    row = session.connection().execute(
        select(r.c.id, r.c.external_id, r.c.status, r.c.ministry_code, r.c.issued_on, r.c.due_on, r.c.days_on_hold)
        .where(r.c.external_id == external_id.strip())
    ).first()
    if row is None:
        raise OfficeError(f"no recommendation {external_id.strip()!r} in the registry")
    return _Item(int(row.id), row.external_id, str(row.status), row.ministry_code, row.issued_on, row.due_on,
                 int(row.days_on_hold or 0))


def _refuse(item: _Item, what: str) -> OfficeError:
    nexts = sorted(s.value for s in TRANSITIONS.get(Status(item.status), ()))
    return OfficeError(f"{item.external_id} is {item.status}: it cannot be {what} "
                       f"(from {item.status} it may go to {', '.join(nexts) or 'nothing: a final status'})")


def _move(engine: Engine | None, external_id: str, target: Status | None, *, actor: str, reason: str | None, what: str,
          today: date | None, role: Role) -> Change:
    """One item to `target` (None: back to where it stood before its hold), in one transaction."""
    why = _reason(reason)
    day = today or local_today()
    with Session(engine or get_engine()) as session, session.begin():
        _require(session, actor, role, only_with_users=True)
        item = _item(session, external_id)
        if target is None:
            if item.status != Status.ON_HOLD:
                raise OfficeError(f"{item.external_id} is {item.status}, not on hold: there is nothing to resume")
            target = _before_hold(session, item)
        if item.status == target:
            raise OfficeError(f"{item.external_id} is {item.status} already")
        if not allowed(item.status, target):
            raise _refuse(item, what)
        transition_many(session, [TransitionRequest(item.id, Status(item.status), target, item.external_id)],
                        actor=actor, reason=why, effective_on=[day])
    return Change(item.external_id, item.ministry_code, item.status, target.value, why)


def _before_hold(session: Session, item: _Item) -> Status:
    """Where the item stood before its current hold, from the history; issued when the history
    does not say (or says something a hold cannot return to)."""
    h = table_of(StatusChange)
    previous = session.connection().execute(
        select(h.c.from_status).where(h.c.recommendation_id == item.id, h.c.to_status == Status.ON_HOLD.value,
                                      h.c.from_status != Status.ON_HOLD.value)
        .order_by(h.c.at.desc(), h.c.id.desc()).limit(1)
    ).scalar()
    if previous and allowed(Status.ON_HOLD, previous):
        return Status(previous)
    return Status.ISSUED


def hold(*, engine: Engine | None = None, external_id: str, actor: str, reason: str, today: date | None = None) -> Change:
    """Put an item on hold: it waits on the office itself, and its deadline clock stops (the days
    on hold move the deadline when it resumes)."""
    return _move(engine, external_id, Status.ON_HOLD, actor=actor, reason=reason, what="put on hold", today=today, role=NEEDED_ROLE["hold"])


def resume(*, engine: Engine | None = None, external_id: str, actor: str, reason: str, today: date | None = None) -> Change:
    """Take an item off hold, back to where it stood before the hold (from its history); its
    deadline moves by the days it was held."""
    return _move(engine, external_id, None, actor=actor, reason=reason, what="resumed", today=today, role=NEEDED_ROLE["resume"])


def withdraw(*, engine: Engine | None = None, external_id: str, actor: str, reason: str, today: date | None = None) -> Change:
    """Withdraw an item: the office drops it (a final status), nothing more is expected of the ministry."""
    return _move(engine, external_id, Status.WITHDRAWN, actor=actor, reason=reason, what="withdrawn", today=today, role=NEEDED_ROLE["withdraw"])


def record_reply(*, engine: Engine | None = None, external_id: str, status: str, responded_on: date, note: str | None = None,
                 evidence: str | None = None, actor: str, today: date | None = None) -> Change:
    """Record a ministry's reply on one item typed by hand from its letter, as `followup import
    responses` records a row: a paper `Reply` of the ministry (typed and confirmed by `actor`,
    recorded at once, never put under review: the office is the reviewer) with its claim, the
    item moved to the status the ministry reports, the history naming the reply, and the item
    marked answered in an individualized recommendation waiting for an answer.

    A reply that repeats where the item stands changes nothing (the Change says so)."""
    day = today or local_today()
    wanted = str(status).strip().lower()
    if wanted not in {s.value for s in REPLY_STATUSES}:
        raise OfficeError(f"a reply may record {', '.join(s.value for s in REPLY_STATUSES)}, not {status!r}")
    if responded_on > day:
        raise OfficeError(f"the reply's date {responded_on:%d.%m.%Y} is in the future (today is {day:%d.%m.%Y})")
    with Session(engine or get_engine()) as session, session.begin():
        _require(session, actor, NEEDED_ROLE["reply"], only_with_users=True)
        item = _item(session, external_id)
        if item.issued_on is not None and responded_on < item.issued_on:
            raise OfficeError(f"the reply's date {responded_on:%d.%m.%Y} is before {item.external_id} was issued "
                              f"({item.issued_on:%d.%m.%Y})")
        row = PaperRow(item.id, item.external_id, item.status, wanted, responded_on, (note or "").strip(),
                       (evidence or "").strip() or None, item.ministry_code)
        if wanted == item.status:
            return Change(item.external_id, item.ministry_code, item.status, wanted, "unchanged: already there")
        if not allowed(item.status, wanted):
            raise _refuse(item, f"moved to {wanted} by a reply")
        replies = paper_replies(session, [row], [], actor=actor)
        reference = replies.get(item.ministry_code or "")
        why = (reply_reason(reference=reference, responded_on=responded_on, channel=ReplyChannel.PAPER.value,
                            source="typed by the office", measures=row.note) if reference
               else f"reply of {responded_on:%d.%m.%Y}" + (f": {row.note}" if row.note else ""))
        transition_many(session, [TransitionRequest(item.id, Status(item.status), Status(wanted), item.external_id)],
                        actor=actor, reason=why, evidence=row.evidence, effective_on=[responded_on])
    return Change(item.external_id, item.ministry_code, item.status, wanted, reference or why)


# --- level 2: the Commissioner's decisions -------------------------------------------------------


def parse_decision(value: str | Decision) -> Decision:
    """A decision from its code; OfficeError naming the known ones otherwise."""
    try:
        return Decision(str(value).strip().lower())
    except ValueError:
        raise OfficeError(f"unknown decision {str(value)!r}: choose one of {', '.join(d.value for d in Decision)}") from None


def record_decision(*, engine: Engine | None = None, key: str, decision: str | Decision, reason: str, actor: str,
           due: date | None = None, today: date | None = None) -> list[str]:
    """Record the Commissioner's decision on items at level 2 and move them accordingly; returns
    the external_ids decided.

    `key` is an item's external_id (awaiting a decision, or already decided: a further decision
    such as closing after a report to Parliament), or an individualized recommendation's
    reference (all its items awaiting a decision). `new_deadline` needs `due`, a future date: the
    item goes back to `issued` with that deadline (an edit in its history too) and a fresh clock
    (earlier days on hold no longer move it). Each decision is kept (table `decision`) with its
    date, basis and author, for the annual report and the digest. Needs an active head.
    """
    chosen = parse_decision(decision)
    why = _reason(reason)
    day = today or local_today()
    if chosen is Decision.NEW_DEADLINE:
        if due is None:
            raise OfficeError("a new deadline needs its date (--due DD.MM.YYYY)")
        if due <= day:
            raise OfficeError(f"the new deadline {due:%d.%m.%Y} must be after today ({day:%d.%m.%Y})")
    elif due is not None:
        raise OfficeError(f"only a new deadline takes a date; {chosen.value} does not")
    target = DECISION_STATUS[chosen]
    r, link, ir = table_of(Recommendation), table_of(IndividualizedItem), table_of(IndividualizedRecommendation)
    now = utcnow()
    with Session(engine or get_engine()) as session, session.begin():
        _require(session, actor, NEEDED_ROLE["decide"])
        connection = session.connection()
        columns = (r.c.id, r.c.external_id, r.c.status, r.c.ministry_code, r.c.due_on, r.c.days_on_hold)
        rows = connection.execute(select(*columns).where(r.c.external_id == key.strip())).all()
        letter_id: int | None = None
        if rows:
            item = rows[0]
            if not allowed(item.status, target) or item.status in (Status.ISSUED, Status.IN_PROGRESS, Status.ON_HOLD):
                raise OfficeError(f"{item.external_id} is {item.status}: a level-2 decision ({chosen.value}) applies to items "
                                  "awaiting the Commissioner's decision")
        else:
            letter = connection.execute(select(ir.c.id, ir.c.reference).where(
                (ir.c.reference == key.strip()) | (ir.c.outgoing_number == key.strip()))).first()
            if letter is None:
                raise OfficeError(f"{key.strip()!r} is neither a recommendation nor an individualized recommendation in the registry")
            letter_id = int(letter.id)
            rows = connection.execute(
                select(*columns).select_from(link.join(r, r.c.id == link.c.recommendation_id))
                .where(link.c.individualized_id == letter_id, r.c.status == Status.AWAITING_DECISION.value).order_by(r.c.id)
            ).all()
            if not rows:
                raise OfficeError(f"{letter.reference} has no item awaiting the Commissioner's decision")
        ids = [int(row.id) for row in rows]
        if letter_id is None:  # the latest letter the item went to level 2 in, if any
            letter_id = connection.execute(
                select(ir.c.id).select_from(link.join(ir, ir.c.id == link.c.individualized_id))
                .where(link.c.recommendation_id == ids[0]).order_by(ir.c.level2_on.is_(None), ir.c.id.desc()).limit(1)
            ).scalar()
        words = f"decision of the Commissioner ({DECISION_WORDS[chosen]}" + (f" by {due:%d.%m.%Y}" if due else "") + f"): {why}"
        transition_many(session, [TransitionRequest(int(row.id), Status(row.status), target, row.external_id) for row in rows],
                        actor=actor, reason=words, effective_on=[day] * len(rows), at=now)
        if chosen is Decision.NEW_DEADLINE:
            connection.execute(update(r).where(r.c.id.in_(ids)).values(due_on=due, days_on_hold=0))
            record_edits(session, [(int(row.id), target.value,
                                    {"due_on": [row.due_on.isoformat() if row.due_on else None, due.isoformat() if due else None],
                                     **({"days_on_hold": [int(row.days_on_hold), 0]} if row.days_on_hold else {})})
                                   for row in rows], actor=actor, reason=words, at=now)
        connection.execute(insert(table_of(CommissionerDecision)), [
            {"recommendation_id": i, "individualized_id": letter_id, "decision": chosen.value, "decided_on": day,
             "due_on": due, "reason": why, "actor": actor, "at": now} for i in ids
        ])
    return [row.external_id for row in rows]


def level2_queue(*, engine: Engine | None = None) -> list[Level2Line]:
    """The items awaiting the Commissioner's decision, grouped by the letter they went unanswered
    in (the latest that went to level 2), oldest first."""
    r, f = table_of(Recommendation), table_of(Facility)
    link, ir = table_of(IndividualizedItem), table_of(IndividualizedRecommendation)
    with Session(engine or get_engine()) as session:
        rows = session.connection().execute(
            select(r.c.id, r.c.external_id, r.c.text, r.c.ministry_code, f.c.name, ir.c.id.label("letter"), ir.c.reference,
                   ir.c.status.label("letter_status"), ir.c.level2_on, r.c.updated_at)
            .select_from(r.outerjoin(f, f.c.id == r.c.facility_id).outerjoin(link, link.c.recommendation_id == r.c.id)
                         .outerjoin(ir, ir.c.id == link.c.individualized_id))
            .where(r.c.status == Status.AWAITING_DECISION.value)
        ).all()
    best: dict[int, Any] = {}
    for row in rows:  # per item, the latest letter at level 2, else the latest letter
        rank = (row.letter_status == IndividualizedStatus.LEVEL2.value, row.letter or -1)
        if row.id not in best or rank > best[row.id][0]:
            best[row.id] = (rank, row)
    lines = [Level2Line(row.reference, row.ministry_code, row.external_id, str(row.text), row.name,
                        row.level2_on or (row.updated_at.date() if isinstance(row.updated_at, datetime) else None))
             for _, row in best.values()]
    return sorted(lines, key=lambda line: (line.since or date.max, line.reference or "", line.external_id))


# --- approval of individualized recommendations -------------------------------------------------


def approve(*, engine: Engine | None = None, reference: str, actor: str, outgoing_number: str | None = None,
            outgoing_date: date | None = None, today: date | None = None, policy: Policy | None = None) -> str:
    """Approve a drafted individualized recommendation and send it: the office's outgoing number
    (default: its reference) and date (default: today), signed with the approving head's full
    name and position; its response deadline and reply link run from the outgoing date. The
    letter is queued in the same transaction; the caller announces it after the commit
    (`followup.notification.queued`). Needs an active head. Returns the reference."""
    from followup.config.settings import get_settings

    key = get_settings().signing_key()  # before anything is written: a letter carries a signed link
    policy = policy or load_policy()
    day = today or local_today()
    sent_on = outgoing_date or day
    ir = table_of(IndividualizedRecommendation)
    with Session(engine or get_engine()) as session, session.begin():
        user = _require(session, actor, NEEDED_ROLE["approve"])
        assert user is not None
        connection = session.connection()
        letter = connection.execute(
            select(ir.c.id, ir.c.reference, ir.c.ministry_code, ir.c.issued_on, ir.c.status, ir.c.approved_by, ir.c.outgoing_date)
            .where(ir.c.reference == reference.strip())
        ).first()
        if letter is None:
            raise OfficeError(f"no individualized recommendation {reference.strip()!r} in the registry")
        lock(session, f"escalate:{letter.ministry_code}")
        status = connection.execute(select(ir.c.status).where(ir.c.id == letter.id)).scalar_one()  # read again under the lock
        if status != IndividualizedStatus.DRAFT.value:
            by = f" by {letter.approved_by}" if letter.approved_by else ""
            on = f" on {letter.outgoing_date:%d.%m.%Y}" if letter.outgoing_date else ""
            raise OfficeError(f"{letter.reference} is not a draft: it was sent{by}{on}")
        if sent_on < letter.issued_on:
            raise OfficeError(f"the outgoing date {sent_on:%d.%m.%Y} is before the draft was drawn up ({letter.issued_on:%d.%m.%Y})")
        if sent_on > day:
            raise OfficeError(f"the outgoing date {sent_on:%d.%m.%Y} is in the future (today is {day:%d.%m.%Y})")
        number = (outgoing_number or "").strip() or letter.reference
        if len(number) > 60:
            raise OfficeError("the outgoing number is longer than 60 characters")
        taken = connection.execute(select(ir.c.reference).where(ir.c.outgoing_number == number, ir.c.id != letter.id)).scalar()
        if taken:
            raise OfficeError(f"the outgoing number {number} is already that of {taken}")
        issue_individualized(session, letter_id=int(letter.id), outgoing_number=number, outgoing_date=sent_on, policy=policy,
                             key=key, now=utcnow(), approved_by=actor, signer=(user.full_name or user.name, user.position))
    return str(letter.reference)


def letter_key(reference: str) -> str:
    """The outbox's dedupe key of an individualized recommendation's letter (for the queued event)."""
    return f"individualized:{reference}"


def pending_drafts(*, engine: Engine | None = None, today: date | None = None, policy: Policy | None = None) -> list[DraftLine]:
    """The drafted individualized recommendations waiting for a head's approval, oldest first,
    with the working days each has waited (`overdue`: longer than `individualized.approval_days`)."""
    policy = policy or load_policy()
    day = today or local_today()
    calendar = WorkingCalendar.from_policy(policy.calendar)
    ir, link = table_of(IndividualizedRecommendation), table_of(IndividualizedItem)
    with Session(engine or get_engine()) as session:
        rows = session.connection().execute(
            select(ir.c.reference, ir.c.ministry_code, ir.c.issued_on, func.count(link.c.id))
            .select_from(ir.outerjoin(link, link.c.individualized_id == ir.c.id))
            .where(ir.c.status == IndividualizedStatus.DRAFT.value)
            .group_by(ir.c.id, ir.c.reference, ir.c.ministry_code, ir.c.issued_on)
            .order_by(ir.c.issued_on, ir.c.reference)
        ).all()
    lines = []
    for reference, code, created, count in rows:
        waited = calendar.working_days_between(created, day)
        lines.append(DraftLine(reference, code, int(count), created, waited, waited > policy.individualized.approval_days))
    return lines
