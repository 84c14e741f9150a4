"""The ministries' reply links: signed tokens that open a ministry's page without an account.

A link names the ministry, the ministry's link generation (kept in the registry: `followup links
revoke` raises it and every older link and session stops working at once) and the day it expires,
counted from the letter's date. The token is deterministic (no timestamp inside), so the same
letter renders the same link: re-runs and the benchmarks' row-by-row checks see the same text.

The validating official's link names one draft reply instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from followup.config.settings import get_settings
from followup.models.registry import Ministry, table_of

_MINISTRY_SALT = "followup.ministry-link.v1"
_CONFIRM_SALT = "followup.reply-confirm.v1"


class BadLink(ValueError):
    """A token that is forged, damaged, expired, revoked or for something else: the page shows no data."""


@dataclass(frozen=True)
class MinistryGrant:
    """What a valid ministry link lets its holder do: see and answer that ministry's items."""

    ministry: str
    generation: int
    expires_on: date


@dataclass(frozen=True)
class ConfirmGrant:
    """What the validating official's link lets its holder do: confirm one draft reply."""

    reply_id: int
    ministry: str
    generation: int
    expires_on: date


def _serializer(salt: str, key: str | None = None) -> URLSafeSerializer:
    return URLSafeSerializer(key or get_settings().signing_key(), salt=salt)


def expiry(letter_date: date, days: int) -> date:
    """The last day a link in a letter of `letter_date` works."""
    return letter_date + timedelta(days=days)


def ministry_token(ministry: str, generation: int, expires_on: date, *, key: str | None = None) -> str:
    return str(_serializer(_MINISTRY_SALT, key).dumps([ministry, generation, expires_on.isoformat()]))


def confirm_token(reply_id: int, ministry: str, generation: int, expires_on: date, *, key: str | None = None) -> str:
    return str(_serializer(_CONFIRM_SALT, key).dumps([reply_id, ministry, generation, expires_on.isoformat()]))


def _load(salt: str, token: str, key: str | None) -> list[object]:
    try:
        value = _serializer(salt, key).loads(token)
    except BadSignature as exc:
        raise BadLink("the link is not valid") from exc
    if not isinstance(value, list):
        raise BadLink("the link is not valid")
    return value


def read_ministry_token(token: str, *, today: date, key: str | None = None) -> MinistryGrant:
    """The grant a ministry link carries; BadLink if forged or expired (the generation is the caller's
    to compare with the registry: `check_generation`)."""
    value = _load(_MINISTRY_SALT, token, key)
    try:
        ministry, generation, until = value
        grant = MinistryGrant(str(ministry), int(generation), date.fromisoformat(str(until)))  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise BadLink("the link is not valid") from exc
    if grant.expires_on < today:
        raise BadLink(f"the link expired on {grant.expires_on:%d.%m.%Y}")
    return grant


def read_confirm_token(token: str, *, today: date, key: str | None = None) -> ConfirmGrant:
    value = _load(_CONFIRM_SALT, token, key)
    try:
        reply_id, ministry, generation, until = value
        grant = ConfirmGrant(int(reply_id), str(ministry), int(generation), date.fromisoformat(str(until)))  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise BadLink("the link is not valid") from exc
    if grant.expires_on < today:
        raise BadLink(f"the link expired on {grant.expires_on:%d.%m.%Y}")
    return grant


def generation_of(session: Session, ministry: str) -> int | None:
    """The ministry's current link generation; None for a body the registry does not know."""
    m = table_of(Ministry)
    return session.connection().execute(select(m.c.link_generation).where(m.c.code == ministry)).scalar_one_or_none()


def generations(session: Session) -> dict[str, int]:
    """Every ministry's current link generation (a letter run reads them once)."""
    m = table_of(Ministry)
    return {code: int(g) for code, g in session.connection().execute(select(m.c.code, m.c.link_generation)).all()}


def check_generation(session: Session, ministry: str, generation: int) -> None:
    """BadLink unless `generation` is the ministry's current one (a revoked link, or an unknown body)."""
    current = generation_of(session, ministry)
    if current is None or current != generation:
        raise BadLink("the link was revoked")


def revoke(session: Session, ministry: str) -> int:
    """Raise the ministry's link generation: every link and session it had stops working. Returns the new one."""
    m = table_of(Ministry)
    current = generation_of(session, ministry)
    if current is None:
        raise KeyError(ministry)
    session.connection().execute(update(m).where(m.c.code == ministry).values(link_generation=current + 1))
    return current + 1


def reply_url(token: str, public_url: str | None = None) -> str:
    """The address printed in letters: opening it exchanges the token for a session."""
    return f"{(public_url or get_settings().public_url).rstrip('/')}/r/{token}"


def confirm_url(token: str, public_url: str | None = None) -> str:
    return f"{(public_url or get_settings().public_url).rstrip('/')}/c/{token}"


def ministry_link(session: Session, ministry: str, letter_date: date, days: int, *, key: str | None = None,
                  generation: int | None = None) -> str:
    """The reply link for a letter of `letter_date` to `ministry`, under FOLLOWUP_PUBLIC_URL."""
    gen = generation if generation is not None else generation_of(session, ministry)
    if gen is None:
        raise KeyError(ministry)
    return reply_url(ministry_token(ministry, gen, expiry(letter_date, days), key=key))
