"""Load the office-edited YAML files, validate them, and name file and key on error.

An office clerk edits these files by hand; a typo must produce a sentence such as
`config/ministries.yaml: ministries[2].names.ru: Field required`, not a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from followup.config.settings import get_settings


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or invalid; the message names file and key."""


class Names(BaseModel):
    """A text in each language the letters are written in: none may be missing."""

    model_config = ConfigDict(extra="forbid")
    kk: str = Field(min_length=1)
    ru: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def of(self, language: str | None) -> str:
        """The text in `language` (ru for an unknown one)."""
        return str(getattr(self, language if language in ("kk", "ru", "en") else "ru"))


class MinistryConfig(BaseModel):
    """One responsible state body as the office describes it."""

    model_config = ConfigDict(extra="forbid")
    code: str
    names: Names
    aliases: list[str] = []
    language: Literal["ru", "kk", "en"] = "ru"
    #: who confirms the ministry's replies on its page: a second, validating official whose
    #: link goes to the `ministry:<code>:approver` tag (required), or the focal point itself (none)
    approval: Literal["required", "none"] = "required"

    @field_validator("code")
    @classmethod
    def _code_is_slug(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", value):
            raise ValueError("must be lowercase letters, digits and _ (e.g. interior)")
        return value


class MinistriesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ministries: list[MinistryConfig] = Field(min_length=1)


M = TypeVar("M", bound=BaseModel)


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _parse_yaml(text: str) -> Any:
    """The YAML document, parsed by libyaml when PyYAML was built with it (ministries.yaml is read
    by every command: a millisecond instead of fifteen); a document libyaml refuses is parsed
    again by PyYAML's own parser, so the error a clerk reads names the line the same way."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return yaml.load(text, Loader=fast)
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


def load_yaml_model(path: Path, model: type[M]) -> M:
    """Read `path` as YAML into `model`; every failure becomes one ConfigError naming file and key."""
    try:
        raw = _parse_yaml(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return model.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        problems = "; ".join(f"{_key_path(e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from exc


def normalize_name(value: str) -> str:
    """The form names are compared in: case-folded, quotes and spacing ignored."""
    value = value.replace("«", "").replace("»", "").replace('"', "").replace("ё", "е").replace("Ё", "Е")
    return " ".join(value.casefold().split())


def load_ministries(path: Path | None = None) -> list[MinistryConfig]:
    """The ministries file, checked for duplicate codes and names that would match two bodies."""
    path = Path(path or get_settings().ministries_file)
    parsed = load_yaml_model(path, MinistriesFile)
    seen_codes: dict[str, int] = {}
    seen_names: dict[str, str] = {}
    for i, ministry in enumerate(parsed.ministries):
        if ministry.code in seen_codes:
            raise ConfigError(
                f"{path}: ministries[{i}].code: {ministry.code!r} already used by ministries[{seen_codes[ministry.code]}]"
            )
        seen_codes[ministry.code] = i
        labels = [("code", ministry.code)] + [(f"names.{k}", v) for k, v in ministry.names]
        labels += [(f"aliases[{j}]", a) for j, a in enumerate(ministry.aliases)]
        for key, label in labels:
            norm = normalize_name(label)
            other = seen_names.get(norm)
            if other is not None and other != ministry.code:
                raise ConfigError(
                    f"{path}: ministries[{i}].{key}: {label!r} also names ministry {other!r}"
                )
            seen_names[norm] = ministry.code
    return parsed.ministries
