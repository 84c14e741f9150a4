"""The office's own people: who may sign in to the workspace, in which role, and who did what.

A user's `name` is what the history records as the actor of every change made through the
workspace (or through the CLI, where `FOLLOWUP_ACTOR` names the user). Passwords are kept only
as Argon2 hashes; a disabled user cannot sign in, and repeated failed sign-ins lock the account
for a while (`failed_logins`, `locked_until`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, String
from sqlmodel import Field, Session, SQLModel, select

from followup.models.types import UTCDateTime, utcnow


class Role(StrEnum):
    """What an office user may do; each role may also do everything of the roles before it."""

    CLERK = "clerk"  # records, assigns, triages, holds/resumes/withdraws, reviews ministries' replies
    HEAD = "head"  # the Commissioner or a deputy: also approves individualized recommendations, decides level 2
    ADMIN = "admin"  # also users and settings


ROLE_ORDER = (Role.CLERK, Role.HEAD, Role.ADMIN)


def may(role: str, needed: Role) -> bool:
    """Whether a user of `role` may do what needs `needed` (admin ⊇ head ⊇ clerk)."""
    try:
        return ROLE_ORDER.index(Role(role)) >= ROLE_ORDER.index(needed)
    except ValueError:
        return False


class OfficeUserBase(SQLModel):
    name: str = Field(sa_column=Column(String(100), nullable=False, unique=True))
    role: str = Field(default=Role.CLERK.value, max_length=10)
    #: as it is printed under a letter the user signs: full name and position
    full_name: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    position: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    active: bool = True


class OfficeUser(OfficeUserBase, table=True):
    """An account of the Ombudsman's office in the workspace."""

    __tablename__ = "office_user"
    id: int | None = Field(default=None, primary_key=True)
    password_hash: str = Field(sa_column=Column(String(200), nullable=False))
    failed_logins: int = 0
    locked_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    #: raised when the password changes or the user is disabled: every open session ends
    session_generation: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    last_login_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class NotAllowed(PermissionError):
    """The user does not exist, is disabled, or their role does not allow the action."""


def require_user(*, session: Session, name: str, role: Role) -> OfficeUser:
    """The active user `name`, if their role allows what needs `role`; NotAllowed in one sentence otherwise.

    The web app checks the signed-in user with it; the CLI checks `FOLLOWUP_ACTOR`, which guards
    against mistakes (the CLI holds the registry's own credentials, so it is trusted like them).
    """
    user = session.exec(select(OfficeUser).where(OfficeUser.name == name)).first()
    if user is None:
        raise NotAllowed(f"{name!r} is not a user of the workspace (followup users add {name} --role {role.value})")
    if not user.active:
        raise NotAllowed(f"user {name!r} is disabled")
    if not may(user.role, role):
        raise NotAllowed(f"user {name!r} is a {user.role}; this needs a {role.value} or above")
    return user
