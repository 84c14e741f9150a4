"""Production: a Prefect server on PostgreSQL, a `process` work pool and its workers.

The embedded setup (`followup serve`: SQLite, one process) is for trying the project and for a
small office. An office that runs it as a service uses Prefect's own pieces, nothing home-made:

1. two PostgreSQL databases: Prefect's own (with the `pg_trgm` extension its search needs)
   and the registry;
2. `prefect server start` on Prefect's database (the UI, the API, the scheduler, the triggers);
3. the registry's schema (`followup init`);
4. the `process` work pool `followup` and `prefect deploy --all` from `prefect.yaml`
   (schedules in Asia/Almaty, event triggers, one run at a time of check-deadlines, escalate
   and dispatch, the admin alert on failure);
5. workers (`prefect worker start --pool followup`), two here, more on other machines: each
   takes scheduled runs from the pool and runs them as child processes with its environment
   (registry URL, Apprise routes, secrets).

These functions are those steps, each the command README's "Running in production" shows, so
the end-to-end test (tests/test_production.py) and `followup production up` run exactly what
an administrator types. Processes started here are stopped by their process id, never by name.

The API and the UI are closed with Prefect's own basic authentication: the server checks
PREFECT_SERVER_API_AUTH_STRING (`user:password`), and everything that calls it — the `prefect`
commands, the workers, the flow runs they start, the UI after its login prompt — sends the
same string as PREFECT_API_AUTH_STRING. Both come from the environment. The server listens on
loopback unless told otherwise; beyond the machine, basic auth needs TLS (a reverse proxy).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from followup.models.backend import POSTGRES, backend_for_url
from followup.operations.deployments import (
    PROJECT_DIR,
    LocalServer,
    start_server,
    stop_process_group,
)

POOL = "followup"
POOL_TYPE = "process"
#: Prefect's server needs this extension in its PostgreSQL database (trigram search)
PREFECT_EXTENSIONS = ("pg_trgm",)
#: the deployments at most one run of which may run at a time (prefect.yaml: concurrency_limit);
#: the registry's advisory locks and unique keys keep it right even without
SINGLE_RUN = ("check-deadlines", "escalate", "dispatch", "record-responses")
#: flow runs one worker runs at once, by default
WORKER_LIMIT = 2
#: the environment variables of Prefect's basic authentication: the server's, and its clients'
SERVER_AUTH = "PREFECT_SERVER_API_AUTH_STRING"
CLIENT_AUTH = "PREFECT_API_AUTH_STRING"


def auth_string_from_environment(environ: Mapping[str, str] | None = None) -> str:
    """The `user:password` that closes the API (PREFECT_SERVER_API_AUTH_STRING, or the clients'
    PREFECT_API_AUTH_STRING: one value for both); ProductionError when neither is set."""
    environ = os.environ if environ is None else environ
    server, client = environ.get(SERVER_AUTH, ""), environ.get(CLIENT_AUTH, "")
    if server and client and server != client:
        raise ProductionError(f"{SERVER_AUTH} and {CLIENT_AUTH} differ: the workers would be refused; set one value")
    value = server or client
    if ":" not in value or not value.split(":", 1)[1]:
        raise ProductionError(
            f"set {CLIENT_AUTH} (or {SERVER_AUTH}) to user:password: the Prefect API and UI are closed with "
            "Prefect's basic authentication (README: Running in production)"
        )
    return value


class ProductionError(RuntimeError):
    """A production step failed; the message says which command and what it printed."""


# --- databases ----------------------------------------------------------------------------------


def _admin_url(url: str) -> str:
    """The same server's `postgres` database through psycopg (CREATE DATABASE cannot run inside
    the database it creates, and the server's asyncpg URL is for the server only)."""
    return POSTGRES.admin_url(url)


def create_database(url: str, *, extensions: tuple[str, ...] = ()) -> bool:
    """Create the PostgreSQL database `url` names if it is absent, then the extensions in it; True
    if created.

    Safe to repeat. `url` may use any PostgreSQL driver (asyncpg for Prefect's, psycopg for the
    registry)."""
    return POSTGRES.create_database(url, extensions=extensions)


def drop_database(url: str) -> None:
    """Drop the database `url` names, closing its connections (for throw-away test databases)."""
    admin = create_engine(_admin_url(url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    finally:
        admin.dispose()


# --- the Prefect server, the pool, the deployments ---------------------------------------------------


def prefect_executable() -> str:
    """The `prefect` command of this environment (the one the project was installed into)."""
    return shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"


def start_prefect_server(database_url: str, *, port: int = 4200, host: str = "127.0.0.1", home: Path,
                         auth_string: str | None = None, timeout: float = 180) -> LocalServer:
    """`prefect server start` with its data in PostgreSQL (PREFECT_API_DATABASE_CONNECTION_URL),
    closed with `auth_string` (PREFECT_SERVER_API_AUTH_STRING; its health check stays open)."""
    home.mkdir(parents=True, exist_ok=True)
    env = {"PREFECT_API_DATABASE_CONNECTION_URL": database_url, **({SERVER_AUTH: auth_string} if auth_string else {})}
    return start_server(port, host=host, home=home, log=home / "server.log", timeout=timeout, env=env)


def prefect(*args: str, api_url: str, env: Mapping[str, str] | None = None, auth_string: str | None = None,
            timeout: float = 300) -> str:
    """Run one `prefect` command against the server at `api_url`; its output, or ProductionError."""
    environment = dict(os.environ, PREFECT_API_URL=api_url, **(env or {}), **({CLIENT_AUTH: auth_string} if auth_string else {}))
    command = [prefect_executable(), "--no-prompt", *args]
    done = subprocess.run(command, cwd=PROJECT_DIR, env=environment, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        shown = "prefect " + " ".join(args)
        raise ProductionError(f"`{shown}` failed ({done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    return done.stdout


def create_work_pool(api_url: str, name: str = POOL, *, auth_string: str | None = None) -> None:
    """`prefect work-pool create followup --type process` (an existing pool is kept as it is)."""
    try:
        prefect("work-pool", "inspect", name, api_url=api_url, auth_string=auth_string, timeout=120)
    except ProductionError:
        prefect("work-pool", "create", name, "--type", POOL_TYPE, api_url=api_url, auth_string=auth_string, timeout=120)


def deploy_all(api_url: str, *, home: Path = PROJECT_DIR, auth_string: str | None = None) -> None:
    """`prefect deploy --all`: every deployment of prefect.yaml, with its schedules, triggers and
    concurrency limit. FOLLOWUP_HOME is where the workers find the project (the pull step)."""
    prefect("deploy", "--all", api_url=api_url, env={"FOLLOWUP_HOME": str(home)}, auth_string=auth_string, timeout=600)


# --- workers ------------------------------------------------------------------------------------------


@dataclass
class Worker:
    """A `prefect worker start` process this module started (its own process group)."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """Stop the worker and the flow runs it started (they are in its process group)."""
        stop_process_group(self.process.pid, self.process, timeout=30)


def start_worker(api_url: str, name: str, *, env: Mapping[str, str], log: Path, pool: str = POOL,
                 home: Path = PROJECT_DIR, limit: int | None = WORKER_LIMIT, auth_string: str | None = None) -> Worker:
    """`prefect worker start --pool followup --name NAME --limit N` with the registry's environment.

    `limit`: flow runs this worker runs at once (each is a Python process of a few hundred MB);
    the runs beyond it stay in the pool for another worker.

    The flow runs it starts inherit `env`: FOLLOWUP_DATABASE_URL, FOLLOWUP_APPRISE_CONFIG and the
    secrets the routes name (${SMTP_PASSWORD}…), and the API's auth string; nothing of that is
    stored in Prefect."""
    environment = dict(os.environ, PREFECT_API_URL=api_url, FOLLOWUP_HOME=str(home), **env,
                       **({CLIENT_AUTH: auth_string} if auth_string else {}))
    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab")  # the child process keeps it open
    try:
        process = subprocess.Popen(
            [prefect_executable(), "worker", "start", "--pool", pool, "--type", POOL_TYPE, "--name", name,
             *(["--limit", str(limit)] if limit else [])],
            cwd=home, env=environment, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    finally:
        out.close()
    return Worker(name, process, log)


async def _online_workers(api_url: str, pool: str, auth_string: str | None) -> set[str]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    updates: dict[Any, Any] = {PREFECT_API_URL: api_url, **({PREFECT_API_AUTH_STRING: auth_string} if auth_string else {})}
    with temporary_settings(updates=updates):
        async with get_client() as client:
            return {w.name for w in await client.read_workers_for_work_pool(pool) if str(w.status).upper().endswith("ONLINE")}


def wait_for_workers(api_url: str, names: list[str], *, pool: str = POOL, timeout: float = 120,
                     auth_string: str | None = None) -> None:
    """Until every named worker has sent its heartbeat to the server."""
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while time.monotonic() < deadline:
        seen = asyncio.run(_online_workers(api_url, pool, auth_string))
        if set(names) <= seen:
            return
        time.sleep(1)
    raise ProductionError(f"workers {sorted(set(names) - seen)} did not come online in the pool {pool!r} within {timeout:.0f} s")


# --- the whole setup on one machine --------------------------------------------------------------------


@dataclass
class Production:
    """A running production setup on this machine: the server and its workers (pids in `home`)."""

    api_url: str
    server: LocalServer
    workers: list[Worker] = field(default_factory=list)
    home: Path = Path("var/prefect")

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")

    def stop(self) -> None:
        """Workers first (no new runs start), then the server."""
        for worker in self.workers:
            worker.stop()
        self.server.stop()
        (self.home / PIDS).unlink(missing_ok=True)


PIDS = "production.json"


def up(*, prefect_database_url: str, registry_url: str, home: Path, auth_string: str, port: int = 4200,
       host: str = "127.0.0.1", workers: int = 2, worker_limit: int | None = WORKER_LIMIT,
       worker_env: Mapping[str, str] | None = None, project: Path = PROJECT_DIR) -> Production:
    """Every step of "Running in production", in order, on this machine. Safe to repeat on the
    same databases (the deployments are updated, nothing in the registry changes).

    `auth_string` (`user:password`) closes the API and the UI: the server requires it, the
    commands and the workers (and the flow runs they start) send it."""
    if ":" not in auth_string:
        raise ProductionError("the API's auth string must be user:password")
    from followup.models.crud import init_db

    create_database(prefect_database_url, extensions=PREFECT_EXTENSIONS)
    backend_for_url(registry_url).create_database(registry_url)  # SQLite: its file comes with the engine
    init_db(registry_url)
    server = start_prefect_server(prefect_database_url, port=port, host=host, home=home, auth_string=auth_string)
    production = Production(server.url, server, home=home)
    try:
        create_work_pool(server.url, auth_string=auth_string)
        deploy_all(server.url, home=project, auth_string=auth_string)
        env = {**(worker_env or {}), "FOLLOWUP_DATABASE_URL": registry_url}
        names = [f"{os.uname().nodename}-{i}" for i in range(1, workers + 1)]
        for name in names:
            production.workers.append(start_worker(server.url, name, env=env, log=home / f"worker-{name}.log", home=project,
                                                   limit=worker_limit, auth_string=auth_string))
        wait_for_workers(server.url, names, auth_string=auth_string)
    except BaseException:
        production.stop()
        raise
    (home / PIDS).write_text(json.dumps({
        "api_url": server.url, "server": server.process.pid, "workers": {w.name: w.pid for w in production.workers},
    }, indent=2), encoding="utf-8")
    return production


def down(home: Path) -> list[int]:
    """Stop what `up` started, by the process ids it recorded in `home`; the ids stopped."""
    path = home / PIDS
    if not path.is_file():
        return []
    recorded = json.loads(path.read_text(encoding="utf-8"))
    pids = [*recorded.get("workers", {}).values(), recorded["server"]]
    for pid in pids:
        stop_process_group(int(pid), timeout=30)
    path.unlink()
    return pids
