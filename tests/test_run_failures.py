"""Known failures end in one sentence: in the Prefect run (its state's message and its log,
no traceback) and on the command line. The run still fails."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from followup.config.settings import get_settings
from followup.flows.ingest import ingest_flow
from followup.flows.pipeline import check_deadlines_flow
from followup.interfaces.cli import app


async def _logs(flow_run_id) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    await APILogHandler.aflush()
    async with get_client() as client:
        logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in logs]


@pytest.mark.usefixtures("prefect_server")
def test_a_missing_file_fails_the_ingest_run_with_one_sentence(tmp_path):
    missing = tmp_path / "inbox" / "visit-2026-03.csv"
    state = ingest_flow(str(missing), return_state=True)
    assert state.is_failed()
    assert state.message == f"{missing}: no such file"
    logs = asyncio.run(_logs(state.state_details.flow_run_id))
    assert f"{missing}: no such file" in logs
    assert not [line for line in logs if "Traceback" in line], logs


@pytest.mark.usefixtures("prefect_server")
def test_a_wrong_setting_fails_the_run_with_one_sentence(monkeypatch):
    monkeypatch.setenv("FOLLOWUP_TIMEZONE", "Mars/Olympus")
    get_settings.cache_clear()
    state = check_deadlines_flow(return_state=True)
    assert state.is_failed()
    assert state.message == "FOLLOWUP_TIMEZONE: 'Mars/Olympus' is not a time zone of the IANA database (e.g. Asia/Almaty)"
    assert not [line for line in asyncio.run(_logs(state.state_details.flow_run_id)) if "Traceback" in line]


@pytest.mark.parametrize(("variable", "value", "sentence"), [
    ("FOLLOWUP_TIMEZONE", "Mars/Olympus", "FOLLOWUP_TIMEZONE: 'Mars/Olympus' is not a time zone of the IANA database (e.g. Asia/Almaty)"),
    ("FOLLOWUP_DATABASE_URL", "mysql://npm:pw@db.ombudsman.kz/followup",
     "FOLLOWUP_DATABASE_URL uses 'mysql'; supported: sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB"),
])
def test_a_wrong_setting_is_one_sentence_on_the_command_line(monkeypatch, variable, value, sentence):
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    for command in (["stats"], ["run", "check-deadlines"], ["production", "down"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2, result.output
        assert result.output.strip() == sentence


def test_the_installed_command_prints_the_sentence_alone(tmp_path):
    """The real `followup` executable, as an administrator runs it."""
    followup = str(Path(sys.executable).with_name("followup"))
    done = subprocess.run([followup, "stats"], env={"PATH": "/usr/bin:/bin", "FOLLOWUP_TIMEZONE": "Mars/Olympus",
                                                    "HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == "FOLLOWUP_TIMEZONE: 'Mars/Olympus' is not a time zone of the IANA database (e.g. Asia/Almaty)\n"


def test_production_up_refuses_to_start_an_open_prefect_api(monkeypatch):
    """`followup production up` closes the API with Prefect's basic auth: without the auth
    string in the environment it starts nothing and says what to set."""
    from followup.operations.production import ProductionError, auth_string_from_environment

    for variable in ("PREFECT_API_AUTH_STRING", "PREFECT_SERVER_API_AUTH_STRING"):
        monkeypatch.delenv(variable, raising=False)
    result = CliRunner().invoke(app, ["production", "up", "--prefect-database", "postgresql+asyncpg://postgres@127.0.0.1:9/none"])
    assert result.exit_code == 3
    assert result.output.startswith("set PREFECT_API_AUTH_STRING (or PREFECT_SERVER_API_AUTH_STRING) to user:password")
    assert auth_string_from_environment({"PREFECT_API_AUTH_STRING": "admin:pw"}) == "admin:pw"
    assert auth_string_from_environment({"PREFECT_SERVER_API_AUTH_STRING": "admin:pw"}) == "admin:pw"
    with pytest.raises(ProductionError, match="differ"):
        auth_string_from_environment({"PREFECT_API_AUTH_STRING": "admin:pw", "PREFECT_SERVER_API_AUTH_STRING": "admin:other"})
    with pytest.raises(ProductionError, match="user:password"):
        auth_string_from_environment({"PREFECT_API_AUTH_STRING": "just-a-password"})
