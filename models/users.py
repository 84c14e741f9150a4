"""The office's own people: who may sign in to the workspace, in which role, and who did what.

A user's `name` is what the history records as the actor of every change made through the
workspace (or through the CLI, where `FOLLOWUP_ACTOR` names the user). Passwords are kept only
as Argon2 hashes; a disabled user cannot sign in, and repeated failed sign-ins lock the account
for a while (`failed_logins`, `locked_until`).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
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


# --- accounts: creating, disabling, signing in ------------------------------------------------------

#: failed sign-ins in a row that lock an account, and for how long
MAX_FAILED_LOGINS = 5
LOCK_MINUTES = 15
#: the shortest password `followup users add` accepts
MIN_PASSWORD = 10


class LoginRefused(PermissionError):
    """A sign-in refused: `reason` is "wrong" (unknown user or wrong password: the same, so a guess
    learns nothing about who exists), "disabled" or "locked" (with `until`)."""

    def __init__(self, reason: str, until: datetime | None = None) -> None:
        self.reason, self.until = reason, until
        message = {"wrong": "wrong user name or password", "disabled": "the account is disabled"}.get(reason)
        if message is None:
            message = (f"the account is locked until {until:%H:%M} UTC after repeated failed sign-ins" if until
                       else "the account is locked")
        super().__init__(message)


class UserError(ValueError):
    """A user cannot be added or disabled as asked (a name taken, an unknown role, a short password)."""


def _hasher() -> PasswordHasher:
    return PasswordHasher()  # Argon2id with argon2-cffi's current parameters (RFC 9106 low-memory)


_DUMMY_HASH: list[str] = []


def _dummy_hash() -> str:
    """A hash to verify against when the name is unknown, so that an unknown name costs what a known one does."""
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(_hasher().hash(secrets.token_urlsafe(16)))
    return _DUMMY_HASH[0]


def _user(session: Session, name: str) -> OfficeUser | None:
    return session.exec(select(OfficeUser).where(OfficeUser.name == name)).first()


def create_user(*, session: Session, name: str, role: str, password: str, full_name: str | None = None,
                position: str | None = None) -> OfficeUser:
    """A new active account; the password is kept only as its Argon2id hash."""
    name = name.strip()
    if not name or len(name) > 100 or any(c.isspace() for c in name):
        raise UserError(f"{name!r}: a user name is one word of at most 100 characters")
    try:
        role_value = Role(role).value
    except ValueError:
        raise UserError(f"{role!r} is not a role (one of: {', '.join(r.value for r in ROLE_ORDER)})") from None
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password is shorter than {MIN_PASSWORD} characters")
    if _user(session, name) is not None:
        raise UserError(f"user {name!r} exists already")
    user = OfficeUser(name=name, role=role_value, full_name=(full_name or "").strip() or None,
                      position=(position or "").strip() or None, password_hash=_hasher().hash(password))
    session.add(user)
    session.flush()
    return user


def disable_user(*, session: Session, name: str) -> OfficeUser:
    """The account can no longer sign in, and every open session of it ends (the generation moves on)."""
    user = _user(session, name)
    if user is None:
        raise UserError(f"{name!r} is not a user of the workspace")
    if user.active:
        user.active = False
        user.session_generation += 1
        session.add(user)
        session.flush()
    return user


def set_password(*, session: Session, name: str, password: str) -> OfficeUser:
    """A new password; every open session of the account ends."""
    user = _user(session, name)
    if user is None:
        raise UserError(f"{name!r} is not a user of the workspace")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password is shorter than {MIN_PASSWORD} characters")
    user.password_hash = _hasher().hash(password)
    user.session_generation += 1
    user.failed_logins, user.locked_until = 0, None
    session.add(user)
    session.flush()
    return user


def check_login(*, session: Session, name: str, password: str, now: datetime) -> OfficeUser:
    """The user, signed in (counters reset, `last_login_at` set, the hash upgraded if its parameters
    are old); LoginRefused otherwise. The caller commits either way: a failure is counted, and the
    fifth in a row locks the account for LOCK_MINUTES."""
    hasher = _hasher()
    user = _user(session, name.strip()) if name.strip() else None
    if user is None:
        try:
            hasher.verify(_dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            pass
        raise LoginRefused("wrong")
    locked_until = user.locked_until
    if locked_until is not None and locked_until.tzinfo is None:
        locked_until = locked_until.replace(tzinfo=UTC)
    if locked_until is not None and locked_until > now:
        raise LoginRefused("locked", locked_until)
    try:
        hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until, user.failed_logins = now + timedelta(minutes=LOCK_MINUTES), 0
        session.add(user)
        session.flush()
        if user.locked_until is not None and user.failed_logins == 0:
            raise LoginRefused("locked", user.locked_until) from None
        raise LoginRefused("wrong") from None
    if not user.active:
        raise LoginRefused("disabled")
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
    session.add(user)
    session.flush()
    return user


def list_users(*, session: Session) -> list[OfficeUser]:
    return list(session.exec(select(OfficeUser).order_by(OfficeUser.name)).all())
