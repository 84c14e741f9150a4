"""The registry tables: who must act (Ministry), where (Facility), after which Visit,
on what (Recommendation), and the append-only history of every change (StatusChange).

Layered as in the full-stack-fastapi-template: `XBase` holds the fields a caller supplies,
`X(table=True)` adds the keys and bookkeeping.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, String, Table, Text, UniqueConstraint, event, false
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Field, SQLModel

from followup.models.domain import Priority, Source, Status
from followup.models.search import fold
from followup.models.types import UTCDateTime, utcnow


def table_of(model: type[SQLModel]) -> Table:
    """A table model's SQLAlchemy `Table`, typed: SQLModel sets `__table__` at class creation,
    where a type checker cannot see it. Set-based statements are written against tables."""
    table = model.__dict__.get("__table__")
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


class MinistryBase(SQLModel):
    code: str = Field(primary_key=True, max_length=32)
    name_kk: str
    name_ru: str
    name_en: str
    aliases: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    language: str = Field(default="ru", max_length=2)
    #: `none`: the focal point confirms its own replies; `required`: a second official does
    approval: str = Field(default="required", max_length=10, sa_column_kwargs={"server_default": "required"})


class Ministry(MinistryBase, table=True):
    """A state body responsible for facilities; recommendations are addressed to it.

    Mirrors `config/ministries.yaml`: the office edits the file, `followup init` syncs it.
    """

    __tablename__ = "ministry"
    #: the generation of its reply links: `followup links revoke` raises it, and every link and
    #: session signed with an older one stops working at once (not from the config file)
    link_generation: int = Field(default=1, sa_column_kwargs={"server_default": "1"})


class FacilityBase(SQLModel):
    name: str = Field(sa_column=Column(String(300), nullable=False, unique=True))
    facility_type: str | None = Field(default=None, max_length=40)
    region: str | None = Field(default=None, max_length=100)
    ministry_code: str | None = Field(default=None, foreign_key="ministry.code", max_length=32)


class Facility(FacilityBase, table=True):
    """A closed facility: prison, police cell, psychiatric or social-care home, children's home…"""

    __tablename__ = "facility"
    id: int | None = Field(default=None, primary_key=True)


class VisitBase(SQLModel):
    external_id: str = Field(sa_column=Column(String(100), nullable=False, unique=True))
    visited_on: date
    kind: str = Field(default="planned", max_length=20)
    facility_id: int | None = Field(default=None, foreign_key="facility.id")
    team: str | None = None


class Visit(VisitBase, table=True):
    """A preventive visit (planned, special or follow-up) that produced recommendations."""

    __tablename__ = "visit"
    id: int | None = Field(default=None, primary_key=True)


class RecommendationBase(SQLModel):
    external_id: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    text: str = Field(sa_column=Column(Text, nullable=False))
    source: str = Field(default=Source.NPM_VISIT.value, max_length=20)
    mechanism_ref: str | None = Field(default=None, max_length=200)
    category: str | None = Field(default=None, max_length=100)
    priority: str = Field(default=Priority.NORMAL.value, max_length=10)
    issued_on: date
    due_on: date | None = None
    ministry_code: str | None = Field(default=None, foreign_key="ministry.code", max_length=32)
    facility_id: int | None = Field(default=None, foreign_key="facility.id")
    visit_id: int | None = Field(default=None, foreign_key="visit.id")
    grade: str | None = Field(default=None, max_length=1)
    #: UPR: the state that made the recommendation ("Norway") and the state's position on it
    recommending_state: str | None = Field(default=None, max_length=200)
    response: str | None = Field(default=None, max_length=10)
    #: selected by a treaty body for its follow-up procedure (deadline from policy.yaml `follow_up`)
    follow_up: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class Recommendation(RecommendationBase, table=True):
    """One recommendation to one responsible body, with its deadline and current status.

    `status` is only ever changed through `models.transitions`, which writes the
    matching StatusChange in the same transaction.
    """

    __tablename__ = "recommendation"
    __table_args__ = (
        Index("ix_recommendation_status_due_on", "status", "due_on"),
        Index("ix_recommendation_ministry_code", "ministry_code"),
        # the registry's list (models/listing.py) at 1,000,000 items: one ministry's items by
        # status and deadline, a facility's, and the sorts by deadline and by date of issue
        Index("ix_recommendation_ministry_status_due_on", "ministry_code", "status", "due_on"),
        Index("ix_recommendation_facility_id", "facility_id"),
        Index("ix_recommendation_due_on", "due_on"),
        Index("ix_recommendation_issued_on", "issued_on"),
    )
    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default=Status.ISSUED.value, max_length=32)
    #: `models.search.fold(text)`, written with every text (the ORM below, the import's bulk
    #: paths): what the full-text index holds, since neither database folds Cyrillic and Kazakh alike
    search_text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    #: the deadline clock, kept by `models.transitions` with every status change:
    #: the day it became overdue, since when it waits on the office, days waited in all
    overdue_since: date | None = None
    on_hold_since: date | None = None
    days_on_hold: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    #: a ministry's claim on it waits for the office's review: no reminder, escalation or level 2
    #: until the office accepts or returns it (the status stays what it was meanwhile)
    awaiting_review: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


@event.listens_for(Recommendation, "before_insert")
@event.listens_for(Recommendation, "before_update")
def _fold_for_search(_mapper: Any, _connection: Any, target: Recommendation) -> None:
    """A recommendation written through the ORM carries its folded text, like the bulk paths'."""
    target.search_text = fold(target.text)


class StatusChange(SQLModel, table=True):
    """One entry of a recommendation's history: who changed what, when, why, on what evidence.

    Append-only: the ORM refuses to update or delete it, and database triggers refuse it too
    (so a hand-written UPDATE cannot rewrite history either). An edit of the recommendation's
    fields that does not change its status is recorded with from_status == to_status and the
    changed fields in `changes`.
    """

    __tablename__ = "status_change"
    id: int | None = Field(default=None, primary_key=True)
    recommendation_id: int = Field(foreign_key="recommendation.id", index=True)
    from_status: str | None = Field(default=None, max_length=32)
    to_status: str = Field(max_length=32)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    actor: str = Field(max_length=200)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    evidence: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    #: the day the change took effect when it differs from `at`, the moment it was recorded
    #: (a ministry's reply dated 12.05 and filed on 20.05)
    effective_on: date | None = None
    changes: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    #: the day of the run that recorded it (the daily pass's `as_of`; None for a person's change): a
    #: pass run today for a past day records that day's changes, and the digest counts them on it
    recorded_on: date | None = None


class RecommendationTag(SQLModel, table=True):
    """A classification of a recommendation: a UHRI theme, a group of affected persons, an SDG.

    Kept as given ("Torture and other cruel, inhuman or degrading treatment"); filters match it
    case-insensitively (`followup export --tag theme:torture`).
    """

    __tablename__ = "recommendation_tag"
    __table_args__ = (
        UniqueConstraint("recommendation_id", "kind", "value", name="uq_recommendation_tag"),
        Index("ix_recommendation_tag_kind_value", "kind", "value"),
    )
    id: int | None = Field(default=None, primary_key=True)
    recommendation_id: int = Field(foreign_key="recommendation.id", index=True)
    kind: str = Field(max_length=20)
    value: str = Field(max_length=300)


class FollowUpGrade(SQLModel, table=True):
    """A treaty body's assessment of the state's follow-up reply on one recommendation, per round.

    One grade per round; the recommendation's `grade` is the letter of the latest round. The
    change is also written to the StatusChange history.
    """

    __tablename__ = "follow_up_grade"
    __table_args__ = (UniqueConstraint("recommendation_id", "round", name="uq_follow_up_grade_round"),)
    id: int | None = Field(default=None, primary_key=True)
    recommendation_id: int = Field(foreign_key="recommendation.id", index=True)
    round: int
    grade: str = Field(max_length=2)  # as the committee wrote it: A, B1, C2…
    graded_on: date
    document: str | None = Field(default=None, max_length=200)  # the committee's follow-up report, e.g. CCPR/C/125/2
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    actor: str = Field(max_length=200)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class HistoryIsAppendOnly(RuntimeError):
    """Raised when code tries to update or delete a StatusChange."""


@event.listens_for(OrmSession, "before_flush")
def _refuse_history_rewrites(session: OrmSession, _flush_context: Any, _instances: Any) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, StatusChange) and (obj in session.deleted or session.is_modified(obj)):
            raise HistoryIsAppendOnly(
                f"status_change {obj.id} is part of the history and cannot be changed or deleted"
            )
