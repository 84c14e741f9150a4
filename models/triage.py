"""The triage queue: recommendations without a responsible ministry, and giving them one.

International recommendations arrive without a ministry (status `unassigned`); nobody is
reminded of them until the office assigns one. `suggest` matches the office's rules
(`config/triage.yaml`: tags, words of the text, the facility's name or type) as a plain
function; `triage_queue` reads the queue, with each item's facility and its type, in two
statements; `assign` writes any number of assignments at once, each recorded in the history
with the actor (the ministry change as an edit, unassigned -> issued as a status change).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from followup.config.triage import TriageRule
from followup.models.db import one_of, tuples
from followup.models.domain import Status, TagKind
from followup.models.registry import Facility, Ministry, Recommendation, RecommendationTag, table_of
from followup.models.search import fold
from followup.models.transitions import TransitionRequest, record_edits, transition_many
from followup.models.types import utcnow

QUEUE_COLUMNS = ("external_id", "source", "mechanism_ref", "issued_on", "facility", "facility_type", "themes", "text",
                 "suggested", "rule")


class AssignmentError(ValueError):
    """An assignment names an unknown recommendation or ministry, or a withdrawn item; nothing was written."""


@dataclass(frozen=True)
class Suggestion:
    ministry: str
    rule: int  # index in the rules file
    because: str  # what matched, for the clerk: "theme 'Torture…'" / "keyword 'police'"


def suggest(*, text: str, source: str | None, tags: Mapping[str, Sequence[str]], rules: Sequence[TriageRule],
            facility: str | None = None, facility_type: str | None = None) -> Suggestion | None:
    """The first rule that matches a recommendation, or None (it stays for a person to decide).

    A rule matches on ANY of its themes / affected persons found in the tags of that kind, the
    facility's type among its `facility_types`, ANY of its `facilities` in the facility's name
    (folded as the search folds), or ANY keyword found in the text, words anywhere and without
    case; `sources` limits it.
    """
    folded = text.casefold()
    facility_folded = fold(facility)
    for i, rule in enumerate(rules):
        if rule.sources and source not in {s.value for s in rule.sources}:
            continue
        for kind, wanted in ((TagKind.THEME.value, rule.themes), (TagKind.AFFECTED_PERSONS.value, rule.affected_persons)):
            for w in wanted:
                hit = next((t for t in tags.get(kind, ()) if w.casefold() in t.casefold()), None)
                if hit is not None:
                    return Suggestion(rule.ministry, i, f"{'theme' if kind == TagKind.THEME.value else 'affected persons'} {hit!r}")
        if facility_type and facility_type in {t.value for t in rule.facility_types}:
            return Suggestion(rule.ministry, i, f"facility type {facility_type!r}")
        if facility_folded:
            name = next((n for n in rule.facilities if fold(n) in facility_folded), None)
            if name is not None:
                return Suggestion(rule.ministry, i, f"facility {facility!r}")
        for keyword in rule.keywords:
            if keyword.casefold() in folded:
                return Suggestion(rule.ministry, i, f"keyword {keyword!r}")
    return None


def triage_queue(*, session: Session, rules: Sequence[TriageRule] = ()) -> pd.DataFrame:
    """Every unassigned recommendation, oldest first, with its facility and the facility's type
    (None for an international one) and the ministry the rules suggest (or None)."""
    r, t, f = table_of(Recommendation), table_of(RecommendationTag), table_of(Facility)
    connection = session.connection()
    rows = tuples(connection.execute(
        select(r.c.id, r.c.external_id, r.c.source, r.c.mechanism_ref, r.c.issued_on, r.c.text, f.c.name, f.c.facility_type)
        .select_from(r.outerjoin(f, f.c.id == r.c.facility_id))
        .where(r.c.status == Status.UNASSIGNED.value)
        .order_by(r.c.issued_on, r.c.external_id)
    ))
    frame = pd.DataFrame(rows, columns=["id", "external_id", "source", "mechanism_ref", "issued_on", "text", "facility", "facility_type"],
                         dtype=object)
    tags: dict[int, dict[str, list[str]]] = {}
    if len(frame):
        tag_rows = connection.execute(
            select(t.c.recommendation_id, t.c.kind, t.c.value)
            .join(r, r.c.id == t.c.recommendation_id)
            .where(r.c.status == Status.UNASSIGNED.value)
            .order_by(t.c.id)
        ).all()
        for rec_id, kind, value in tag_rows:
            tags.setdefault(rec_id, {}).setdefault(kind, []).append(value)
    found = [suggest(text=x, source=s, tags=tags.get(i, {}), rules=rules, facility=fa, facility_type=ft)
             for i, x, s, fa, ft in zip(frame["id"], frame["text"], frame["source"], frame["facility"], frame["facility_type"], strict=True)]
    frame["themes"] = ["; ".join(tags.get(i, {}).get(TagKind.THEME.value, [])) or None for i in frame["id"]]
    frame["suggested"] = [f.ministry if f else None for f in found]
    frame["rule"] = [f"rules[{f.rule}]: {f.because}" if f else None for f in found]
    return frame[list(QUEUE_COLUMNS)]


def assign(*, session: Session, assignments: Mapping[str, str], actor: str, reason: str) -> int:
    """Give recommendations (external_id -> ministry code) their responsible ministry; returns how many changed.

    An unassigned item becomes `issued` (its deadline clock starts with the next daily pass);
    an assigned one moves to the other ministry and keeps its status. The same ministry again
    changes nothing. Every change is in the history with `actor` and `reason`. All or nothing:
    an unknown external id or ministry, or a withdrawn item, raises AssignmentError.
    """
    if not assignments:
        return 0
    connection = session.connection()
    r = table_of(Recommendation)
    known_ministries = {c for (c,) in connection.execute(select(table_of(Ministry).c.code)).all()}
    bad_ministry = sorted({m for m in assignments.values() if m not in known_ministries})
    if bad_ministry:
        raise AssignmentError(f"unknown ministry {', '.join(map(repr, bad_ministry))} (known: {', '.join(sorted(known_ministries))})")
    keys = list(assignments)
    current = {
        ext: (rec_id, status, code)
        for rec_id, ext, status, code in connection.execute(
            select(r.c.id, r.c.external_id, r.c.status, r.c.ministry_code).where(one_of(connection, r.c.external_id, keys))
        ).all()
    }
    missing = [k for k in keys if k not in current]
    if missing:
        raise AssignmentError(f"no recommendation {', '.join(map(repr, missing[:10]))} in the registry")
    withdrawn = [k for k in keys if current[k][1] == Status.WITHDRAWN.value]
    if withdrawn:
        raise AssignmentError(f"{', '.join(withdrawn[:10])}: withdrawn, nothing to assign")
    changes = [(k, *current[k], assignments[k]) for k in keys if current[k][2] != assignments[k]]
    if not changes:
        return 0
    now = utcnow()
    stmt = update(r).where(r.c.id == bindparam("b_id")).values(ministry_code=bindparam("b_code"), updated_at=now)
    connection.execute(stmt, [{"b_id": rec_id, "b_code": new} for _, rec_id, _, _, new in changes])
    record_edits(
        session, [(rec_id, status, {"ministry_code": [old, new]}) for _, rec_id, status, old, new in changes],
        actor=actor, reason=reason, at=now,
    )
    issue = [TransitionRequest(rec_id, Status.UNASSIGNED, Status.ISSUED, ext)
             for ext, rec_id, status, _, _ in changes if status == Status.UNASSIGNED.value]
    transition_many(session, issue, actor=actor, reason=reason, at=now)
    return len(changes)
