"""The office's own details printed in letters: who to contact about them (config/office.yaml)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from followup.config.loader import Names, load_yaml_model
from followup.config.settings import get_settings


class Executor(BaseModel):
    """The member of staff a ministry calls or writes to about a letter."""

    model_config = ConfigDict(extra="forbid")
    name: Names
    position: Names
    phone: str = Field(min_length=1)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

    def contact(self, language: str) -> dict[str, str]:
        """What a letter in `language` prints: name, position, phone, e-mail."""
        lang = language if language in ("ru", "kk", "en") else "ru"
        return {"name": getattr(self.name, lang), "position": getattr(self.position, lang),
                "phone": self.phone, "email": self.email}


class Office(BaseModel):
    model_config = ConfigDict(extra="forbid")
    executor: Executor


def load_office(path: Path | str | None = None) -> Office:
    """Read and check config/office.yaml (or FOLLOWUP_OFFICE_FILE); errors name the file and key."""
    return load_yaml_model(Path(path or get_settings().office_file), Office)


def office_contact(language: str, path: str | None = None) -> dict[str, str]:
    """The executor's contact in a letter's language: read once per file and version of it, so
    that the long-lived processes (`followup serve` and the steps it runs, the web app) take an
    edit without a restart."""
    file = Path(path or get_settings().office_file)
    try:
        version = file.stat().st_mtime_ns
    except OSError:
        version = 0  # load_office names the missing file
    return _office_contact(language, str(file), version)


@lru_cache(maxsize=8)
def _office_contact(language: str, path: str, _version: int) -> dict[str, str]:
    return load_office(path).executor.contact(language)
