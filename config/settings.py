"""Settings: one class, read from `FOLLOWUP_*` environment variables.

Secrets never live in files of this repository: they come from the environment
(or from the Apprise configuration file that `FOLLOWUP_APPRISE_CONFIG` names).
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
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
    #: deadlines, reminders, escalation, approval of individualized recommendations (config/policy.yaml)
    policy_file: Path = CONFIG_DIR / "policy.yaml"
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
    #: signs the ministries' reply links and the web app's sessions. Required everywhere letters
    #: are rendered or the app runs (workers too); on an SQLite registry one is made once and
    #: kept beside the database file, readable by its owner only
    secret_key: SecretStr | None = None
    #: the address the ministries reach the web app at (behind the reverse proxy): letters and
    #: `followup links show` print links under it
    public_url: str = "http://127.0.0.1:8000"
    #: the office's contact details printed in every letter (config/office.yaml)
    office_file: Path = CONFIG_DIR / "office.yaml"
    #: evidence files sent with replies, by content hash; outside any web root
    evidence_dir: Path = Path("var/evidence")
    #: the most an imported .xlsx may unpack to, in megabytes (a zip bomb is refused before it is read)
    xlsx_max_mb: int = Field(200, ge=1)

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

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str) -> str:
        parsed = urlsplit(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query or parsed.fragment:
            raise ValueError(f"FOLLOWUP_PUBLIC_URL must be an http(s) address like https://npm.ombudsman.kz: {value!r}")
        return value.rstrip("/")

    @field_validator("evidence_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # made absolute once, like the SQLite path: a worker's chdir cannot move the files
        return value.expanduser().resolve()

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"FOLLOWUP_TIMEZONE: {value!r} is not a time zone of the IANA database (e.g. Asia/Almaty)") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def signing_key(self) -> str:
        """The key that signs reply links and sessions: FOLLOWUP_SECRET_KEY, or on an SQLite
        registry a key made once and kept in `secret_key` beside the database (mode 0600).

        Elsewhere (PostgreSQL, where workers and the app run on several machines) a missing key
        is an error: a key made on one machine would sign links the others refuse.
        """
        if self.secret_key is not None and self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value()
        url = make_url(self.database_url)
        if url.drivername != "sqlite" or not url.database or url.database == ":memory:":
            raise MissingSecretKey(
                "FOLLOWUP_SECRET_KEY is not set: the web app and the flows that write letters need it to sign "
                "the ministries' reply links (set the same value on the app and every worker)"
            )
        path = Path(url.database).parent / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it meanwhile
            else:
                with os.fdopen(fd, "w", encoding="ascii") as out:
                    out.write(secrets.token_urlsafe(48))
        key = path.read_text(encoding="ascii").strip()
        if not key:
            raise MissingSecretKey(f"{path} is empty: delete it to have a new key made, or set FOLLOWUP_SECRET_KEY")
        return key


class MissingSecretKey(RuntimeError):
    """No key to sign links with: the app and the letter-writing flows refuse to start."""


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests clear the cache after changing the environment.

    A wrong value is a ConfigError of one sentence per variable (`FOLLOWUP_TIMEZONE: 'Mars/Olympus'
    is not a time zone…`), which the command line and the flows show as it is."""
    from followup.config.loader import ConfigError

    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError("; ".join(_problem(error) for error in exc.errors())) from None


def _problem(error: Any) -> str:
    """One validation error as the administrator set it: the variable, then what is wrong."""
    message = str(error["msg"]).removeprefix("Value error, ")
    variable = "FOLLOWUP_" + "_".join(str(part) for part in error["loc"]).upper()
    return message if message.startswith(variable) else f"{variable}: {message}"
