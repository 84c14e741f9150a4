"""The office's deadline policy and escalation ladder, scenario by scenario.

Dates are written day-first as in the office's documents. Each scenario is a small frame of
recommendations as the flows will read them from the registry; `decide` must say what to do.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml

from followup.config.loader import ConfigError
from followup.config.policy import POLICY_FILE, Policy, load_policy
from followup.models.policy import decide, level2

POLICY = load_policy()


def d(text: str) -> date:
    day, month, year = map(int, text.split("."))
    return date(year, month, day)


def rec(**fields) -> dict:
    row = {
        "id": 1, "external_id": "NPM-2026-001", "ministry_code": "interior", "source": "npm_visit",
        "priority": "normal", "status": "issued", "issued_on": d("01.04.2026"), "due_on": d("30.06.2026"),
        "days_on_hold": 0, "overdue_since": None, "last_reminder_offset": None,
    }  # fmt: skip
    row.update(fields)
    return row


def run(*rows: dict, on: str, policy: Policy = POLICY):
    return decide(pd.DataFrame(list(rows)), policy, d(on))


def policy_with(tmp_path: Path, **changes) -> Policy:
    """The shipped policy with some top-level sections replaced, loaded from a file."""
    raw = yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8"))
    raw.update(changes)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return load_policy(path)


# --- deadlines --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "issued", "due"),
    [
        ("npm_visit", "15.01.2026", "15.04.2026"),  # 90 days
        ("treaty_body", "15.01.2026", "15.01.2027"),  # 1 year
        ("upr", "15.01.2026", "15.07.2028"),  # 30 months
        ("spt", "15.01.2026", "15.07.2026"),  # 6 months
        ("spt", "31.08.2025", "28.02.2026"),  # no 31 February: the last day of the month
        ("other", "15.01.2026", "15.04.2026"),  # 90 days
    ],
)
def test_a_recommendation_without_deadline_gets_the_one_of_its_source(source, issued, due):
    decisions = run(rec(source=source, issued_on=d(issued), due_on=None), on="16.01.2026")
    assert decisions.derived_due.to_dict("records") == [{"id": 1, "external_id": "NPM-2026-001", "due_on": d(due)}]


def test_a_given_deadline_is_kept_and_not_reported_as_derived():
    assert run(rec(), on="01.05.2026").derived_due.empty


def test_overrides_priority_over_ministry_over_source(tmp_path):
    policy = policy_with(
        tmp_path,
        ministries={"interior": {"deadline": {"days": 60}}},
        priorities={"urgent": {"deadline": {"days": 30}, "reminder_days_before": [7]}},
    )
    rows = [
        rec(id=1, source="upr", ministry_code="health", due_on=None),  # source: 30 months
        rec(id=2, source="upr", ministry_code="interior", due_on=None),  # ministry beats source
        rec(id=3, source="upr", ministry_code="interior", priority="urgent", due_on=None),  # priority beats both
    ]
    derived = run(*rows, on="02.04.2026", policy=policy).derived_due.set_index("id")["due_on"].to_dict()
    assert derived == {1: d("01.10.2028"), 2: d("31.05.2026"), 3: d("01.05.2026")}
    # each term comes from the first level that sets it
    terms = policy.terms_for("upr", "interior", "urgent")
    assert terms.reminder_days_before == (7,) and terms.escalate_after_working_days == 10
    assert policy.terms_for("upr", "interior", "normal").reminder_days_before == (14, 3)


# --- reminders --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("on", "already_sent", "expected"),
    [
        ("15.06.2026", None, []),  # 15 days before: nothing yet
        ("16.06.2026", None, [14]),  # 14 days before
        ("17.06.2026", 14, []),  # the 14-day reminder went out yesterday
        ("27.06.2026", 14, [3]),  # 3 days before
        ("27.06.2026", None, [3]),  # the run missed the 14-day day: only the 3-day reminder
        ("20.06.2026", None, [14]),  # missed the 14-day day, not yet 3 days before: send it late
        ("28.06.2026", 3, []),  # each reminder once
        ("30.06.2026", None, [3]),  # still not sent on the deadline day: now or never
        ("01.07.2026", None, []),  # after the deadline it is overdue, not reminded
    ],
)
def test_reminders_fourteen_and_three_days_before(on, already_sent, expected):
    reminders = run(rec(last_reminder_offset=already_sent), on=on).reminders
    assert reminders["offset"].tolist() == expected
    if expected:
        assert reminders.iloc[0][["ministry_code", "due_on"]].tolist() == ["interior", d("30.06.2026")]


def test_only_items_with_the_clock_running_are_reminded():
    rows = [rec(id=i, status=s) for i, s in enumerate(["issued", "in_progress", "on_hold", "partially_implemented", "overdue", "implemented", "unassigned"])]
    assert run(*rows, on="16.06.2026").reminders["id"].tolist() == [0, 1]


# --- overdue ----------------------------------------------------------------------------


def test_overdue_the_day_after_the_deadline_not_on_it():
    assert run(rec(), on="30.06.2026").overdue.empty
    overdue = run(rec(), rec(id=2, status="in_progress"), on="01.07.2026").overdue
    assert overdue.to_dict("records")[0] == {
        "id": 1, "external_id": "NPM-2026-001", "ministry_code": "interior",
        "due_on": d("30.06.2026"), "overdue_since": d("01.07.2026"),
    }  # fmt: skip
    assert overdue["id"].tolist() == [1, 2]


def test_a_partial_answer_is_an_answer_not_overdue():
    assert run(rec(status="partially_implemented"), on="01.09.2026").overdue.empty


# --- escalation -------------------------------------------------------------------------


def overdue_in_december(**fields) -> dict:
    """Deadline Thursday 11.12.2025, overdue since Friday 12.12.2025; Independence Day 16.12 in between."""
    return rec(**{"status": "overdue", "issued_on": d("12.09.2025"), "due_on": d("11.12.2025"), "overdue_since": d("12.12.2025"), **fields})


def test_escalation_after_exactly_ten_working_days_over_a_weekend_and_independence_day():
    # working days after 12.12: 15, (16 off), 17, 18, 19, 22, 23, 24, 25, 26 -> nine; 29.12 is the tenth
    assert run(overdue_in_december(), on="26.12.2025").escalate.empty
    escalate = run(overdue_in_december(), on="29.12.2025").escalate
    assert escalate[["id", "ministry_code", "overdue_since", "working_days_overdue"]].to_dict("records") == [
        {"id": 1, "ministry_code": "interior", "overdue_since": d("12.12.2025"), "working_days_overdue": 10}
    ]


def test_a_working_saturday_from_the_policy_counts(tmp_path):
    policy = policy_with(tmp_path, calendar={"country": "KZ", "working_saturdays": ["27.12.2025"]})
    assert run(overdue_in_december(), on="26.12.2025", policy=policy).escalate.empty
    assert run(overdue_in_december(), on="27.12.2025", policy=policy).escalate["id"].tolist() == [1]


def test_escalation_follows_a_per_priority_threshold(tmp_path):
    policy = policy_with(tmp_path, priorities={"urgent": {"escalate_after_working_days": 2}})
    rows = [overdue_in_december(), overdue_in_december(id=2, priority="urgent")]
    assert run(*rows, on="17.12.2025", policy=policy).escalate["id"].tolist() == [2]


def test_without_overdue_since_escalation_counts_from_the_day_after_the_deadline():
    assert run(overdue_in_december(overdue_since=None), on="29.12.2025").escalate["id"].tolist() == [1]


def test_time_on_hold_moves_the_deadline_and_everything_after_it():
    held = {"days_on_hold": 10}  # deadline 30.06.2026 -> effective 10.07.2026 (Friday)
    assert run(rec(**held), on="16.06.2026").reminders.empty
    assert run(rec(**held), on="26.06.2026").reminders[["due_on", "offset"]].values.tolist() == [[d("10.07.2026"), 14]]
    assert run(rec(**held), on="10.07.2026").overdue.empty
    assert run(rec(**held), on="11.07.2026").overdue["due_on"].tolist() == [d("10.07.2026")]
    # went overdue on 01.07, then 10 days on hold: counted from 11.07 (Saturday) -> 10th working day is 24.07
    back = rec(status="overdue", overdue_since=d("01.07.2026"), **held)
    assert run(back, on="23.07.2026").escalate.empty
    assert run(back, on="24.07.2026").escalate["overdue_since"].tolist() == [d("11.07.2026")]


def test_items_on_hold_closed_unassigned_or_escalated_are_left_alone():
    statuses = ["on_hold", "implemented", "rejected", "withdrawn", "unassigned", "escalated"]
    rows = [overdue_in_december(id=i, status=s, due_on=None) for i, s in enumerate(statuses)]
    decisions = run(*rows, on="15.06.2026")
    assert decisions.reminders.empty and decisions.overdue.empty and decisions.escalate.empty
    assert decisions.derived_due["id"].tolist() == [0, 5]  # on hold and escalated items are still open


def test_an_empty_registry_decides_nothing_and_a_missing_column_is_named():
    decisions = decide(pd.DataFrame([rec()]).iloc[:0], POLICY, d("01.07.2026"))
    assert decisions.overdue.empty and list(decisions.overdue.columns) == ["id", "external_id", "ministry_code", "due_on", "overdue_since"]
    with pytest.raises(ValueError, match="days_on_hold"):
        decide(pd.DataFrame([rec()]).drop(columns="days_on_hold"), POLICY, d("01.07.2026"))


# --- level 2 ----------------------------------------------------------------------------


def test_level_two_takes_the_items_still_escalated_after_their_letters_deadline():
    """Two letters, both due on 04.03.2026: the health ministry answered every item, the
    interior ministry one of two (the other still waits); a third letter is due later."""
    items = pd.DataFrame(
        [
            {"id": 1, "letter": 10, "status": "escalated", "response_due_on": d("04.03.2026")},
            {"id": 2, "letter": 10, "status": "implemented", "response_due_on": d("04.03.2026")},
            {"id": 3, "letter": 11, "status": "in_progress", "response_due_on": d("04.03.2026")},
            {"id": 4, "letter": 11, "status": "partially_implemented", "response_due_on": d("04.03.2026")},
            {"id": 5, "letter": 12, "status": "escalated", "response_due_on": d("20.03.2026")},
            {"id": 6, "letter": 13, "status": "escalated", "response_due_on": None},
        ]
    )  # fmt: skip
    assert level2(items, d("04.03.2026")).empty  # due today, not late
    late = level2(items, d("05.03.2026"))
    assert late.to_dict("records") == [{"id": 1, "letter": 10, "status": "escalated", "response_due_on": d("04.03.2026")}]
    assert level2(items, d("21.03.2026"))["id"].tolist() == [1, 5]  # an answered item, or one with no deadline, never
    assert level2(items.iloc[:0], d("21.03.2026")).empty


# --- the policy file --------------------------------------------------------------------


def test_the_shipped_policy():
    assert POLICY.defaults.reminder_days_before == (14, 3)
    assert POLICY.defaults.escalate_after_working_days == 10
    assert POLICY.calendar.country == "KZ"
    assert "Уполномоченном по правам человека" in POLICY.legal_basis.ru and "22" in POLICY.legal_basis.ru
    assert "Адам құқықтары жөніндегі уәкіл" in POLICY.legal_basis.kk and "Commissioner for Human Rights" in POLICY.legal_basis.en


def test_dates_may_be_day_first_or_iso(tmp_path):
    path = tmp_path / "policy.yaml"
    text = POLICY_FILE.read_text(encoding="utf-8").replace("extra_days_off: []", 'extra_days_off: ["02.11.2026", 2026-11-03, "2026-11-04"]')
    path.write_text(text, encoding="utf-8")
    assert load_policy(path).calendar.extra_days_off == [d("02.11.2026"), d("03.11.2026"), d("04.11.2026")]


@pytest.mark.parametrize(
    ("section", "value", "words"),
    [
        ("defaults", {"deadline": {"day": 90}, "reminder_days_before": [14, 3], "escalate_after_working_days": 10}, "defaults.deadline.day: Extra inputs"),
        ("defaults", {"deadline": {"days": 90}, "reminder_days_before": [14, 3]}, "defaults.escalate_after_working_days: Field required"),
        ("sources", {"upr": {"deadline": {}}}, "sources.upr.deadline: Value error, give at least one"),
        ("sources", {"upr": {"deadline": {"months": -6}}}, "sources.upr.deadline.months"),
        ("sources", {"ngo": {"deadline": {"days": 30}}}, "sources.ngo.[key]"),
        ("priorities", {"urgent": {"reminder_days_before": [3, 3]}}, "priorities.urgent.reminder_days_before: Value error, a reminder offset is listed twice"),
        ("priorities", {"urgent": {"escalate_after_working_days": 0}}, "priorities.urgent.escalate_after_working_days"),
        ("ministries", {"Interior": {"deadline": {"days": 30}}}, "ministries.Interior.[key]"),
        ("calendar", {"country": "KZ", "extra_days_off": ["31.02.2026"]}, "calendar.extra_days_off[0]: Value error, '31.02.2026' is not a valid date"),
        ("calendar", {"country": "KZ", "extra_days_off": ["next friday"]}, "calendar.extra_days_off[0]"),
        ("calendar", {"country": "KZ", "working_saturdays": ["29.06.2026"]}, "calendar.working_saturdays[0]: Value error, 29.06.2026 is a Monday"),
        ("calendar", {"country": "KZ", "extra_days_off": ["27.06.2026"], "working_saturdays": ["27.06.2026"]}, "calendar: Value error, 27.06.2026 listed both"),
        ("calendar", {"country": "XX"}, "calendar: Value error, country 'XX'"),
        ("legal_basis", {"ru": "Статья 22", "en": "Article 22", "kk": ""}, "legal_basis.kk: String should have at least 1 character"),
        # one text for every language is how a Kazakh letter got a Russian paragraph
        ("legal_basis", "Статья 22", "legal_basis: Input should be a valid dictionary"),
        ("legal_basis", {"ru": "Статья 22", "en": "Article 22"}, "legal_basis.kk: Field required"),
        ("individualized", {"response_deadline": None}, "individualized.response_deadline"),
    ],
)
def test_a_mistake_in_policy_yaml_names_file_and_key(tmp_path, section, value, words):
    with pytest.raises(ConfigError) as caught:
        policy_with(tmp_path, **{section: value})
    assert str(tmp_path / "policy.yaml") in str(caught.value)
    assert words in str(caught.value)


def test_a_ministry_override_for_an_unknown_ministry_is_named(tmp_path):
    """Checked against config/ministries.yaml whenever the policy is read, as the flows read it."""
    with pytest.raises(ConfigError, match=r"policy.yaml: ministries.intrior: no such ministry \(known: defence, "):
        policy_with(tmp_path, ministries={"intrior": {"deadline": {"days": 30}}})
    with pytest.raises(ConfigError, match=r"policy.yaml: ministries.intrior: no such ministry \(known: health, interior\)"):
        load_policy(tmp_path / "policy.yaml", ministry_codes={"interior", "health"})
    assert policy_with(tmp_path, ministries={"interior": {"deadline": {"days": 30}}}).ministries


def test_a_missing_policy_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nowhere.yaml: file not found"):
        load_policy(tmp_path / "nowhere.yaml")


def test_one_items_effective_deadline_is_the_frames():
    """The registry list judges a few items one by one (`effective_due_on`); the daily pass judges
    frames (`effective_due`): an item's deadline is the same day in both."""
    import numpy as np

    from followup.models.policy import effective_due, effective_due_on

    as_of = date(2026, 7, 20)
    items = [
        (date(2026, 6, 30), 0, None),  # never held
        (date(2026, 6, 30), 10, None),  # held 10 days, running again
        (date(2026, 6, 30), None, date(2026, 7, 15)),  # on hold since 15.07: 5 days so far
        (date(2026, 6, 30), 3, date(2026, 7, 25)),  # a hold dated after the day asked about counts nothing yet
        (None, 4, None),  # no deadline yet
    ]
    frame = pd.DataFrame(items, columns=["due_on", "days_on_hold", "on_hold_since"])
    frames = [None if np.isnat(d) else d.astype("datetime64[D]").item() for d in effective_due(frame, as_of)]
    assert frames == [effective_due_on(*item, as_of) for item in items]
    assert frames == [date(2026, 6, 30), date(2026, 7, 10), date(2026, 7, 5), date(2026, 7, 3), None]
