"""What ministries answer: a reply (one submission by one state body), its claims item by item,
and the evidence files that come with it.

A reply is written here before anything else happens to it, so nothing a ministry sends is lost
when Prefect is down: the `record-responses` flow applies confirmed replies later, exactly once
(`recorded_at` is set in the transaction that moves the items).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

import followup.models.registry  # noqa: F401  (ministry and recommendation, which replies point at)
from followup.models.domain import ClaimOutcome, ReplyChannel, ReplyState
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


