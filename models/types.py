"""Column types shared by the tables."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, Dialect
from sqlalchemy.types import TypeDecorator

from followup.models.backend import backend_of


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always stored and returned in UTC, timezone-aware.

    SQLite keeps no zone; PostgreSQL keeps `timestamptz`. Either way, what comes back is
    an aware UTC datetime, so `at` in the history means the same instant everywhere.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the registry stores instants in UTC")
        value = value.astimezone(UTC)
        return backend_of(dialect).utc_for_storage(value)

    def process_result_value(self, value: datetime | None, _dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)
