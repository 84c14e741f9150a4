"""A worker killed in the middle of a run (SIGKILL, no cleanup) leaves no half-written
escalation and no lost notification; the next run completes the work.

The runs are real child processes on the PostgreSQL registry, killed at a known point: the
escalation while its transaction waits on a row lock (after it inserted the individualized
recommendation), the dispatcher while its letter is on the wire.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from followup.config.notifications import Delivery
from followup.models.crud import init_db
from followup.models.followup import IndividualizedItem, IndividualizedRecommendation, Notification
from followup.models.registry import StatusChange
from followup.notifications.dispatch import dispatch
from followup.spreadsheets.ingest import import_recommendations
from followup.steps.deadlines import check_deadlines, escalate_ministry
from tests.conftest import _fresh_postgres, write_csv

pytestmark = pytest.mark.server  # flow steps in child processes, killed

PROJECT = Path(__file__).resolve().parent.parent
AS_OF = date(2026, 4, 1)


@pytest.fixture
def overdue_postgres_registry(postgres_server_url, tmp_path):
    _fresh_postgres(postgres_server_url)
    init_db(postgres_server_url)
    engine = create_engine(postgres_server_url)
    import_recommendations(write_csv(
        tmp_path / "visit.csv", "external_id,text,issued_on,due_on,ministry,facility",
        "NPM-1,Обеспечить камеры ИВС естественным освещением,05.01.2026,10.03.2026,МВД,ИВС г. Кокшетау",
        "NPM-2,Провести обучение персонала,05.01.2026,10.03.2026,interior,ИВС г. Кокшетау",
    ), engine=engine, actor="clerk")
    # overdue since 11.03 (that day's notice waits in the outbox), due for escalation on 01.04 (whose
    # pass leaves them to the individualized recommendation, not to a reminder)
    check_deadlines(date(2026, 3, 11), engine=engine)
    check_deadlines(AS_OF, engine=engine)
    yield engine
    engine.dispose()


def _child(code: str, url: str, **env: str) -> subprocess.Popen:
    """A worker's flow-run process doing one step (python -c), in its own process group."""
    return subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT, env=dict(os.environ, FOLLOWUP_DATABASE_URL=url, **env),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_an_escalation_killed_mid_transaction_leaves_nothing_and_the_next_run_completes_it(overdue_postgres_registry, postgres_server_url):
    engine = overdue_postgres_registry
    blocker = engine.connect()
    transaction = blocker.begin()
    # a clerk's edit holds NPM-2: the escalation inserts its letter, then waits to change NPM-2's status
    blocker.execute(text("SELECT id FROM recommendation WHERE external_id = 'NPM-2' FOR UPDATE"))
    child = _child(f"from datetime import date; from followup.steps.deadlines import escalate_ministry; "
                   f"escalate_ministry('interior', date({AS_OF.year}, {AS_OF.month}, {AS_OF.day}))", postgres_server_url)
    try:
        def waiting() -> bool:
            assert child.poll() is None, child.stdout.read().decode()
            with engine.connect() as c:
                return bool(c.execute(text(
                    "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )).first())
        _wait(waiting, 120, "the escalation to wait on the row lock, its letter inserted")
        _kill(child)  # the worker dies: no commit, no rollback, no goodbye
    finally:
        transaction.rollback()
        blocker.close()

    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(IndividualizedRecommendation)).scalar_one() == 0
        assert c.execute(select(func.count()).select_from(IndividualizedItem)).scalar_one() == 0
        assert c.execute(select(func.count()).select_from(Notification).where(Notification.kind == "individualized")).scalar_one() == 0

    result = escalate_ministry("interior", AS_OF, engine=engine)  # the next run
    assert result.individualized == ["IR-20260401-INTERIOR"]
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(IndividualizedItem)).scalar_one() == 2
        assert c.execute(select(func.count()).select_from(StatusChange).where(StatusChange.to_status == "escalated")).scalar_one() == 2
        assert c.execute(select(Notification.dedupe_key).where(Notification.kind == "individualized")).scalars().all() == [
            "individualized:IR-20260401-INTERIOR"]


class _SlowHook:
    """An HTTP endpoint that holds the first request open (the letter is on the wire) until released."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.received: list[bytes] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not hook.arrived.is_set():
                    hook.arrived.set()
                    hook.release.wait(30)  # the sender is killed meanwhile: this one never counts
                    return
                hook.received.append(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_dispatcher_killed_while_sending_loses_nothing(overdue_postgres_registry, postgres_server_url, tmp_path):
    engine = overdue_postgres_registry
    hook = _SlowHook()
    routes = tmp_path / "apprise.yaml"
    routes.write_text(f"version: 1\nurls:\n  - json://127.0.0.1:{hook.server.server_address[1]}/interior:\n      tag: ministry:interior\n",
                      encoding="utf-8")
    try:
        child = _child("from followup.notifications.dispatch import dispatch; dispatch()", postgres_server_url,
                       FOLLOWUP_APPRISE_CONFIG=str(routes))
        _wait(lambda: hook.arrived.is_set() or child.poll() is not None, 120, "the letter on the wire")
        assert child.poll() is None, child.stdout.read().decode()
        _kill(child)
        with engine.connect() as c:
            assert c.execute(select(Notification.status)).scalars().all() == ["sending"]  # claimed, never marked

        # within the lease the claim belongs to a dispatcher that may still be at work
        assert dispatch(engine=engine, apprise_file=routes, delivery=Delivery(lease_minutes=15)).claimed == 0
        # after the lease, the next run sends it
        time.sleep(1.5)
        result = dispatch(engine=engine, apprise_file=routes, delivery=Delivery(lease_minutes=1 / 60))
        assert result.sent == 1 and len(hook.received) == 1
        assert "NPM-1" in hook.received[0].decode()
        with engine.connect() as c:
            assert c.execute(select(Notification.status)).scalars().all() == ["sent"]
    finally:
        hook.close()
