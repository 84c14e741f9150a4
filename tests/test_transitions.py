"""The transition table and the one function that changes a status (no Prefect, no files)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from followup.models.crud import get_history
from followup.models.domain import Status
from followup.models.policy import CLOSED_STATUSES
from followup.models.registry import HistoryIsAppendOnly, Recommendation, StatusChange
from followup.models.transitions import (
    TRANSITIONS,
    ConcurrentChange,
    IllegalTransition,
    TransitionRequest,
    allowed,
    check_transition,
    transition,
    transition_many,
)

S = Status


def test_every_status_has_a_row_in_the_table():
    assert set(TRANSITIONS) == {None, *Status}


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (None, S.ISSUED), (None, S.UNASSIGNED), (S.UNASSIGNED, S.ISSUED), (S.ISSUED, S.OVERDUE),
        (S.OVERDUE, S.ESCALATED), (S.ESCALATED, S.IMPLEMENTED), (S.ISSUED, S.ON_HOLD),
        (S.ON_HOLD, S.IN_PROGRESS), (S.IN_PROGRESS, S.PARTIALLY_IMPLEMENTED),
        (S.PARTIALLY_IMPLEMENTED, S.IMPLEMENTED), (S.IMPLEMENTED, S.IN_PROGRESS), (S.REJECTED, S.ESCALATED),
    ],
)
def test_the_follow_up_path_is_allowed(src, dst):
    assert allowed(src, dst)
    check_transition(src, dst)


@pytest.mark.parametrize(
    ("src", "dst", "words"),
    [
        (S.WITHDRAWN, S.ISSUED, "nothing (final status)"),
        (S.IMPLEMENTED, S.OVERDUE, "cannot go from implemented to overdue"),
        (S.UNASSIGNED, S.OVERDUE, "cannot go from unassigned to overdue"),
        (None, S.IMPLEMENTED, "cannot go from (new) to implemented"),
        (S.ISSUED, S.ISSUED, "already issued"),
        (S.ISSUED, "lost", "unknown status 'lost'"),
    ],
)
def test_an_illegal_transition_is_a_clear_error(src, dst, words):
    assert not allowed(src, dst)
    with pytest.raises(IllegalTransition, match=words.replace("(", r"\(").replace(")", r"\)")):
        check_transition(src, dst)


def test_closed_statuses_lead_nowhere_automatic():
    for status in CLOSED_STATUSES:
        assert S.OVERDUE not in TRANSITIONS[status]
        assert S.ON_HOLD not in TRANSITIONS[status]


def _new_recommendation(session, external_id="NPM-1") -> Recommendation:
    rec = Recommendation(external_id=external_id, text="Обеспечить питьевой водой", issued_on=date(2024, 2, 15), ministry_code="interior")
    session.add(rec)
    session.flush()
    transition_many(session, [TransitionRequest(rec.id, None, S.ISSUED)], actor="clerk", reason="created")
    session.commit()
    return rec


def test_transition_writes_status_and_history_together(session):
    rec = _new_recommendation(session)
    transition(session, rec, S.IN_PROGRESS, actor="МВД", reason="письмо №12", evidence="scan-12.pdf")
    session.commit()
    session.expire_all()
    assert session.get(Recommendation, rec.id).status == "in_progress"
    log = [(h.from_status, h.to_status, h.actor, h.reason, h.evidence) for h in get_history(session=session, recommendation_id=rec.id)]
    assert log == [(None, "issued", "clerk", "created", None), ("issued", "in_progress", "МВД", "письмо №12", "scan-12.pdf")]
    assert all(h.at.tzinfo is not None for h in get_history(session=session, recommendation_id=rec.id))


def test_an_illegal_transition_writes_nothing(session):
    rec = _new_recommendation(session)
    with pytest.raises(IllegalTransition):
        transition(session, rec, S.ESCALATED, actor="clerk", reason="too early")
    session.rollback()
    assert session.get(Recommendation, rec.id).status == "issued"
    assert len(get_history(session=session, recommendation_id=rec.id)) == 1


def test_a_change_needs_who_and_why(session):
    rec = _new_recommendation(session)
    with pytest.raises(ValueError, match="actor"):
        transition(session, rec, S.IN_PROGRESS, actor=" ", reason="x")
    with pytest.raises(ValueError, match="reason"):
        transition(session, rec, S.IN_PROGRESS, actor="clerk", reason="")


def test_one_illegal_request_in_a_set_writes_none_of_the_set(session):
    a, b = _new_recommendation(session, "A"), _new_recommendation(session, "B")
    with pytest.raises(IllegalTransition, match="B: cannot go from issued to escalated"):
        transition_many(
            session,
            [TransitionRequest(a.id, S.ISSUED, S.OVERDUE, "A"), TransitionRequest(b.id, S.ISSUED, S.ESCALATED, "B")],
            actor="scheduler", reason="deadline passed",
        )
    session.rollback()
    assert {r.status for r in session.query(Recommendation)} == {"issued"}


def test_a_stale_read_is_refused_not_applied_twice(session):
    rec = _new_recommendation(session)
    transition_many(session, [TransitionRequest(rec.id, S.ISSUED, S.OVERDUE)], actor="worker-1", reason="deadline passed")
    with pytest.raises(ConcurrentChange):
        # a second worker that read the same row before the first one wrote
        transition_many(session, [TransitionRequest(rec.id, S.ISSUED, S.OVERDUE)], actor="worker-2", reason="deadline passed")
    session.rollback()


def test_history_cannot_be_rewritten_through_the_orm(session):
    rec = _new_recommendation(session)
    entry = get_history(session=session, recommendation_id=rec.id)[0]
    entry.reason = "something nicer"
    with pytest.raises(HistoryIsAppendOnly):
        session.flush()
    session.rollback()
    session.delete(session.get(StatusChange, entry.id))
    with pytest.raises(HistoryIsAppendOnly):
        session.flush()
    session.rollback()


@pytest.mark.parametrize("statement", ["UPDATE status_change SET reason = 'rewritten'", "DELETE FROM status_change"])
def test_history_cannot_be_rewritten_in_sql_either(session, statement):
    _new_recommendation(session)
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(text(statement))
    session.rollback()
    assert session.execute(text("SELECT count(*) FROM status_change")).scalar_one() == 1
