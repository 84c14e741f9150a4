"""The dispatcher's settings, read from `config/notifications.yaml` and validated on load."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from followup.config.loader import load_yaml_model
from followup.config.settings import CONFIG_DIR, get_settings

Language = Literal["ru", "kk", "en"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Delivery(_Strict):
    max_attempts: int = Field(default=5, ge=1)
    backoff_minutes: list[float] = Field(default=[1, 5, 30, 120], min_length=1)
    concurrency: int = Field(default=8, ge=1, le=64)
    lease_minutes: float = Field(default=15, gt=0)
    trusted_hosts: dict[str, float] = {}

    def backoff(self, attempts: int) -> timedelta:
        """The pause before the next try, after `attempts` failed ones."""
        steps = self.backoff_minutes
        return timedelta(minutes=steps[min(max(attempts, 1), len(steps)) - 1])


class Recipient(_Strict):
    language: Language = "ru"


class Digest(_Strict):
    days: int = Field(default=7, ge=1, le=366)


class NotificationConfig(_Strict):
    delivery: Delivery = Delivery()
    recipients: dict[str, Recipient] = {}
    digest: Digest = Digest()

    def language_of(self, tag: str, default: str = "ru") -> str:
        recipient = self.recipients.get(tag)
        return recipient.language if recipient else default


def load_notification_config(path: Path | None = None) -> NotificationConfig:
    return load_yaml_model(Path(path or get_settings().notifications_file), NotificationConfig)


def apprise_config_path() -> Path:
    """FOLLOWUP_APPRISE_CONFIG, or the default routes into var/outbox/."""
    return Path(get_settings().apprise_config or CONFIG_DIR / "apprise.yaml")
