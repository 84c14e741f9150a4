"""An administrator sets up production: a Prefect server on PostgreSQL, a process work pool,
`prefect deploy --all` and two workers, with the steps of README's "Running in production"
(operations/production.py). Then the office's day runs on both workers at once, a failing run
alerts the admin, and the UI shows the runs.

Everything started here is stopped by its process id; the databases are dropped at the end.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url

from followup.config.policy import copy_with_approval
from followup.models.followup import IndividualizedRecommendation, Notification
from followup.models.registry import StatusChange
from followup.operations.deployments import free_port
from followup.operations.production import SINGLE_RUN, Production, drop_database, up
from followup.spreadsheets.ingest import import_recommendations
from tests.conftest import POSTGRES_URL, wait_until, write_csv
from tests.receivers import JsonReceiver

pytestmark = [pytest.mark.db, pytest.mark.server]  # PostgreSQL databases of its own, a Prefect server and workers

AS_OF = "2026-04-01"  # the items were due 10.03.2026: overdue, and 10 working days later escalated
HOOK_PASSWORD = "hook-s3cret"
#: the Prefect API's basic auth (PREFECT_SERVER_API_AUTH_STRING / PREFECT_API_AUTH_STRING)
ADMIN, ADMIN_PASSWORD = "admin", "prefect-s3cret-of-the-office"
AUTH = f"{ADMIN}:{ADMIN_PASSWORD}"
CHROMIUM = "/usr/bin/chromium"


@dataclass
class Office:
    production: Production
    registry_url: str
    hooks: JsonReceiver
    home: Path

    @property
    def api(self) -> str:
        return self.production.api_url


def _apprise_file(path: Path, hooks: JsonReceiver) -> Path:
    """The office's routes: every recipient a webhook; the password comes from the environment."""
    lines = ["version: 1", "urls:"]
    for tag, where in [("ministry:interior", "interior"), ("ministry:health", "health"), ("ombudsman", "office"), ("admin", "admin")]:
        lines += [f"  - json://npm:${{HOOK_PASSWORD}}@127.0.0.1:{hooks.port}/{where}:", f"      tag: {tag}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def office(tmp_path_factory) -> Office:
    """Production on this machine, on throw-away PostgreSQL databases, with two workers."""
    tmp = tmp_path_factory.mktemp("production")
    suffix = uuid.uuid4().hex[:8]
    server = make_url(POSTGRES_URL)
    prefect_db = server.set(drivername="postgresql+asyncpg", database=f"prefect_e2e_{suffix}").render_as_string(hide_password=False)
    registry = server.set(database=f"followup_e2e_{suffix}").render_as_string(hide_password=False)
    hooks = JsonReceiver().__enter__()
    production = None
    try:
        production = up(
            prefect_database_url=prefect_db, registry_url=registry, home=tmp / "prefect", port=free_port(), workers=2,
            auth_string=AUTH,  # the API and the UI closed with Prefect's basic auth
            worker_limit=1,  # one run at a time each: runs started together land on both workers
            worker_env={
                "FOLLOWUP_APPRISE_CONFIG": str(_apprise_file(tmp / "apprise.yaml", hooks)),
                "HOOK_PASSWORD": HOOK_PASSWORD,  # a secret only the workers' environment holds
                # the letters' reply links: every worker signs with the same key (started before the
                # per-test environment of conftest, the module's workers get it here)
                "FOLLOWUP_SECRET_KEY": "test-secret-key-not-for-production",
                # individualized recommendations leave on their own here (the tests of drafts use `required`)
                "FOLLOWUP_POLICY_FILE": str(copy_with_approval(tmp / "policy-automatic.yaml", "automatic")),
                "FOLLOWUP_REPORTS_DIR": str(tmp / "reports"),
                "PREFECT_WORKER_QUERY_SECONDS": "2",
                "PREFECT_LOGGING_LEVEL": "INFO",
            },
        )
        engine = create_engine(registry)
        import_recommendations(write_csv(
            tmp / "visit.csv", "external_id,text,issued_on,due_on,ministry,facility",
            "NPM-1,Обеспечить камеры ИВС естественным освещением,05.01.2026,10.03.2026,МВД,ИВС г. Кокшетау",
            "NPM-2,Провести обучение персонала,05.01.2026,10.03.2026,interior,ИВС г. Кокшетау",
            "NPM-3,Обеспечить пациентов питьевой водой,05.01.2026,10.03.2026,health,Психиатрическая больница г. Караганда",
        ), engine=engine, actor="clerk")
        engine.dispose()
        yield Office(production, registry, hooks, tmp)
    finally:
        if production is not None:
            production.stop()
        hooks.__exit__(None, None, None)
        for url in (prefect_db, registry):
            drop_database(url)


# --- the Prefect API -------------------------------------------------------------------------------


def _api(api: str, work, *, auth: str | None = AUTH):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    async def go():
        with temporary_settings(updates={PREFECT_API_URL: api, **({PREFECT_API_AUTH_STRING: auth} if auth else {})}):
            async with get_client() as client:
                return await work(client)

    return asyncio.run(go())


def _runs(api: str) -> list:
    """Every flow run that has started or should have (future scheduled runs left out)."""
    async def work(client):
        runs = await client.read_flow_runs(limit=200)
        flows = {f.id: f.name for f in await client.read_flows(limit=200)}
        return [(flows.get(r.flow_id, "?"), r) for r in runs]

    now = time.time()
    return [(name, r) for name, r in _api(api, work)
            if not (r.state and r.state.is_scheduled() and r.expected_start_time and r.expected_start_time.timestamp() > now + 5)]


def _start(api: str, deployment: str, parameters: dict):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api, PREFECT_API_AUTH_STRING: AUTH}):
        return run_deployment(deployment, parameters=parameters, timeout=0)  # sync here: returns the run


def _events(api: str, prefix: str) -> list:
    """Events whose name starts with `prefix`, as the Prefect API returns them."""
    import httpx

    body = {"filter": {"event": {"prefix": [prefix]}, "occurred": {"since": "2000-01-01T00:00:00Z"}, "order": "ASC"}, "limit": 50}
    events = []
    response = httpx.post(f"{api}/events/filter", json=body, timeout=30, auth=(ADMIN, ADMIN_PASSWORD))
    response.raise_for_status()
    page = response.json()
    events += page["events"]
    while page.get("next_page"):
        response = httpx.get(page["next_page"], timeout=30, auth=(ADMIN, ADMIN_PASSWORD))
        response.raise_for_status()
        page = response.json()
        events += page["events"]
    return events


def _wait(predicate, timeout: float, what: str):
    return wait_until(predicate, timeout, what, every=2)


def _settled(api: str, expected: dict[str, int]):
    """The runs, once each flow has at least `expected` finished runs and nothing is still going."""
    runs = _runs(api)
    finished = Counter(name for name, r in runs if r.state and r.state.is_final())
    going = [r for _, r in runs if not (r.state and r.state.is_final())]
    if going or any(finished[name] < n for name, n in expected.items()):
        return None
    return runs


# --- the scenarios -------------------------------------------------------------------------------------


def test_two_workers_run_the_day_at_once_and_nothing_is_doubled(office: Office):
    """Two deadline checks of the same day and the digest start together: Prefect runs them
    on both workers, one check at a time; the checks' events start escalate, the queued letters
    start dispatch; each escalation and each letter exists once and arrives once."""
    for deployment, parameters in [("check-deadlines/check-deadlines", {"as_of": AS_OF}),
                                   ("check-deadlines/check-deadlines", {"as_of": AS_OF}),
                                   ("digest/digest", {"as_of": AS_OF, "send": False})]:
        _start(office.api, deployment, parameters)

    runs = _wait(lambda: _settled(office.api, {"check-deadlines": 2, "digest": 1, "escalate": 2, "dispatch": 1}),
                 420, "the day's runs on both workers (check-deadlines ×2, digest, escalate ×2, dispatch)")
    engine = create_engine(office.registry_url)
    try:
        # everything queued is delivered (a dispatch started by the last event may still be on its way)
        def delivered():
            with engine.connect() as c:
                statuses = c.execute(select(Notification.status)).scalars().all()
            return statuses and set(statuses) == {"sent"}
        _wait(delivered, 240, "every notification sent")
        runs = _wait(lambda: _settled(office.api, {}), 240, "the dispatch runs to finish")

        failed = [(name, r.name, r.state.message) for name, r in runs if not r.state.is_completed()]
        assert failed == []
        workers = {r.labels.get("prefect.worker.name") for _, r in runs}
        assert {w.name for w in office.production.workers} <= workers, f"runs by worker: {Counter(r.labels.get('prefect.worker.name') for _, r in runs)}"

        # one check at a time: the two checks of the day did not overlap
        checks = sorted((r for name, r in runs if name == "check-deadlines"), key=lambda r: r.start_time)
        assert checks[0].end_time <= checks[1].start_time

        # the registry: one individualized recommendation per ministry, each item escalated once
        with engine.connect() as c:
            references = c.execute(select(IndividualizedRecommendation.reference)).scalars().all()
            escalations = c.execute(select(func.count()).select_from(StatusChange).where(StatusChange.to_status == "escalated")).scalar_one()
            keys = c.execute(select(Notification.dedupe_key)).scalars().all()
        assert sorted(references) == ["IR-20260401-HEALTH", "IR-20260401-INTERIOR"]
        assert escalations == 3
        # every item escalates that day: the individualized recommendations list them, and a
        # reminder that would only repeat them is not written
        assert sorted(keys) == sorted(["individualized:IR-20260401-INTERIOR", "individualized:IR-20260401-HEALTH",
                                       f"digest:{AS_OF}"])
    finally:
        engine.dispose()

    # each letter arrived once at its recipient, alone under its own subject, nothing repeated
    for reference in ("IR-20260401-INTERIOR", "IR-20260401-HEALTH"):
        assert sum(reference in str(p.body) for p in office.hooks.posts if p.path.split("?")[0] in ("/interior", "/health")) == 1
    assert len(office.hooks.at("office")) == 1  # the digest

    # the events arrived at the Prefect server
    checked = _events(office.api, "followup.deadlines.checked")
    assert [e["payload"]["as_of"] for e in checked] == [AS_OF, AS_OF]
    issued = sorted(e["resource"]["prefect.resource.name"] for e in _events(office.api, "followup.escalation.issued"))
    assert issued == ["IR-20260401-HEALTH", "IR-20260401-INTERIOR"]
    # the last dispatch's events reach the server a few seconds after its run ends (Prefect's
    # client sends them in the background, the server persists them in batches)
    assert _wait(lambda: _events(office.api, "followup.notification.sent"), 60, "the followup.notification.sent events")

    # deployed from prefect.yaml: schedules in Asia/Almaty, one run at a time where it matters
    async def read(client):
        return {name: await client.read_deployment_by_name(f"{name}/{name}") for name in (*SINGLE_RUN, "digest")}

    deployments = _api(office.api, read)
    assert [(s.schedule.cron, s.schedule.timezone) for s in deployments["check-deadlines"].schedules] == [("0 8 * * *", "Asia/Almaty")]
    assert [(s.schedule.cron, s.schedule.timezone) for s in deployments["digest"].schedules] == [("0 9 * * 1", "Asia/Almaty")]
    for name in SINGLE_RUN:
        assert deployments[name].global_concurrency_limit.limit == 1, name


def test_a_failed_run_alerts_the_admin(office: Office):
    """A clerk's import points at a file that is not there: the run fails, Prefect's
    prefect.flow-run.Failed event starts admin-alert, and the admin's webhook gets the message."""
    failing = _start(office.api, "ingest/ingest", {"path": str(office.home / "inbox" / "missing.csv")})

    try:
        alerts = _wait(lambda: [p for p in office.hooks.at("admin") if str(failing.id) in str(p.body)], 300,
                       "the admin's alert of the failed import")
    except AssertionError:
        seen = [(name, r.name, r.state.name, r.state.message, r.parameters) for name, r in _runs(office.api) if name in ("admin-alert", "ingest")]
        raise AssertionError(f"runs: {seen}; admin posts: {[p.body for p in office.hooks.at('admin')]}") from None
    assert len(alerts) == 1
    assert "ingest" in alerts[0].body["title"]

    def state():
        return _api(office.api, lambda client: client.read_flow_run(failing.id)).state
    assert state().is_failed()
    # a known failure ends in its sentence: the run's message, and no traceback in its log
    missing = office.home / "inbox" / "missing.csv"
    assert state().message == f"{missing}: no such file"
    assert f"{missing}: no such file" in alerts[0].body["message"]

    async def logs(client):
        from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

        return [log.message for log in await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[failing.id])))]
    lines = _api(office.api, logs)
    assert f"{missing}: no such file" in lines and not [line for line in lines if "Traceback" in line], lines
    engine = create_engine(office.registry_url)
    with engine.connect() as c:
        row = c.execute(select(Notification.recipient, Notification.status).where(Notification.kind == "alert")).one()
    engine.dispose()
    assert tuple(row) == ("admin", "sent")


def test_the_api_refuses_a_caller_without_the_password(office: Office):
    """Anyone who reaches the port is refused without the auth string: reading runs, starting
    a deployment; the workers, which have it, still run the pipeline (they are online, and the
    tests above ran through them)."""
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    api = office.api
    for auth in (None, (ADMIN, "guess"), ("root", ADMIN_PASSWORD)):
        assert httpx.post(f"{api}/flow_runs/filter", json={}, auth=auth, timeout=30).status_code == 401
        assert httpx.post(f"{api}/deployments/filter", json={}, auth=auth, timeout=30).status_code == 401
    assert httpx.get(f"{api}/health", timeout=30).status_code == 200  # the health check stays open
    assert httpx.post(f"{api}/flow_runs/filter", json={}, auth=(ADMIN, ADMIN_PASSWORD), timeout=30).status_code == 200
    with pytest.raises(PrefectHTTPStatusError, match="401"):
        _api(api, lambda client: client.read_deployment_by_name("escalate/escalate"), auth=None)

    async def online(client):
        return {w.name for w in await client.read_workers_for_work_pool("followup") if str(w.status).upper().endswith("ONLINE")}
    assert {w.name for w in office.production.workers} <= _api(api, online)
    # the server listens on loopback only
    assert office.production.api_url.startswith("http://127.0.0.1:")


def _chromium() -> str:
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if found:
        return found
    if os.environ.get("CI", "").lower() in ("1", "true"):
        pytest.fail("chromium is required in CI (.ci/run installs Debian's chromium package) and is missing", pytrace=False)
    pytest.skip("chromium is not installed (apt-get install -y chromium); CI installs it and runs this test")


@pytest.mark.browser
def test_the_admin_sees_the_run_in_the_prefect_ui(office: Office, tmp_path: Path):
    """The UI asks for the password first; once the admin has given it, the flow-run page shows
    the day's deadline check (headless Chromium)."""
    from playwright.sync_api import sync_playwright

    chromium = _chromium()
    runs = [r for name, r in _runs(office.api) if name == "check-deadlines" and r.state.is_completed()]
    if not runs:  # this test alone: run the check first
        run = _start(office.api, "check-deadlines/check-deadlines", {"as_of": AS_OF})
        _wait(lambda: _api(office.api, lambda client: client.read_flow_run(run.id)).state.is_final(), 300, "the deadline check")
        runs = [run]
    run = runs[0]
    page_url = f"{office.production.ui_url}/runs/flow-run/{run.id}"
    shot = tmp_path / "flow-run.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{office.production.ui_url}/dashboard")
            password = page.locator("input[type=password]")
            password.wait_for(timeout=60_000)  # the login prompt: nothing is shown before it
            assert "/login" in page.url
            password.fill(AUTH)
            password.press("Enter")
            page.wait_for_url(lambda url: "/login" not in url, timeout=60_000)
            page.goto(page_url)
            page.get_by_text(f"check-deadlines {AS_OF}").first.wait_for(timeout=60_000)
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    keep = os.environ.get("FOLLOWUP_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "prefect-flow-run.png")
    print(f"screenshot of {page_url}: {shot}")
