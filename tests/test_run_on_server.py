"""`followup run …` reports to the Prefect server that is up instead of starting a temporary one,
and `--on-workers` hands the run to its deployment there (README: Deployments)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from followup.models.crud import init_db
from followup.models.db import get_engine
from followup.operations.deployments import SERVE_RECORD, free_port
from followup.spreadsheets.ingest import import_recommendations
from tests.conftest import wait_until, write_csv

pytestmark = pytest.mark.server  # `followup serve` with its Prefect server, and temporary servers

FOLLOWUP = str(Path(sys.executable).with_name("followup"))
POLICY = Path(__file__).resolve().parents[1] / "config" / "policy.yaml"

# `followup ARGS…`, then how it exited and whether it had imported Prefect
HANDED_OVER = """
import sys
from followup.interfaces.cli import app
try:
    app(sys.argv[1:])
except SystemExit as end:
    print("EXIT", end.code, "PREFECT", "prefect" in sys.modules)
"""


def _office(tmp_path: Path) -> dict[str, str]:
    """A registry with an item overdue on 1 April 2026, and the environment of a shell with no
    Prefect server configured (a fresh Prefect profile, no PREFECT_API_URL)."""
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    init_db(url)
    import_recommendations(write_csv(
        tmp_path / "visit.csv", "external_id,text,issued_on,due_on,ministry",
        "NPM-1,Обеспечить камеры ИВС естественным освещением,05.01.2026,10.03.2026,МВД",
    ), engine=get_engine(url), actor="clerk")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(FOLLOWUP_DATABASE_URL=url, PREFECT_HOME=str(tmp_path / "prefect-profile"), PREFECT_LOGGING_LEVEL="INFO",
               PREFECT_RUNNER_POLL_FREQUENCY="1", FOLLOWUP_POLICY_FILE=str(shutil.copy(POLICY, tmp_path / "policy.yaml")))
    return env


def _followup(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FOLLOWUP, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


async def _runs(api: str, flow_name: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}):
        async with get_client() as client:
            return await client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])), limit=50)


def test_with_followup_serve_up_a_run_reports_to_its_server_and_on_workers_hands_it_to_the_deployment(tmp_path: Path):
    env = _office(tmp_path)
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - the child process writes to it until the end of the test
    serve = subprocess.Popen([FOLLOWUP, "serve", "--port", str(free_port())], cwd=tmp_path, env=env, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
    record = tmp_path / "var" / "prefect" / SERVE_RECORD
    try:
        wait_until(record.exists, 180, "followup serve's record of its server")
        api = json.loads(record.read_text(encoding="utf-8"))["api_url"]

        # handed to followup serve's desk: this process imports no Prefect, serve runs the flow at
        # once (no deployment, no runner's poll) and its lines and counts are printed here
        handed_over = subprocess.run([sys.executable, "-c", HANDED_OVER, "run", "check-deadlines", "--as-of", "2026-04-01"],
                                     env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert handed_over.returncode == 0, handed_over.stdout[-2000:] + handed_over.stderr[-2000:]
        assert "EXIT 0 PREFECT False" in handed_over.stdout
        assert "temporary" not in handed_over.stdout + handed_over.stderr and "not handed" not in handed_over.stderr
        assert "to overdue" in handed_over.stdout
        assert "Flow run 'check-deadlines 2026-04-01' - Finished in state Completed()" in handed_over.stderr
        [run] = asyncio.run(_runs(api, "check-deadlines"))
        assert run.name == "check-deadlines 2026-04-01" and run.state.is_completed()
        assert run.deployment_id is None  # ran by the command's request, not by a deployment

        # a known failure there is the same sentence and exit code as here: the policy broken since serve started
        policy = Path(env["FOLLOWUP_POLICY_FILE"])
        policy.write_text(policy.read_text(encoding="utf-8").replace("reminder_days_before: [14, 3]", "reminder_days_befor: [14, 3]"), encoding="utf-8")
        broken = _followup("run", "check-deadlines", "--as-of", "2026-04-01", env=env, cwd=tmp_path)
        assert broken.returncode == 2 and str(policy) in broken.stderr and "reminder_days_befor" in broken.stderr, broken.stderr
        assert "Traceback" not in broken.stderr
        shutil.copy(POLICY, policy)

        # with other settings, this process runs the step itself, reporting to serve's server
        other = {**env, "FOLLOWUP_ACTOR": "a.seitkali"}
        here = _followup("run", "check-deadlines", "--as-of", "2026-04-01", env=other, cwd=tmp_path)
        assert here.returncode == 0, here.stdout[-2000:] + here.stderr[-2000:]
        assert "not handed to followup serve (followup serve runs with other settings" in here.stderr
        assert "temporary" not in here.stdout + here.stderr and "no Prefect server" not in here.stderr
        assert len(asyncio.run(_runs(api, "check-deadlines"))) == 3

        # on the workers: a flow run of the check-deadlines deployment, which followup serve runs
        handed = _followup("run", "check-deadlines", "--as-of", "2026-04-02", "--on-workers", env=env, cwd=tmp_path)
        assert handed.returncode == 0, handed.stdout[-2000:] + handed.stderr[-2000:]
        assert "check-deadlines/check-deadlines: flow run check-deadlines 2026-04-02 Completed" in handed.stdout
        assert "temporary" not in handed.stdout + handed.stderr
        [deployed] = [r for r in asyncio.run(_runs(api, "check-deadlines")) if r.name == "check-deadlines 2026-04-02"]
        assert deployed.deployment_id is not None and deployed.state.is_completed()
        assert str(deployed.id) in handed.stdout  # the link to the run in the UI
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(timeout=60)
        log.close()
    assert not record.exists(), "followup serve removes its record when it stops"


def test_a_handed_over_run_followup_serve_did_not_finish_is_marked_crashed_not_left_running(tmp_path: Path):
    """A handed-over run lives in a thread of `followup serve` and sends no heartbeats: when serve
    stops in the middle of one, the run must not stay Running in the UI for ever."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Running

    from followup.operations.deployments import desk_tag, load_flow

    env = _office(tmp_path)
    record = tmp_path / "var" / "prefect" / SERVE_RECORD
    port = str(free_port())

    def serve() -> tuple[subprocess.Popen[bytes], str]:
        log = open(tmp_path / "serve.log", "ab")  # noqa: SIM115 - the child process writes to it until it stops
        process = subprocess.Popen([FOLLOWUP, "serve", "--port", port], cwd=tmp_path, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(record.exists, 180, "followup serve's record of its server")
        return process, json.loads(record.read_text(encoding="utf-8"))["api_url"]

    async def left_running(api: str) -> str:
        """What a run in progress on the desk looks like to the server: running, tagged with this folder's desk."""
        with temporary_settings(updates={PREFECT_API_URL: api}):
            async with get_client() as client:
                flow = load_flow("flows/pipeline.py:check_deadlines_flow")
                run = await client.create_flow_run(flow, name="check-deadlines 2026-04-01", tags=[desk_tag(tmp_path / "var" / "prefect")],
                                                   state=Running())
                return str(run.id)

    async def state_of(api: str, run_id: str):
        with temporary_settings(updates={PREFECT_API_URL: api}):
            async with get_client() as client:
                return (await client.read_flow_run(run_id)).state

    first, api = serve()
    try:
        run_id = asyncio.run(left_running(api))
    finally:
        os.killpg(first.pid, signal.SIGTERM)
        first.wait(timeout=60)
    said = (tmp_path / "serve.log").read_text(encoding="utf-8", errors="replace")
    assert "handed-over run 'check-deadlines 2026-04-01' did not finish: marked Crashed" in said, said[-2000:]
    # the server keeps its runs in var/prefect: the next serve shows the run crashed, with why
    again, api = serve()
    try:
        state = asyncio.run(state_of(api, run_id))
        assert state.is_crashed() and "run the step again" in state.message
    finally:
        os.killpg(again.pid, signal.SIGTERM)
        again.wait(timeout=60)


def test_without_a_server_a_run_says_it_starts_a_temporary_one_and_on_workers_refuses(tmp_path: Path):
    env = _office(tmp_path)
    refused = _followup("run", "check-deadlines", "--on-workers", env=env, cwd=tmp_path)
    assert refused.returncode == 3
    assert refused.stderr.strip().endswith("--on-workers: no Prefect server to hand the run to: start `followup serve` "
                                           "(or set PREFECT_API_URL)")
    alone = _followup("run", "check-deadlines", "--as-of", "2026-04-01", env=env, cwd=tmp_path)
    assert alone.returncode == 0, alone.stdout[-2000:] + alone.stderr[-2000:]
    assert alone.stderr.startswith("no Prefect server running: starting a temporary one (~5 s); "
                                   "`followup serve` keeps one up\n")
    assert "to overdue" in alone.stdout


def test_the_reply_portal_announces_replies_to_the_server_of_followup_serve_in_its_folder(tmp_path: Path):
    """`followup web` started beside `followup serve` (no PREFECT_API_URL) sends its events to
    serve's server, so a confirmed reply is recorded at once rather than at the next schedule."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(200 if self.path == "/api/health" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api = f"http://127.0.0.1:{server.server_address[1]}/api"
    record = tmp_path / "var" / "prefect" / SERVE_RECORD
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"api_url": api, "pid": os.getpid()}), encoding="utf-8")  # this process stands for serve
    env = _office(tmp_path)
    web = subprocess.Popen([FOLLOWUP, "web", "--port", str(free_port())], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        first = web.stdout.readline() if web.stdout else ""
        assert first.strip() == f"confirmed replies are announced to the Prefect server of `followup serve` ({api})", first
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=60)
        server.shutdown()
