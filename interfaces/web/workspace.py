"""What the office's workspace reads that the registry's listing does not: its users, the
individualized recommendations with their items, the messages that did not leave, the ministries'
trend. Plain statements on a connection, each a handful of queries whatever the registry's size
(the scorecards' trend reads the history once, in a frame).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, func, or_, select

from followup.config.settings import get_settings
from followup.models.dates import day_of
from followup.models.domain import NotificationStatus
from followup.models.followup import IndividualizedItem, IndividualizedRecommendation, Notification
from followup.models.policy import LATE_STATUSES, OPEN_STATUSES
from followup.models.registry import Facility, Ministry, Recommendation, StatusChange, table_of
from followup.models.users import OfficeUser
from followup.reports.annual import status_at

LETTERS_PAGE = 20
#: what the failed-messages queue lists: the dispatcher's give-ups and the messages with nowhere to go
UNSENT = (NotificationStatus.FAILED.value, NotificationStatus.DEAD.value, NotificationStatus.UNROUTABLE.value)


@dataclass(frozen=True)
class MinistryName:
    code: str
    names: dict[str, str]

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names["ru"]


def ministries(connection: Connection) -> list[MinistryName]:
    m = table_of(Ministry)
    rows = connection.execute(select(m.c.code, m.c.name_ru, m.c.name_kk, m.c.name_en).order_by(m.c.code)).all()
    return [MinistryName(code, {"ru": ru, "kk": kk, "en": en}) for code, ru, kk, en in rows]


@dataclass(frozen=True)
class UserRow:
    name: str
    role: str
    full_name: str | None
    position: str | None
    active: bool
    locked: bool
    last_login_at: Any


def users(connection: Connection, now: Any) -> list[UserRow]:
    u = table_of(OfficeUser)
    rows = connection.execute(select(u.c.name, u.c.role, u.c.full_name, u.c.position, u.c.active, u.c.locked_until,
                                     u.c.last_login_at).order_by(u.c.name)).all()
    return [UserRow(n, r, f, p, bool(a), lu is not None and _aware(lu) > now, ll) for n, r, f, p, a, lu, ll in rows]


def _aware(moment: Any) -> Any:
    from datetime import UTC

    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


# --- individualized recommendations ------------------------------------------------------------------


@dataclass(frozen=True)
class LetterItem:
    external_id: str
    text: str
    status: str
    facility: str | None
    answered_on: date | None


@dataclass
class LetterView:
    id: int
    reference: str
    ministry_code: str
    issued_on: date
    response_due_on: date | None
    status: str
    level2_on: date | None
    items: list[LetterItem] = field(default_factory=list)

    @property
    def answered(self) -> int:
        return sum(1 for i in self.items if i.answered_on is not None)

    @property
    def pending(self) -> int:
        return len(self.items) - self.answered


def letters(connection: Connection, *, page: int = 1, ministry: str | None = None,
            pending_only: bool = False) -> tuple[list[LetterView], int]:
    """A page of individualized recommendations, newest first, each with its items (answered or
    pending); and how many letters there are in all."""
    ir, it = table_of(IndividualizedRecommendation), table_of(IndividualizedItem)
    r, f = table_of(Recommendation), table_of(Facility)
    stmt = select(ir.c.id, ir.c.reference, ir.c.ministry_code, ir.c.issued_on, ir.c.response_due_on, ir.c.status,
                  ir.c.level2_on)
    count = select(func.count()).select_from(ir)
    if ministry:
        stmt, count = stmt.where(ir.c.ministry_code == ministry), count.where(ir.c.ministry_code == ministry)
    if pending_only:
        waiting = select(it.c.individualized_id).where(it.c.answered_on.is_(None))
        stmt, count = stmt.where(ir.c.id.in_(waiting)), count.where(ir.c.id.in_(waiting))
    total = int(connection.execute(count).scalar_one())
    rows = connection.execute(stmt.order_by(ir.c.issued_on.desc(), ir.c.id.desc())
                              .limit(LETTERS_PAGE).offset((max(page, 1) - 1) * LETTERS_PAGE)).all()
    found = {row[0]: LetterView(*row) for row in rows}
    if found:
        items = connection.execute(
            select(it.c.individualized_id, r.c.external_id, r.c.text, r.c.status, f.c.name, it.c.answered_on)
            .select_from(it.join(r, r.c.id == it.c.recommendation_id).outerjoin(f, f.c.id == r.c.facility_id))
            .where(it.c.individualized_id.in_(list(found)))
            .order_by(it.c.individualized_id, r.c.external_id)
        ).all()
        for letter_id, *rest in items:
            found[letter_id].items.append(LetterItem(*rest))
    return list(found.values()), total


# --- messages that did not leave ----------------------------------------------------------------------


@dataclass(frozen=True)
class UnsentMessage:
    id: int
    recipient: str
    kind: str
    subject: str
    status: str
    attempts: int
    last_error: str | None
    created_at: Any


def unsent_messages(connection: Connection, limit: int = 100) -> tuple[list[UnsentMessage], int]:
    n = table_of(Notification)
    total = int(connection.execute(select(func.count()).select_from(n).where(n.c.status.in_(UNSENT))).scalar_one())
    rows = connection.execute(select(n.c.id, n.c.recipient, n.c.kind, n.c.subject, n.c.status, n.c.attempts, n.c.last_error,
                                     n.c.created_at).where(n.c.status.in_(UNSENT)).order_by(n.c.created_at.desc())
                              .limit(limit)).all()
    return [UnsentMessage(*row) for row in rows], total


# --- the ministries' trend ------------------------------------------------------------------------------


def month_ends(today: date, months: int = 12) -> list[date]:
    """The last day of each of the `months` months up to today's (today itself for the current month)."""
    ends = [today]
    first = today.replace(day=1)
    for _ in range(months - 1):
        last = first - pd.Timedelta(days=1)
        ends.append(last)
        first = last.replace(day=1)
    return list(reversed(ends))


def trend(connection: Connection, today: date, months: int = 12) -> dict[str, list[tuple[date, int, int]]]:
    """Per ministry, for each month end of the last `months`: (day, open items, late items) as the
    history had them then (open: waiting on the ministry or the office; late: LATE_STATUSES)."""
    r, h = table_of(Recommendation), table_of(StatusChange)
    waiting = {str(s) for s in OPEN_STATUSES | LATE_STATUSES}
    late_statuses = {str(s) for s in LATE_STATUSES}
    ends = month_ends(today, months)
    # only the items that may have been waiting at one of the month ends: those waiting now, and
    # those whose history moved during the window (an item settled before it stayed settled: it
    # counts at no month end), so the years before the window are not read
    start = ends[0].replace(day=1)
    moved = select(h.c.recommendation_id).where(or_(h.c.effective_on >= start, h.c.at >= datetime.combine(start - timedelta(days=1), time.min, UTC)))
    relevant = or_(r.c.status.in_(sorted(waiting)), r.c.id.in_(moved))
    recs = pd.DataFrame(connection.execute(select(r.c.id, r.c.ministry_code, r.c.issued_on).where(relevant)).all(),
                        columns=["id", "ministry_code", "issued_on"], dtype=object)
    history = pd.DataFrame(connection.execute(
        select(h.c.recommendation_id, h.c.id, h.c.to_status, h.c.effective_on, h.c.at)
        .select_from(h.join(r, h.c.recommendation_id == r.c.id)).where(relevant)).all(),
        columns=["recommendation_id", "id", "to_status", "effective_on", "at"], dtype=object)
    if len(history):
        tz = get_settings().tz
        history = history.assign(on=[day_of(effective_on, at, tz) for effective_on, at in
                                     zip(history["effective_on"], history["at"], strict=True)])
    else:
        history = history.assign(on=pd.Series(dtype=object))
    result: dict[str, list[tuple[date, int, int]]] = {}
    for day in ends:
        issued = recs[recs["issued_on"].map(lambda d, day=day: d is not None and d <= day)]
        if issued.empty:
            continue
        at = status_at(issued, history, day)
        still = at[at["status"].isin(waiting)]
        late = still[still["status"].isin(late_statuses)]
        open_by = still.groupby(still["ministry_code"].fillna("—")).size()
        late_by = late.groupby(late["ministry_code"].fillna("—")).size()
        for code in set(open_by.index) | set(result):
            result.setdefault(code, []).append((day, int(open_by.get(code, 0)), int(late_by.get(code, 0))))
    return result


def trend_svg(points: list[tuple[date, int, int]], *, width: int = 320, height: int = 90,
              label_open: str = "open", label_late: str = "late") -> str:
    """A small line chart as inline SVG (no script, no style attribute: the CSP forbids both), the
    open items in blue and the late ones in red, with the first and last month labelled."""
    from html import escape

    if not points:
        return ""
    top = max(max(o for _, o, _ in points), 1)
    pad_l, pad_r, pad_t, pad_b = 30, 8, 8, 18
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b
    step = inner_w / max(len(points) - 1, 1)

    def line(values: list[int]) -> str:
        return " ".join(f"{pad_l + i * step:.1f},{pad_t + inner_h - v / top * inner_h:.1f}" for i, v in enumerate(values))

    first, last = points[0][0], points[-1][0]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(label_open)} / {escape(label_late)}">'
        f'<line x1="{pad_l}" y1="{pad_t + inner_h}" x2="{width - pad_r}" y2="{pad_t + inner_h}" stroke="#b9c3cd"/>'
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + inner_h}" stroke="#b9c3cd"/>'
        f'<text x="{pad_l - 4}" y="{pad_t + 8}" font-size="10" text-anchor="end" fill="#5a6470">{top}</text>'
        f'<text x="{pad_l - 4}" y="{pad_t + inner_h}" font-size="10" text-anchor="end" fill="#5a6470">0</text>'
        f'<polyline fill="none" stroke="#1d5fa3" stroke-width="2" points="{line([o for _, o, _ in points])}"/>'
        f'<polyline fill="none" stroke="#b3261e" stroke-width="2" stroke-dasharray="4 2" '
        f'points="{line([lt for _, _, lt in points])}"/>'
        f'<text x="{pad_l}" y="{height - 4}" font-size="10" fill="#5a6470">{first:%m.%Y}</text>'
        f'<text x="{width - pad_r}" y="{height - 4}" font-size="10" text-anchor="end" fill="#5a6470">{last:%m.%Y}</text>'
        "</svg>"
    )
