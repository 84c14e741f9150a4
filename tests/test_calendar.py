"""The working calendar counts days the way the office does: Kazakh public holidays, days off
moved off a weekend or transferred by decree, and the policy's own extra days off and working
Saturdays."""

from __future__ import annotations

from datetime import date

import pytest

from followup.config.policy import CalendarPolicy, load_policy
from followup.models.calendar import WorkingCalendar, local_today

KZ = WorkingCalendar()


def d(text: str) -> date:
    day, month, year = map(int, text.split("."))
    return date(year, month, day)


def test_nauryz_and_its_days_moved_off_the_weekend_are_not_working_days():
    # 2026: 21-22 March fall on Saturday-Sunday, so 24-25 March are days off as well
    assert [KZ.is_working_day(d(f"{day}.03.2026")) for day in range(20, 27)] == [True, False, False, False, False, False, True]
    # the day before Nauryz plus one working day is the Thursday after it
    assert KZ.add_working_days(d("20.03.2026"), 1) == d("26.03.2026")


def test_independence_day_is_a_day_off():
    assert not KZ.is_working_day(d("16.12.2025"))  # Tuesday
    assert not KZ.is_working_day(d("16.12.2026"))  # Wednesday
    assert KZ.working_days_between(d("15.12.2025"), d("17.12.2025")) == 1


def test_a_day_off_transferred_by_decree_and_its_working_saturday():
    # 2024: Wednesday 8 May was a day off, worked on Saturday 4 May instead
    assert not KZ.is_working_day(d("08.05.2024"))
    assert KZ.is_working_day(d("04.05.2024"))
    # 2026: Republic Day falls on Sunday 25 October, so Monday 26 October is off
    assert not KZ.is_working_day(d("26.10.2026"))
    assert KZ.add_working_days(d("23.10.2026"), 1) == d("27.10.2026")


def test_working_saturday_and_extra_day_off_from_the_policy():
    calendar = WorkingCalendar.from_policy(CalendarPolicy(working_saturdays=["27.06.2026"], extra_days_off=["2026-12-31"]))
    assert calendar.is_working_day(d("27.06.2026")) and not KZ.is_working_day(d("27.06.2026"))
    assert calendar.add_working_days(d("26.06.2026"), 1) == d("27.06.2026")
    # 31 December off, then New Year (1 January, and 2 January moved to Monday 4 January 2027)
    assert not calendar.is_working_day(d("31.12.2026"))
    assert calendar.add_working_days(d("30.12.2026"), 1) == d("05.01.2027")
    assert KZ.add_working_days(d("30.12.2026"), 1) == d("31.12.2026")


def test_the_shipped_policy_gives_the_plain_kz_calendar():
    assert WorkingCalendar.from_policy(load_policy().calendar) == KZ


@pytest.mark.parametrize(
    ("start", "end", "count"),
    [
        ("13.03.2026", "16.03.2026", 1),  # Friday -> Monday
        ("16.03.2026", "16.03.2026", 0),  # (start, end] is empty
        ("17.03.2026", "16.03.2026", 0),  # backwards: nothing
        ("14.03.2026", "16.03.2026", 1),  # from a Saturday
        ("20.03.2026", "31.03.2026", 4),  # over Nauryz: 26, 27, 30, 31 March
        ("30.12.2026", "05.01.2027", 2),  # across the year end: 31 December, 5 January
    ],
)
def test_working_days_between_counts_start_exclusive_end_inclusive(start, end, count):
    assert KZ.working_days_between(d(start), d(end)) == count


def test_adding_and_counting_agree_forwards_and_backwards():
    start = d("10.12.2025")
    for n in (1, 5, 10, 40, 300):
        later = KZ.add_working_days(start, n)
        assert KZ.is_working_day(later) and KZ.working_days_between(start, later) == n
        assert KZ.add_working_days(later, -n) == start  # start is a working day
    assert KZ.add_working_days(d("26.03.2026"), -1) == d("20.03.2026")
    assert KZ.add_working_days(d("21.03.2026"), 0) == d("21.03.2026")


def test_today_is_a_date():
    assert isinstance(local_today(), date)
