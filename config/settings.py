"""Settings: one class, read from `FOLLOWUP_*` environment variables.

Secrets never live in files of this repository: they come from the environment
(or from the Apprise configuration file that `FOLLOWUP_APPRISE_CONFIG` names).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

CONFIG_DIR = Path(__file__).resolve().parent

SUPPORTED_DRIVERS = ("sqlite", "postgresql+psycopg")


class Settings(BaseSettings):
    """Everything an installation may change without touching code."""

    model_config = SettingsConfigDict(env_prefix="FOLLOWUP_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///var/followup.db",
        description="SQLAlchemy URL of the registry: SQLite (embedded) or postgresql+psycopg://",
    )
    ministries_file: Path = CONFIG_DIR / "ministries.yaml"
    #: rules that suggest a ministry for unassigned recommendations (`followup triage`)
    triage_file: Path = CONFIG_DIR / "triage.yaml"
    #: delivery policy and the language of the office's own messages
    notifications_file: Path = CONFIG_DIR / "notifications.yaml"
    #: Apprise's own configuration (TEXT or YAML) with the routes: tags `ombudsman`, `admin`,
    #: `ministry:<code>`. Unset: config/apprise.yaml, which delivers into var/outbox/.
    apprise_config: Path | None = None
    timezone: str = "Asia/Almaty"
    #: where `followup report annual` and the yearly deployment write the report (one folder per year)
    reports_dir: Path = Path("var/reports")
    #: who a change is attributed to when the command line does not say
    actor: str = Field(default="", description="name recorded in the history for CLI actions")

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        """Accept only the two databases the project is tested on, and say why otherwise."""
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"FOLLOWUP_DATABASE_URL is not a database URL: {value!r}") from exc
        driver = url.drivername
        if driver in ("postgresql", "postgres"):
            # the psycopg 3 driver is the one installed; say so rather than fail on psycopg2
            url = url.set(drivername="postgresql+psycopg")
            driver = url.drivername
        if driver not in SUPPORTED_DRIVERS:
            raise ValueError(
                f"FOLLOWUP_DATABASE_URL uses {driver!r}; supported: sqlite:///PATH "
                "or postgresql+psycopg://USER@HOST:PORT/DB"
            )
        if driver == "sqlite" and url.database and url.database != ":memory:":
            # a relative SQLite path is relative to the working directory; make it absolute
            # once, so that a later chdir (Prefect workers do) cannot move the registry
            url = url.set(database=str(Path(url.database).expanduser().resolve()))
        return url.render_as_string(hide_password=False)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        ZoneInfo(value)  # raises a clear error for an unknown zone
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests clear the cache after changing the environment."""
    return Settings()
