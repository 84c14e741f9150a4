"""What ministries answer: a reply (one submission by one state body), its claims item by item,
and the evidence files that come with it.

A reply is written here before anything else happens to it, so nothing a ministry sends is lost
when Prefect is down: the `record-responses` flow applies confirmed replies later, exactly once
(`recorded_at` is set in the transaction that moves the items).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, Index, String, Text, UniqueConstraint, select, update
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel

from followup.models.db import one_of
from followup.models.domain import ClaimOutcome, ReplyChannel, ReplyState, Status
from followup.models.links import BadLink, check_generation
from followup.models.policy import ANSWERABLE_STATUSES, REPLY_STATUSES
from followup.models.registry import Recommendation, table_of
from followup.models.transitions import allowed
from followup.models.types import UTCDateTime, utcnow


class ReplyBase(SQLModel):
    ministry_code: str = Field(foreign_key="ministry.code", max_length=32)
    channel: str = Field(default=ReplyChannel.PORTAL.value, max_length=10)
    #: the letter the ministry quotes (an individualized recommendation's or a reminder's reference)
    letter_reference: str | None = Field(default=None, max_length=60)
    responded_on: date
    #: who typed it, as given on the page (or the office's clerk for a paper reply)
    author_name: str = Field(sa_column=Column(String(200), nullable=False))
    author_position: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    author_email: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))


class Reply(ReplyBase, table=True):
    """One reply of one state body about one or more of its recommendations."""

    __tablename__ = "reply"
    __table_args__ = (Index("ix_reply_state", "state"), Index("ix_reply_ministry_code", "ministry_code"))
    id: int | None = Field(default=None, primary_key=True)
    state: str = Field(default=ReplyState.DRAFT.value, max_length=10)
    #: the ministry's link generation when it was typed: a revoked link cannot confirm it
    generation: int = 1
    confirmed_by_name: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    confirmed_by_position: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    confirmed_by_email: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    confirmed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    recorded_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))

    @property
    def reference(self) -> str:
        """How letters and pages name the reply."""
        return f"REPLY-{self.id}"


class ReplyClaim(SQLModel, table=True):
    """What a reply says about one recommendation: the measures taken and the status claimed."""

    __tablename__ = "reply_claim"
    __table_args__ = (UniqueConstraint("reply_id", "recommendation_id", name="uq_reply_claim"),)
    id: int | None = Field(default=None, primary_key=True)
    reply_id: int = Field(foreign_key="reply.id", index=True)
    recommendation_id: int = Field(foreign_key="recommendation.id", index=True)
    claimed_status: str = Field(max_length=32)
    measures: str = Field(sa_column=Column(Text, nullable=False))
    outcome: str = Field(default=ClaimOutcome.PENDING.value, max_length=20)
    #: the office's review: who decided, when, and the comment sent back with a returned claim
    reviewed_by: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    reviewed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    review_comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class Evidence(SQLModel, table=True):
    """A file sent with a reply, stored by content hash outside the web root (`FOLLOWUP_EVIDENCE_DIR`).

    The name the ministry gave is kept for display only; it never reaches the filesystem.
    """

    __tablename__ = "evidence"
    id: int | None = Field(default=None, primary_key=True)
    reply_id: int = Field(foreign_key="reply.id", index=True)
    sha256: str = Field(sa_column=Column(String(64), nullable=False))
    filename: str = Field(sa_column=Column(String(255), nullable=False))
    content_type: str = Field(max_length=100)
    size: int
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))




# --- writing replies: the focal point's draft and the validating official's confirmation ----------

#: the longest texts a reply keeps (a claim's measures; the people's names and the letter reference
#: are bounded by their columns)
MEASURES_MAX = 20_000
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PROBLEMS = {
    "required": "is required",
    "too_long": "is longer than {detail} characters",
    "email": "is not an e-mail address",
    "no_claims": "the reply names no recommendation",
    "duplicate": "the recommendation is named twice in one reply",
    "status": "{detail} is not a status a reply may claim (in_progress, implemented, partially_implemented, rejected)",
    "not_open": "the recommendation is {detail}: it is no longer waiting for the ministry's answer",
    "under_review": "the office is reviewing the ministry's previous claim on it",
    "not_allowed": "cannot go from {detail}",
    "reasons": "a rejection needs its reasons in the measures",
    "future": "{detail} is in the future",
    "before_issue": "is before the recommendation was issued ({detail})",
}


@dataclass(frozen=True)
class ReplyProblem:
    """One reason a reply cannot be written, naming the field and, for a claim, its recommendation.

    `code` lets a page say it in the ministry's language; `str()` says it in English for the CLI."""

    field: str
    code: str
    recommendation_id: int | None = None
    external_id: str | None = None
    detail: str = ""

    def __str__(self) -> str:
        where = f"{self.external_id}: " if self.external_id else ""
        return f"{where}{self.field}: {_PROBLEMS[self.code].format(detail=self.detail)}"


class ReplyRejected(ValueError):
    """The reply as given cannot be written; every problem is listed, and nothing was written."""

    def __init__(self, problems: Sequence[ReplyProblem]):
        self.problems = list(problems)
        super().__init__("the reply was not saved:\n" + "\n".join(str(p) for p in self.problems))


class ForeignItems(PermissionError):
    """The reply names recommendations that are not its ministry's (or do not exist): nothing was written.

    Not a typing mistake a page explains: a form only offers the ministry's own items."""

    def __init__(self, ministry: str, ids: Sequence[int]):
        self.ids = sorted(ids)
        super().__init__(f"{len(self.ids)} recommendation(s) of the reply are not {ministry}'s")


class ReplyNotFound(LookupError):
    """No such reply (or not the asking ministry's)."""


class ReplyNotDraft(ValueError):
    """The reply was confirmed already (by someone else, or by a second click)."""


@dataclass(frozen=True)
class ClaimInput:
    """What the ministry says about one of its recommendations."""

    recommendation_id: int
    claimed_status: str
    measures: str = ""


@dataclass(frozen=True)
class EvidenceInput:
    """A file already stored by its hash (`FOLLOWUP_EVIDENCE_DIR`), to be attached to the reply."""

    sha256: str
    filename: str
    content_type: str
    size: int


def _clean(value: str | None) -> str | None:
    text = (value or "").strip()
    return text or None


def _person_problems(prefix: str, name: str | None, position: str | None, email: str | None) -> list[ReplyProblem]:
    problems = []
    if not name:
        problems.append(ReplyProblem(f"{prefix}_name", "required"))
    for field, value in ((f"{prefix}_name", name), (f"{prefix}_position", position), (f"{prefix}_email", email)):
        if value and len(value) > 200:
            problems.append(ReplyProblem(field, "too_long", detail="200"))
    if email and not _EMAIL.match(email):
        problems.append(ReplyProblem(f"{prefix}_email", "email"))
    return problems


def check_reply(*, session: Session, ministry: str, claims: Sequence[ClaimInput], responded_on: date, today: date,
                author_name: str | None, author_position: str | None = None, author_email: str | None = None,
                letter_reference: str | None = None) -> list[ReplyProblem]:
    """Every problem of a reply as given, without writing anything (empty: it can be written).

    Raises ForeignItems when a claim names a recommendation that is not the ministry's. A claim must
    name an item still waiting for the ministry's answer (`ANSWERABLE_STATUSES`, not under the
    office's review), claim a status a reply may claim that the transition table allows from where
    the item stands (or the status it has: "unchanged", the measures still count), give reasons for
    a rejection, and be dated neither in the future nor before the item was issued.
    """
    problems = _person_problems("author", _clean(author_name), _clean(author_position), _clean(author_email))
    if letter_reference and len(letter_reference.strip()) > 60:
        problems.append(ReplyProblem("letter_reference", "too_long", detail="60"))
    if responded_on > today:
        problems.append(ReplyProblem("responded_on", "future", detail=f"{responded_on:%d.%m.%Y}"))
    if not claims:
        problems.append(ReplyProblem("items", "no_claims"))
        return problems
    r = table_of(Recommendation)
    ids = [c.recommendation_id for c in claims]
    connection = session.connection()
    items: dict[int, Any] = {}
    for start in range(0, len(ids), 20_000):
        chunk = ids[start:start + 20_000]
        rows = connection.execute(
            select(r.c.id, r.c.external_id, r.c.ministry_code, r.c.status, r.c.issued_on, r.c.awaiting_review)
            .where(one_of(connection, r.c.id, chunk))
        ).all()
        items.update({row.id: row for row in rows})
    foreign = {i for i in ids if i not in items or items[i].ministry_code != ministry}
    if foreign:
        raise ForeignItems(ministry, list(foreign))
    answerable = {s.value for s in ANSWERABLE_STATUSES}
    claimable = {s.value for s in REPLY_STATUSES}
    seen: set[int] = set()
    for claim in claims:
        item = items[claim.recommendation_id]
        where = {"recommendation_id": item.id, "external_id": item.external_id}
        if item.id in seen:
            problems.append(ReplyProblem("status", "duplicate", **where))
            continue
        seen.add(item.id)
        if item.status not in answerable:
            problems.append(ReplyProblem("status", "not_open", detail=item.status, **where))
            continue
        if item.awaiting_review:
            problems.append(ReplyProblem("status", "under_review", **where))
            continue
        if not claim.claimed_status:
            problems.append(ReplyProblem("status", "required", **where))
        elif claim.claimed_status not in claimable:
            problems.append(ReplyProblem("status", "status", detail=claim.claimed_status, **where))
        elif claim.claimed_status != item.status and not allowed(item.status, claim.claimed_status):
            problems.append(ReplyProblem("status", "not_allowed", detail=f"{item.status} to {claim.claimed_status}", **where))
        measures = claim.measures.strip()
        if claim.claimed_status == Status.REJECTED and not measures:
            problems.append(ReplyProblem("measures", "reasons", **where))
        if len(measures) > MEASURES_MAX:
            problems.append(ReplyProblem("measures", "too_long", detail=str(MEASURES_MAX), **where))
        if responded_on < item.issued_on:
            problems.append(ReplyProblem("responded_on", "before_issue", detail=f"{item.issued_on:%d.%m.%Y}", **where))
    return problems


def create_draft_reply(*, session: Session, ministry: str, generation: int, claims: Sequence[ClaimInput],
                       responded_on: date, today: date, author_name: str, author_position: str | None = None,
                       author_email: str | None = None, letter_reference: str | None = None,
                       evidence: Sequence[EvidenceInput] = (), channel: ReplyChannel = ReplyChannel.PORTAL) -> Reply:
    """Write a ministry's reply as a draft, with its claims and evidence, in the caller's transaction.

    `generation` is the link generation the ministry's session was opened with: a link revoked since
    (`followup links revoke`) writes nothing (BadLink). Raises ForeignItems for another body's item and
    ReplyRejected listing every problem (`check_reply`); on any of them nothing is written. The draft
    waits for the validating official (`confirm_reply`).
    """
    check_generation(session, ministry, generation)
    problems = check_reply(session=session, ministry=ministry, claims=claims, responded_on=responded_on, today=today,
                           author_name=author_name, author_position=author_position, author_email=author_email,
                           letter_reference=letter_reference)
    if problems:
        raise ReplyRejected(problems)
    reply = Reply(ministry_code=ministry, channel=ReplyChannel(channel).value, letter_reference=_clean(letter_reference),
                  responded_on=responded_on, author_name=author_name.strip(), author_position=_clean(author_position),
                  author_email=_clean(author_email), generation=generation)
    session.add(reply)
    session.flush()
    assert reply.id is not None  # flushed
    session.add_all([ReplyClaim(reply_id=reply.id, recommendation_id=c.recommendation_id, claimed_status=c.claimed_status,
                                measures=c.measures.strip()) for c in claims])
    session.add_all([Evidence(reply_id=reply.id, sha256=e.sha256, filename=e.filename[:255], content_type=e.content_type,
                              size=e.size) for e in evidence])
    session.flush()
    return reply


def confirm_reply(*, session: Session, reply_id: int, confirmed_by_name: str, at: datetime,
                  confirmed_by_position: str | None = None, confirmed_by_email: str | None = None,
                  ministry: str | None = None, generation: int | None = None) -> Reply:
    """The validating official confirms a draft reply, in the caller's transaction: it becomes `confirmed`
    and waits for the `record-responses` flow.

    `ministry` and `generation`, when given, are the confirming session's: another body's reply is
    ReplyNotFound, a revoked link BadLink. The reply's own generation must still be the ministry's
    (a revoked link cannot confirm what was typed under it). A reply confirmed already is
    ReplyNotDraft: of two clicks at once, one confirms.
    """
    t = table_of(Reply)
    row = session.connection().execute(
        select(t.c.id, t.c.ministry_code, t.c.state, t.c.generation).where(t.c.id == reply_id).with_for_update()
    ).first()
    if row is None or (ministry is not None and row.ministry_code != ministry):
        raise ReplyNotFound(f"no reply {reply_id}")
    check_generation(session, row.ministry_code, row.generation)
    if generation is not None and generation != row.generation:
        raise BadLink("the link was revoked")
    if row.state != ReplyState.DRAFT:
        raise ReplyNotDraft(f"REPLY-{reply_id} is {row.state} already")
    problems = _person_problems("confirmed_by", _clean(confirmed_by_name), _clean(confirmed_by_position),
                                _clean(confirmed_by_email))
    if problems:
        raise ReplyRejected(problems)
    done = session.connection().execute(
        update(t).where(t.c.id == reply_id, t.c.state == ReplyState.DRAFT.value).values(
            state=ReplyState.CONFIRMED.value, confirmed_at=at, confirmed_by_name=confirmed_by_name.strip(),
            confirmed_by_position=_clean(confirmed_by_position), confirmed_by_email=_clean(confirmed_by_email))
    )
    if done.rowcount != 1:
        raise ReplyNotDraft(f"REPLY-{reply_id} was confirmed meanwhile")
    reply = session.get(Reply, reply_id, populate_existing=True)
    assert reply is not None
    return reply


def claimed_items(*, session: Session, reply_id: int) -> list[int]:
    """The recommendations a reply speaks about, in the order it named them."""
    c = table_of(ReplyClaim)
    return list(session.connection().execute(
        select(c.c.recommendation_id).where(c.c.reply_id == reply_id).order_by(c.c.id)).scalars())
