"""The deadline flows run for real on Prefect: run names, events, artifacts, the CLI."""

from __future__ import annotations

from datetime import date

import pytest

from followup.flows.pipeline import check_deadlines_flow, daily_flow, escalate_flow
from followup.spreadsheets.ingest import import_recommendations
from tests.conftest import write_csv


@pytest.fixture
def registry_due_10_and_24_march(engine, tmp_path):
    """NPM-1 to the Ministry of Internal Affairs due 10.03.2026, NPM-2 to Health due 24.03.2026 (conftest's `registry`: all due 10.03)."""
    import_recommendations(write_csv(
        tmp_path / "visit.csv", "external_id,text,issued_on,due_on,ministry",
        "NPM-1,Обеспечить камеры ИВС естественным освещением,05.01.2026,10.03.2026,МВД",
        "NPM-2,Обеспечить пациентов питьевой водой,05.01.2026,24.03.2026,health",
    ), engine=engine, actor="clerk")
    return engine


async def _flow_runs(name: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    async with get_client() as client:
        return await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[name])), limit=200, sort=FlowRunSort.START_TIME_DESC
        )


@pytest.mark.usefixtures("prefect_server", "registry_due_10_and_24_march")
def test_the_daily_pass_on_prefect():
    import asyncio

    counts = daily_flow(date(2026, 4, 1))
    assert counts["check-deadlines"]["to_overdue"] == 2
    assert counts["escalate"]["individualized"] == 1  # interior's item is 15 working days late; health's not yet
    assert check_deadlines_flow(date(2026, 4, 1))["notifications"] == 0  # idempotent
    assert escalate_flow(date(2026, 4, 1)).get("individualized", 0) == 0
    names = {r.name for r in asyncio.run(_flow_runs("check-deadlines"))}
    assert "check-deadlines 2026-04-01" in names


@pytest.mark.usefixtures("prefect_server", "registry_due_10_and_24_march")
def test_every_state_change_is_an_event(monkeypatch):
    from prefect.events.clients import AssertingEventsClient
    from prefect.events.worker import EventsWorker

    AssertingEventsClient.reset()
    worker = EventsWorker.instance(AssertingEventsClient)
    monkeypatch.setattr(EventsWorker, "instance", lambda *_, **__: worker)
    check_deadlines_flow(date(2026, 4, 1))
    escalate_flow(date(2026, 4, 1))
    worker.drain()
    events = [e for client in AssertingEventsClient.all for e in client.events]
    names = [e.event for e in events]
    assert names.count("followup.recommendation.overdue") == 2
    assert names.count("followup.recommendation.escalated") == 1
    assert names.count("followup.escalation.issued") == 1
    assert "followup.deadlines.checked" in names and "followup.notification.queued" in names
    escalated = next(e for e in events if e.event == "followup.recommendation.escalated")
    assert escalated.resource.id == "followup.recommendation.NPM-1"
    assert [r.id for r in escalated.related if r.role == "ministry"] == ["followup.ministry.interior"]


@pytest.mark.usefixtures("prefect_server", "registry_due_10_and_24_march")
def test_a_large_backlog_is_announced_in_batches(monkeypatch):
    """The first run over an imported backlog may change 100,000 items: they are announced in
    batched events (same event names, every external id in a payload), not one event each."""
    from prefect.events.clients import AssertingEventsClient
    from prefect.events.worker import EventsWorker

    import followup.flows.pipeline as pipeline

    monkeypatch.setattr(pipeline, "PER_CHANGE_EVENTS", 1)
    monkeypatch.setattr(pipeline, "EVENT_BATCH", 1)
    AssertingEventsClient.reset()
    worker = EventsWorker.instance(AssertingEventsClient)
    monkeypatch.setattr(EventsWorker, "instance", lambda *_, **__: worker)
    check_deadlines_flow(date(2026, 4, 1))
    worker.drain()
    events = [e for client in AssertingEventsClient.all for e in client.events if e.event == "followup.recommendation.overdue"]
    assert len(events) == 2  # two overdue items, batches of one
    assert all(e.payload["batched"] and e.payload["count"] == 1 for e in events)
    assert sorted(i for e in events for i in e.payload["external_ids"]) == ["NPM-1", "NPM-2"]
    assert {r.id for e in events for r in e.related if r.role == "ministry"} == {"followup.ministry.interior", "followup.ministry.health"}


@pytest.mark.usefixtures("prefect_server", "registry_due_10_and_24_march")
def test_the_cli_runs_the_whole_pass():
    from typer.testing import CliRunner

    from followup.interfaces.cli import app

    result = CliRunner().invoke(app, ["run", "all", "--as-of", "2026-04-01"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "check-deadlines 2026-04-01" in result.output and "escalate 2026-04-01" in result.output
    bad = CliRunner().invoke(app, ["run", "escalate", "--as-of", "04/13/2026"])  # month first: refused
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output


@pytest.mark.usefixtures("prefect_server", "registry_due_10_and_24_march")
def test_the_letter_flows_refuse_to_start_without_a_key_on_postgresql(db_url, monkeypatch, tmp_path):
    """No FOLLOWUP_SECRET_KEY: on PostgreSQL the flows that write letters fail before any task (no
    retries, nothing written) and the command says why; on SQLite a key is made beside the registry."""
    from sqlalchemy import create_engine, text
    from typer.testing import CliRunner

    from followup.config.settings import MissingSecretKey, get_settings
    from followup.flows.pipeline import check_deadlines_flow, escalate_flow
    from followup.interfaces.cli import app

    monkeypatch.delenv("FOLLOWUP_SECRET_KEY")
    get_settings.cache_clear()
    if db_url.startswith("sqlite"):
        assert check_deadlines_flow(date(2026, 4, 1))["to_overdue"] == 2
        assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
        return
    with pytest.raises(MissingSecretKey):
        check_deadlines_flow(date(2026, 4, 1))
    with pytest.raises(MissingSecretKey):
        escalate_flow(date(2026, 4, 1))
    refused = CliRunner().invoke(app, ["run", "all", "--as-of", "2026-04-01"], env={"COLUMNS": "200"})
    assert refused.exit_code == 2 and "FOLLOWUP_SECRET_KEY is not set" in refused.output
    assert "Traceback" not in refused.output
    with create_engine(db_url).connect() as c:
        assert c.execute(text("SELECT count(*) FROM status_change WHERE to_status = 'overdue'")).scalar_one() == 0
        assert c.execute(text("SELECT count(*) FROM notification")).scalar_one() == 0


async def _latest_artifact(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    async with get_client() as client:
        found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                                            sort=ArtifactSort.CREATED_DESC, limit=1)
    return found[0]


@pytest.mark.usefixtures("prefect_server", "registry_due_10_and_24_march")
def test_the_admin_reads_each_runs_summary_in_words():
    """Each run publishes what it did as a Markdown table with labels, and the artifacts'
    descriptions are sentences: no Python dict in the Prefect UI."""
    import asyncio

    check_deadlines_flow(date(2026, 4, 1))
    escalate_flow(date(2026, 4, 1))
    check = asyncio.run(_latest_artifact("check-deadlines-summary"))
    assert check.type == "markdown" and check.data.startswith("# check-deadlines 01.04.2026")
    # one message: items that escalate the same day go in the individualized recommendation
    # (escalate's), and no reminder repeats them
    assert "| became overdue | 2 |" in check.data and "| messages queued | 1 |" in check.data
    assert check.description == "check-deadlines 01.04.2026: messages queued: 1, became overdue: 2"
    escalate = asyncio.run(_latest_artifact("escalate-summary"))
    assert "| individualized recommendations issued | 1 |" in escalate.data and "| became escalated | 1 |" in escalate.data
    for key in ("check-deadlines", "escalate", "check-deadlines-summary", "escalate-summary"):
        artifact = asyncio.run(_latest_artifact(key))
        assert "{" not in (artifact.description or "") and "'" not in (artifact.description or ""), artifact.description
