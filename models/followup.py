"""What the deadline and escalation runs write besides status changes: the reminders sent,
the individualized recommendations with their items, and the notification outbox.

Unique keys make the runs idempotent and safe when two workers run at once: a reminder is
(recommendation, deadline, offset) once; one individualized recommendation per ministry and
day; a notification has a unique dedupe key. A second run for the same day inserts nothing.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

import followup.models.replies  # noqa: F401  (the reply table an item's answer points at)
from followup.models.domain import IndividualizedStatus, NotificationStatus
from followup.models.types import UTCDateTime, utcnow


class Reminder(SQLModel, table=True):
    """A deadline reminder that went into a ministry's reminder letter (each offset once)."""

    __tablename__ = "reminder"
    __table_args__ = (UniqueConstraint("recommendation_id", "due_on", "offset_days", name="uq_reminder_once"),)
    id: int | None = Field(default=None, primary_key=True)
    recommendation_id: int = Field(foreign_key="recommendation.id", index=True)
    due_on: date
    offset_days: int
    sent_on: date  # the run's as_of day
    notification_id: int | None = Field(default=None, foreign_key="notification.id")


def reminder_reference(code: str, as_of: date) -> str:
    """A reminder letter's number, for the ministry to quote in its reply: one reminder per ministry
    and day, so readable and unique like an individualized recommendation's (REM-20261123-INTERIOR)."""
    return f"REM-{as_of:%Y%m%d}-{code.upper()}"


class IndividualizedRecommendationBase(SQLModel):
    reference: str = Field(sa_column=Column(String(60), nullable=False, unique=True))
    ministry_code: str = Field(foreign_key="ministry.code", max_length=32)
    issued_on: date  # the day escalation drew it up (a draft's day until a head approves it)
    #: none while a draft: the deadline runs from the outgoing date the approving head sets
    response_due_on: date | None = None
    status: str = Field(default=IndividualizedStatus.ISSUED.value, max_length=20)
    answered_on: date | None = None
    level2_on: date | None = None
    #: the office's outgoing registry number and date, set when a head approves it (policy
    #: `individualized.approval: required`); with automatic approval, the reference and the day
    outgoing_number: str | None = Field(default=None, sa_column=Column(String(60), nullable=True))
    outgoing_date: date | None = None
    approved_by: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    approved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    #: as printed under the letter: the approver's full name and position
    signer_name: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    signer_position: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))


class IndividualizedRecommendation(IndividualizedRecommendationBase, table=True):
    """One letter to one ministry listing its non-implemented items, with a new deadline.

    The escalation practice the Ombudsman introduced in 2024; at most one per ministry per day.
    """

    __tablename__ = "individualized_recommendation"
    __table_args__ = (UniqueConstraint("ministry_code", "issued_on", name="uq_individualized_per_ministry_day"),)
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class IndividualizedItem(SQLModel, table=True):
    """A recommendation listed in an individualized recommendation."""

    __tablename__ = "individualized_item"
    __table_args__ = (UniqueConstraint("individualized_id", "recommendation_id", name="uq_individualized_item"),)
    id: int | None = Field(default=None, primary_key=True)
    individualized_id: int = Field(foreign_key="individualized_recommendation.id", index=True)
    recommendation_id: int = Field(foreign_key="recommendation.id", index=True)
    #: the ministry's reply on this item reached the registry: level 2 counts only silent items
    answered_on: date | None = None
    reply_id: int | None = Field(default=None, foreign_key="reply.id")


class CommissionerDecision(SQLModel, table=True):
    """A decision of the Commissioner on an item at level 2, with its date and basis: the status
    change says where the item went, this row says which decision it was (the annual report and
    the digest count them)."""

    __tablename__ = "decision"
    id: int | None = Field(default=None, primary_key=True)
    recommendation_id: int = Field(foreign_key="recommendation.id", index=True)
    #: the letter whose level 2 it decided, when the item is in one
    individualized_id: int | None = Field(default=None, foreign_key="individualized_recommendation.id")
    decision: str = Field(max_length=30)  # parliament_report, prosecutor_referral, new_deadline, closed
    decided_on: date = Field(index=True)
    due_on: date | None = None  # the new deadline (new_deadline)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    actor: str = Field(sa_column=Column(String(100), nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class Notification(SQLModel, table=True):
    """The outbox: a message written in the same transaction as the change that caused it.

    The dispatcher sends queued rows through Apprise and marks them; nothing leaves directly
    from a deadline or escalation run, so a crash can resend but never lose a message.
    """

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_status", "status"), Index("ix_notification_recipient", "recipient"))
    id: int | None = Field(default=None, primary_key=True)
    recipient: str = Field(max_length=100)  # Apprise tag: ombudsman, ministry:<code>, admin
    kind: str = Field(max_length=40)  # reminder, individualized, level2, digest…
    language: str = Field(default="ru", max_length=2)
    subject: str = Field(sa_column=Column(Text, nullable=False))
    body_text: str = Field(sa_column=Column(Text, nullable=False))
    body_html: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    payload: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    #: a file sent with the message, named by payload["attachment"] (a long letter's complete
    #: item list as CSV). A formal letter also travels as its own HTML, named by payload["document"]
    #: (before that key, by payload["attachment"] with this column empty): notifications/dispatch.py
    attachment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    dedupe_key: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    status: str = Field(default=NotificationStatus.QUEUED.value, max_length=10)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    #: not before this time (backoff after a failure)
    next_attempt_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    #: when a dispatcher took it; a claim older than the lease is taken again (a crashed worker)
    claimed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    #: where it went, URLs masked (no secrets): the office can tell a ministry where its letter was sent
    delivered_to: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
