"""Treaty bodies' follow-up procedure: the recommendations a committee selected, their deadline,
and the committee's grade of the state's reply, round after round.

In its concluding observations a committee (Human Rights Committee, Committee against Torture…)
picks 2-4 recommendations and asks the state to report on them within one or two years. Those
get that deadline (`config/policy.yaml` `follow_up`, per committee), so the daily pass reminds
the responsible ministry to prepare the reply as for any deadline. The committee then grades
the reply (A largely satisfactory … E contrary to the recommendation, `FOLLOW_UP_GRADES`),
possibly over several rounds. Each grade is kept per round (`FollowUpGrade`), the letter of the
latest round goes on the recommendation, and both appear in its history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from followup.config.policy import Policy
from followup.models.db import one_of
from followup.models.domain import FOLLOW_UP_GRADES, Source
from followup.models.international import committee_of
from followup.models.registry import FollowUpGrade, Recommendation, table_of
from followup.models.transitions import record_edits
from followup.models.types import utcnow


class FollowUpError(ValueError):
    """A follow-up step that does not apply (unknown item, not a treaty body's, round graded otherwise)."""


def parse_grade(text: str) -> str:
    """`b1`, ` B ` -> `B1`, `B`; raises FollowUpError listing the scale."""
    grade = text.strip().upper()
    if grade not in FOLLOW_UP_GRADES:
        scale = "; ".join(f"{g}: {m}" for g, m in FOLLOW_UP_GRADES.items() if len(g) == 1)
        raise FollowUpError(f"unknown grade {text!r}: the scale is {scale} (the Human Rights Committee's B1, B2, C1, C2, D1, D2 too)")
    return grade


def grade_meaning(grade: str) -> str:
    return FOLLOW_UP_GRADES.get(grade.upper(), "")


def follow_up_due(*, issued_on: date, mechanism_ref: str | None, policy: Policy) -> date:
    """When the committee expects the follow-up report: the concluding observations' date + its term."""
    return policy.follow_up.term_for(committee_of(mechanism_ref)).after(issued_on)


def _read(session: Session, external_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    r = table_of(Recommendation)
    connection = session.connection()
    rows = connection.execute(
        select(r.c.id, r.c.external_id, r.c.status, r.c.source, r.c.mechanism_ref, r.c.issued_on, r.c.due_on,
               r.c.follow_up, r.c.grade)
        .where(one_of(connection, r.c.external_id, list(external_ids)))
    ).mappings().all()
    found = {row["external_id"]: dict(row) for row in rows}
    missing = [k for k in external_ids if k not in found]
    if missing:
        raise FollowUpError(f"no recommendation {', '.join(map(repr, missing[:10]))} in the registry")
    return found


def select_for_follow_up(
    *, session: Session, external_ids: Sequence[str], policy: Policy, actor: str, due_on: date | None = None,
    selected: bool = True, reason: str | None = None,
) -> list[tuple[str, date | None]]:
    """Mark treaty-body recommendations as selected for the follow-up procedure (or, `selected=False`,
    no longer selected) and set their deadline: `due_on` when given (the date the concluding
    observations name), else the committee's term from the policy. Returns (external_id, deadline)
    of those that changed; a second call changes nothing. A deselected item keeps its deadline.
    """
    rows = _read(session, external_ids)
    wrong = [k for k, row in rows.items() if row["source"] != Source.TREATY_BODY.value]
    if wrong and selected:
        raise FollowUpError(f"{', '.join(wrong[:10])}: not a treaty body's recommendation (only committees have a follow-up procedure)")
    updates, edits, done = [], [], []
    for key in external_ids:
        row = rows[key]
        if not selected:
            if row["follow_up"]:
                updates.append({"b_id": row["id"], "b_follow_up": False, "b_due": row["due_on"]})
                edits.append((row["id"], row["status"], {"follow_up": [True, False]}))
                done.append((key, row["due_on"]))
            continue
        due = due_on or follow_up_due(issued_on=row["issued_on"], mechanism_ref=row["mechanism_ref"], policy=policy)
        if row["follow_up"] and row["due_on"] == due:
            continue
        diff: dict[str, list[Any]] = {}
        if not row["follow_up"]:
            diff["follow_up"] = [False, True]
        if row["due_on"] != due:
            diff["due_on"] = [row["due_on"].isoformat() if row["due_on"] else None, due.isoformat()]
        updates.append({"b_id": row["id"], "b_follow_up": True, "b_due": due})
        edits.append((row["id"], row["status"], diff))
        done.append((key, due))
    if updates:
        r = table_of(Recommendation)
        now = utcnow()
        session.connection().execute(
            update(r).where(r.c.id == bindparam("b_id")).values(follow_up=bindparam("b_follow_up"), due_on=bindparam("b_due"), updated_at=now),
            updates,
        )
        why = reason or ("selected by the committee for its follow-up procedure" if selected else "no longer in the committee's follow-up procedure")
        record_edits(session, edits, actor=actor, reason=why, at=now)
    return done


@dataclass(frozen=True)
class GradeResult:
    external_id: str
    round: int
    grade: str
    meaning: str
    changed: bool  # False: this very grade was already recorded for the round


def record_grade(
    *, session: Session, external_id: str, grade: str, round: int, graded_on: date, actor: str,
    document: str | None = None, note: str | None = None, next_due: date | None = None,
) -> GradeResult:
    """Record the committee's grade of one follow-up round.

    One grade per round: the same grade again changes nothing, a different one for a graded
    round is refused (a committee does not regrade a round; a new assessment is the next
    round). The recommendation's `grade` becomes the letter of its latest round. `next_due`
    is the committee's new deadline when it keeps the dialogue open (B, C: "additional
    information requested by …"): the ministry is reminded again before it.
    """
    grade = parse_grade(grade)
    if round < 1:
        raise FollowUpError(f"round {round}: rounds are numbered from 1")
    row = _read(session, [external_id])[external_id]
    if not row["follow_up"]:
        raise FollowUpError(
            f"{external_id} is not in a follow-up procedure; if the committee selected it: followup follow-up select {external_id}"
        )
    g = table_of(FollowUpGrade)
    connection = session.connection()
    rounds = {n: (gr, on) for n, gr, on in connection.execute(
        select(g.c.round, g.c.grade, g.c.graded_on).where(g.c.recommendation_id == row["id"])
    ).all()}
    if round in rounds:
        if rounds[round][0] == grade:
            return GradeResult(external_id, round, grade, grade_meaning(grade), changed=False)
        raise FollowUpError(
            f"{external_id}: round {round} was graded {rounds[round][0]} on {rounds[round][1]:%d.%m.%Y}; "
            f"a new assessment is round {max(rounds) + 1}"
        )
    now = utcnow()
    connection.execute(g.insert().values(
        recommendation_id=row["id"], round=round, grade=grade, graded_on=graded_on, document=document,
        note=note, actor=actor, at=now,
    ))
    latest = max([*rounds, round])
    letter = (grade if latest == round else rounds[latest][0])[0]
    values: dict[str, Any] = {}
    diff: dict[str, list[Any]] = {}
    if letter != row["grade"]:
        values["grade"] = letter
        diff["grade"] = [row["grade"], letter]
    if next_due and next_due != row["due_on"]:
        values["due_on"] = next_due
        diff["due_on"] = [row["due_on"].isoformat() if row["due_on"] else None, next_due.isoformat()]
    r = table_of(Recommendation)
    if values:
        connection.execute(update(r).where(r.c.id == row["id"]).values(**values, updated_at=now))
    diff["follow_up_round"] = [None, round]
    committee = committee_of(row["mechanism_ref"]) or "the committee"
    why = f"{committee} follow-up round {round}: grade {grade} ({grade_meaning(grade)}), {graded_on:%d.%m.%Y}"
    if document:
        why += f", {document}"
    if note:
        why += f": {note}"
    record_edits(session, [(row["id"], row["status"], diff)], actor=actor, reason=why, at=now)
    return GradeResult(external_id, round, grade, grade_meaning(grade), changed=True)


def grade_history(*, session: Session, recommendation_id: int) -> list[FollowUpGrade]:
    """The committee's grades of one recommendation, round by round."""
    g = table_of(FollowUpGrade)
    rows = session.connection().execute(
        select(g).where(g.c.recommendation_id == recommendation_id).order_by(g.c.round)
    ).mappings().all()
    return [FollowUpGrade(**dict(row)) for row in rows]
