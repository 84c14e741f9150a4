"""Keyword-only data functions over the registry (the template's `create_x(*, session, x_in)`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from followup.config.loader import MinistryConfig, load_ministries
from followup.models.db import get_engine, session_scope, upgrade_schema
from followup.models.registry import (
    Facility,
    FacilityBase,
    Ministry,
    Recommendation,
    StatusChange,
    Visit,
    VisitBase,
)


def sync_ministries(*, session: Session, ministries: Sequence[MinistryConfig]) -> int:
    """Bring the Ministry table in line with the config file; returns how many rows changed.

    A body removed from the file stays in the table (recommendations still point at it).
    """
    existing = {m.code: m for m in session.scalars(select(Ministry))}
    changed = 0
    for cfg in ministries:
        values: dict[str, Any] = {
            "name_kk": cfg.names.kk,
            "name_ru": cfg.names.ru,
            "name_en": cfg.names.en,
            "aliases": list(cfg.aliases),
            "language": cfg.language,
            "approval": cfg.approval,
        }
        row = existing.get(cfg.code)
        if row is None:
            session.add(Ministry(code=cfg.code, **values))
            changed += 1
        elif any(getattr(row, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(row, k, v)
            changed += 1
    session.flush()
    return changed


def init_db(url: str | None = None) -> None:
    """Create or upgrade the schema and load the ministries: safe to run any number of times."""
    engine = get_engine(url)
    upgrade_schema(engine)
    with session_scope(engine) as session:
        sync_ministries(session=session, ministries=load_ministries())


def create_facility(*, session: Session, facility_in: FacilityBase) -> Facility:
    facility = Facility.model_validate(facility_in)
    session.add(facility)
    session.flush()
    return facility


def create_visit(*, session: Session, visit_in: VisitBase) -> Visit:
    visit = Visit.model_validate(visit_in)
    session.add(visit)
    session.flush()
    return visit


def get_recommendation(*, session: Session, external_id: str) -> Recommendation | None:
    return session.scalars(select(Recommendation).where(col(Recommendation.external_id) == external_id)).first()


def get_history(*, session: Session, recommendation_id: int) -> list[StatusChange]:
    """The recommendation's history in the order it was written (the log is append-only)."""
    stmt = (
        select(StatusChange)
        .where(col(StatusChange.recommendation_id) == recommendation_id)
        .order_by(col(StatusChange.id))
    )
    return list(session.scalars(stmt))
