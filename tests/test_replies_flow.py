"""`record-responses` on Prefect: the portal's event records a reply at once, the fallback run
records what no event announced, each reply once, and the acknowledgement reaches the ministry."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from followup.config.settings import get_settings
from followup.flows.notify import dispatch_flow
from followup.flows.replies import record_responses_flow
from followup.models.crud import init_db
from followup.models.followup import Notification
from followup.models.registry import Recommendation
from followup.models.replies import Reply
from followup.operations.deployments import free_port, read_deployments, runner_deployments, start_server
from followup.spreadsheets.ingest import import_recommendations
from tests.conftest import wait_until, write_csv
from tests.receivers import JsonReceiver, SmtpReceiver
from tests.test_replies import confirmed_reply, outbox


def states(engine) -> dict[int, str]:
    with engine.connect() as c:
        return dict(c.execute(select(Reply.id, Reply.state)).all())


def status(engine, external_id: str) -> str:
    with engine.connect() as c:
        return c.execute(select(Recommendation.status).where(Recommendation.external_id == external_id)).scalar_one()


async def _artifact(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with get_client() as client:
        found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), limit=5)
    return found[0] if found else None


@pytest.mark.usefixtures("prefect_server")
def test_the_portals_event_run_records_that_reply(registry):
    """The run the event starts (reply_id given) records that reply and leaves another for its own run."""
    announced = confirmed_reply(registry, "interior", [("NPM-1", "in_progress", "Работы начаты."), ("NPM-2", "implemented", "Проведено.")])
    other = confirmed_reply(registry, "health", [("NPM-3", "in_progress", "Вода подводится.")])
    state = record_responses_flow(reply_id=announced, return_state=True)
    assert state.is_completed()
    counts = state.result()
    assert counts == {"replies": 1, "applied": 1, "unchanged": 0, "under_review": 1, "refused": 0, "moves": 1, "notifications": 1}
    assert states(registry) == {announced: "recorded", other: "confirmed"}
    artifact = asyncio.run(_artifact("record-responses"))
    assert artifact is not None and f"REPLY-{announced}" in str(artifact.data)


@pytest.mark.usefixtures("prefect_server")
def test_a_reply_confirmed_while_prefect_was_down_is_recorded_by_the_fallback_run_once(registry):
    """No event reached Prefect: the scheduled run (no reply_id) records every confirmed reply, and
    the next one finds nothing left."""
    first = confirmed_reply(registry, "interior", [("NPM-1", "in_progress", "Работы начаты.")])
    second = confirmed_reply(registry, "health", [("NPM-3", "partially_implemented", "Вода подведена в 2 из 3 корпусов.")])
    assert record_responses_flow()["replies"] == 2
    assert states(registry) == {first: "recorded", second: "recorded"}
    assert (status(registry, "NPM-1"), status(registry, "NPM-3")) == ("in_progress", "partially_implemented")
    again = record_responses_flow()
    assert (again["replies"], again["notifications"]) == (0, 0)
    assert sorted(n.dedupe_key for n in outbox(registry, "acknowledgement")) == [f"ack:{first}", f"ack:{second}"]
    assert record_responses_flow(reply_id=first)["replies"] == 0  # a late event changes nothing either


@pytest.mark.usefixtures("prefect_server")
def test_the_acknowledgement_arrives_by_mail(registry, tmp_path, monkeypatch):
    reply_id = confirmed_reply(registry, "interior", [("NPM-1", "in_progress", "Подрядчик приступил к работам.")])
    record_responses_flow(reply_id=reply_id)
    with SmtpReceiver() as smtp, JsonReceiver() as hook:
        routes = tmp_path / "routes.yaml"
        routes.write_text(f"version: 1\nurls:\n  - {smtp.url('kanc@mvd.gov.kz')}:\n      tag: ministry:interior\n"
                          f"  - {hook.url('office')}:\n      tag: ombudsman\n", encoding="utf-8")
        monkeypatch.setenv("FOLLOWUP_APPRISE_CONFIG", str(routes))
        get_settings.cache_clear()
        assert dispatch_flow(date(2026, 2, 21))["sent"] == 1
        [mail] = smtp.to("kanc@mvd.gov.kz")
    assert f"REPLY-{reply_id}" in mail.subject and "получен" in mail.subject
    assert "NPM-1" in mail.text and "исполняется" in mail.text and "статус изменён" in mail.text


def test_the_deployment_is_started_by_the_portals_event_with_a_fallback_schedule():
    """prefect.yaml's contract with the reply portal, as `followup serve` and `prefect deploy` read it."""
    [spec] = [d for d in read_deployments() if d["name"] == "record-responses"]
    assert spec["entrypoint"] == "flows/replies.py:record_responses_flow" and spec["concurrency_limit"] == 1
    [trigger] = spec["triggers"]
    assert trigger["match"] == {"prefect.resource.id": "followup.response.*"}
    assert trigger["expect"] == ["followup.response.submitted"]
    assert trigger["parameters"] == {"reply_id": "{{ event.payload.reply_id }}"}
    assert spec["schedules"] == [{"interval": 600}]
    [built] = [d for d in runner_deployments() if d.name == "record-responses"]
    assert built.concurrency_limit == 1 and built.schedules and built.triggers
    assert "followup" in built.tags  # a failed run alerts the admin


# --- for real: a served deployment started by the event --------------------------------------------------


@pytest.fixture
def real_prefect_server(tmp_path: Path):
    server = start_server(free_port(), home=tmp_path / "prefect-home", log=tmp_path / "prefect-server.log")
    yield server
    server.stop()


def test_a_reply_the_portal_announces_is_recorded_by_the_served_deployment(real_prefect_server, tmp_path: Path):
    """`followup serve` on a real server: the portal's `followup.response.submitted` starts
    record-responses for that reply (the event's reply_id becomes the run's parameter)."""
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    init_db(url)
    engine = create_engine(url)
    import_recommendations(write_csv(tmp_path / "visit.csv", "external_id,text,issued_on,due_on,ministry",
                                     "NPM-1,Обеспечить камеры ИВС естественным освещением,05.01.2026,10.03.2026,МВД"),
                           engine=engine, actor="clerk")
    reply_id = confirmed_reply(engine, "interior", [("NPM-1", "in_progress", "Работы начаты.")])
    env = dict(os.environ, PREFECT_API_URL=real_prefect_server.url, FOLLOWUP_DATABASE_URL=url,
               PREFECT_RUNNER_POLL_FREQUENCY="1", PREFECT_LOGGING_LEVEL="INFO")
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - the child process writes to it until the end of the test
    serve = subprocess.Popen([str(Path(sys.executable).with_name("followup")), "serve"], cwd=tmp_path, env=env,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    announce = ("from prefect.events.worker import EventsWorker\nfrom followup.interfaces.web.events import reply_confirmed\n"
                f"reply_confirmed(reply_id={reply_id}, reference='REPLY-{reply_id}', ministry='interior', items=[1])\n"
                "EventsWorker.drain_all()\n")
    try:
        wait_until(lambda: "record-responses" in _deployments(real_prefect_server.url), 120, "the served deployments")
        # the trigger's automation is registered with the deployment; an event before it would be missed
        wait_until(lambda: _automation(real_prefect_server.url), 60, "record-responses' automation")
        subprocess.run([sys.executable, "-c", announce], env=env, cwd=tmp_path, check=True, timeout=120)
        # the event's run, named after the reply, with the event's reply_id as an integer (the
        # schedule's first fallback run may have recorded it already: then this one finds it done)
        [run] = wait_until(lambda: [r for r in _runs(real_prefect_server.url) if r.name == f"record-responses REPLY-{reply_id}"
                                    and r.state and r.state.is_completed()], 180, "the run the event started")
        assert run.parameters == {"reply_id": reply_id}
        assert states(engine) == {reply_id: "recorded"} and status(engine, "NPM-1") == "in_progress"
        with engine.connect() as c:
            assert c.execute(select(Notification.dedupe_key)).scalars().all() == [f"ack:{reply_id}"]
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(timeout=30)
        log.close()
        engine.dispose()


def _api(url: str, call):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def run():
        with temporary_settings(updates={PREFECT_API_URL: url}):
            async with get_client() as client:
                return await call(client)

    return asyncio.run(run())


def _deployments(url: str) -> list[str]:
    async def read(client):
        return [d.name for d in await client.read_deployments()]

    return _api(url, read)


def _automation(url: str):
    async def read(client):
        return await client.read_automations_by_name("record-responses__automation_1")

    return _api(url, read)


def _runs(url: str):
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    async def read(client):
        return await client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["record-responses"])), limit=20)

    return _api(url, read)
