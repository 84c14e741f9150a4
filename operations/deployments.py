"""Deployments as `prefect.yaml` describes them, for `followup serve`.

`prefect deploy --all` and `followup serve` read the same file, so a schedule or trigger is
changed in one place.
"""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
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
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return LocalServer(process, url)
        except OSError:
            time.sleep(0.5)
    LocalServer(process, url).stop()
    raise RuntimeError(f"the Prefect server did not answer on {url} within {timeout:.0f} s")
