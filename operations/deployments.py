"""Deployments as `prefect.yaml` describes them, for `followup serve`.

`prefect deploy --all` and `followup serve` read the same file, so a schedule or trigger is
changed in one place.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from followup.config.loader import ConfigError

if TYPE_CHECKING:  # Prefect is imported only by the commands that run it
    from prefect import Flow

PROJECT_DIR = Path(__file__).resolve().parent.parent
PREFECT_YAML = PROJECT_DIR / "prefect.yaml"


def read_deployments(path: Path = PREFECT_YAML) -> list[dict[str, Any]]:
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    deployments = spec.get("deployments") if isinstance(spec, dict) else None
    if not deployments:
        raise ConfigError(f"{path}: deployments: none defined")
    for i, d in enumerate(deployments):
        for key in ("name", "entrypoint"):
            if not d.get(key):
                raise ConfigError(f"{path}: deployments[{i}].{key}: missing")
    return list(deployments)


def load_flow(entrypoint: str) -> Flow[..., Any]:
    """`flows/pipeline.py:check_deadlines_flow` -> the flow object, from the installed package
    (`followup.flows.pipeline`), whatever the working directory."""
    from prefect import Flow

    file, _, name = entrypoint.partition(":")
    module = importlib.import_module("followup." + file.removesuffix(".py").replace("/", "."))
    flow = getattr(module, name)
    if not isinstance(flow, Flow):
        raise ConfigError(f"{PREFECT_YAML}: entrypoint {entrypoint}: not a flow")
    return flow


def runner_deployments(path: Path = PREFECT_YAML) -> list[Any]:
    """RunnerDeployments with the file's schedules, triggers, parameters and tags."""
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
    from prefect.events import DeploymentEventTrigger, TriggerTypes

    built = []
    for d in read_deployments(path):
        schedules = [
            CronSchedule(cron=s["cron"], timezone=s.get("timezone", "Asia/Almaty")) if "cron" in s
            else IntervalSchedule(interval=timedelta(seconds=float(s["interval"])))
            for s in d.get("schedules") or []
        ]
        triggers: list[TriggerTypes] = [
            DeploymentEventTrigger(**{k: v for k, v in t.items() if k != "type"}) for t in d.get("triggers") or []
        ]
        built.append(
            load_flow(d["entrypoint"]).to_deployment(
                name=d["name"],
                description=d.get("description"),
                tags=d.get("tags"),
                parameters=d.get("parameters"),
                schedules=schedules or None,
                triggers=triggers or None,
                concurrency_limit=d.get("concurrency_limit"),
            )
        )
    return built


@dataclass
class LocalServer:
    """A Prefect server started by `followup serve` (schedules need a real one)."""

    process: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        """Stop the server and whatever it started (its own process group, by its id)."""
        stop_process_group(self.process.pid, self.process)


def stop_process_group(pid: int, process: subprocess.Popen[bytes] | None = None, *, timeout: float = 20) -> None:
    """SIGTERM the process group led by `pid` (started with start_new_session), SIGKILL after
    `timeout`: only what this project started, never processes found by name."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None:
            if process.poll() is not None:
                break
        else:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)  # the leader, or a child it left behind
    except ProcessLookupError:
        pass
    if process is not None:
        process.wait(timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def answers(api_url: str, *, timeout: float) -> bool:
    """Whether the Prefect server at `api_url` answers its health check within `timeout` seconds."""
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start_server(port: int = 4200, *, home: Path | None = None, log: Path | None = None, timeout: float = 120,
                 host: str = "127.0.0.1", env: dict[str, str] | None = None) -> LocalServer:
    """Start `prefect server start` on loopback and wait until it answers.

    `env` adds to the environment, e.g. PREFECT_API_DATABASE_CONNECTION_URL for a server on
    PostgreSQL (operations/production.py).
    """
    env = dict(os.environ, PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", PREFECT_UI_ENABLED="true", **(env or {}))
    if home is not None:
        env["PREFECT_HOME"] = str(home)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/api"
    # the UI asks the API where it is told to (default: port 4200): on another port it would show
    # no runs at all. Behind a public name, set PREFECT_UI_API_URL to that name.
    env.setdefault("PREFECT_UI_API_URL", url)
    prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
    out = open(log, "ab") if log else subprocess.DEVNULL  # the child process keeps it open
    process = subprocess.Popen(
        [prefect, "server", "start", "--host", host, "--port", str(port)],
        env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Prefect server exited with code {process.returncode}" + (f"; see {log}" if log else ""))
        if answers(url, timeout=2):
            return LocalServer(process, url)
        time.sleep(0.5)
    LocalServer(process, url).stop()
    raise RuntimeError(f"the Prefect server did not answer on {url} within {timeout:.0f} s")


# --- `followup serve`'s record, for `followup run` --------------------------------------------

#: what `followup serve` writes in its Prefect home (var/prefect/) while it runs: its API URL, process id and desk
SERVE_RECORD = "serve.json"


def record_serving(home: Path, api_url: str, *, desk_url: str | None = None, desk_token: str | None = None) -> None:
    """Note that this process serves the deployments to `api_url`, and takes steps handed over
    at `desk_url` (operations/desk.py); `followup run` reads it (`serving_api`, `serving_desk`).
    Readable by its owner only: it holds the desk's token. The caller calls `forget_serving`
    when it stops."""
    home.mkdir(parents=True, exist_ok=True)
    record = {"api_url": api_url, "pid": os.getpid()}
    if desk_url and desk_token:
        record.update(desk_url=desk_url, desk_token=desk_token)
    path = home / SERVE_RECORD
    path.unlink(missing_ok=True)  # a new file, so the mode below is its mode from the start
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as f:
        f.write(json.dumps(record))


def forget_serving(home: Path) -> None:
    """Remove this process's record (not one a later `followup serve` of the same folder wrote)."""
    path = home / SERVE_RECORD
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def _serving_record(home: Path) -> dict[str, Any] | None:
    """The record of a `followup serve` of this folder whose process is alive; None otherwise
    (no record, a record left by a killed process)."""
    try:
        record = json.loads((home / SERVE_RECORD).read_text(encoding="utf-8"))
        str(record["api_url"])
        pid = int(record["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        pass
    return dict(record)


def serving_api(home: Path, *, timeout: float = 1.0) -> str | None:
    """The API URL of the Prefect server a `followup serve` of this folder serves to, when one runs
    and the server answers its health check within `timeout`; None otherwise."""
    record = _serving_record(home)
    if record is None:
        return None
    api_url = str(record["api_url"])
    return api_url if answers(api_url, timeout=timeout) else None


def serving_desk(home: Path) -> tuple[str, str] | None:
    """(URL, token) of the desk of a `followup serve` of this folder (operations/desk.py), when one runs."""
    record = _serving_record(home)
    if record is None or not record.get("desk_url") or not record.get("desk_token"):
        return None
    return str(record["desk_url"]), str(record["desk_token"])


def deployment_of(flow: Flow[..., Any], path: Path = PREFECT_YAML) -> str | None:
    """`flow name/deployment name` of the deployment of prefect.yaml that runs this flow (for
    `run_deployment`), None when none does."""
    module, function = flow.fn.__module__, flow.fn.__name__
    entrypoint = f"{module.removeprefix('followup.').replace('.', '/')}.py:{function}"
    for d in read_deployments(path):
        if d["entrypoint"] == entrypoint:
            return f"{flow.name}/{d['name']}"
    return None


class NotStarted(RuntimeError):
    """No worker (nor `followup serve`) started a handed-over run within the time given."""


def run_on_workers(deployment: str, parameters: dict[str, Any], *, on_state: Callable[[Any], None],
                   poll: float = 1.0, start_timeout: float | None = None, on_waiting: Callable[[Any, float], None] | None = None,
                   waiting_after: float = 60.0) -> Any:
    """Create a flow run of `deployment` on the Prefect server of the current settings and wait
    until it ends, there: a worker of its pool or the `followup serve` that serves it runs it.
    `on_state(flow_run)` hears of each new state (Scheduled first); `on_waiting(flow_run, seconds)`
    hears once when nobody has started it after `waiting_after` seconds. Returns the ended flow
    run. Raises ConfigError when the server has no such deployment, and NotStarted (the run left
    scheduled on the server, for a worker that comes later) when nobody started it within
    `start_timeout` seconds."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.deployments.flow_runs import arun_deployment
    from prefect.exceptions import ObjectNotFound

    async def run() -> Any:
        try:
            flow_run = await arun_deployment(deployment, parameters=parameters, timeout=0)
        except ObjectNotFound:
            raise ConfigError(f"the Prefect server has no deployment {deployment}: `followup serve` serves "
                              "prefect.yaml's, or deploy them (`prefect --no-prompt deploy --all`)") from None
        seen, created, warned = None, time.monotonic(), False
        async with get_client() as client:
            while True:
                if flow_run.state_name != seen:
                    seen = flow_run.state_name
                    on_state(flow_run)
                if flow_run.state is not None and flow_run.state.is_final():
                    return flow_run
                if flow_run.state is not None and (flow_run.state.is_scheduled() or flow_run.state.is_pending()):
                    waited = time.monotonic() - created
                    if start_timeout is not None and waited >= start_timeout:
                        raise NotStarted(f"nobody started flow run {flow_run.name} within {start_timeout:g} s: is "
                                         "`followup serve` or a worker of its pool running? The run stays scheduled "
                                         "on the server, for the next worker that comes")
                    if on_waiting is not None and not warned and waited >= waiting_after:
                        warned = True
                        on_waiting(flow_run, waited)
                await asyncio.sleep(poll)
                flow_run = await client.read_flow_run(flow_run.id)

    return asyncio.run(run())


def desk_tag(home: Path) -> str:
    """The tag of the runs the desk of the `followup serve` of `home` runs (operations/desk.py):
    this machine and folder, so that one serve never touches another's runs on a shared server."""
    import hashlib

    host = socket.gethostname()
    return f"followup-desk:{host}:{hashlib.sha256(f'{host}:{home.resolve()}'.encode()).hexdigest()[:8]}"


def crash_desk_orphans(api_url: str, tag: str, *, why: str) -> list[str]:
    """Mark Crashed the runs tagged `tag` that the server still has as running: a desk run lives
    in a thread of the serve process and sends no heartbeats (cli.serve), so when that process
    stops in the middle of one (Ctrl+C, a machine going down) nothing else would ever end it,
    and it would stay Running in the UI. Called when serve starts (only one serve per folder:
    its desk runs nothing yet) and when it stops. What the run had not committed was rolled
    back with the process (escalation commits ministry by ministry: run the step again). Returns
    the names of the runs marked."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Crashed

    async def crash() -> list[str]:
        async with get_client() as client:
            runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[tag]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING]))))
            for run in runs:
                await client.set_flow_run_state(run.id, Crashed(message=why), force=True)
            return [run.name for run in runs]

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        return asyncio.run(crash())
