"""What the ministry's pages read from the registry: only the session's ministry's rows, paged
and filtered in SQL (the Ministry of Internal Affairs has thousands of open items).

Each item is shown under the letter it last appeared in: its latest individualized
recommendation (`IR-20261123-INTERIOR`), else its latest reminder letter (the reminder of
23.11.2026), else "not yet in a letter". Those two are correlated subqueries on indexed
columns, so a page costs one statement for its 50 rows and one for the count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, Subquery, case, func, select

from followup.models.db import one_of
from followup.models.domain import ClaimOutcome, IndividualizedStatus, ReplyState
from followup.models.followup import IndividualizedItem, IndividualizedRecommendation, Reminder, reminder_reference
from followup.models.policy import ANSWERABLE_STATUSES, LATE_STATUSES
from followup.models.registry import Facility, Ministry, Recommendation, StatusChange, table_of
from followup.models.replies import Evidence, Reply, ReplyClaim

PAGE_SIZE = 50
NO_LETTER = "none"


@dataclass(frozen=True)
class Filters:
    """What the clerk narrowed the list to (empty: everything open)."""

    facility: int | None = None
    region: str | None = None
    due_before: date | None = None
    overdue: bool = False
    #: "ir:<reference>", "reminder:<YYYY-MM-DD>" or "none"
    letter: str | None = None

    def as_query(self) -> dict[str, str]:
        """The filters as the list page's query parameters (paging links, the spreadsheet link)."""
        query = {"facility": str(self.facility) if self.facility else "", "region": self.region or "",
                 "due_before": self.due_before.isoformat() if self.due_before else "",
                 "overdue": "1" if self.overdue else "", "letter": self.letter or ""}
        return {k: v for k, v in query.items() if v}


@dataclass(frozen=True)
class Letter:
    """The letter an item appeared in, as the page groups by it."""

    key: str
    kind: str  # individualized | reminder | none
    reference: str | None = None
    on: date | None = None


@dataclass
class Item:
    id: int
    external_id: str
    text: str
    status: str
    issued_on: date
    due_on: date | None
    facility: str | None
    region: str | None
    awaiting_review: bool
    letter: Letter
    #: the office's comment on a returned claim (the latest review returned it)
    returned_comment: str | None = None
    #: replies about it not yet in the registry: (reference, state)
    pending: list[tuple[str, str]] = field(default_factory=list)

    @property
    def late(self) -> bool:
        return self.status in {s.value for s in LATE_STATUSES}

    @property
    def answerable(self) -> bool:
        return self.status in {s.value for s in ANSWERABLE_STATUSES} and not self.awaiting_review


def letter_of(ministry: str, ir_ref: str | None, ir_on: date | None, reminder_on: date | None) -> Letter:
    """The letter from its columns: the individualized recommendation's reference, else the reminder
    letter's (REM-20261123-INTERIOR, the number the letter asks the ministry to quote)."""
    if ir_ref:
        return Letter(f"ir:{ir_ref}", "individualized", ir_ref, ir_on)
    if reminder_on:
        return Letter(f"reminder:{reminder_on.isoformat()}", "reminder", reminder_reference(ministry, reminder_on), reminder_on)
    return Letter(NO_LETTER, "none")


def _items(ministry: str, *, only_open: bool = True) -> Subquery:
    """The ministry's items with their facility and the letter columns (ir_ref, ir_on, reminder_on)."""
    r, f = table_of(Recommendation), table_of(Facility)
    ir, ii, rem = table_of(IndividualizedRecommendation), table_of(IndividualizedItem), table_of(Reminder)
    latest_ir = (
        select(ir.c.id).select_from(ii.join(ir, ii.c.individualized_id == ir.c.id))
        .where(ii.c.recommendation_id == r.c.id, ir.c.status != IndividualizedStatus.DRAFT.value)  # a draft has not left yet
        .order_by(ir.c.issued_on.desc(), ir.c.id.desc()).limit(1)
        .correlate(r).scalar_subquery()
    )
    reminder_on = select(func.max(rem.c.sent_on)).where(rem.c.recommendation_id == r.c.id).correlate(r).scalar_subquery()
    inner = (
        select(r.c.id, r.c.external_id, r.c.text, r.c.status, r.c.issued_on, r.c.due_on, r.c.awaiting_review,
               r.c.facility_id, f.c.name.label("facility"), f.c.region, latest_ir.label("ir_id"),
               reminder_on.label("reminder_on"))
        .select_from(r.outerjoin(f, r.c.facility_id == f.c.id))
        .where(r.c.ministry_code == ministry)
    )
    if only_open:
        inner = inner.where(r.c.status.in_([s.value for s in ANSWERABLE_STATUSES]))
    sub = inner.subquery("items")
    # the reference and date of the individualized recommendation, joined by its id
    ir2 = ir.alias("letter")
    return (
        select(sub, ir2.c.reference.label("ir_ref"), ir2.c.issued_on.label("ir_on"))
        .select_from(sub.outerjoin(ir2, ir2.c.id == sub.c.ir_id))
        .subquery("open_items")
    )


def _conditions(items: Subquery, filters: Filters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.facility:
        conditions.append(items.c.facility_id == filters.facility)
    if filters.region:
        conditions.append(items.c.region == filters.region)
    if filters.due_before:
        conditions.append(items.c.due_on < filters.due_before)
    if filters.overdue:
        conditions.append(items.c.status.in_([s.value for s in LATE_STATUSES]))
    if filters.letter:
        kind, _, value = filters.letter.partition(":")
        if kind == "ir" and value:
            conditions.append(items.c.ir_ref == value)
        elif kind == "reminder" and value:
            try:
                day = date.fromisoformat(value)
            except ValueError:
                day = date.min
            conditions.extend([items.c.ir_ref.is_(None), items.c.reminder_on == day])
        else:
            conditions.extend([items.c.ir_ref.is_(None), items.c.reminder_on.is_(None)])
    return conditions


def _ordered(items: Subquery, filters: Filters) -> Select[Any]:
    group = case((items.c.ir_ref.is_not(None), 0), (items.c.reminder_on.is_not(None), 1), else_=2)
    return (
        select(items).where(*_conditions(items, filters))
        .order_by(group, items.c.ir_on.desc(), items.c.ir_ref, case((items.c.ir_ref.is_(None), items.c.reminder_on)).desc(),
                  case((items.c.due_on.is_(None), 1), else_=0), items.c.due_on, items.c.external_id)
    )


def _item(ministry: str, row: Any) -> Item:
    return Item(id=row.id, external_id=row.external_id, text=row.text, status=row.status, issued_on=row.issued_on,
                due_on=row.due_on, facility=row.facility, region=row.region, awaiting_review=bool(row.awaiting_review),
                letter=letter_of(ministry, row.ir_ref, row.ir_on, row.reminder_on))


def open_items(connection: Connection, ministry: str, filters: Filters, *, page: int = 1,
               page_size: int = PAGE_SIZE) -> tuple[list[Item], int]:
    """One page of the ministry's open items (grouped by letter, then by deadline) and how many match in all."""
    items = _items(ministry)
    total = connection.execute(select(func.count()).select_from(items).where(*_conditions(items, filters))).scalar_one()
    rows = connection.execute(_ordered(items, filters).limit(page_size).offset(max(page - 1, 0) * page_size)).all()
    found = [_item(ministry, row) for row in rows]
    annotate(connection, found)
    return found, int(total)


def all_open_items(connection: Connection, ministry: str, filters: Filters) -> list[Item]:
    """Every open item matching the filters, in the page's order (the spreadsheet)."""
    return [_item(ministry, row) for row in connection.execute(_ordered(_items(ministry), filters)).all()]


def items_by_id(connection: Connection, ministry: str, ids: Sequence[int]) -> dict[int, Item]:
    """The ministry's items among `ids`, whatever their status (another body's are simply absent)."""
    if not ids:
        return {}
    items = _items(ministry, only_open=False)
    rows = connection.execute(select(items).where(one_of(connection, items.c.id, list(ids)))).all()
    found = {row.id: _item(ministry, row) for row in rows}
    annotate(connection, list(found.values()))
    return found


def item_by_external_id(connection: Connection, ministry: str, external_ids: Sequence[str]) -> dict[str, Item]:
    """The ministry's items by their external ids (the uploaded spreadsheet names them so)."""
    if not external_ids:
        return {}
    items = _items(ministry, only_open=False)
    found: dict[str, Item] = {}
    unique = sorted(set(external_ids))
    for start in range(0, len(unique), 10_000):
        chunk = unique[start:start + 10_000]
        rows = connection.execute(select(items).where(one_of(connection, items.c.external_id, chunk))).all()
        found.update({row.external_id: _item(ministry, row) for row in rows})
    return found


def annotate(connection: Connection, items: list[Item]) -> None:
    """Add what the list says beside an item: the office's comment on a returned claim, replies on their way."""
    if not items:
        return
    by_id = {item.id: item for item in items}
    c, rp = table_of(ReplyClaim), table_of(Reply)
    reviewed = connection.execute(
        select(c.c.recommendation_id, c.c.outcome, c.c.review_comment)
        .where(one_of(connection, c.c.recommendation_id, list(by_id)), c.c.reviewed_at.is_not(None))
        .order_by(c.c.reviewed_at, c.c.id)
    ).all()
    latest: dict[int, Any] = {}
    for row in reviewed:
        latest[row.recommendation_id] = row
    for item_id, row in latest.items():
        if row.outcome == ClaimOutcome.RETURNED and not by_id[item_id].awaiting_review:
            by_id[item_id].returned_comment = row.review_comment or ""
    pending = connection.execute(
        select(c.c.recommendation_id, rp.c.id, rp.c.state).select_from(c.join(rp, rp.c.id == c.c.reply_id))
        .where(one_of(connection, c.c.recommendation_id, list(by_id)),
               rp.c.state.in_([ReplyState.DRAFT.value, ReplyState.CONFIRMED.value]))
        .order_by(rp.c.id)
    ).all()
    for row in pending:
        by_id[row.recommendation_id].pending.append((f"REPLY-{row.id}", row.state))


@dataclass(frozen=True)
class Choices:
    """What the filters offer: only facilities, regions and letters the ministry has open items in."""

    facilities: list[tuple[int, str]]
    regions: list[str]
    letters: list[Letter]


def choices(connection: Connection, ministry: str) -> Choices:
    items = _items(ministry)
    facilities = connection.execute(
        select(items.c.facility_id, items.c.facility).where(items.c.facility_id.is_not(None)).distinct()).all()
    regions = connection.execute(select(items.c.region).where(items.c.region.is_not(None)).distinct()).scalars().all()
    irs = connection.execute(
        select(items.c.ir_ref, items.c.ir_on).where(items.c.ir_ref.is_not(None)).distinct()).all()
    reminders = connection.execute(
        select(items.c.reminder_on).where(items.c.ir_ref.is_(None), items.c.reminder_on.is_not(None)).distinct()
    ).scalars().all()
    unsent = connection.execute(
        select(func.count()).select_from(items).where(items.c.ir_ref.is_(None), items.c.reminder_on.is_(None))
    ).scalar_one()
    letters = [letter_of(ministry, ref, on, None) for ref, on in sorted(irs, key=lambda x: (x[1], x[0]), reverse=True)]
    letters += [letter_of(ministry, None, None, on) for on in sorted(reminders, reverse=True)]
    if unsent:
        letters.append(letter_of(ministry, None, None, None))
    return Choices(facilities=sorted(((i, n) for i, n in facilities), key=lambda x: x[1].casefold()),
                   regions=sorted(regions, key=str.casefold), letters=letters)


# --- one item, its history and its replies -----------------------------------------------------


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    effective_on: date | None
    from_status: str | None
    to_status: str
    reason: str


@dataclass
class EvidenceFile:
    id: int
    filename: str
    content_type: str
    size: int


@dataclass
class ReplySummary:
    id: int
    reference: str
    state: str
    responded_on: date
    letter_reference: str | None
    author_name: str
    author_position: str | None
    author_email: str | None
    created_at: datetime
    confirmed_at: datetime | None
    confirmed_by_name: str | None
    confirmed_by_position: str | None
    generation: int = 1
    items: int = 0
    evidence: list[EvidenceFile] = field(default_factory=list)


@dataclass
class ClaimView:
    """One claim of a reply, with the item it is about."""

    recommendation_id: int
    external_id: str
    text: str
    facility: str | None
    current_status: str
    claimed_status: str
    measures: str
    outcome: str
    review_comment: str | None
    reply: ReplySummary | None = None


def history(connection: Connection, item_id: int) -> list[HistoryEntry]:
    h = table_of(StatusChange)
    rows = connection.execute(
        select(h.c.at, h.c.effective_on, h.c.from_status, h.c.to_status, h.c.reason)
        .where(h.c.recommendation_id == item_id).order_by(h.c.at, h.c.id)
    ).all()
    return [HistoryEntry(row.at, row.effective_on, row.from_status, row.to_status, row.reason) for row in rows]


def _summary(row: Any) -> ReplySummary:
    return ReplySummary(id=row.id, reference=f"REPLY-{row.id}", state=row.state, responded_on=row.responded_on,
                        letter_reference=row.letter_reference, author_name=row.author_name,
                        author_position=row.author_position, author_email=row.author_email, created_at=row.created_at,
                        confirmed_at=row.confirmed_at, confirmed_by_name=row.confirmed_by_name,
                        confirmed_by_position=row.confirmed_by_position, generation=int(row.generation))


def _evidence_of(connection: Connection, reply_ids: Sequence[int]) -> dict[int, list[EvidenceFile]]:
    if not reply_ids:
        return {}
    e = table_of(Evidence)
    found: dict[int, list[EvidenceFile]] = {}
    for row in connection.execute(
        select(e.c.id, e.c.reply_id, e.c.filename, e.c.content_type, e.c.size)
        .where(one_of(connection, e.c.reply_id, list(reply_ids))).order_by(e.c.id)
    ).all():
        found.setdefault(row.reply_id, []).append(EvidenceFile(row.id, row.filename, row.content_type, row.size))
    return found


def item_replies(connection: Connection, ministry: str, item_id: int) -> list[ClaimView]:
    """The ministry's earlier replies about one item, newest first, each with its evidence."""
    c, rp, r = table_of(ReplyClaim), table_of(Reply), table_of(Recommendation)
    rows = connection.execute(
        select(rp, c.c.claimed_status, c.c.measures, c.c.outcome, c.c.review_comment, r.c.external_id, r.c.text,
               r.c.status.label("current_status"))
        .select_from(c.join(rp, rp.c.id == c.c.reply_id).join(r, r.c.id == c.c.recommendation_id))
        .where(c.c.recommendation_id == item_id, rp.c.ministry_code == ministry)
        .order_by(rp.c.created_at.desc(), rp.c.id.desc())
    ).all()
    files = _evidence_of(connection, [row.id for row in rows])
    views = []
    for row in rows:
        summary = _summary(row)
        summary.evidence = files.get(row.id, [])
        views.append(ClaimView(item_id, row.external_id, row.text, None, row.current_status, row.claimed_status,
                               row.measures, row.outcome, row.review_comment, summary))
    return views


def replies(connection: Connection, ministry: str, *, limit: int = 200) -> list[ReplySummary]:
    """The ministry's latest replies, newest first, with how many items each names."""
    c, rp = table_of(ReplyClaim), table_of(Reply)
    counts = select(c.c.reply_id, func.count().label("claims")).group_by(c.c.reply_id).subquery()
    rows = connection.execute(
        select(rp, counts.c.claims).select_from(rp.outerjoin(counts, counts.c.reply_id == rp.c.id))
        .where(rp.c.ministry_code == ministry).order_by(rp.c.created_at.desc(), rp.c.id.desc()).limit(limit)
    ).all()
    found = []
    for row in rows:
        summary = _summary(row)
        summary.items = int(row.claims or 0)
        found.append(summary)
    return found


def reply(connection: Connection, ministry: str, reply_id: int) -> tuple[ReplySummary, list[ClaimView]] | None:
    """One of the ministry's replies with its claims and evidence; None for another body's or none."""
    c, rp, r, f = table_of(ReplyClaim), table_of(Reply), table_of(Recommendation), table_of(Facility)
    row = connection.execute(select(rp).where(rp.c.id == reply_id, rp.c.ministry_code == ministry)).first()
    if row is None:
        return None
    summary = _summary(row)
    summary.evidence = _evidence_of(connection, [reply_id]).get(reply_id, [])
    claims = [
        ClaimView(x.recommendation_id, x.external_id, x.text, x.facility, x.status, x.claimed_status, x.measures,
                  x.outcome, x.review_comment)
        for x in connection.execute(
            select(c.c.recommendation_id, c.c.claimed_status, c.c.measures, c.c.outcome, c.c.review_comment,
                   r.c.external_id, r.c.text, r.c.status, f.c.name.label("facility"))
            .select_from(c.join(r, r.c.id == c.c.recommendation_id).outerjoin(f, f.c.id == r.c.facility_id))
            .where(c.c.reply_id == reply_id).order_by(c.c.id)
        ).all()
    ]
    summary.items = len(claims)
    return summary, claims


@dataclass(frozen=True)
class StoredEvidence:
    id: int
    reply_id: int
    ministry: str
    sha256: str
    filename: str
    content_type: str
    size: int


def evidence(connection: Connection, evidence_id: int) -> StoredEvidence | None:
    e, rp = table_of(Evidence), table_of(Reply)
    row = connection.execute(
        select(e.c.id, e.c.reply_id, rp.c.ministry_code, e.c.sha256, e.c.filename, e.c.content_type, e.c.size)
        .select_from(e.join(rp, rp.c.id == e.c.reply_id)).where(e.c.id == evidence_id)
    ).first()
    return None if row is None else StoredEvidence(*row)


@dataclass(frozen=True)
class MinistryInfo:
    code: str
    names: dict[str, str]
    language: str
    approval: str
    generation: int

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names["ru"]


def ministry(connection: Connection, code: str) -> MinistryInfo | None:
    m = table_of(Ministry)
    row = connection.execute(
        select(m.c.code, m.c.name_ru, m.c.name_kk, m.c.name_en, m.c.language, m.c.approval, m.c.link_generation)
        .where(m.c.code == code)
    ).first()
    if row is None:
        return None
    return MinistryInfo(row.code, {"ru": row.name_ru, "kk": row.name_kk, "en": row.name_en}, row.language,
                        row.approval, int(row.link_generation))
