"""`followup serve`'s desk: the steps `followup run` hands to the serve process of its folder.

A `followup run check-deadlines` started on its own pays for Prefect before it does anything:
importing Prefect and the flows takes longer than the step's own work on the office's registry.
`followup serve` has paid for both already. So while it runs, it also listens on loopback (the
desk), and `followup run` in the same folder, with the same FOLLOWUP_* settings, sends it the
step's name and parameters instead of importing Prefect: the serve process runs the flow at once,
in a thread of its own, reporting to its Prefect server like any other run, and streams the run's
log lines and then its counts back. One handed-off run at a time; the scheduled runs go on in
their own processes as before.

The desk answers only a caller that shows the token `followup serve` wrote into its record
(var/prefect/serve.json, readable by its owner only), and only runs the steps of `STEPS`. A
caller whose settings differ (another registry, another configuration) is told so and runs the
step itself: the serve process would run it against its own.

This module imports no Prefect: `followup run`'s side (`hand_off`) must stay light.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import os
import queue
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: the steps `followup run` names, and the flow each one runs (prefect.yaml's entrypoint form)
STEPS: dict[str, str] = {
    "check-deadlines": "flows/pipeline.py:check_deadlines_flow",
    "escalate": "flows/pipeline.py:escalate_flow",
    "dispatch": "flows/notify.py:dispatch_flow",
    "digest": "flows/notify.py:digest_flow",
    "all": "flows/pipeline.py:daily_flow",
}

#: the status of the desk's answer to a caller with other settings: "run it yourself"
DECLINED = 409


def settings_fingerprint(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> str:
    """What decides which registry and configuration a step runs against: the working directory
    (the relative defaults of config/ and var/) and every FOLLOWUP_* variable, hashed (a database
    URL may hold a password; the hash travels, not the values)."""
    environ = os.environ if environ is None else environ
    seen = {k: v for k, v in environ.items() if k.startswith("FOLLOWUP_")}
    text = json.dumps([str((cwd or Path.cwd()).resolve()), sorted(seen.items())], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _line(kind: str, **fields: Any) -> bytes:
    return (json.dumps({"kind": kind, **fields}, ensure_ascii=False, default=_json_default) + "\n").encode("utf-8")


class _RunLines(logging.Handler):
    """The log lines of the run a desk thread started: records of that thread, and of the flow
    runs it began (task runs in pool threads carry their flow run's id)."""

    def __init__(self, thread: int, sink: Callable[[str], None], formatter: logging.Formatter | None) -> None:
        super().__init__(logging.DEBUG)
        self.thread, self.sink, self.runs = thread, sink, set[str]()
        if formatter is not None:
            self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        run = getattr(record, "flow_run_id", None)
        if record.thread == self.thread:
            if run:
                self.runs.add(str(run))
        elif not run or str(run) not in self.runs:
            return
        try:
            self.sink(self.format(record))
        except Exception:  # a line lost is better than a run broken by its log
            self.handleError(record)


def _console_formatter(logger: logging.Logger) -> logging.Formatter | None:
    """The formatter of Prefect's console handler (on the root logger), so a handed-off run's
    lines read as the caller's own process would print them."""
    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler) and handler.formatter is not None:
            return handler.formatter
    return None


@dataclass
class Desk:
    """The serve process's side. `run(step, parameters)` runs a step's flow and returns what it
    returns (reporting to the serve process's Prefect server); `failure(exc)` says whether an
    exception is a known failure, as (sentence, exit code) — the command line's own rule."""

    run: Callable[[str, dict[str, Any]], Any]
    failure: Callable[[BaseException], tuple[str, int] | None]
    api_url: str  #: the Prefect server the serve process reports to
    fingerprint: str = field(default_factory=settings_fingerprint)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    _one_at_a_time: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the desk is not open")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def open(self) -> str:
        """Listen on a free loopback port, in a daemon thread; returns the desk's URL."""
        desk = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the answer streams until the connection closes

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
                pass  # the request line is enough for nobody; the token is in a header, never logged

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                desk._answer(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="followup-desk", daemon=True).start()
        return self.url

    def idle(self, timeout: float | None = None) -> bool:
        """Whether no handed-over run is in progress, waiting up to `timeout` seconds (None: until
        it ends) for the one that is."""
        if not self._one_at_a_time.acquire(timeout=-1 if timeout is None else timeout):
            return False
        self._one_at_a_time.release()
        return True

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _refuse(self, request: BaseHTTPRequestHandler, status: int, reason: str) -> None:
        body = _line("declined", reason=reason)
        request.send_response(status)
        request.send_header("Content-Type", "application/x-ndjson")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        if urlsplit(request.path).path != "/run":
            self._refuse(request, 404, "no such page")
            return
        if not hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {self.token}"):
            self._refuse(request, 401, "wrong token")
            return
        try:
            length = int(request.headers.get("Content-Length", "0"))
            asked = json.loads(request.rfile.read(min(length, 65536)) or b"{}")
            step, parameters, fingerprint = asked["step"], dict(asked.get("parameters") or {}), asked["fingerprint"]
            api_url = asked.get("api_url")
        except (ValueError, KeyError, TypeError):
            self._refuse(request, 400, "not a run request")
            return
        if step not in STEPS:
            self._refuse(request, 404, f"no step {step!r}")
            return
        if not hmac.compare_digest(str(fingerprint), self.fingerprint):
            self._refuse(request, DECLINED, "followup serve runs with other settings (working directory or FOLLOWUP_*)")
            return
        if api_url and str(api_url).rstrip("/") != self.api_url.rstrip("/"):
            self._refuse(request, DECLINED, f"followup serve reports to {self.api_url}, not to PREFECT_API_URL")
            return
        request.send_response(200)
        request.send_header("Content-Type", "application/x-ndjson")
        request.end_headers()
        for line in self._running(step, parameters):
            try:
                request.wfile.write(line)
                request.wfile.flush()
            except OSError:  # the caller went away (Ctrl+C): the run goes on; its lines are in the UI
                pass

    def _running(self, step: str, parameters: dict[str, Any]) -> Iterator[bytes]:
        """The run's lines as they come, then its end: `done` with the result, or `failed`."""
        lines: queue.Queue[bytes | None] = queue.Queue()
        if not self._one_at_a_time.acquire(blocking=False):
            yield _line("log", text="followup serve: waiting for the run handed over before this one")
            self._one_at_a_time.acquire()

        def work() -> None:
            root = logging.getLogger()  # where Prefect's console handler hears every run logger
            capture = _RunLines(threading.get_ident(), lambda text: lines.put(_line("log", text=text)),
                                _console_formatter(root))
            root.addHandler(capture)
            try:
                lines.put(_line("done", result=self.run(step, parameters)))
            except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller
                known = self.failure(exc)
                message, code = known if known else (f"{type(exc).__name__}: {exc}", 1)
                if not known:
                    logging.getLogger(__name__).exception("handed-off run of %s failed", step)
                lines.put(_line("failed", message=message, exit=code))
            finally:
                root.removeHandler(capture)
                lines.put(None)

        try:
            threading.Thread(target=work, name=f"followup-desk {step}", daemon=True).start()
            while (line := lines.get()) is not None:
                yield line
        finally:
            self._one_at_a_time.release()


# --- `followup run`'s side ---------------------------------------------------------------------


class Declined(Exception):
    """The desk would not run the step (other settings, an old record): run it here instead."""


@dataclass(frozen=True)
class Ended:
    """How a handed-off run ended: `result` (what the flow returned) or `failure` (sentence, exit code)."""

    result: Any = None
    failure: tuple[str, int] | None = None


def hand_off(desk_url: str, token: str, step: str, parameters: Mapping[str, Any], *, api_url: str | None,
             on_line: Callable[[str], None], connect_timeout: float = 2.0) -> Ended:
    """Ask the desk at `desk_url` to run `step` now, reporting to `api_url` if the caller names a
    Prefect server; `on_line` hears each log line as it comes. Raises Declined when there is no
    desk there or it will not run this caller's step."""
    address = urlsplit(desk_url)
    body = json.dumps({"step": step, "parameters": dict(parameters), "fingerprint": settings_fingerprint(),
                       "api_url": api_url}, default=_json_default).encode("utf-8")
    connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=connect_timeout)
    try:
        try:
            connection.connect()
        except OSError as exc:
            raise Declined(f"followup serve's desk does not answer ({exc})") from None
        if connection.sock is not None:
            connection.sock.settimeout(None)  # connected: the run takes what it takes
        connection.request("POST", "/run", body=body, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        answer = connection.getresponse()
        if answer.status != 200:
            try:
                reason = json.loads(answer.read()).get("reason", "")
            except ValueError:
                reason = ""
            raise Declined(reason or f"followup serve's desk answered {answer.status}")
        for raw in answer:
            said = json.loads(raw)
            if said["kind"] == "log":
                on_line(said["text"])
            elif said["kind"] == "done":
                return Ended(result=said["result"])
            elif said["kind"] == "failed":
                return Ended(failure=(str(said["message"]), int(said["exit"])))
        return Ended(failure=("followup serve stopped before the run ended: see its console and the Prefect UI", 1))
    finally:
        connection.close()
