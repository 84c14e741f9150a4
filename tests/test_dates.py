"""The one date parser (`models.dates.parse_date`), the one conversion (`as_date`) and the CLI's date options."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from typer.testing import CliRunner

from followup.models.dates import ImpossibleDate, NotADate, as_date, as_date_or_none, day_of, parse_date


@pytest.mark.parametrize("text", ["23.11.2026", "2026-11-23", " 23.11.2026 ", "23/11/2026", "2026-11-23 00:00", "2026-11-23T00:00:00", "2026-11-23 00:00:00"])
def test_day_first_and_iso_dates_name_the_same_day(text):
    assert parse_date(text) == date(2026, 11, 23)


def test_short_day_and_month_are_read_day_first():
    assert parse_date("1.2.2026") == date(2026, 2, 1)
    assert parse_date("2026-2-1") == date(2026, 2, 1)


@pytest.mark.parametrize(("text", "message"), [
    ("11/23/2026", "impossible date '11/23/2026' (month 23; dates are read day first"),
    ("02.13.2024", "impossible date '02.13.2024' (month 13"),
    ("31.02.2024", "impossible date '31.02.2024'"),
    ("2024-02-30", "impossible date '2024-02-30'"),
    ("29.02.2023", "impossible date '29.02.2023'"),
])
def test_impossible_and_month_first_dates_are_refused(text, message):
    with pytest.raises(ImpossibleDate) as raised:
        parse_date(text)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize("text", ["", "tomorrow", "23.11.26", "2026/11/23", "23-11-2026", "2026-11-23 10:00", "20261123"])
def test_texts_that_are_not_dates_say_which_forms_are(text):
    with pytest.raises(NotADate, match=r"not a date: .*expected DD\.MM\.YYYY or YYYY-MM-DD"):
        parse_date(text)


def test_both_refusals_are_value_errors():
    assert issubclass(NotADate, ValueError) and issubclass(ImpossibleDate, ValueError)


@pytest.mark.parametrize("value", [
    date(2026, 11, 23), datetime(2026, 11, 23, 17, 30), pd.Timestamp("2026-11-23 17:30"), "2026-11-23",
    " 2026-11-23 ", "2026-11-23 17:30:00", "2026-11-23T17:30:00+00:00", pd.Series(["2026-11-23"]).astype("datetime64[ns]").to_numpy()[0],
])
def test_as_date_takes_what_drivers_and_pandas_hand_over(value):
    assert as_date(value) == date(2026, 11, 23)
    assert type(as_date(value)) is date


@pytest.mark.parametrize("value", [None, pd.NaT, float("nan"), pd.NA, "", "  "])
def test_a_missing_value_is_none_or_an_error(value):
    assert as_date_or_none(value) is None
    with pytest.raises(ValueError, match="a date is missing"):
        as_date(value)


def test_an_aware_datetime_gives_the_day_in_the_zone_asked_for():
    late = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)  # 01:00 on the 24th in Almaty (UTC+5)
    assert as_date(late) == date(2026, 11, 23)
    assert as_date(late, tz=ZoneInfo("Asia/Almaty")) == date(2026, 11, 24)
    assert as_date("2026-11-23T20:00:00+00:00", tz=ZoneInfo("Asia/Almaty")) == date(2026, 11, 24)
    assert as_date(datetime(2026, 11, 23, 20, 0), tz=ZoneInfo("Asia/Almaty")) == date(2026, 11, 23)  # naive: as it is
    assert as_date(datetime(2026, 11, 23, 20, 0, tzinfo=timezone(timedelta(hours=-5)))) == date(2026, 11, 23)


def test_text_that_is_not_iso_is_refused_by_as_date():
    with pytest.raises(ValueError, match="not a date: '23.11.2026x'"):
        as_date("23.11.2026x")


def test_the_dates_module_imports_nothing_heavy():
    import subprocess
    import sys

    code = ("import sys; import followup.models.dates; "
            "heavy = [m for m in ('pandas', 'sqlalchemy', 'prefect', 'followup.config', 'followup.flows') if m in sys.modules]; "
            "print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# --- the command line: every date option goes through parse_date ------------------------------------


@pytest.mark.parametrize(("args", "option"), [
    (["run", "check-deadlines", "--as-of", "11/23/2026"], "--as-of"),
    (["run", "escalate", "--as-of", "11/23/2026"], "--as-of"),
    (["run", "dispatch", "--as-of", "31.02.2026"], "--as-of"),
    (["run", "digest", "--as-of", "tomorrow"], "--as-of"),
    (["run", "all", "--as-of", "11/23/2026"], "--as-of"),
    (["stats", "--as-of", "11/23/2026"], "--as-of"),
    (["follow-up", "select", "X-1", "--due", "11/23/2026"], "--due"),
    (["grade", "X-1", "A", "--on", "11/23/2026"], "--on"),
    (["grade", "X-1", "A", "--next-due", "11/23/2026"], "--next-due"),
    (["import", "recommendations", "missing.csv", "--issued-on", "11/23/2026"], "--issued-on"),
])
def test_every_date_option_refuses_a_bad_date_naming_the_option_and_the_forms(args, option):
    from followup.interfaces.cli import app

    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output
    assert "DD.MM.YYYY or YYYY-MM-DD" in result.output


def test_the_date_options_parser_accepts_both_forms():
    from followup.interfaces.cli import parse_date_option

    assert parse_date_option("23.11.2026") == parse_date_option("2026-11-23") == date(2026, 11, 23)
    assert parse_date_option(date(2026, 11, 23)) == date(2026, 11, 23)


def test_a_change_takes_effect_on_its_own_date_else_on_the_office_s_day_it_was_recorded():
    """One rule for the item's page, the workspace's trend, `followup stats` and the annual report:
    a reply dated 20.12 counts on 20.12; a change recorded at 20:30 UTC on 31.12 happened on
    01.01 in Astana (UTC+5), and SQLite's naive times are UTC."""
    almaty = ZoneInfo("Asia/Almaty")
    late_evening = datetime(2025, 12, 31, 20, 30)
    assert day_of(date(2025, 12, 20), late_evening, almaty) == date(2025, 12, 20)
    assert day_of(None, late_evening, almaty) == date(2026, 1, 1)
    assert day_of(None, late_evening.replace(tzinfo=UTC), almaty) == date(2026, 1, 1)
    assert day_of(None, late_evening, ZoneInfo("Europe/London")) == date(2025, 12, 31)
