"""`followup serve` against a real Prefect server: the deadline check's event starts escalate."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from followup.models.crud import init_db
from followup.models.followup import IndividualizedRecommendation, Notification
from followup.operations.deployments import free_port, start_server
from followup.spreadsheets.ingest import import_recommendations
from tests.conftest import wait_until, write_csv

pytestmark = pytest.mark.server  # a real Prefect server and `followup serve` processes


@pytest.fixture
def real_prefect_server(tmp_path: Path):
    server = start_server(free_port(), home=tmp_path / "prefect-home", log=tmp_path / "prefect-server.log")
    yield server
    server.stop()


async def _runs(api: str, flow_name: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}):
        async with get_client() as client:
            return await client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])), limit=50, sort=FlowRunSort.START_TIME_DESC)


async def _start(api: str, name: str, parameters: dict) -> None:
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}):
        await run_deployment(name, parameters=parameters, timeout=0)


def _wait(predicate, timeout: float, what: str):
    return wait_until(predicate, timeout, what)


def test_the_deadline_event_triggers_escalate(real_prefect_server, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    init_db(url)
    engine = create_engine(url)
    import_recommendations(write_csv(
        tmp_path / "visit.csv", "external_id,text,issued_on,due_on,ministry",
        "NPM-1,Обеспечить камеры ИВС естественным освещением,05.01.2026,10.03.2026,МВД",
        # due in a week: the check's reminder (NPM-1, escalated the same day, goes in the individualized recommendation)
        "NPM-2,Провести обучение персонала,05.01.2026,08.04.2026,МВД",
    ), engine=engine, actor="clerk")
    env = dict(os.environ, PREFECT_API_URL=real_prefect_server.url, FOLLOWUP_DATABASE_URL=url,
               PREFECT_RUNNER_POLL_FREQUENCY="1", PREFECT_LOGGING_LEVEL="INFO")
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - the child process writes to it until the end of the test
    serve = subprocess.Popen([str(Path(sys.executable).with_name("followup")), "serve"], cwd=tmp_path, env=env,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def deployed():
            try:
                asyncio.run(_start(real_prefect_server.url, "check-deadlines/check-deadlines", {"as_of": "2026-04-01"}))
                return True
            except Exception:  # noqa: BLE001 - not registered yet
                return False

        _wait(deployed, 120, "the served deployments")
        done = _wait(
            lambda: [r for r in asyncio.run(_runs(real_prefect_server.url, "escalate")) if r.state and r.state.is_completed()],
            180, "escalate started by the followup.deadlines.checked event",
        )
        assert done[0].name == "escalate 2026-04-01"
        checks = asyncio.run(_runs(real_prefect_server.url, "check-deadlines"))
        assert [r.name for r in checks if r.state.is_completed()] == ["check-deadlines 2026-04-01"]
        with engine.connect() as c:
            assert c.execute(select(func.count()).select_from(IndividualizedRecommendation)).scalar_one() == 1

        # the check and the escalation each announced queued letters: ONE dispatch run sends both,
        # a minute after the first event (prefect.yaml: within 60, schedule_after 60)
        def triggered():
            runs = [r for r in asyncio.run(_runs(real_prefect_server.url, "dispatch")) if not r.auto_scheduled]
            return runs if runs and all(r.state.is_final() for r in runs) else None

        dispatched = _wait(triggered, 240, "the dispatch run started by the followup.notification.queued events")
        with engine.connect() as c:
            assert c.execute(select(Notification.status)).scalars().all() == ["sent", "sent"]
        assert len([r for r in asyncio.run(_runs(real_prefect_server.url, "dispatch")) if not r.auto_scheduled]) == 1
        assert dispatched[0].state.is_completed()
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(timeout=30)
        log.close()
        engine.dispose()


def test_prefect_deploy_all_creates_the_deployments_with_schedule_and_trigger(real_prefect_server, tmp_path: Path):
    """An admin deploys prefect.yaml to a server with a process work pool, as the README says."""
    project = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PREFECT_API_URL=real_prefect_server.url, FOLLOWUP_HOME=str(project))
    prefect = str(Path(sys.executable).with_name("prefect"))
    assert subprocess.run([prefect, "work-pool", "create", "followup", "--type", "process"], env=env, cwd=project,
                          capture_output=True, timeout=120).returncode == 0
    deploy = subprocess.run([prefect, "--no-prompt", "deploy", "--all"], env=env, cwd=project, capture_output=True, text=True, timeout=300)
    assert deploy.returncode == 0, deploy.stdout[-2000:] + deploy.stderr[-2000:]

    async def read():
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: real_prefect_server.url}):
            async with get_client() as client:
                check = await client.read_deployment_by_name("check-deadlines/check-deadlines")
                escalate = await client.read_deployment_by_name("escalate/escalate")
                automations = await client.read_automations_by_name("escalate__automation_1")
                report = await client.read_deployment_by_name("annual-report/annual-report")
                replies = await client.read_deployment_by_name("record-responses/record-responses")
                replies_automations = await client.read_automations_by_name("record-responses__automation_1")
                return check, escalate, automations, report, replies, replies_automations

    check, escalate, automations, report, replies, replies_automations = asyncio.run(read())

    # no worker runs yet: a run handed to the workers is not waited for beyond --start-timeout,
    # and stays scheduled for the first worker that comes
    followup = str(Path(sys.executable).with_name("followup"))
    registry = dict(env, FOLLOWUP_DATABASE_URL=f"sqlite:///{tmp_path / 'registry.db'}")
    waited = subprocess.run([followup, "run", "check-deadlines", "--as-of", "2026-04-01", "--on-workers", "--start-timeout", "3"],
                            env=registry, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert waited.returncode == 4, waited.stdout[-2000:] + waited.stderr[-2000:]
    [scheduled] = re.findall(r"check-deadlines/check-deadlines: flow run (\S+) Scheduled", waited.stdout)
    assert f"nobody started flow run {scheduled} within 3 s" in waited.stderr  # named by Prefect until it starts
    assert "stays scheduled on the server" in waited.stderr
    alone = subprocess.run([followup, "run", "check-deadlines", "--start-timeout", "3"], env=registry, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert alone.returncode == 2 and "--start-timeout: only with --on-workers" in alone.stderr
    # the office's annual report: every 15 January, for the year before
    assert [(s.schedule.cron, s.schedule.timezone) for s in report.schedules] == [("0 9 15 1 *", "Asia/Almaty")]
    assert [(s.schedule.cron, s.schedule.timezone) for s in check.schedules] == [("0 8 * * *", "Asia/Almaty")]
    assert check.work_pool_name == "followup"
    assert escalate.schedules  # the fallback
    assert automations and automations[0].trigger.expect == {"followup.deadlines.checked"}
    # the reply portal's event records a reply at once; every 10 minutes, whatever no event announced
    assert replies_automations and replies_automations[0].trigger.expect == {"followup.response.submitted"}
    assert [s.schedule.interval.total_seconds() for s in replies.schedules] == [600]
    assert replies.global_concurrency_limit.limit == 1
