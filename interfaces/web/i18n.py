"""The portal's words in Russian, Kazakh and English (strings/<lang>.yaml).

A page in the ministry's language by default (its `language` in config/ministries.yaml), another
one when the clerk picks it (remembered in the session). A key missing in Kazakh or English falls
back to Russian, the office's working language, so a page never shows a bare key.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from followup.config.settings import get_settings
from followup.models.dates import as_date_or_none

LANGUAGES = ("ru", "kk", "en")
DEFAULT = "ru"
LANGUAGE_NAMES = {"ru": "Русский", "kk": "Қазақша", "en": "English"}
STRINGS_DIR = Path(__file__).resolve().parent / "strings"


@lru_cache(maxsize=len(LANGUAGES))
def _strings(language: str) -> dict[str, Any]:
    with (STRINGS_DIR / f"{language}.yaml").open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise TypeError(f"{STRINGS_DIR / language}.yaml: expected a mapping")
    return data


def language_or_default(value: object) -> str:
    return value if isinstance(value, str) and value in LANGUAGES else DEFAULT


def _lookup(data: dict[str, Any], key: str) -> Any:
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


class Translator:
    """`t("items.heading")`, `t("items.count", total=3)`: the text in the page's language."""

    def __init__(self, language: str) -> None:
        self.language = language_or_default(language)

    def __call__(self, key: str, **params: object) -> str:
        value = _lookup(_strings(self.language), key)
        if not isinstance(value, str):
            value = _lookup(_strings(DEFAULT), key)
        if not isinstance(value, str):
            return key
        return value.format(**params) if params else value

    def status(self, code: str | None) -> str:
        """A status's name (`in_progress` -> "исполняется")."""
        if not code:
            return ""
        name = self(f"statuses.{code}")
        return code if name == f"statuses.{code}" else name

    def has(self, key: str) -> bool:
        return isinstance(_lookup(_strings(self.language), key), str) or isinstance(_lookup(_strings(DEFAULT), key), str)


def format_day(value: object) -> str:
    """DD.MM.YYYY, the way every office document writes a date (a moment: its day in the office's
    time zone); "" for none."""
    day = as_date_or_none(value, tz=get_settings().tz)
    return "" if day is None else f"{day.day:02d}.{day.month:02d}.{day.year:04d}"
