"""Triage rules, read from `config/triage.yaml`: which ministry an unassigned recommendation goes to.

International recommendations arrive without a responsible ministry. The office writes down
how it usually decides ("torture and police custody -> interior; psychiatric care -> health"),
and `followup triage --apply` assigns what the rules settle; the rest stays in the queue for a
person. A rule may also go by the facility the recommendation came from: its name or its type
("every guardhouse -> defence"), which an NPM item has and an international one has not.
Validated on load; an error names file and key (`config/triage.yaml: rules[2].ministry: …`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from followup.config.loader import ConfigError, load_yaml_model
from followup.config.settings import get_settings
from followup.models.domain import FacilityType, Source


class TriageRule(BaseModel):
    """A rule matches when ANY of its themes, affected persons or keywords is found (words anywhere,
    without case), or the item's facility is of one of its `facility_types` or has one of its
    `facilities` in its name (folded as the search folds: case, ё/е, Kazakh letters, punctuation),
    and, if it names sources, the recommendation comes from one of them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    ministry: str
    themes: list[str] = []
    affected_persons: list[str] = []
    keywords: list[str] = []
    facilities: list[str] = []
    facility_types: list[FacilityType] = []
    sources: list[Source] = []
    note: str | None = None

    @model_validator(mode="after")
    def _says_something(self) -> TriageRule:
        if not (self.themes or self.affected_persons or self.keywords or self.facilities or self.facility_types):
            raise ValueError("give at least one of themes, affected_persons, keywords, facilities, facility_types")
        for name in ("themes", "affected_persons", "keywords"):
            if any(not v.strip() for v in getattr(self, name)):
                raise ValueError(f"{name}: an empty entry would match everything")
        # a facility name is compared folded (punctuation dropped): it needs a letter or a digit
        if any(not any(c.isalnum() for c in v) for v in self.facilities):
            raise ValueError("facilities: an entry without a letter or digit would match everything")
        return self


class TriageFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    rules: list[TriageRule] = Field(default_factory=list)


def load_triage(path: Path | str | None = None, *, ministry_codes: set[str] | None = None) -> list[TriageRule]:
    """The rules in file order (the first that matches wins); `ministry_codes` catches a mistyped ministry."""
    path = Path(path or get_settings().triage_file)
    rules = load_yaml_model(path, TriageFile).rules
    if ministry_codes is not None:
        for i, rule in enumerate(rules):
            if rule.ministry not in ministry_codes:
                raise ConfigError(
                    f"{path}: rules[{i}].ministry: no such ministry {rule.ministry!r} (known: {', '.join(sorted(ministry_codes))})"
                )
    return rules
