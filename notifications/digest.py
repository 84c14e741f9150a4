"""The data of the Ombudsman's weekly digest: its tables, no Prefect.

`build_digest(source, as_of)` reads the registry in a handful of SELECTs and shapes the
rows with pandas. Every section is a DataFrame with stable English snake_case columns
(`SECTION_COLUMNS`); a renderer translates the headers and formats the values. Dates are
`datetime.date` objects on SQLite and PostgreSQL alike; counts are integers; no cell is NaN
(a missing value is None). `digest_message(digest, language)` renders it as the office's message.

The period. A digest made on `as_of` covers the `days` days that END WITH `as_of`, both ends
included: ``since = as_of - (days - 1)``, ``since <= day <= as_of`` (7 days: Tuesday to the
next Monday for a Monday digest). The digest is made after that day's daily pass, so what
the pass did on `as_of` (an item overdue, an individualized recommendation issued) is in it
and not delayed a week, and consecutive weekly digests neither overlap nor leave a gap.
The day of a status change is its `effective_on` when set, else the date of `at` in the
office's time zone (Asia/Almaty, `FOLLOWUP_TIMEZONE`).

What is "period" and what is "now": `new_overdue`, `individualized` and `replies_received` (by the
day each reply reached the registry) list what happened in the period (for `new_overdue` also what was recorded in it with an earlier day: a backlog
that the first pass after an import marks overdue is new to the office that week); `awaiting_decision`, `unassigned`, `response_rates` and `failed_notifications`
describe the registry as it stands when the digest is built (current statuses), with
`as_of` only deciding which deadlines have passed.

Response rates. `sent`: every recommendation the ministry was sent (withdrawn ones left out).
`due`: of those, the ones whose deadline has passed on `as_of` (effective deadline < as_of,
i.e. due_on plus the days spent on hold, which move the deadline; items with no deadline yet
are not counted). `answered`: of the due ones, those whose current status is a ministry's
answer: implemented, partially_implemented (a partial answer is an answer, as in
config/policy.yaml) or rejected (a refusal is a reply; this is a response rate, not an
implementation rate); `response_rate` is answered / due. Withdrawn items are left out of every
count: withdrawing is the office's act, not the ministry's reply, and nothing is expected of the
ministry any more. Ministries with nothing due yet (due == 0) have no rate and are left out,
rather than shown as the worst with 0.

Individualized recommendations of the period carry their items (`section["items"]`: reference
-> frame of `LETTER_ITEM_COLUMNS`), so the office reads which recommendations went to whom.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, and_, case, func, or_, select
from sqlalchemy.orm import Session

from followup.config.policy import Policy, load_policy
from followup.config.settings import get_settings
from followup.models.backend import backend_of
from followup.models.calendar import WorkingCalendar
from followup.models.dates import as_date_or_none
from followup.models.domain import ClaimOutcome, IndividualizedStatus, NotificationStatus, Status
from followup.models.followup import (
    CommissionerDecision,
    IndividualizedItem,
    IndividualizedRecommendation,
    Notification,
)
from followup.models.policy import ANSWERED_STATUSES, LATE_STATUSES, effective_due
from followup.models.registry import Facility, Ministry, Recommendation, StatusChange, table_of
from followup.models.replies import Reply, ReplyClaim
from followup.notifications.render import by_deadline, is_item_list, items_csv, render, strings

#: the sections in digest order, each with its columns in order
SECTION_COLUMNS: dict[str, tuple[str, ...]] = {
    "new_overdue": ("external_id", "ministry", "facility", "region", "due_on", "overdue_since", "status"),
    "individualized": ("reference", "ministry", "issued_on", "response_due_on", "items", "status"),
    "drafts_waiting": ("reference", "ministry", "drafted_on", "items", "working_days"),
    "awaiting_decision": ("external_id", "ministry", "facility", "reference", "response_due_on"),
    "decisions": ("external_id", "ministry", "decision", "decided_on", "due_on", "actor"),
    "unassigned": ("external_id", "source", "mechanism_ref", "issued_on", "facility", "region", "category", "text"),
    "replies_received": (
        "reference", "ministry", "responded_on", "channel", "items", "applied", "under_review", "returned", "refused",
    ),
    "response_rates": (
        "ministry", "sent", "due", "answered", "response_rate", "overdue", "individualized_issued", "individualized_answered",
    ),
    "failed_notifications": ("recipient", "kind", "subject", "status", "attempts", "last_error", "created_at"),
}  # fmt: skip

#: what the digest lists of each individualized recommendation issued in the period (section `individualized`, `items`)
LETTER_ITEM_COLUMNS = ("external_id", "facility", "due_on", "days_overdue", "text")

#: notifications the office must know about (`unroutable`: no Apprise URL has the recipient's tag)
FAILED_NOTIFICATION_STATUSES = (NotificationStatus.FAILED.value, NotificationStatus.DEAD.value, "unroutable")
#: characters of a recommendation's text shown in the `unassigned` section
TEXT_CHARS = 120


@dataclass(frozen=True)
class Digest:
    """The digest's data. The period is `since` <= day <= `as_of` (both included)."""

    since: date  # first day of the period: as_of - (days - 1)
    as_of: date  # last day of the period, the day of the digest
    sections: list[dict[str, Any]]  # [{"key": str, "rows": pandas.DataFrame}, ...] in SECTION_COLUMNS order
    #: the state bodies' names by code and language ({"interior": {"ru": …, "kk": …, "en": …}}): the
    #: rows keep the codes, the message shows the names in the office's language
    ministries: dict[str, dict[str, str]] = field(default_factory=dict)

    def section(self, key: str) -> pd.DataFrame:
        """The rows of one section by its key."""
        for section in self.sections:
            if section["key"] == key:
                return section["rows"]
        raise KeyError(f"no section {key!r} (sections: {', '.join(s['key'] for s in self.sections)})")

    @property
    def keys(self) -> list[str]:
        return [s["key"] for s in self.sections]


def build_digest(connection_or_session: Connection | Session | Engine, as_of: date, *, days: int = 7) -> Digest:
    """The weekly digest's tables for the `days` days ending with `as_of` (included).

    Accepts a SQLAlchemy Connection, an ORM/SQLModel Session (read in its transaction) or an
    Engine (a connection is opened and closed here; on PostgreSQL in one REPEATABLE READ
    snapshot, so the sections agree with each other). Only reads.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    since = as_of - timedelta(days=days - 1)
    tz = get_settings().tz
    with _connected(connection_or_session) as connection:
        letters = _individualized(connection, since, as_of)
        sections = {
            "new_overdue": _new_overdue(connection, since, as_of, tz),
            "individualized": letters,
            "drafts_waiting": drafts_waiting(connection, as_of),
            "awaiting_decision": _awaiting_decision(connection),
            "decisions": _decisions(connection, since, as_of),
            "unassigned": _unassigned(connection),
            "replies_received": _replies_received(connection, since, as_of, tz),
            "response_rates": _response_rates(connection, as_of),
            "failed_notifications": _failed_notifications(connection, tz),
        }
        items = _letter_items(connection, list(letters["reference"]), as_of)
        ministries = _ministry_names(connection)
    for key, frame in sections.items():
        assert tuple(frame.columns) == SECTION_COLUMNS[key], (key, tuple(frame.columns))
    return Digest(since=since, as_of=as_of, ministries=ministries, sections=[
        {"key": key, "rows": sections[key], **({"items": items} if key == "individualized" else {})} for key in SECTION_COLUMNS
    ])


@contextmanager
def _connected(source: Connection | Session | Engine) -> Iterator[Connection]:
    if isinstance(source, Session):
        yield source.connection()
    elif isinstance(source, Connection):
        yield source
    elif isinstance(source, Engine):
        options = backend_of(source).read_snapshot_options()
        with source.connect().execution_options(**options) as connection, connection.begin():
            yield connection
    else:
        raise TypeError(f"build_digest needs a Connection, Session or Engine, not {type(source).__name__}")


def _frame(rows: Any, columns: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """Rows as an object frame (dates stay `date`, missing values stay None)."""
    return pd.DataFrame([tuple(r) for r in rows], columns=list(columns), dtype=object)


def _dates(frame: pd.DataFrame, *columns: str) -> None:
    for column in columns:
        frame[column] = pd.Series([as_date_or_none(v) for v in frame[column]], index=frame.index, dtype=object)


def _sorted(frame: pd.DataFrame, by: list[str], ascending: list[bool] | bool = True) -> pd.DataFrame:
    return frame.sort_values(by, ascending=ascending, na_position="last", kind="stable").reset_index(drop=True)


# --- 1. new overdue ----------------------------------------------------------------------------


def _new_overdue(connection: Connection, since: date, as_of: date, tz: tzinfo) -> pd.DataFrame:
    """Items that became overdue in the period, by the day of their `to_status='overdue'` change,
    and items recorded as overdue in the period with an earlier day (a backlog caught up).

    An item that became overdue twice in the period is listed once, with the later day.
    History rows that only record an edit (from_status == to_status) are not a change.
    """
    h, r, f = table_of(StatusChange), table_of(Recommendation), table_of(Facility)
    start = datetime.combine(since, time(), tzinfo=tz)  # the period's first local midnight
    end = datetime.combine(as_of + timedelta(days=1), time(), tzinfo=tz)  # the midnight after as_of
    rows = connection.execute(
        select(
            r.c.id, r.c.external_id, r.c.ministry_code, f.c.name, f.c.region, r.c.due_on, r.c.status,
            h.c.effective_on, h.c.at,
        )
        .select_from(h.join(r, r.c.id == h.c.recommendation_id).outerjoin(f, f.c.id == r.c.facility_id))
        .where(
            h.c.to_status == Status.OVERDUE.value,
            h.c.from_status.is_distinct_from(h.c.to_status),
            or_(
                h.c.effective_on.between(since, as_of),
                # recorded in the period, whatever day it took effect: the first pass after an
                # import of a backlog, or after days without runs, backdates its overdue marks,
                # and the office would otherwise never see them as new. The period is the run's:
                # a pass for a past day (`--as-of`) records its marks on that day (`recorded_on`),
                # whatever the clock said; a person's change, on the day it was made
                h.c.recorded_on.between(since, as_of),
                and_(h.c.recorded_on.is_(None), h.c.at >= start, h.c.at < end),
            ),
        )
    ).all()
    frame = _frame(rows, ["id", "external_id", "ministry", "facility", "region", "due_on", "status", "effective_on", "at"])
    _dates(frame, "due_on", "effective_on")
    frame["overdue_since"] = pd.Series(
        [e if e is not None else a.astimezone(tz).date() for e, a in zip(frame["effective_on"], frame["at"], strict=True)],
        index=frame.index, dtype=object,
    )
    frame = frame.sort_values(["id", "overdue_since"], kind="stable").drop_duplicates("id", keep="last")
    return _sorted(frame, ["ministry", "due_on", "external_id"])[list(SECTION_COLUMNS["new_overdue"])]


# --- 2. individualized recommendations issued in the period ----------------------------------------


def _individualized(connection: Connection, since: date, as_of: date) -> pd.DataFrame:
    ir, link = table_of(IndividualizedRecommendation), table_of(IndividualizedItem)
    rows = connection.execute(
        select(ir.c.reference, ir.c.ministry_code, ir.c.issued_on, ir.c.response_due_on, func.count(link.c.id), ir.c.status)
        .select_from(ir.outerjoin(link, link.c.individualized_id == ir.c.id))
        .where(ir.c.issued_on.between(since, as_of), ir.c.status != IndividualizedStatus.DRAFT.value)  # drafts: drafts_waiting
        .group_by(ir.c.id, ir.c.reference, ir.c.ministry_code, ir.c.issued_on, ir.c.response_due_on, ir.c.status)
    ).all()
    frame = _frame(rows, SECTION_COLUMNS["individualized"])
    _dates(frame, "issued_on", "response_due_on")
    frame["items"] = frame["items"].astype("int64")
    return _sorted(frame, ["issued_on", "ministry", "reference"])


def _letter_items(connection: Connection, references: list[str], as_of: date) -> dict[str, pd.DataFrame]:
    """What each individualized recommendation of the period holds, by reference: its items by
    deadline, then number (as the reminders list them), with facility, the deadline as the letter gave it (moved by days on
    hold) and the days overdue on `as_of`. The office reads the digest to know what escalated."""
    if not references:
        return {}
    r, f = table_of(Recommendation), table_of(Facility)
    ir, link = table_of(IndividualizedRecommendation), table_of(IndividualizedItem)
    rows = connection.execute(
        select(ir.c.reference, r.c.id, r.c.external_id, f.c.name, r.c.due_on, r.c.days_on_hold, r.c.text)
        .select_from(link.join(ir, ir.c.id == link.c.individualized_id).join(r, r.c.id == link.c.recommendation_id)
                     .outerjoin(f, f.c.id == r.c.facility_id))
        .where(ir.c.reference.in_(references))
        .order_by(ir.c.reference, r.c.id)
    ).all()
    items: dict[str, list[tuple[Any, ...]]] = {reference: [] for reference in references}
    for reference, _, external_id, facility, due_on, held, text in rows:
        due = as_date_or_none(due_on)
        due = due + timedelta(days=int(held or 0)) if due is not None else None
        items[reference].append((external_id, facility, due, (as_of - due).days if due is not None else None, str(text)))
    # in the order of the reminders: by deadline, then by number
    return {reference: _frame([tuple(i.values()) for i in by_deadline([dict(zip(LETTER_ITEM_COLUMNS, row, strict=True)) for row in listed])],
                              LETTER_ITEM_COLUMNS) for reference, listed in items.items()}


def _ministry_names(connection: Connection) -> dict[str, dict[str, str]]:
    """Each state body's name in Kazakh, Russian and English (config/ministries.yaml, as the registry holds it)."""
    m = table_of(Ministry)
    return {code: {"ru": ru, "kk": kk or ru, "en": en or ru}
            for code, ru, kk, en in connection.execute(select(m.c.code, m.c.name_ru, m.c.name_kk, m.c.name_en)).all()}


def drafts_waiting(connection: Connection, as_of: date, policy: Policy | None = None) -> pd.DataFrame:
    """Drafted individualized recommendations a head has not approved within `individualized.approval_days`
    working days (config/policy.yaml): the letter has not left, and its items wait meanwhile."""
    policy = policy or load_policy()
    ir, link = table_of(IndividualizedRecommendation), table_of(IndividualizedItem)
    rows = connection.execute(
        select(ir.c.reference, ir.c.ministry_code, ir.c.issued_on, func.count(link.c.id))
        .select_from(ir.outerjoin(link, link.c.individualized_id == ir.c.id))
        .where(ir.c.status == IndividualizedStatus.DRAFT.value, ir.c.issued_on <= as_of)
        .group_by(ir.c.id, ir.c.reference, ir.c.ministry_code, ir.c.issued_on)
    ).all()
    calendar = WorkingCalendar.from_policy(policy.calendar)
    frame = _frame([(*row, calendar.working_days_between(as_date_or_none(row[2]) or as_of, as_of)) for row in rows],
                   SECTION_COLUMNS["drafts_waiting"])
    _dates(frame, "drafted_on")
    frame["items"] = pd.to_numeric(frame["items"]).astype("int64")
    frame["working_days"] = pd.to_numeric(frame["working_days"]).astype("int64")
    frame = frame[frame["working_days"] > policy.individualized.approval_days]
    return _sorted(frame, ["drafted_on", "ministry", "reference"])


# --- 3. level 2: awaiting the Ombudsman's decision --------------------------------------------------


def _awaiting_decision(connection: Connection) -> pd.DataFrame:
    """Every item now awaiting a decision, with the individualized recommendation it went unanswered in.

    An item listed in several letters (answered in part, escalated again) shows the latest one
    that went to level 2, else the latest one; none (None) if it reached this status another way.
    """
    r, f = table_of(Recommendation), table_of(Facility)
    ir, link = table_of(IndividualizedRecommendation), table_of(IndividualizedItem)
    rows = connection.execute(
        select(
            r.c.id, r.c.external_id, r.c.ministry_code, f.c.name, ir.c.reference, ir.c.response_due_on,
            ir.c.status, ir.c.issued_on, ir.c.id,
        )
        .select_from(
            r.outerjoin(f, f.c.id == r.c.facility_id)
            .outerjoin(link, link.c.recommendation_id == r.c.id)
            .outerjoin(ir, ir.c.id == link.c.individualized_id)
        )
        .where(r.c.status == Status.AWAITING_DECISION.value)
    ).all()
    frame = _frame(rows, ["id", "external_id", "ministry", "facility", "reference", "response_due_on",
                          "ir_status", "ir_issued_on", "ir_id"])
    _dates(frame, "response_due_on", "ir_issued_on")
    frame["level2"] = frame["ir_status"] == IndividualizedStatus.LEVEL2.value
    frame["ir_rank"] = pd.to_numeric(frame["ir_id"]).fillna(-1)
    frame = frame.sort_values(["id", "level2", "ir_rank"], kind="stable").drop_duplicates("id", keep="last")
    return _sorted(frame, ["response_due_on", "ministry", "external_id"])[list(SECTION_COLUMNS["awaiting_decision"])]


def _decisions(connection: Connection, since: date, as_of: date) -> pd.DataFrame:
    """The Commissioner's level-2 decisions taken in the period (table `decision`)."""
    d, r = table_of(CommissionerDecision), table_of(Recommendation)
    rows = connection.execute(
        select(r.c.external_id, r.c.ministry_code, d.c.decision, d.c.decided_on, d.c.due_on, d.c.actor)
        .select_from(d.join(r, r.c.id == d.c.recommendation_id))
        .where(d.c.decided_on.between(since, as_of))
    ).all()
    frame = _frame(rows, SECTION_COLUMNS["decisions"])
    _dates(frame, "decided_on", "due_on")
    return _sorted(frame, ["decided_on", "ministry", "external_id"])


# --- 4. unassigned ----------------------------------------------------------------------------------


def _unassigned(connection: Connection) -> pd.DataFrame:
    """Everything still without an owner: NPM items and, above all, UN mechanisms' recommendations,
    shown with their source and document reference (`CCPR/C/KAZ/CO/2, para. 24`)."""
    r, f = table_of(Recommendation), table_of(Facility)
    rows = connection.execute(
        select(r.c.external_id, r.c.source, r.c.mechanism_ref, r.c.issued_on, f.c.name, f.c.region, r.c.category,
               func.substr(r.c.text, 1, TEXT_CHARS))
        .select_from(r.outerjoin(f, f.c.id == r.c.facility_id))
        .where(r.c.status == Status.UNASSIGNED.value)
    ).all()
    frame = _frame(rows, SECTION_COLUMNS["unassigned"])
    _dates(frame, "issued_on")
    return _sorted(frame, ["issued_on", "external_id"])


# --- 5. replies received ------------------------------------------------------------------------------


#: what the office sees of a claim's outcome: moved (at once, or accepted on review), waiting, back, refused
_REPLY_COUNTS = {
    "applied": (ClaimOutcome.APPLIED.value, ClaimOutcome.ACCEPTED.value),
    "under_review": (ClaimOutcome.UNDER_REVIEW.value,),
    "returned": (ClaimOutcome.RETURNED.value,),
    "refused": (ClaimOutcome.REFUSED.value,),
}


def _replies_received(connection: Connection, since: date, as_of: date, tz: tzinfo) -> pd.DataFrame:
    """Replies that reached the registry in the period (by `recorded_at` in the office's time zone:
    a paper reply typed today about a letter of last month is new to the office today), each with
    its items and how many of its claims were applied, wait for review, were returned or refused.
    The outcomes are the claims' current ones: a claim accepted since counts as applied."""
    reply, claim, r = table_of(Reply), table_of(ReplyClaim), table_of(Recommendation)
    start = datetime.combine(since, time(), tzinfo=tz)
    end = datetime.combine(as_of + timedelta(days=1), time(), tzinfo=tz)
    rows = connection.execute(
        select(reply.c.id, reply.c.ministry_code, reply.c.responded_on, reply.c.channel, r.c.external_id, claim.c.outcome)
        .select_from(reply.join(claim, claim.c.reply_id == reply.c.id).join(r, r.c.id == claim.c.recommendation_id))
        .where(reply.c.recorded_at >= start, reply.c.recorded_at < end)
        .order_by(reply.c.id, claim.c.id)
    ).all()
    replies: dict[int, dict[str, Any]] = {}
    for reply_id, code, responded_on, channel, external_id, outcome in rows:
        row = replies.setdefault(int(reply_id), {
            "reference": f"REPLY-{reply_id}", "ministry": code, "responded_on": as_date_or_none(responded_on),
            "channel": channel, "items": [], **dict.fromkeys(_REPLY_COUNTS, 0),
        })
        row["items"].append(external_id)
        for column, outcomes in _REPLY_COUNTS.items():
            row[column] += outcome in outcomes
    frame = _frame([tuple(row.values()) for row in replies.values()], SECTION_COLUMNS["replies_received"])
    for column in _REPLY_COUNTS:
        frame[column] = frame[column].astype("int64")
    return _sorted(frame, ["responded_on", "ministry", "reference"])


# --- 6. response rates per ministry -----------------------------------------------------------------


def _response_rates(connection: Connection, as_of: date) -> pd.DataFrame:
    r, ir = table_of(Recommendation), table_of(IndividualizedRecommendation)
    rows = connection.execute(
        select(r.c.ministry_code, r.c.status, r.c.due_on, r.c.days_on_hold, r.c.on_hold_since)
        .where(r.c.ministry_code.is_not(None), r.c.status != Status.WITHDRAWN.value)
    ).all()
    recs = _frame(rows, ["ministry", "status", "due_on", "days_on_hold", "on_hold_since"])
    _dates(recs, "due_on", "on_hold_since")
    letters = _frame(
        connection.execute(
            select(
                ir.c.ministry_code, func.count(ir.c.id),
                func.sum(case((ir.c.status == IndividualizedStatus.ANSWERED.value, 1), else_=0)),
            )
            .where(ir.c.issued_on <= as_of, ir.c.status != IndividualizedStatus.DRAFT.value)
            .group_by(ir.c.ministry_code)
        ).all(),
        ["ministry", "individualized_issued", "individualized_answered"],
    ).set_index("ministry")
    columns = list(SECTION_COLUMNS["response_rates"])
    if recs.empty:
        kinds = {"ministry": object, "response_rate": "float64"}
        return pd.DataFrame({c: pd.Series(dtype=kinds.get(c, "int64")) for c in columns})

    # NaT (no deadline yet) is not due
    due = pd.Series(effective_due(recs, as_of) < np.datetime64(as_of, "D"), index=recs.index)
    answered = due & recs["status"].isin([s.value for s in ANSWERED_STATUSES])
    late = recs["status"].isin([s.value for s in LATE_STATUSES])
    sent = pd.Series(True, index=recs.index)  # every item the body has been sent (withdrawn ones left out above)
    per = pd.DataFrame({"ministry": recs["ministry"], "sent": sent, "due": due, "answered": answered, "overdue": late})
    per = per.groupby("ministry").sum().astype("int64")
    per = per[per["due"] > 0]
    per["response_rate"] = (per["answered"] / per["due"]).astype("float64")
    for column in ("individualized_issued", "individualized_answered"):
        per[column] = letters[column].reindex(per.index).fillna(0).astype("int64")
    per = per.reset_index()
    per["ministry"] = per["ministry"].astype(object)  # like every text column of the digest
    return _sorted(per, ["response_rate", "overdue", "ministry"], ascending=[True, False, True])[columns]


# --- 7. failed notifications -------------------------------------------------------------------------


def _failed_notifications(connection: Connection, tz: tzinfo) -> pd.DataFrame:
    """Messages that did not go out; `created_at` as an aware datetime in the office's time zone."""
    n = table_of(Notification)
    rows = connection.execute(
        select(n.c.recipient, n.c.kind, n.c.subject, n.c.status, n.c.attempts, n.c.last_error, n.c.created_at)
        .where(n.c.status.in_(FAILED_NOTIFICATION_STATUSES))
        .order_by(n.c.created_at, n.c.id)
    ).all()
    frame = _frame(rows, SECTION_COLUMNS["failed_notifications"])
    frame["attempts"] = pd.to_numeric(frame["attempts"]).fillna(0).astype("int64")
    frame["created_at"] = pd.Series([v.astimezone(tz) for v in frame["created_at"]], index=frame.index, dtype=object)
    return frame


# --- the office's message ---------------------------------------------------------------------------


def digest_message(digest: Digest, language: str, *, listed_items: int | None = None) -> dict[str, Any]:
    """The digest as the office's message (the fields `outbox.queue` takes, but recipient and key):
    rendered in the office's language with the state bodies' names, each individualized
    recommendation followed by its first `listed_items` items (config/policy.yaml
    `letters.listed_items`, like the reminders) and, when one holds more, every item of every
    letter in an attached spreadsheet (the reminders' CSV writer)."""
    if listed_items is None:
        listed_items = load_policy().letters.listed_items
    letters = next((s.get("items") or {} for s in digest.sections if s["key"] == "individualized"), {})
    long_sections = [s for s in digest.sections
                     if isinstance(s["rows"], pd.DataFrame) and is_item_list(s["rows"]) and len(s["rows"]) > listed_items]
    long_letters = any(len(items) > listed_items for items in letters.values())
    attachment = f"digest-{digest.as_of.isoformat()}-items.csv" if long_letters or long_sections else None
    rendered = render("digest", language, {
        "as_of": digest.as_of, "since": digest.since, "sections": digest.sections, "ministries": digest.ministries,
        "listed_items": listed_items, "attachment": attachment,
    })
    message: dict[str, Any] = {
        "kind": "digest", "language": language, "subject": rendered.subject, "body_text": rendered.text,
        "body_html": rendered.html,
        "payload": {"as_of": digest.as_of.isoformat(), "since": digest.since.isoformat(),
                    "counts": {s["key"]: len(s["rows"]) for s in digest.sections},
                    **({"attachment": attachment} if attachment else {})},
    }
    if attachment:
        headings = strings(language)["sections"]
        ministry_of = dict(zip(digest.section("individualized")["reference"], digest.section("individualized")["ministry"], strict=True))
        listed: list[tuple[str, list[dict[str, Any]]]] = [
            ((headings.get(s["key"]) or {}).get("heading", s["key"]),
             [{"text": "", "facility": None, "due_on": None, **row} for row in s["rows"].to_dict("records")])
            for s in long_sections
        ]
        listed += [(f"{reference} — {(digest.ministries.get(str(ministry_of.get(reference))) or {}).get(language, ministry_of.get(reference))}",
                    items.to_dict("records")) for reference, items in letters.items()] if long_letters else []
        message["attachment"] = items_csv(listed, language)
    return message
