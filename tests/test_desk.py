"""`followup serve`'s desk (operations/desk.py): what `followup run` hands over, who may hand it
over, and what comes back. The step here is a stand-in function so that the protocol is seen
alone; tests/test_run_on_server.py runs the real flows through a real `followup serve`."""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from followup.operations.desk import Declined, Desk, hand_off, settings_fingerprint


class Refused(ValueError):
    pass


def _failure(exc: BaseException) -> tuple[str, int] | None:
    return (str(exc), 2) if isinstance(exc, Refused) else None


@pytest.fixture
def desk():
    ran: list[tuple[str, dict[str, Any]]] = []

    def run(step: str, parameters: dict[str, Any]) -> Any:
        ran.append((step, parameters))
        logging.getLogger("followup.steps.deadlines").warning("deciding %s items", 3050)
        if parameters.get("as_of") == "2026-02-30":
            raise Refused("--as-of: day is out of range for month")
        if parameters.get("as_of") == "1999-01-01":
            raise KeyError("a bug")
        if parameters.get("slow"):
            time.sleep(0.5)
        return {"to_overdue": 8, "reminders": 11}

    opened = Desk(run=run, failure=_failure, api_url="http://127.0.0.1:4200/api")
    opened.open()
    opened.ran = ran  # type: ignore[attr-defined]
    yield opened
    opened.close()


def test_a_handed_over_step_runs_in_the_serve_process_and_its_lines_and_counts_come_back(desk: Desk):
    lines: list[str] = []
    ended = hand_off(desk.url, desk.token, "check-deadlines", {"as_of": date(2026, 11, 24)}, api_url=None,
                     on_line=lines.append)
    assert ended.failure is None and ended.result == {"to_overdue": 8, "reminders": 11}
    assert desk.ran == [("check-deadlines", {"as_of": "2026-11-24"})]  # type: ignore[attr-defined]
    assert [line for line in lines if line.endswith("deciding 3050 items")], lines


def test_a_known_failure_comes_back_as_its_sentence_and_exit_code_and_a_bug_as_its_type(desk: Desk):
    refused = hand_off(desk.url, desk.token, "check-deadlines", {"as_of": "2026-02-30"}, api_url=None, on_line=print)
    assert refused.failure == ("--as-of: day is out of range for month", 2)
    bug = hand_off(desk.url, desk.token, "check-deadlines", {"as_of": "1999-01-01"}, api_url=None, on_line=print)
    assert bug.failure == ("KeyError: 'a bug'", 1)


def test_the_desk_runs_nothing_for_a_caller_without_its_token_or_with_other_settings(desk: Desk, monkeypatch, tmp_path: Path):
    with pytest.raises(Declined, match="wrong token"):
        hand_off(desk.url, "guessed", "check-deadlines", {}, api_url=None, on_line=print)
    with pytest.raises(Declined, match="no step 'drop-registry'"):
        hand_off(desk.url, desk.token, "drop-registry", {}, api_url=None, on_line=print)
    with pytest.raises(Declined, match="reports to http://127.0.0.1:4200/api, not to PREFECT_API_URL"):
        hand_off(desk.url, desk.token, "check-deadlines", {}, api_url="https://prefect.example.org/api", on_line=print)
    monkeypatch.setenv("FOLLOWUP_DATABASE_URL", "sqlite:////elsewhere/registry.db")
    with pytest.raises(Declined, match="other settings"):
        hand_off(desk.url, desk.token, "check-deadlines", {}, api_url=None, on_line=print)
    monkeypatch.undo()
    (tmp_path / "another-office").mkdir()
    monkeypatch.chdir(tmp_path / "another-office")
    with pytest.raises(Declined, match="other settings"):
        hand_off(desk.url, desk.token, "check-deadlines", {}, api_url=None, on_line=print)
    assert desk.ran == []  # type: ignore[attr-defined]
    # a browser page cannot send the token: a plain form post is refused like any other
    request = urllib.request.Request(f"{desk.url}/run", data=b"step=check-deadlines", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401


def test_a_desk_that_is_gone_declines_so_the_command_runs_the_step_itself():
    with pytest.raises(Declined, match="does not answer"):
        hand_off("http://127.0.0.1:9", "token", "check-deadlines", {}, api_url=None, on_line=print)


def test_two_steps_handed_over_at_once_run_one_after_the_other(desk: Desk):
    ends: list[float] = []
    lines: list[str] = []

    def hand() -> None:
        hand_off(desk.url, desk.token, "dispatch", {"slow": True}, api_url=None, on_line=lines.append)
        ends.append(time.monotonic())

    started = time.monotonic()
    both = [threading.Thread(target=hand) for _ in range(2)]
    for t in both:
        t.start()
    for t in both:
        t.join(timeout=30)
    assert len(ends) == 2 and max(ends) - started >= 1.0  # 0.5 s each, not side by side
    assert any("waiting for the run handed over before this one" in line for line in lines)


def test_the_fingerprint_hides_the_settings_it_stands_for(tmp_path: Path):
    secret = {"FOLLOWUP_DATABASE_URL": "postgresql+psycopg://office:s3cret@db/registry"}
    printed = settings_fingerprint(secret, tmp_path)
    assert "s3cret" not in printed and printed == settings_fingerprint(dict(secret), tmp_path)
    assert printed != settings_fingerprint({**secret, "FOLLOWUP_POLICY_FILE": "other.yaml"}, tmp_path)
    assert printed == settings_fingerprint({**secret, "HOME": "/elsewhere"}, tmp_path)
