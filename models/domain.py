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
    IMPLEMENTED = "implemented"
    PARTIALLY_IMPLEMENTED = "partially_implemented"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


#: statuses in which nobody is expected to act any more
CLOSED_STATUSES = frozenset({Status.IMPLEMENTED, Status.REJECTED, Status.WITHDRAWN})


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


class IndividualizedStatus(StrEnum):
    """Where an individualized recommendation (one letter to one ministry) stands."""

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
