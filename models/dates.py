"""Dates, read and converted in one place.

`parse_date` reads every date a person types: command-line options, spreadsheet cells,
the policy file. It takes day-first `23.11.2026` (or `23/11/2026`) and ISO `2026-11-23`
and never reads month first: `11/23/2026` is refused, not guessed.

`as_date` turns what a driver, pandas or a caller hands over (date, datetime, pandas
Timestamp, ISO text) into a `date`; `as_date_or_none` does the same and keeps a missing
value (None, NaT, NaN, empty text) as None.

Standard library only at import: config and the command line import this module.
"""

from __future__ import annotations

import importlib
import math
import re
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "DATE_FORMS",
    "DATE_HINT",
    "LOCAL_TZ",
    "ImpossibleDate",
    "NotADate",
    "as_date",
    "as_date_or_none",
    "day_of",
    "parse_date",
]

#: the office's time zone: the day an instant falls on, in letters, reports and the history
LOCAL_TZ = ZoneInfo("Asia/Almaty")  # UTC+5 since 2024-03-01

DATE_FORMS = "DD.MM.YYYY or YYYY-MM-DD"
DATE_HINT = f"expected {DATE_FORMS}"

_DAY_FIRST = re.compile(r"(\d{1,2})[./](\d{1,2})[./](\d{4})")
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]00:00(?::00)?)?")


class NotADate(ValueError):
    """The text does not have the form of a date (neither DD.MM.YYYY nor YYYY-MM-DD)."""


class ImpossibleDate(ValueError):
    """The text has the form of a date but names no day of the calendar (31.02.2024, month 13)."""


def parse_date(value: str) -> date:
    """A day-first (15.02.2024, 15/02/2024) or ISO (2024-02-15) date; never read month-first.

    Surrounding spaces are ignored; an ISO date may carry a midnight time (`2024-02-15 00:00`,
    as spreadsheets write it). Raises `NotADate` or `ImpossibleDate` (both ValueError) with
    the problem in words, e.g. "impossible date '31.02.2024'".
    """
    text = value.strip()
    if (found := _ISO.fullmatch(text)) is not None:
        try:
            return date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
        except ValueError:
            raise ImpossibleDate(f"impossible date {value!r}") from None
    if (found := _DAY_FIRST.fullmatch(text)) is not None:
        day, month, year = int(found.group(1)), int(found.group(2)), int(found.group(3))
        if not 1 <= month <= 12:
            raise ImpossibleDate(f"impossible date {value!r} (month {month}; dates are read day first, {DATE_HINT})")
        try:
            return date(year, month, day)
        except ValueError:
            raise ImpossibleDate(f"impossible date {value!r}") from None
    raise NotADate(f"not a date: {value!r} ({DATE_HINT})")


def as_date_or_none(value: object, *, tz: tzinfo | None = None) -> date | None:
    """`value` as a date, or None when it is missing (None, NaT, NaN, empty or blank text).

    A date is returned as it is; a datetime (pandas Timestamp included) gives its day, after
    conversion to `tz` when it is timezone-aware and `tz` is given; text is read as ISO
    (`2026-11-23`, `2026-11-23 10:00:00+05:00`); anything else (numpy datetime64...) through
    pandas. Raises ValueError for text that is not an ISO date.
    """
    if type(value) is date:  # the common case first: the daily pass converts every letter item
        return value
    if _missing(value):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not a date: {value!r} (expected an ISO date such as 2026-11-23)") from None
    if isinstance(value, datetime):
        if tz is not None and value.tzinfo is not None:
            value = value.astimezone(tz)
        return value.date()
    if isinstance(value, date):
        return value
    # pandas only for the rare numpy value, and only then: this module stays light at import
    timestamp: Any = importlib.import_module("pandas").Timestamp
    return as_date_or_none(timestamp(value), tz=tz)


def day_of(effective_on: date | None, at: datetime, tz: tzinfo) -> date:
    """The day a history entry took effect: its `effective_on` (a reply's date, an overdue
    mark's first day), else the day in the office's time zone (`tz`: FOLLOWUP_TIMEZONE) it was
    recorded. A naive `at` is UTC (SQLite returns the stored UTC time without its zone)."""
    if effective_on is not None:
        return effective_on
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).astimezone(tz).date()


def _missing(value: object) -> bool:
    """None, NaN (float or numpy), pandas' NaT and NA: told by type, without importing pandas."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in ("NaTType", "NAType")


def as_date(value: object, *, tz: tzinfo | None = None) -> date:
    """`value` as a date (see `as_date_or_none`); a missing value raises ValueError."""
    day = as_date_or_none(value, tz=tz)
    if day is None:
        raise ValueError(f"not a date: {value!r} (a date is missing)")
    return day
