"""The registry's vocabulary: statuses, sources, priorities, facility types, visit kinds, grades.

Stored as plain strings in the database (no database ENUM types), so that adding a value
is a change to this file and the transition table, not a schema migration.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    UNASSIGNED = "unassigned"  # no responsible body yet: the office must assign one
    ISSUED = "issued"  # sent to the responsible body, clock running
    IN_PROGRESS = "in_progress"  # the body reported work under way
    ON_HOLD = "on_hold"  # waiting on the Ombudsman's office itself: the clock stops
    OVERDUE = "overdue"  # deadline passed with no final answer
    ESCALATED = "escalated"  # part of an individualized recommendation to the ministry
    AWAITING_DECISION = "awaiting_decision"  # level 2: the ministry did not answer; the Ombudsman decides
    REPORTED_TO_PARLIAMENT = "reported_to_parliament"  # level 2 decided: in the Commissioner's report to Parliament
    REFERRED_TO_PROSECUTOR = "referred_to_prosecutor"  # level 2 decided: referred to the prosecutor's office
    CLOSED = "closed"  # level 2 decided: the Commissioner closed the case without implementation
    IMPLEMENTED = "implemented"
    PARTIALLY_IMPLEMENTED = "partially_implemented"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class Source(StrEnum):
    NPM_VISIT = "npm_visit"
    TREATY_BODY = "treaty_body"
    UPR = "upr"
    SPT = "spt"
    OTHER = "other"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class FacilityType(StrEnum):
    POLICE_TEMPORARY_DETENTION = "police_temporary_detention"
    PRE_TRIAL_DETENTION = "pre_trial_detention"
    PRISON = "prison"
    PSYCHIATRIC_HOSPITAL = "psychiatric_hospital"
    SOCIAL_CARE_HOME = "social_care_home"
    CHILDRENS_HOME = "childrens_home"
    SPECIAL_SCHOOL = "special_school"
    MILITARY_GUARDHOUSE = "military_guardhouse"
    OTHER = "other"


class VisitKind(StrEnum):
    PLANNED = "planned"
    SPECIAL = "special"  # in response to a complaint
    FOLLOW_UP = "follow_up"  # checks that earlier recommendations were implemented in practice


class Grade(StrEnum):
    """Treaty-body follow-up assessment of the state's reply."""

    A = "A"  # largely satisfactory
    B = "B"  # partially satisfactory
    C = "C"  # not satisfactory
    D = "D"  # no cooperation: no reply after reminders
    E = "E"  # measures contrary to the recommendation


GRADE_MEANINGS = {
    Grade.A: "largely satisfactory",
    Grade.B: "partially satisfactory",
    Grade.C: "not satisfactory",
    Grade.D: "no cooperation",
    Grade.E: "measures contrary to the recommendation",
}

#: The committees' follow-up assessment as published, letter and sub-grade. The Human Rights
#: Committee graded with sub-grades from 2013 (CCPR/C/108/2) until it simplified the scale to
#: the five letters; a follow-up report of that period reads "B1" or "C2", and the registry
#: keeps what the committee wrote (the letter alone goes on the recommendation).
FOLLOW_UP_GRADES: dict[str, str] = {
    "A": "reply/action largely satisfactory",
    "B": "reply/action partially satisfactory",
    "B1": "partially satisfactory: substantive action taken, but additional information required",
    "B2": "partially satisfactory: initial action taken, but additional information and measures required",
    "C": "reply/action not satisfactory",
    "C1": "not satisfactory: reply received, but the action taken does not implement the recommendation",
    "C2": "not satisfactory: reply received, but not relevant to the recommendation",
    "D": "no cooperation with the committee",
    "D1": "no cooperation: no reply within the deadline",
    "D2": "no cooperation: no reply after reminder(s)",
    "E": "information or measures contrary to the recommendation, or reflecting its rejection",
}


class UprResponse(StrEnum):
    """The state's position on a UPR recommendation, from the addendum to the Working Group's report."""

    SUPPORTED = "supported"
    NOTED = "noted"


class TagKind(StrEnum):
    """How the Universal Human Rights Index classifies a recommendation; kept as tags."""

    THEME = "theme"
    AFFECTED_PERSONS = "affected_persons"
    SDG = "sdg"


class IndividualizedStatus(StrEnum):
    """Where an individualized recommendation (one letter to one ministry) stands."""

    DRAFT = "draft"  # escalation drafted it; waits for a head's approval (number, date, signature) to be sent
    ISSUED = "issued"  # sent, waiting for the ministry's reply within its response deadline
    ANSWERED = "answered"  # the ministry replied (on at least one item) in time
    LEVEL2 = "level2"  # no reply by the deadline: before the Ombudsman for a decision


class NotificationStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"  # will be retried
    DEAD = "dead"  # gave up after the configured attempts: shown in the digest
    SENDING = "sending"  # claimed by a dispatcher; reclaimed after a lease if it crashed
    UNROUTABLE = "unroutable"  # no Apprise URL has its tag: kept, reported, tried again next run


class ReplyState(StrEnum):
    """Where a ministry's reply stands, from the focal point's draft to the registry."""

    DRAFT = "draft"  # typed by the ministry's focal point; waits for the validating official
    CONFIRMED = "confirmed"  # confirmed by the validating official: waits for `record-responses`
    RECORDED = "recorded"  # applied to the registry (moves made, claims in the office's review queue)


class ReplyChannel(StrEnum):
    PORTAL = "portal"  # the ministry's page behind its signed link
    PAPER = "paper"  # typed by the office from a letter (`followup import responses`)


class ClaimOutcome(StrEnum):
    """What became of one item's claim in a reply."""

    PENDING = "pending"  # not recorded yet
    APPLIED = "applied"  # the item moved to the claimed status
    UNCHANGED = "unchanged"  # the item already stood where the claim puts it
    UNDER_REVIEW = "under_review"  # waits for the office (policy `replies.review`)
    ACCEPTED = "accepted"  # the office accepted it: the move was applied then
    RETURNED = "returned"  # the office returned it to the ministry with a comment
    REFUSED = "refused"  # the transition table does not allow it from where the item stands now
