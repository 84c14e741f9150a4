"""Ministries' replies reach the registry: confirmed replies are recorded, and the office reviews
the claims its policy holds back.

`record_replies` takes every confirmed reply not recorded yet (the `record-responses` flow: at
once on the reply portal's `followup.response.submitted` event, and every 10 minutes for what
an event missed, e.g. a reply confirmed while Prefect was down) and, in one transaction under
the `record-responses` lock, decides each claim with `models.policy.claim_outcome`:
- the item already stands there: unchanged;
- the policy has the office review it first (`replies.review`): the item keeps its status and
  is held (`awaiting_review`: no reminder, escalation or level 2) until the office accepts or
  returns the claim (`followup replies accept|return`);
- no legal way from where the item stands: refused, kept with the reply and listed for the
  office, never an error that would lose the reply's other claims;
- otherwise the item moves along the transition table, each step in the history naming the
  reply, dated the reply's day.
Items of individualized recommendations still waiting for an answer are marked answered (level 2
counts only silent items), the reply becomes `recorded`, and the ministry gets one
acknowledgement listing each claim and what became of it. The lock and the reply's state make it
exactly once when two runs race: the second one reads what the first committed and finds
nothing left; the acknowledgement's dedupe key (`ack:<reply id>`) backs that up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, and_, exists, select, update
from sqlalchemy.orm import Session

from followup.config.office import office_contact
from followup.config.policy import Policy, load_policy
from followup.models.answers import Move, Rounds, evidence_line, mark_answered, reply_reason, unmark_answered
from followup.models.calendar import local_today
from followup.models.db import get_engine, one_of, update_by_id
from followup.models.domain import ClaimOutcome, ReplyState, Status
from followup.models.policy import claim_outcome
from followup.models.registry import Recommendation, table_of
from followup.models.replies import Evidence, Reply, ReplyClaim
from followup.models.transitions import ConcurrentChange, path_between, record_edits
from followup.models.types import utcnow
from followup.notifications.outbox import queue
from followup.steps.deadlines import Change, _addressee, _items, _letter, lock

LOCK = "record-responses"
#: a hold for review must not cross the daily check: it reads the items it marks overdue first,
#: so a reply recorded meanwhile waits for it (and the check, for the reply)
DAILY_CHECK_LOCK = "check-deadlines"
#: the history's "who" when a reply is recorded: the body and the official who confirmed it
ACTOR_CHARS = 200


class ReviewError(ValueError):
    """The office asked for something a reply does not allow (no such reply, nothing under review)."""


@dataclass(frozen=True)
class ClaimLine:
    """One claim as the office's lists and the artifacts show it."""

    reference: str
    ministry_code: str
    external_id: str
    status: str  # where the item stands now
    claimed_status: str
    outcome: str
    why: str = ""


@dataclass
class RecordedReply:
    reply_id: int
    reference: str
    ministry_code: str
    responded_on: date
    channel: str
    outcomes: dict[str, int] = field(default_factory=dict)


@dataclass
class RecordResult:
    """What one `record_replies` run did."""

    as_of: date
    replies: list[RecordedReply] = field(default_factory=list)
    refused: list[ClaimLine] = field(default_factory=list)  # for the office: kept with their replies
    changes: list[Change] = field(default_factory=list)  # each step of each move, for the events
    notifications: list[str] = field(default_factory=list)  # dedupe keys queued

    def counts(self) -> dict[str, int]:
        totals = {o.value: 0 for o in (ClaimOutcome.APPLIED, ClaimOutcome.UNCHANGED, ClaimOutcome.UNDER_REVIEW, ClaimOutcome.REFUSED)}
        for reply in self.replies:
            for outcome, n in reply.outcomes.items():
                totals[outcome] = totals.get(outcome, 0) + n
        return {"replies": len(self.replies), **totals, "moves": len(self.changes), "notifications": len(self.notifications)}


@dataclass
class ReviewResult:
    """What the office's review of one reply did."""

    reference: str
    ministry_code: str
    as_of: date
    accepted: list[str] = field(default_factory=list)  # external ids
    returned: list[str] = field(default_factory=list)
    refused: list[ClaimLine] = field(default_factory=list)  # accepted, but the item can no longer get there
    changes: list[Change] = field(default_factory=list)
    notifications: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Item:
    external_id: str
    ministry_code: str | None
    status: str
    awaiting_review: bool


# --- reading ---------------------------------------------------------------------------------------


def parse_reply_id(value: str | int) -> int:
    """A reply's number as the office types it: 12, "12" or "REPLY-12"."""
    text = str(value).strip()
    digits = text[len("REPLY-"):] if text.upper().startswith("REPLY-") else text
    if not digits.isdigit():
        raise ReviewError(f"not a reply number: {text!r} (REPLY-12 or 12)")
    return int(digits)


def _reference(reply_id: int) -> str:
    return f"REPLY-{reply_id}"


def _recommendations(session: Session, ids: Iterable[int]) -> dict[int, _Item]:
    r = table_of(Recommendation)
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.connection().execute(
        select(r.c.id, r.c.external_id, r.c.ministry_code, r.c.status, r.c.awaiting_review)
        .where(one_of(session.connection(), r.c.id, wanted))
    ).all()
    return {int(i): _Item(e, m, s, bool(a)) for i, e, m, s, a in rows}


def _evidence(session: Session, reply_ids: Sequence[int]) -> dict[int, list[tuple[str, str]]]:
    e = table_of(Evidence)
    files: dict[int, list[tuple[str, str]]] = {}
    for reply_id, name, digest in session.connection().execute(
        select(e.c.reply_id, e.c.filename, e.c.sha256).where(e.c.reply_id.in_(list(reply_ids))).order_by(e.c.reply_id, e.c.id)
    ):
        files.setdefault(int(reply_id), []).append((name, digest))
    return files


def _claims(session: Session, reply_ids: Sequence[int], *, outcome: str | None = None) -> dict[int, list[Any]]:
    c = table_of(ReplyClaim)
    stmt = select(c).where(c.c.reply_id.in_(list(reply_ids))).order_by(c.c.reply_id, c.c.id)
    if outcome is not None:
        stmt = stmt.where(c.c.outcome == outcome)
    claims: dict[int, list[Any]] = {}
    for row in session.connection().execute(stmt):
        claims.setdefault(int(row.reply_id), []).append(row)
    return claims


def _actor(reply: Any) -> str:
    """Who the history names for a reply's moves: the ministry and the official who confirmed it."""
    who = reply.confirmed_by_name or reply.author_name
    return f"ministry:{reply.ministry_code} ({who})"[:ACTOR_CHARS]


def _reason(reply: Any, measures: str | None, *, source: str | None = None) -> str:
    return reply_reason(reference=_reference(reply.id), responded_on=reply.responded_on, channel=reply.channel,
                        letter_reference=reply.letter_reference, source=source, measures=measures)


def _reachable(current: str, claimed: str) -> bool:
    return claimed in Status.__members__.values() and path_between(current, claimed) is not None


def _details(session: Session, ids: Iterable[int]) -> dict[int, tuple[Any, ...]]:
    return _items(session, sorted(set(ids)))


def _letter_items(details: dict[int, tuple[Any, ...]], claims: Sequence[Any], outcomes: dict[int, str] | None = None) -> list[dict[str, Any]]:
    """The claims as the reply letters list them (notifications/templates: acknowledgement, reply_returned)."""
    listed = []
    for claim in claims:
        external_id, facility, text, _due = details[int(claim.recommendation_id)]
        listed.append({"external_id": external_id, "facility": facility, "text": str(text),
                       "claimed_status": claim.claimed_status, "measures": claim.measures,
                       "outcome": (outcomes or {}).get(int(claim.id), claim.outcome)})
    return listed


# --- recording ---------------------------------------------------------------------------------------


def record_replies(*, engine: Engine | None = None, policy: Policy | None = None, reply_ids: Sequence[int] | None = None,
                   today: date | None = None) -> RecordResult:
    """Apply every confirmed reply not recorded yet (or only `reply_ids`), exactly once; see the module's docstring."""
    engine = engine or get_engine()
    policy = policy or load_policy()
    today = today or local_today()
    result = RecordResult(as_of=today)
    now = utcnow()
    reply = table_of(Reply)
    with Session(engine) as session, session.begin():
        lock(session, LOCK)
        lock(session, DAILY_CHECK_LOCK)
        stmt = (select(reply).where(reply.c.state == ReplyState.CONFIRMED.value, reply.c.recorded_at.is_(None))
                .order_by(reply.c.confirmed_at, reply.c.id))
        if reply_ids is not None:
            stmt = stmt.where(reply.c.id.in_([int(i) for i in reply_ids]))
        replies = session.connection().execute(stmt).all()
        if not replies:
            return result
        ids = [int(r.id) for r in replies]
        claims = _claims(session, ids)
        items = _recommendations(session, [int(c.recommendation_id) for cs in claims.values() for c in cs])
        status_now = {i: item.status for i, item in items.items()}
        held_now = {i: item.awaiting_review for i, item in items.items()}
        files = _evidence(session, ids)
        details = _details(session, items)
        for r in replies:
            _record_one(session, r, claims.get(int(r.id), []), items, status_now, held_now, files.get(int(r.id), []),
                        details, policy=policy, today=today, now=now, result=result)
        done = session.connection().execute(
            update(reply).where(reply.c.id.in_(ids), reply.c.state == ReplyState.CONFIRMED.value, reply.c.recorded_at.is_(None))
            .values(state=ReplyState.RECORDED.value, recorded_at=now)
        ).rowcount
        if done != len(ids):  # only under the lock's protection lost: never record a reply twice
            raise ConcurrentChange(f"{len(ids) - done} of {len(ids)} replies were recorded meanwhile; nothing was written, run again")
    return result


def _record_one(session: Session, r: Any, claims: list[Any], items: dict[int, _Item], status_now: dict[int, str],
                held_now: dict[int, bool], files: list[tuple[str, str]], details: dict[int, tuple[Any, ...]], *,
                policy: Policy, today: date, now: datetime, result: RecordResult) -> None:
    """One reply: decide its claims, move, hold, mark answered, acknowledge (in the caller's transaction)."""
    reference = _reference(int(r.id))
    evidence = evidence_line(reference, files)
    rounds = Rounds()
    outcomes: dict[int, str] = {}
    held: list[int] = []
    answered: list[int] = []
    for claim in claims:
        rec_id = int(claim.recommendation_id)
        item = items.get(rec_id)
        current = status_now.get(rec_id, "")
        outcome = claim_outcome(current=current, claimed=claim.claimed_status, policy=policy,
                                reachable=item is not None and _reachable(current, claim.claimed_status),
                                own_item=item is not None and item.ministry_code == r.ministry_code)
        outcomes[int(claim.id)] = outcome.value
        if item is None:
            continue
        if outcome is ClaimOutcome.REFUSED:
            why = "not this body's recommendation" if item.ministry_code != r.ministry_code else f"cannot go from {current} to {claim.claimed_status}"
            result.refused.append(ClaimLine(reference, r.ministry_code, item.external_id, current, claim.claimed_status, outcome.value, why))
            continue
        answered.append(rec_id)
        if outcome is ClaimOutcome.UNDER_REVIEW:
            if not held_now.get(rec_id):
                held.append(rec_id)
                held_now[rec_id] = True
        elif outcome is ClaimOutcome.APPLIED:
            path = rounds.add(Move(rec_id, item.external_id, current, claim.claimed_status,
                                   _reason(r, claim.measures), evidence, r.responded_on)) or []
            previous = current
            for step in path:
                result.changes.append(Change(item.external_id, r.ministry_code, previous, step.value, reference))
                previous = step.value
            status_now[rec_id] = claim.claimed_status
    rounds.apply(session, actor=_actor(r), at=now)
    connection = session.connection()
    if outcomes:
        update_by_id(connection, table_of(ReplyClaim), list(outcomes), {"outcome": list(outcomes.values())})
    if held:
        _hold(session, held, status_now, held=True, actor=_actor(r), at=now,
              reason=_reason(r, None, source="claims under the office's review: no reminder or escalation meanwhile"))
    mark_answered(connection, reply_id=int(r.id), recommendation_ids=answered, on=r.responded_on)
    counts: dict[str, int] = {}
    for outcome_value in outcomes.values():
        counts[outcome_value] = counts.get(outcome_value, 0) + 1
    result.replies.append(RecordedReply(int(r.id), reference, r.ministry_code, r.responded_on, r.channel, counts))
    listed = [c for c in claims if int(c.recommendation_id) in items]
    language, name = _addressee(session, r.ministry_code)
    letter = _letter("acknowledgement", language, {
        "as_of": today, "ministry": name, "reference": reference, "responded_on": r.responded_on,
        "letter_reference": r.letter_reference, "items": _letter_items(details, listed, outcomes),
        "contact": office_contact(language),
    })
    result.notifications += list(queue(session, [{
        "recipient": f"ministry:{r.ministry_code}", "kind": "acknowledgement", **letter,
        "payload": {"reference": reference, "reply_id": int(r.id), "items": [details[int(c.recommendation_id)][0] for c in listed],
                    "outcomes": counts},
        "dedupe_key": f"ack:{int(r.id)}",
    }]))


def _hold(session: Session, ids: Sequence[int], status_of: dict[int, str], *, held: bool, actor: str, reason: str, at: datetime) -> None:
    """Set or clear `awaiting_review` on items whose flag changes, with a history entry each: the
    log says why an item got no reminder for three weeks."""
    if not ids:
        return
    update_by_id(session.connection(), table_of(Recommendation), list(ids), {"awaiting_review": [held] * len(ids)})
    record_edits(session, [(i, status_of[i], {"awaiting_review": [not held, held]}) for i in ids], actor=actor, reason=reason, at=at)


# --- the office's review ------------------------------------------------------------------------------


def _reply_for_review(session: Session, reply_id: int) -> Any:
    reply = table_of(Reply)
    row = session.connection().execute(select(reply).where(reply.c.id == reply_id)).first()
    if row is None:
        raise ReviewError(f"no reply {_reference(reply_id)} in the registry")
    if row.state != ReplyState.RECORDED.value:
        raise ReviewError(f"{_reference(reply_id)} is {row.state}, not recorded yet: the record-responses flow records it first")
    return row


def _waiting_claims(session: Session, reply_id: int, external_ids: Sequence[str] | None) -> tuple[list[Any], dict[int, _Item]]:
    """The reply's claims under review (only those on `external_ids`, when given), with their items."""
    claims = _claims(session, [reply_id], outcome=ClaimOutcome.UNDER_REVIEW.value).get(reply_id, [])
    items = _recommendations(session, [int(c.recommendation_id) for c in claims])
    if external_ids is not None:
        wanted = set(external_ids)
        known = {items[int(c.recommendation_id)].external_id for c in claims}
        missing = sorted(wanted - known)
        if missing:
            raise ReviewError(f"{_reference(reply_id)} has no claim under review on {', '.join(missing)}")
        claims = [c for c in claims if items[int(c.recommendation_id)].external_id in wanted]
    if not claims:
        raise ReviewError(f"{_reference(reply_id)} has no claim under review")
    return claims, items


def _release(session: Session, ids: Sequence[int], status_of: dict[int, str], *, actor: str, reason: str, at: datetime) -> list[int]:
    """Clear `awaiting_review` on the items no other claim still holds; returns them."""
    c, r = table_of(ReplyClaim), table_of(Recommendation)
    still = exists().where(and_(c.c.recommendation_id == r.c.id, c.c.outcome == ClaimOutcome.UNDER_REVIEW.value))
    free = [int(i) for i in session.connection().execute(
        select(r.c.id).where(r.c.id.in_(list(ids)), r.c.awaiting_review.is_(True), ~still)
    ).scalars()]
    _hold(session, free, status_of, held=False, actor=actor, reason=reason, at=at)
    return free


def _mark_reviewed(session: Session, claims: Sequence[Any], outcomes: Sequence[str], *, actor: str, at: datetime,
                   comment: str | None = None) -> None:
    n = len(claims)
    update_by_id(session.connection(), table_of(ReplyClaim), [int(c.id) for c in claims], {
        "outcome": list(outcomes), "reviewed_by": [actor] * n, "reviewed_at": [at] * n, "review_comment": [comment] * n,
    })


def accept_claims(*, engine: Engine | None = None, reply_id: int, actor: str, today: date | None = None,
                  policy: Policy | None = None, external_ids: Sequence[str] | None = None) -> ReviewResult:
    """The office accepts a reply's claims under review (all, or those on `external_ids`): each item
    moves to the claimed status now, its history naming the reply and the reviewer (`actor`), dated
    the reply's day; the item is released unless another reply's claim on it still waits. A claim
    whose item can no longer get there (withdrawn meanwhile) is refused and listed."""
    engine = engine or get_engine()
    policy = policy or load_policy()
    today = today or local_today()
    now = utcnow()
    with Session(engine) as session, session.begin():
        lock(session, LOCK)
        lock(session, DAILY_CHECK_LOCK)
        r = _reply_for_review(session, reply_id)
        claims, items = _waiting_claims(session, reply_id, external_ids)
        reference = _reference(reply_id)
        result = ReviewResult(reference, r.ministry_code, today)
        evidence = evidence_line(reference, _evidence(session, [reply_id]).get(reply_id, []))
        status_now = {i: item.status for i, item in items.items()}
        rounds = Rounds()
        outcomes = []
        for claim in claims:
            rec_id = int(claim.recommendation_id)
            item, current = items[rec_id], status_now[rec_id]
            outcome = claim_outcome(current=current, claimed=claim.claimed_status, policy=policy, reviewed=True,
                                    reachable=_reachable(current, claim.claimed_status), own_item=item.ministry_code == r.ministry_code)
            if outcome is ClaimOutcome.REFUSED:
                outcomes.append(outcome.value)
                result.refused.append(ClaimLine(reference, r.ministry_code, item.external_id, current, claim.claimed_status,
                                                outcome.value, f"cannot go from {current} to {claim.claimed_status}"))
                continue
            outcomes.append(ClaimOutcome.ACCEPTED.value)
            result.accepted.append(item.external_id)
            if outcome is ClaimOutcome.APPLIED:
                path = rounds.add(Move(rec_id, item.external_id, current, claim.claimed_status,
                                       _reason(r, claim.measures, source=f"accepted on review by {actor}"), evidence, r.responded_on)) or []
                previous = current
                for step in path:
                    result.changes.append(Change(item.external_id, r.ministry_code, previous, step.value, reference))
                    previous = step.value
                status_now[rec_id] = claim.claimed_status
        rounds.apply(session, actor=actor, at=now)
        _mark_reviewed(session, claims, outcomes, actor=actor, at=now)
        _release(session, list(items), status_now, actor=actor, at=now,
                 reason=_reason(r, None, source=f"claims reviewed by {actor}"))
    return result


def return_claims(*, engine: Engine | None = None, reply_id: int, actor: str, comment: str, today: date | None = None,
                  external_ids: Sequence[str] | None = None) -> ReviewResult:
    """The office returns a reply's claims under review (all, or those on `external_ids`) to the
    ministry with a comment: the items keep their status and are released (reminders and
    escalation resume), the ministry gets the comment and the items (`reply_returned`), and the
    items count as unanswered again in individualized recommendations still waiting for an answer."""
    comment = (comment or "").strip()
    if not comment:
        raise ReviewError("a returned claim needs a comment: what the ministry must add or correct")
    engine = engine or get_engine()
    today = today or local_today()
    now = utcnow()
    with Session(engine) as session, session.begin():
        lock(session, LOCK)
        lock(session, DAILY_CHECK_LOCK)
        r = _reply_for_review(session, reply_id)
        claims, items = _waiting_claims(session, reply_id, external_ids)
        reference = _reference(reply_id)
        result = ReviewResult(reference, r.ministry_code, today, returned=[items[int(c.recommendation_id)].external_id for c in claims])
        _mark_reviewed(session, claims, [ClaimOutcome.RETURNED.value] * len(claims), actor=actor, at=now, comment=comment)
        status_of = {i: item.status for i, item in items.items()}
        _release(session, list(items), status_of, actor=actor, at=now,
                 reason=_reason(r, comment, source=f"claims returned by {actor}"))
        unmark_answered(session.connection(), reply_id=reply_id, recommendation_ids=[int(c.recommendation_id) for c in claims])
        language, name = _addressee(session, r.ministry_code)
        details = _details(session, items)
        letter = _letter("reply_returned", language, {
            "as_of": today, "ministry": name, "reference": reference, "responded_on": r.responded_on,
            "letter_reference": r.letter_reference, "comment": comment,
            "items": _letter_items(details, claims), "contact": office_contact(language),
        })
        result.notifications = list(queue(session, [{
            "recipient": f"ministry:{r.ministry_code}", "kind": "reply_returned", **letter,
            "payload": {"reference": reference, "reply_id": reply_id, "items": result.returned},
            # claims leave review once, so the first one returned names this return
            "dedupe_key": f"returned:{reply_id}:{min(int(c.id) for c in claims)}",
        }]))
    return result


# --- the office's list ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewLine:
    """One claim in `followup replies list`."""

    reply_id: int
    reference: str
    ministry_code: str
    channel: str
    responded_on: date
    external_id: str
    status: str
    claimed_status: str
    measures: str
    outcome: str
    reviewed_by: str | None
    review_comment: str | None


def list_claims_under_review(*, engine: Engine | None = None, include_all: bool = False) -> list[ReviewLine]:
    """The office's review queue, oldest reply first: claims under review; with `include_all`
    every claim of every reply (recorded, accepted, returned, refused…)."""
    engine = engine or get_engine()
    reply, claim, rec = table_of(Reply), table_of(ReplyClaim), table_of(Recommendation)
    stmt = (
        select(reply.c.id, reply.c.ministry_code, reply.c.channel, reply.c.responded_on, rec.c.external_id, rec.c.status,
               claim.c.claimed_status, claim.c.measures, claim.c.outcome, claim.c.reviewed_by, claim.c.review_comment)
        .select_from(claim.join(reply, reply.c.id == claim.c.reply_id).join(rec, rec.c.id == claim.c.recommendation_id))
        .order_by(reply.c.responded_on, reply.c.id, claim.c.id)
    )
    if not include_all:
        stmt = stmt.where(claim.c.outcome == ClaimOutcome.UNDER_REVIEW.value)
    with engine.connect() as connection:
        rows = connection.execute(stmt).all()
    return [ReviewLine(int(i), _reference(int(i)), m, ch, d, e, s, cs, me, o, rb, rc) for i, m, ch, d, e, s, cs, me, o, rb, rc in rows]
