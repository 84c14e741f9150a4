"""Working days in Kazakhstan: what "escalate after 10 working days" counts.

A day is a working day unless it is a Saturday or Sunday, a public holiday of the
`holidays` package (for KZ this already includes holidays moved off a weekend and days off
transferred by decree, whose weekend workdays it also knows), or an extra day off from the
policy; a weekend day listed as a working Saturday is a working day. Each year is computed
once into a cumulative count, so every query is a couple of list look-ups (plain Python: the
commands that only need `local_today`, such as `followup list`, load neither numpy nor the
holidays package).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import accumulate

from followup.config.policy import CalendarPolicy
from followup.config.settings import get_settings


def local_today() -> date:
    """Today in the office's time zone (Asia/Almaty), the `as_of` of a daily run."""
    return datetime.now(get_settings().tz).date()


@dataclass(frozen=True)
class _Year:
    first: date
    working: list[bool]  # per day of the year
    cum: list[int]  # working days from 1 January up to and including each day

    @property
    def total(self) -> int:
        return self.cum[-1]


@dataclass(frozen=True)
class WorkingCalendar:
    country: str = "KZ"
    extra_days_off: frozenset[date] = frozenset()
    working_saturdays: frozenset[date] = frozenset()
    _years: dict[int, _Year] = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    @classmethod
    def from_policy(cls, calendar: CalendarPolicy) -> WorkingCalendar:
        return cls(calendar.country, frozenset(calendar.extra_days_off), frozenset(calendar.working_saturdays))

    def _year(self, year: int) -> _Year:
        cached = self._years.get(year)
        if cached is None:
            import holidays  # here, not at the top: only counting working days needs it

            first = date(year, 1, 1)
            working = [(first + timedelta(days=i)).weekday() < 5 for i in range((date(year + 1, 1, 1) - first).days)]
            public = holidays.country_holidays(self.country, years=year)
            working_weekend = {d for d in getattr(public, "weekend_workdays", ()) if d.year == year}
            off = {d for d in public if d.year == year} | {d for d in self.extra_days_off if d.year == year}
            on = working_weekend | {d for d in self.working_saturdays if d.year == year}
            for d in off:
                working[(d - first).days] = False
            for d in on:
                working[(d - first).days] = True
            cached = self._years[year] = _Year(first, working, list(accumulate(int(w) for w in working)))
        return cached

    def is_working_day(self, day: date) -> bool:
        y = self._year(day.year)
        return y.working[(day - y.first).days]

    def _cum(self, day: date) -> int:
        y = self._year(day.year)
        return y.cum[(day - y.first).days]

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in (start, end]: 0 when end <= start. Friday -> next Monday is 1."""
        if end <= start:
            return 0
        between = sum(self._year(year).total for year in range(start.year, end.year))
        return between + self._cum(end) - self._cum(start)

    def add_working_days(self, day: date, n: int) -> date:
        """The n-th working day after `day` (before it when n < 0); `day` itself when n == 0.

        `day` need not be a working day: 1 working day after a Saturday is the next working day.
        """
        if n == 0:
            return day
        if n > 0:
            y = self._year(day.year)
            target = self._cum(day) + n  # cumulative count, in day.year, of the wanted day
            while target > y.total:
                target -= y.total
                y = self._year(y.first.year + 1)
        else:
            before = day - timedelta(days=1)
            y = self._year(before.year)
            target = self._cum(before) + n + 1  # the wanted working day is the |n|-th counting back
            while target < 1:
                y = self._year(y.first.year - 1)
                target += y.total
        return y.first + timedelta(days=bisect_left(y.cum, target))
