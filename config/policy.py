"""The office's deadline and escalation policy, read from `config/policy.yaml`.

The policy is data the office edits, not code: deadlines per source, reminders, when an
item is escalated, the working calendar and the legal-basis line of letters. Rules are
resolved field by field with the precedence priority > ministry > source > defaults, so an
override only has to name what it changes. Errors name file and key (see `load_yaml_model`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from dateutil.relativedelta import relativedelta
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from followup.config.loader import ConfigError, Names, load_ministries, load_yaml_model
from followup.models.dates import ImpossibleDate, NotADate, parse_date
from followup.models.domain import Priority, Source

POLICY_FILE = Path(__file__).resolve().parent / "policy.yaml"


def _parse_day(value: object) -> object:
    """Accept a YAML date, `DD.MM.YYYY` (as in the office's documents) or ISO `YYYY-MM-DD`."""
    if isinstance(value, datetime):
        raise ValueError("expected a date without a time")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return parse_date(text)
        except ImpossibleDate:
            raise ValueError(f"{text!r} is not a valid date") from None
        except NotADate:
            pass
    raise ValueError(f"{value!r} is not a date: write DD.MM.YYYY or YYYY-MM-DD")


def _on_weekend(day: date) -> date:
    if day.weekday() < 5:
        raise ValueError(f"{day:%d.%m.%Y} is a {day:%A}: only a Saturday or Sunday can be made a working day")
    return day


Day = Annotated[date, BeforeValidator(_parse_day)]
WeekendDay = Annotated[date, BeforeValidator(_parse_day), AfterValidator(_on_weekend)]
MinistryCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Duration(_Strict):
    """A calendar duration such as `{days: 90}`, `{months: 30}` or `{years: 1}`."""

    years: int = Field(0, ge=0)
    months: int = Field(0, ge=0)
    weeks: int = Field(0, ge=0)
    days: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _not_empty(self) -> Duration:
        if not (self.years or self.months or self.weeks or self.days):
            raise ValueError("give at least one of years, months, weeks, days (e.g. {days: 90})")
        return self

    @property
    def delta(self) -> relativedelta:
        return relativedelta(years=self.years, months=self.months, weeks=self.weeks, days=self.days)

    def after(self, day: date) -> date:
        """`day` + this duration; 31 January + 1 month is the last day of February."""
        return day + self.delta


def _distinct_descending(days: tuple[int, ...]) -> tuple[int, ...]:
    if len(set(days)) != len(days):
        raise ValueError("a reminder offset is listed twice")
    return tuple(sorted(days, reverse=True))


ReminderDays = Annotated[tuple[Annotated[int, Field(ge=0)], ...], AfterValidator(_distinct_descending)]


class Rule(_Strict):
    """An override: only the fields it gives replace those of the level below."""

    deadline: Duration | None = None
    reminder_days_before: ReminderDays | None = None
    escalate_after_working_days: int | None = Field(None, ge=1)


class Terms(_Strict):
    """The complete terms that apply to one recommendation (all fields known)."""

    deadline: Duration
    reminder_days_before: ReminderDays
    escalate_after_working_days: int = Field(ge=1)


class Individualized(_Strict):
    """Individualized recommendations to a ministry: unanswered past this deadline -> level 2.

    `approval: required` (the shipped policy): escalation drafts the letter and a head approves
    it (outgoing number, date, signature) before it leaves; the deadline runs from the outgoing
    date. `automatic`: it leaves at once, numbered with its reference and dated the run's day.
    A draft waiting longer than `approval_days` working days is listed in the digest.
    """

    response_deadline: Duration
    approval: Literal["required", "automatic"] = "required"
    approval_days: int = Field(3, ge=1)


class Letters(_Strict):
    """How much a reminder letter lists in its body; the rest goes in an attached spreadsheet (CSV).

    A clerk reads a letter of a few dozen items; a backlog of thousands would make a letter of
    tens of megabytes that no mail server accepts and nobody reads.
    """

    listed_items: int = Field(100, ge=1)


class Replies(_Strict):
    """Ministries' replies: which claims the office reviews before they move an item, and the
    terms of the reply links and evidence files."""

    #: claims that wait for the office's review (the status stays meanwhile); the others move
    #: the item at once. Of: in_progress, implemented, partially_implemented, rejected
    review: list[Literal["in_progress", "implemented", "partially_implemented", "rejected"]] = ["implemented", "rejected"]
    #: a reply link works this many days from its letter's date
    link_days: int = Field(90, ge=1, le=3660)
    #: the validating official's confirmation link works this many days from the draft
    confirm_days: int = Field(14, ge=1, le=365)
    #: the largest evidence file accepted, in megabytes
    evidence_max_mb: float = Field(20, gt=0, le=500)


def _known_country(country: str) -> bool:
    """Whether the holidays package has `country`, told without loading its holidays: the
    package names each country (codes, aliases) by a lazy loader, and loading one imports
    `holidays.countries`, which imports all 250 of them (a tenth of a second of every command
    that reads the policy). Anything else is asked the way the calendar will ask it."""
    import holidays  # here, not at the top: only reading the policy needs it
    from holidays.registry import EntityLoader

    if isinstance(getattr(holidays, country, None), EntityLoader):
        return True
    try:
        holidays.country_holidays(country)
    except NotImplementedError:
        return False
    return True


class CalendarPolicy(_Strict):
    country: str = "KZ"
    extra_days_off: list[Day] = []
    working_saturdays: list[WeekendDay] = []

    @model_validator(mode="after")
    def _check(self) -> CalendarPolicy:
        if not _known_country(self.country):
            raise ValueError(f"country {self.country!r} is not known to the holidays package (e.g. KZ)")
        both = sorted(set(self.extra_days_off) & set(self.working_saturdays))
        if both:
            listed = ", ".join(f"{d:%d.%m.%Y}" for d in both)
            raise ValueError(f"{listed} listed both in extra_days_off and working_saturdays")
        return self


CommitteeCode = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9]*$")]


class FollowUpProcedure(_Strict):
    """Treaty bodies' follow-up procedure: how long the state has to report on the recommendations
    a committee selected, counted from the concluding observations (`issued_on`).

    The terms changed over the years (the Human Rights Committee moved from one year to two),
    so they are data: `committees` by the code the symbols start with (CCPR, CAT…), else `default`.
    """

    default: Duration = Duration(years=1)
    committees: dict[CommitteeCode, Duration] = {}

    def term_for(self, committee: str | None) -> Duration:
        return self.committees.get((committee or "").upper(), self.default)


def _rule(rules: Mapping[Any, Rule], key: str | None) -> Rule | None:
    """The override for `key` (a priority, a ministry or a source, as text: the keys are StrEnums
    or codes, equal to their text), if any."""
    return rules.get(key) if key else None


class Policy(_Strict):
    defaults: Terms
    sources: dict[Source, Rule] = {}
    ministries: dict[MinistryCode, Rule] = {}
    priorities: dict[Priority, Rule] = {}
    individualized: Individualized
    calendar: CalendarPolicy = Field(default_factory=CalendarPolicy)  # made when needed: it loads the country's holidays
    letters: Letters = Letters()
    replies: Replies = Replies()
    follow_up: FollowUpProcedure = FollowUpProcedure()
    #: the legal-basis paragraph of an individualized recommendation, in each language a letter
    #: may be written in (a Kazakh letter must not carry a Russian paragraph)
    legal_basis: Names

    def terms_for(self, source: str | None, ministry_code: str | None, priority: str | None) -> Terms:
        """Resolve field by field: priority over ministry over source over defaults."""
        levels = [_rule(self.priorities, priority), _rule(self.ministries, ministry_code), _rule(self.sources, source)]
        values = {}
        for name in Rule.model_fields:
            chosen = next((getattr(r, name) for r in levels if r is not None and getattr(r, name) is not None), None)
            values[name] = getattr(self.defaults, name) if chosen is None else chosen
        return Terms(**values)

    def longest_reminder(self) -> int:
        """The most days before a deadline at which any rule sends a reminder (0: none do)."""
        rules = [*self.sources.values(), *self.ministries.values(), *self.priorities.values()]
        offsets = [*self.defaults.reminder_days_before, *(d for r in rules for d in (r.reminder_days_before or ()))]
        return max(offsets, default=0)

    def shortest_escalation(self) -> int:
        """The fewest working days overdue after which any item may be escalated (any rule)."""
        rules = [*self.sources.values(), *self.ministries.values(), *self.priorities.values()]
        return min([self.defaults.escalate_after_working_days,
                    *(r.escalate_after_working_days for r in rules if r.escalate_after_working_days)])


def load_policy(path: Path | str | None = None, *, ministry_codes: set[str] | None = None) -> Policy:
    """Read and check the policy file; an override for a ministry that `ministry_codes` (by
    default the ministries file's codes) does not know is a mistake named by file and key, not
    a rule that silently never applies."""
    if path is None:
        from followup.config.settings import get_settings

        path = get_settings().policy_file  # FOLLOWUP_POLICY_FILE, else config/policy.yaml
    path = Path(path)
    policy = load_yaml_model(path, Policy)
    if policy.ministries:
        if ministry_codes is None:
            ministry_codes = {m.code for m in load_ministries()}
        for code in policy.ministries:
            if code not in ministry_codes:
                raise ConfigError(f"{path}: ministries.{code}: no such ministry (known: {', '.join(sorted(ministry_codes))})")
    return policy


def copy_with_approval(target: Path | str, approval: Literal["required", "automatic"], *, source: Path | str | None = None) -> Path:
    """Write a copy of the policy file (the shipped one by default) with `individualized.approval`
    set, comments kept: the demo, the benchmarks and the tests whose letters leave on their own use
    an `automatic` copy through FOLLOWUP_POLICY_FILE."""
    text = Path(source or POLICY_FILE).read_text(encoding="utf-8")
    changed, count = re.subn(r"(?m)^(\s+approval:\s*)(required|automatic)\b", rf"\g<1>{approval}", text)
    if count != 1:
        raise ConfigError(f"{source or POLICY_FILE}: individualized.approval: expected one `approval: required|automatic` line")
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(changed, encoding="utf-8")
    return path
