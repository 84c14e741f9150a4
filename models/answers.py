"""How a ministry's reply becomes the registry's history: the reason that names the reply, the
evidence line, the moves along the transition table, and the individualized items it answers.

Shared by the two ways a reply comes in: the reply portal's confirmed replies
(`steps/replies.py`, the `record-responses` flow) and the office's paper replies
(`followup import responses`, spreadsheets/ingest.py). Plain functions over data, and two
set-based writes in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.orm import Session

from followup.models.domain import ClaimOutcome, IndividualizedStatus, ReplyChannel, ReplyState, Status
from followup.models.followup import IndividualizedItem, IndividualizedRecommendation
from followup.models.registry import table_of
from followup.models.replies import Reply, ReplyClaim
from followup.models.transitions import TransitionRequest, path_between, transition_many
from followup.models.types import utcnow

#: characters of the ministry's measures quoted in a history entry (the claim keeps them all)
REASON_MEASURES = 300
#: an evidence line longer than this names only the number of files (the reply keeps the list)
EVIDENCE_CHARS = 500

_CHANNEL_WORDS = {ReplyChannel.PORTAL.value: "ministry's portal", ReplyChannel.PAPER.value: "paper"}


def shorten(text: str | None, limit: int = REASON_MEASURES) -> str:
    """One line of at most `limit` characters, cut at a word with "…"."""
    line = " ".join((text or "").split())
    if len(line) <= limit:
        return line
    return line[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"


def reply_reason(*, reference: str, responded_on: date | None, channel: str, letter_reference: str | None = None,
                 source: str | None = None, measures: str | None = None) -> str:
    """The history's "why" of a move a reply made: it names the reply, so that `followup history`
    leads from the item to the reply, its claim and its evidence.

    reply REPLY-12 of 01.12.2026 (ministry's portal, letter IR-20261123-INTERIOR): <measures>
    """
    where = [_CHANNEL_WORDS.get(channel, channel)]
    if letter_reference:
        where.append(f"letter {letter_reference}")
    if source:
        where.append(source)
    day = f" of {responded_on:%d.%m.%Y}" if responded_on else ""
    said = shorten(measures)
    return f"reply {reference}{day} ({', '.join(where)})" + (f": {said}" if said else "")


def evidence_line(reference: str, files: Sequence[tuple[str, str]]) -> str | None:
    """What the history records as a reply's evidence: each file's name and the start of its
    SHA-256 (the file is kept by its hash), or "REPLY-12: 14 files" when that would be long."""
    if not files:
        return None
    named = f"{reference}: " + ", ".join(f"{name} (sha256 {digest[:12]})" for name, digest in files)
    if len(named) <= EVIDENCE_CHARS:
        return named
    return f"{reference}: {len(files)} files"


@dataclass(frozen=True)
class Move:
    """One item's way from where it stands to where a claim puts it, with its history entry."""

    recommendation_id: int
    external_id: str
    current: str
    target: str
    reason: str
    evidence: str | None
    effective_on: date | None


@dataclass(frozen=True)
class Batch:
    """One `transition_many` call: requests with their own reasons, evidence and days."""

    requests: list[TransitionRequest]
    reasons: list[str]
    evidences: list[str | None]
    effective_on: list[date | None]


class Rounds:
    """Moves planned as rounds of `transition_many`: round k holds every item's k-th step, so a
    thousand items moving two steps cost two batches, and an item two claims move (two replies
    in one run) takes its second claim's steps after its first."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self._steps: dict[int, int] = {}

    def add(self, move: Move) -> list[Status] | None:
        """Plan `move` along the table's shortest path; None (nothing planned) when no path exists."""
        path = path_between(move.current, move.target)
        if path is None:
            return None
        previous = Status(move.current)
        for status in path:
            depth = self._steps.get(move.recommendation_id, 0)
            if depth == len(self.batches):
                self.batches.append(Batch([], [], [], []))
            batch = self.batches[depth]
            batch.requests.append(TransitionRequest(move.recommendation_id, previous, status, move.external_id))
            batch.reasons.append(move.reason)
            batch.evidences.append(move.evidence)
            batch.effective_on.append(move.effective_on)
            self._steps[move.recommendation_id] = depth + 1
            previous = status
        return path

    def apply(self, session: Session, *, actor: str, at: datetime | None = None) -> int:
        """Make the planned moves, round after round, in the session's transaction; returns the
        number of status changes (each with its history entry)."""
        return sum(
            transition_many(session, b.requests, actor=actor, reason=b.reasons[0], reasons=b.reasons,
                            evidences=b.evidences, effective_on=b.effective_on, at=at)
            for b in self.batches
        )


def mark_answered(connection: Connection, *, reply_id: int, recommendation_ids: Iterable[int], on: date) -> int:
    """Record that a reply answered these items in the individualized recommendations still
    waiting for an answer (status `issued`): level 2 then counts only the silent items. The
    first reply on an item is kept. Returns how many items were marked."""
    ids = sorted(set(recommendation_ids))
    if not ids:
        return 0
    link, ir = table_of(IndividualizedItem), table_of(IndividualizedRecommendation)
    waiting = select(ir.c.id).where(ir.c.status == IndividualizedStatus.ISSUED.value)
    result = connection.execute(
        update(link)
        .where(link.c.recommendation_id.in_(ids), link.c.answered_on.is_(None), link.c.individualized_id.in_(waiting))
        .values(answered_on=on, reply_id=reply_id)
    )
    return int(result.rowcount or 0)


def unmark_answered(connection: Connection, *, reply_id: int, recommendation_ids: Iterable[int]) -> int:
    """Undo `mark_answered` for claims the office returned: the ministry owes an answer on these
    items again, and level 2 counts them as silent if none comes by the letter's deadline."""
    ids = sorted(set(recommendation_ids))
    if not ids:
        return 0
    link, ir = table_of(IndividualizedItem), table_of(IndividualizedRecommendation)
    waiting = select(ir.c.id).where(ir.c.status == IndividualizedStatus.ISSUED.value)
    result = connection.execute(
        update(link)
        .where(link.c.recommendation_id.in_(ids), link.c.reply_id == reply_id, link.c.individualized_id.in_(waiting))
        .values(answered_on=None, reply_id=None)
    )
    return int(result.rowcount or 0)


@dataclass(frozen=True)
class PaperRow:
    """One paper reply on one item (a row of a response file, or a reply typed in the workspace), checked: the item, where it stands, where the ministry says it is."""

    recommendation_id: int
    external_id: str
    current: str
    wanted: str
    responded_on: date
    note: str
    evidence: str | None
    ministry_code: str | None


def paper_replies(session: Session, moves: list[PaperRow], repeats: list[PaperRow], *, actor: str) -> dict[str, str]:
    """Write one recorded paper `Reply` per ministry whose rows move something, with its claims
    (applied for the moves, unchanged for the ministry's other rows); returns {ministry: REPLY-<id>}.

    A ministry whose rows all repeat where its items stand gets none: importing the same file
    again writes nothing. Rows on items without a ministry move without a reply (a reply is a
    body's).
    """
    by_ministry: dict[str, list[tuple[PaperRow, str]]] = {}
    for checked, outcome in ((moves, ClaimOutcome.APPLIED.value), (repeats, ClaimOutcome.UNCHANGED.value)):
        for one in checked:
            if one.ministry_code is not None:
                by_ministry.setdefault(one.ministry_code, []).append((one, outcome))
    now = utcnow()
    connection = session.connection()
    reply, claim = table_of(Reply), table_of(ReplyClaim)
    references: dict[str, str] = {}
    for code, rows in sorted(by_ministry.items()):
        if not any(outcome == ClaimOutcome.APPLIED.value for _, outcome in rows):
            continue
        responded_on = max(row.responded_on for row, _ in rows)
        reply_id = connection.execute(insert(reply).returning(reply.c.id), {
            "ministry_code": code, "channel": ReplyChannel.PAPER.value, "letter_reference": None,
            "responded_on": responded_on, "author_name": actor, "author_position": None, "author_email": None,
            "state": ReplyState.RECORDED.value, "generation": 1, "confirmed_by_name": actor, "confirmed_by_position": None,
            "confirmed_by_email": None, "created_at": now, "confirmed_at": now, "recorded_at": now,
        }).scalar_one()
        connection.execute(insert(claim), [
            {"reply_id": reply_id, "recommendation_id": row.recommendation_id, "claimed_status": row.wanted,
             "measures": row.note, "outcome": outcome} for row, outcome in rows
        ])
        mark_answered(connection, reply_id=reply_id, recommendation_ids=[row.recommendation_id for row, _ in rows], on=responded_on)
        references[code] = f"REPLY-{reply_id}"
    return references
