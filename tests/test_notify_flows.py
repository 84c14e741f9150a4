"""The delivery flows run for real on Prefect: dispatch, the digest, their artifacts and the CLI."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from followup.config.settings import get_settings
from followup.flows.notify import digest_flow, dispatch_flow
from followup.interfaces.cli import app
from followup.models.followup import Notification
from followup.spreadsheets.ingest import import_recommendations
from followup.steps.deadlines import check_deadlines
from tests.conftest import write_csv
from tests.receivers import JsonReceiver, SmtpReceiver

AS_OF = date(2026, 2, 24)  # 14 days before the deadline: a reminder to each ministry


@pytest.fixture
def registry_with_an_unassigned_item(engine, tmp_path):
    """Three items due 10.03.2026: NPM-1 to interior, NPM-2 to Health, NPM-3 without a ministry (and no facilities)."""
    import_recommendations(write_csv(
        tmp_path / "visit.csv", "external_id,text,issued_on,due_on,ministry",
        "NPM-1,Обеспечить камеры ИВС естественным освещением,05.01.2026,10.03.2026,МВД",
        "NPM-2,Обеспечить пациентов питьевой водой,05.01.2026,10.03.2026,health",
        "NPM-3,Назначить ответственного за доступную среду,05.01.2026,10.03.2026,",
    ), engine=engine, actor="clerk")
    return engine


@pytest.fixture
def routes(tmp_path, monkeypatch):
    """The office's own Apprise file: ministries by e-mail, the office by webhook."""

    def write(smtp: SmtpReceiver, hook: JsonReceiver, *, max_attempts: int = 5) -> None:
        path = tmp_path / "routes.yaml"
        path.write_text(
            "version: 1\nurls:\n"
            f"  - {smtp.url('kanc@mvd.gov.kz')}:\n      tag: ministry:interior\n"
            f"  - {smtp.url('kanc@dsm.gov.kz')}:\n      tag: ministry:health\n"
            f"  - {hook.url('office')}:\n      tag: ombudsman\n",
            encoding="utf-8",
        )
        policy = tmp_path / "notifications.yaml"
        policy.write_text(f"delivery: {{max_attempts: {max_attempts}, backoff_minutes: [0]}}\n", encoding="utf-8")
        monkeypatch.setenv("FOLLOWUP_APPRISE_CONFIG", str(path))
        monkeypatch.setenv("FOLLOWUP_NOTIFICATIONS_FILE", str(policy))
        get_settings.cache_clear()

    return write


def statuses(engine) -> dict[str, str]:
    with engine.connect() as c:
        return dict(c.execute(select(Notification.dedupe_key, Notification.status)).all())


async def _artifact(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with get_client() as client:
        found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), limit=5)
    return found[0] if found else None


@pytest.mark.usefixtures("prefect_server")
def test_dispatch_delivers_the_days_letters_and_shows_them_to_the_admin(registry_with_an_unassigned_item, routes):
    check_deadlines(AS_OF, engine=registry_with_an_unassigned_item)
    with SmtpReceiver() as smtp, JsonReceiver() as hook:
        routes(smtp, hook)
        counts = dispatch_flow(AS_OF)
        assert counts["sent"] == 2 and counts["messages"] == 2
        assert sorted(r for m in smtp.mails for r in m.recipients) == ["kanc@dsm.gov.kz", "kanc@mvd.gov.kz"]
    artifact = asyncio.run(_artifact("dispatch"))
    assert artifact is not None and "ministry:interior" in str(artifact.data) and "s3cret" not in str(artifact.data)
    assert artifact.description == "dispatch 24.02.2026: messages taken from the outbox: 2, messages sent: 2, letters delivered (one per recipient and route): 2"
    summary = asyncio.run(_artifact("dispatch-summary"))
    assert summary.type == "markdown" and "| messages sent | 2 |" in summary.data and "| messages dead (kept in the outbox; see the digest) | 0 |" in summary.data


@pytest.mark.usefixtures("prefect_server")
def test_a_message_that_goes_dead_fails_the_run_and_stays_in_the_outbox(registry_with_an_unassigned_item, routes):
    check_deadlines(AS_OF, engine=registry_with_an_unassigned_item)
    with SmtpReceiver(refuse=True) as smtp, JsonReceiver() as hook:
        routes(smtp, hook, max_attempts=1)
        state = dispatch_flow(AS_OF, return_state=True)
    assert state.is_failed() and "dead" in state.message
    assert set(statuses(registry_with_an_unassigned_item).values()) == {"dead"}


@pytest.mark.usefixtures("prefect_server")
def test_the_weekly_digest_reaches_the_office_once(registry_with_an_unassigned_item, routes):
    check_deadlines(date(2026, 3, 12), engine=registry_with_an_unassigned_item)  # NPM-1 and NPM-2 overdue since 11.03
    with SmtpReceiver() as smtp, JsonReceiver() as hook:
        routes(smtp, hook)
        counts = digest_flow(date(2026, 3, 16))
        assert counts["new_overdue"] == 2 and counts["unassigned"] == 1 and counts["queued"] == 1
        [post] = hook.at("office")
        assert "NPM-1" in post.body["message"] and "NPM-2" in post.body["message"] and "NPM-3" in post.body["message"]
        assert digest_flow(date(2026, 3, 16))["queued"] == 0  # asked again the same day: not sent twice
        assert len(hook.at("office")) == 1
    artifact = asyncio.run(_artifact("ombudsman-digest"))
    assert artifact is not None and "NPM-1" in artifact.data


@pytest.mark.usefixtures("prefect_server")
def test_the_cli_sends_and_builds_the_digest(registry_with_an_unassigned_item, routes):
    check_deadlines(AS_OF, engine=registry_with_an_unassigned_item)
    with SmtpReceiver() as smtp, JsonReceiver() as hook:
        routes(smtp, hook)
        result = CliRunner().invoke(app, ["run", "dispatch", "--as-of", AS_OF.isoformat()], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert len(smtp.mails) == 2
        result = CliRunner().invoke(app, ["run", "digest", "--as-of", "2026-03-16"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert "new overdue" in result.output and len(hook.at("office")) == 1
