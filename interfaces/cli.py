"""The `followup` command: what the office, a ministry clerk's liaison and an admin type."""

from __future__ import annotations

import atexit
import gc
import json
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import OperationalError

from followup.config.loader import ConfigError
from followup.config.settings import MissingSecretKey, get_settings
from followup.models.dates import DATE_FORMS, parse_date

# Each command imports what it uses: `followup stats` or `list` must not pay for pandas,
# Prefect or Alembic (README: Usage). tests/test_command_costs.py checks it.
if TYPE_CHECKING:
    from prefect import Flow
    from rich.progress import TaskID
    from sqlmodel import Session

    from followup.operations.desk import Ended
    from followup.spreadsheets.ingest import ImportResult

app = typer.Typer(
    help="Follow-up of human-rights recommendations: registry, deadlines, escalation, notifications.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
import_app = typer.Typer(help="Import spreadsheets (.csv or .xlsx) into the registry.", no_args_is_help=True)
export_app = typer.Typer(help="Export the registry to spreadsheets.", no_args_is_help=True)
run_app = typer.Typer(help="Run the pipeline's flows now, on Prefect (the schedules run them daily).", no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")
report_app = typer.Typer(help="Reports for the office.", no_args_is_help=True)
app.add_typer(run_app, name="run")
app.add_typer(report_app, name="report")
production_app = typer.Typer(help="A Prefect server on PostgreSQL with a process work pool and workers (README: Running in production).",
                             no_args_is_help=True)
app.add_typer(production_app, name="production")
follow_up_app = typer.Typer(help="Treaty bodies' follow-up procedure: the recommendations a committee selected.", no_args_is_help=True)
app.add_typer(follow_up_app, name="follow-up")
links_app = typer.Typer(help="The ministries' reply links: print one for sending by hand, or revoke them all.", no_args_is_help=True)
app.add_typer(links_app, name="links")
replies_app = typer.Typer(help="Ministries' replies: the office's review of what they claim.", no_args_is_help=True)
app.add_typer(replies_app, name="replies")
users_app = typer.Typer(help="The office's accounts in the workspace: add, disable, list.", no_args_is_help=True)
app.add_typer(users_app, name="users")

out = Console()
err = Console(stderr=True)


def _leave_quickly() -> None:
    """The last thing a process that loaded the CLI does: close the registry's connections as the
    interpreter's teardown would (models.db.dispose_engines), then put every object out of the
    garbage collector's reach (gc.freeze), which that teardown would otherwise walk several
    times over: the objects SQLAlchemy, pydantic or pandas leave made it 0.1-0.3 s of every
    command (issue 20). Files are closed by the code that writes them, never left to the collector."""
    db = sys.modules.get("followup.models.db")
    if db is not None:
        db.dispose_engines()
    gc.freeze()


atexit.register(_leave_quickly)


@app.callback()
def _settings_first() -> None:
    """Every command reads the FOLLOWUP_* settings: a wrong one ends here in one sentence
    (`FOLLOWUP_TIMEZONE: 'Mars/Olympus' is not a time zone…`), before anything runs."""
    try:
        get_settings()
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        raise typer.Exit(2) from None


def parse_date_option(value: str | date) -> date:
    """The parser of every date option: DD.MM.YYYY (or DD/MM/YYYY) or YYYY-MM-DD, never month first.

    `models.dates.parse_date` reads it; Typer names the option in the error ("Invalid value for '--as-of': ...").
    """
    if isinstance(value, date):
        return value
    try:
        return parse_date(value)
    except ValueError as exc:
        reason = str(exc)
        if DATE_FORMS not in reason:
            reason += f" (expected {DATE_FORMS}, day first)"
        raise typer.BadParameter(reason) from None


def _fail(message: str, code: int = 2) -> NoReturn:
    # plain write: error lines such as "row 7: ministry: ..." must never be wrapped or styled
    sys.stderr.write(message.rstrip("\n") + "\n")
    raise typer.Exit(code)


def _known_failure(exc: BaseException) -> tuple[str, int] | None:
    """A known failure as (one sentence, exit code); None for anything else (a bug: its traceback).
    `followup serve`'s desk answers a handed-off run's failure with it too."""
    if isinstance(exc, (ConfigError, MissingSecretKey)):
        return str(exc), 2
    if isinstance(exc, RuntimeError):
        from followup.flows.notify import DeadNotifications

        return (str(exc), 1) if isinstance(exc, DeadNotifications) else None
    if isinstance(exc, OperationalError):
        return f"cannot reach the registry at {get_settings().database_url.split('@')[-1]}: {exc.orig}", 3
    if isinstance(exc, ValueError):  # settings validation, illegal transitions, a file that cannot be imported
        from followup.spreadsheets.tabular import ImportRejected  # loaded already when that is what failed

        return str(exc), 1 if isinstance(exc, ImportRejected) else 2
    return None


@contextmanager
def _clear_errors() -> Iterator[None]:
    """Known failures become one sentence and an exit code, never a traceback."""
    try:
        yield
    except Exception as exc:
        known = _known_failure(exc)
        if known is None:
            raise
        _fail(*known)


def _ensure_schema() -> None:
    from followup.models.crud import init_db

    init_db()


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    if not enabled:
        yield lambda *_: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


@app.command()
def init() -> None:
    """Create or upgrade the registry's schema and load config/ministries.yaml (safe to repeat)."""
    with _clear_errors():
        _ensure_schema()
    out.print(f"registry ready: {get_settings().database_url.split('@')[-1]}", soft_wrap=True)


JsonOpt = Annotated[bool, typer.Option("--json", help="print the counts as JSON on stdout")]
DryOpt = Annotated[bool, typer.Option("--dry-run", help="validate and count, write nothing")]
ActorOpt = Annotated[str | None, typer.Option(help="who the history names (default: FOLLOWUP_ACTOR or your user name)")]


def _report(result: ImportResult, as_json: bool, what: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result.counts()) + "\n")
        return
    prefix = "dry run, nothing written: " if result.dry_run else ""
    counts = ", ".join(f"{v} {k}" for k, v in result.counts().items())
    out.print(f"{prefix}{what}: {counts}", soft_wrap=True, highlight=False)


@import_app.command("recommendations")
def import_recommendations_cmd(
    file: Annotated[Path, typer.Argument(help=".csv or .xlsx with the columns listed in the README")],
    dry_run: DryOpt = False,
    as_json: JsonOpt = False,
    quarantine: Annotated[
        Path | None, typer.Option(help="write bad rows with their problems to this file and import the rest")
    ] = None,
    actor: ActorOpt = None,
    symbol: Annotated[str | None, typer.Option(help="a UPR matrix without a Symbol column: the Working Group report's symbol, e.g. A/HRC/44/10")] = None,
    issued_on: Annotated[date | None, typer.Option("--issued-on", parser=parse_date_option, metavar="DATE", help="a UPR matrix without a date column: the report's date (15.07.2020 or 2020-07-15)")] = None,
) -> None:
    """Import recommendations: the whole file, or nothing if any row is bad.

    The project's columns, a Universal Human Rights Index export or a UPR matrix (told apart by the header).
    """
    from followup.spreadsheets.ingest import import_recommendations
    from followup.spreadsheets.tabular import ImportRejected

    with _clear_errors():
        _ensure_schema()
        try:
            with _progress(not as_json and sys.stderr.isatty()) as progress:
                result = import_recommendations(file, actor=actor, dry_run=dry_run, quarantine=quarantine, progress=progress,
                                                symbol=symbol, issued_on=f"{issued_on:%d.%m.%Y}" if issued_on else None)
        except ImportRejected as exc:
            if as_json:
                sys.stdout.write(json.dumps({"created": 0, "updated": 0, "unchanged": 0, "rejected": exc.rejected_rows}) + "\n")
            raise
    if result.rejected and quarantine:
        where = "would be written" if dry_run else "written"
        err.print(f"{result.rejected} rejected rows {where} to {quarantine} (fix them there and import that file)", soft_wrap=True, highlight=False)
    if result.format != "followup" and not as_json:
        err.print(f"{file.name}: read as a {'Universal Human Rights Index export' if result.format == 'uhri' else 'UPR matrix'}"
                  + (f"; {result.skipped} rows about other states left out" if result.skipped else "")
                  + (f"; ignored columns: {', '.join(result.ignored_columns)}" if result.ignored_columns else ""),
                  soft_wrap=True, highlight=False)
    _report(result, as_json, file.name)


@import_app.command("responses")
def import_responses_cmd(
    file: Annotated[Path, typer.Argument(help=".csv or .xlsx: external_id, status, responded_on, note, evidence")],
    dry_run: DryOpt = False,
    as_json: JsonOpt = False,
    actor: ActorOpt = None,
) -> None:
    """Record ministries' replies as status changes: all of them, or nothing if any row is bad."""
    from followup.spreadsheets.ingest import import_responses
    from followup.spreadsheets.tabular import ImportRejected

    with _clear_errors():
        _ensure_schema()
        try:
            result = import_responses(file, actor=actor, dry_run=dry_run)
        except ImportRejected as exc:
            if as_json:
                sys.stdout.write(json.dumps({"created": 0, "updated": 0, "unchanged": 0, "rejected": exc.rejected_rows}) + "\n")
            raise
    _report(result, as_json, file.name)


TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="only recommendations with this tag, KIND:VALUE (theme:torture, affected_persons:children, sdg:16); repeat to require several")]


@export_app.command("recommendations")
def export_recommendations_cmd(
    file: Annotated[Path, typer.Argument(help=".csv (UTF-8, comma) or .xlsx")],
    tag: TagOpt = None,
) -> None:
    """Export every recommendation (or those with the tags) with its status; the file re-imports unchanged."""
    from followup.spreadsheets.export import export_recommendations

    with _clear_errors():
        _ensure_schema()
        count = export_recommendations(file, tags=tag or ())
    out.print(f"exported {count} recommendations to {file}", soft_wrap=True)


@app.command("list")
def list_cmd(
    ministry: Annotated[str | None, typer.Option(help="the ministry's code, name or alias")] = None,
    status: Annotated[list[str] | None, typer.Option("--status", help="a status code (issued, overdue, ...); repeat for several")] = None,
    facility: Annotated[str | None, typer.Option(help="the facility's name, or a part of it")] = None,
    region: Annotated[str | None, typer.Option(help="the facility's region")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="only late items: overdue, escalated, at level 2")] = False,
    due_within: Annotated[int | None, typer.Option("--due-within", metavar="DAYS", help="only items whose deadline falls within DAYS")] = None,
    search: Annotated[str | None, typer.Option(help="words of the text (Russian or Kazakh; each a word's beginning)")] = None,
    sort: Annotated[str, typer.Option(help="due_on, -due_on, issued_on, -issued_on, external_id, status or ministry")] = "due_on",
    page: Annotated[int, typer.Option(help="the page to print, from 1")] = 1,
    page_size: Annotated[int, typer.Option("--page-size", help="items per page (at most 500)")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="print the page as a JSON array on stdout")] = False,
) -> None:
    """List the registry's items, filtered and sorted, one page at a time (as the workspace's list)."""
    from followup.models.calendar import local_today
    from followup.models.db import get_engine
    from followup.models.listing import RegistryFilter, list_items

    with _clear_errors():
        _ensure_schema()
        try:
            filters = RegistryFilter(ministry=ministry, statuses=tuple(status or ()), facility=facility, region=region,
                                     overdue=overdue, due_within_days=due_within, search=search, sort=sort, page=page,
                                     page_size=page_size)
            with get_engine().connect() as connection:
                listed = list_items(connection, filters, today=local_today())
        except ValueError as exc:
            _fail(str(exc), 2)
    if as_json:
        sys.stdout.write(json.dumps([
            {"external_id": i.external_id, "ministry": i.ministry_code, "status": i.status,
             "due_on": i.due_on.isoformat() if i.due_on else None, "issued_on": i.issued_on.isoformat(),
             "facility": i.facility, "region": i.region, "source": i.source, "category": i.category, "priority": i.priority,
             "awaiting_review": i.awaiting_review, "text": i.text} for i in listed.rows
        ], ensure_ascii=False) + "\n")
        return
    table = Table(title=f"{listed.total_label} items · page {listed.page} of {listed.pages_label}", title_justify="left")
    for column in ("external_id", "ministry", "status", "deadline", "facility", "text"):
        table.add_column(column, overflow="fold")
    for i in listed.rows:
        table.add_row(i.external_id, i.ministry_code or "", i.status, f"{i.due_on:%d.%m.%Y}" if i.due_on else "",
                      i.facility or "", i.text if len(i.text) <= 120 else i.text[:119] + "…")
    out.print(table)


def _print_record(external_id: str, missing: int = 2) -> int:
    """The recommendation's header (text, ministry, facility, region, deadline, status); its id.
    Exits with one sentence (and the code `missing`) when there is none."""
    from followup.models.db import get_engine
    from followup.models.listing import get_item

    with get_engine().connect() as connection:
        record = get_item(connection, external_id)
    if record is None:
        _fail(f"no recommendation {external_id!r} in the registry", missing)
    ministry = f"{record.ministry_name_ru} ({record.ministry_code})" if record.ministry_code else "(none: unassigned)"
    place = ", ".join(p for p in (record.facility, record.facility_type, record.region) if p) or "-"
    deadline = f"{record.due_on:%d.%m.%Y}" if record.due_on else "-"
    if record.days_on_hold:
        deadline += f" (+{record.days_on_hold} days on hold)"
    header = Table.grid(padding=(0, 2))
    header.add_column(style="bold")
    header.add_column(overflow="fold")
    for label, value in (("recommendation", record.external_id), ("text", record.text), ("ministry", ministry),
                         ("facility", place), ("issued", f"{record.issued_on:%d.%m.%Y}"), ("deadline", deadline),
                         ("status", record.status + (" (claim under review)" if record.awaiting_review else ""))):
        header.add_row(label, value)
    out.print(header)
    return record.id


@app.command()
def show(external_id: Annotated[str, typer.Argument(help="the recommendation's external_id")]) -> None:
    """Print a recommendation whole: text, ministry, facility, deadline, status, then its timeline
    (status changes, replies with their files, letters it was listed in, follow-up grades)."""
    from followup.models.db import get_engine
    from followup.models.listing import timeline

    with _clear_errors():
        _ensure_schema()
        rec_id = _print_record(external_id)
        with get_engine().connect() as connection:
            entries = timeline(connection, rec_id)
    tz = get_settings().tz
    table = Table(title="timeline", title_justify="left")
    for column in ("when", "what", "who", "details"):
        table.add_column(column, overflow="fold")
    for e in entries:
        when = e.at.astimezone(tz).strftime("%d.%m.%Y %H:%M") if e.at and e.kind in ("status", "edit") else f"{e.on:%d.%m.%Y}"
        if e.kind == "status":
            what, details = f"{e.from_status or '(new)'} → {e.to_status}", e.reason or ""
            if e.evidence:
                details += f"\nevidence: {e.evidence}"
        elif e.kind == "edit":
            what = "edited: " + ", ".join(sorted((e.changes or {}).keys()))
            details = e.reason or ""
        elif e.kind == "reply":
            what = f"reply {e.reference}: claims {e.to_status}"
            details = f"{e.reason or ''}\noutcome: {e.details.get('outcome')}"
            if e.files:
                details += "\nfiles: " + ", ".join(f.filename for f in e.files)
        elif e.kind == "reminder":
            what = f"reminder {e.reference or ''}".strip()
            due = e.details.get("due_on")
            details = f"deadline {due:%d.%m.%Y}" if due else ""
        elif e.kind == "individualized":
            what = f"individualized recommendation {e.reference}"
            due, answered = e.details.get("response_due_on"), e.details.get("answered_on")
            details = (f"answer due {due:%d.%m.%Y}" if due else "draft") + (f", answered {answered:%d.%m.%Y}" if answered else
                                                                           ", not answered")
        else:
            what = f"grade {e.details.get('grade')} (round {e.details.get('round')})"
            details = " ".join(x for x in (e.reference, e.reason) if x)
        table.add_row(when, what, e.actor or "", details)
    out.print(table)


@app.command()
def history(external_id: Annotated[str, typer.Argument(help="the recommendation's external_id")]) -> None:
    """Print a recommendation's state log, oldest first: when, who, from → to, why, evidence
    (after its text, ministry, facility and deadline; `followup show` adds replies and letters)."""
    from followup.models.crud import get_history, get_recommendation
    from followup.models.db import session_scope

    with _clear_errors():
        _ensure_schema()
        with session_scope() as session:
            rec = get_recommendation(session=session, external_id=external_id)
            if rec is None:
                _fail(f"no recommendation {external_id!r} in the registry", 1)
            assert rec.id is not None, "a recommendation read from the registry has its id"
            entries = get_history(session=session, recommendation_id=rec.id)
            from followup.models.procedure import grade_history

            grades = grade_history(session=session, recommendation_id=rec.id)
        _print_record(external_id)
    tz = get_settings().tz
    table = Table(title=f"{rec.external_id} — {rec.status}", title_justify="left")
    for column in ("when (Asia/Almaty)", "who", "change", "why", "evidence"):
        table.add_column(column, overflow="fold")
    for e in entries:
        if e.from_status == e.to_status:
            change = "edited: " + ", ".join(f"{k} {v[0]} → {v[1]}" for k, v in (e.changes or {}).items() if k != "text")
            if e.changes and "text" in e.changes:
                change += (", " if change != "edited: " else "") + "text"
        else:
            change = f"{e.from_status or '(new)'} → {e.to_status}"
        when = e.at.astimezone(tz).strftime("%d.%m.%Y %H:%M")
        if e.effective_on:
            when += f"\n(effective {e.effective_on:%d.%m.%Y})"
        table.add_row(when, e.actor, change, e.reason, e.evidence or "")
    out.print(table)
    if grades:
        from followup.models.procedure import grade_meaning

        graded = Table(title=f"{rec.external_id} — follow-up procedure ({rec.mechanism_ref or ''})", title_justify="left")
        for column in ("round", "grade", "meaning", "graded on", "document", "note"):
            graded.add_column(column, overflow="fold")
        for g in grades:
            graded.add_row(str(g.round), g.grade, grade_meaning(g.grade), f"{g.graded_on:%d.%m.%Y}", g.document or "", g.note or "")
        out.print(graded)


AsOfOpt = Annotated[date | None, typer.Option("--as-of", parser=parse_date_option, metavar="DATE",
                                               help="the day to act as of, DD.MM.YYYY or YYYY-MM-DD (default: today in Asia/Almaty)")]


def _as_of(value: date | None) -> date:
    if value is not None:
        return value
    from followup.models.calendar import local_today

    return local_today()


def _print_counts(title: str, counts: dict[str, int]) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, value in counts.items():
        table.add_row(key.replace("_", " "), str(value))
    out.print(table)


OnWorkersOpt = Annotated[bool, typer.Option(
    "--on-workers", help="hand the run to its deployment on the Prefect server (`followup serve` or the workers run it) "
                         "and wait for it, instead of running it in this process")]
StartTimeoutOpt = Annotated[float | None, typer.Option(
    "--start-timeout", min=1, help="with --on-workers: give up waiting (exit 4) when no worker has started the run "
                                   "within this many seconds; the run stays scheduled on the server (default: wait)")]


def _prefect_home() -> Path:
    """var/prefect under the working directory: `followup serve`'s server data and record, production's process ids."""
    return Path("var/prefect").resolve()


@contextmanager
def _prefect_server(on_workers: bool) -> Iterator[str | None]:
    """The Prefect server a `followup run` reports to: the configured one (PREFECT_API_URL, from
    the environment or the active profile), else the one a `followup serve` of this folder serves
    to; with neither, Prefect starts a temporary server for the run (None), and this says so."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from followup.operations.deployments import serving_api

    api = PREFECT_API_URL.value() or serving_api(_prefect_home())
    if not api:
        if on_workers:
            _fail("--on-workers: no Prefect server to hand the run to: start `followup serve` (or set PREFECT_API_URL)", 3)
        sys.stderr.write("no Prefect server running: starting a temporary one (~5 s); `followup serve` keeps one up\n")
        yield None
        return
    with temporary_settings(updates={PREFECT_API_URL: api}):
        yield api


def _run_step(step: str, on_workers: bool, start_timeout: float | None = None, **parameters: Any) -> Any:
    """Run a step (operations/desk.py STEPS) now and return what its flow returns: handed to the
    `followup serve` of this folder when one runs (no Prefect to import here), else in this
    process reporting to the Prefect server there is (`_prefect_server`); or, `on_workers`, as a
    flow run of its deployment on the server, where `followup serve` or a worker runs it (prints
    the run's name and states, returns None)."""
    if start_timeout is not None and not on_workers:
        _fail("--start-timeout: only with --on-workers (a run in this process starts at once)", 2)
    if not on_workers:
        ended = _hand_to_serve(step, parameters)
        if ended is not None:
            if ended.failure is not None:
                _fail(*ended.failure)
            return ended.result
    from followup.operations.deployments import load_flow
    from followup.operations.desk import STEPS

    _ensure_schema()
    return _run_flow(load_flow(STEPS[step]), on_workers, start_timeout, **parameters)


def _hand_to_serve(step: str, parameters: dict[str, Any]) -> Ended | None:
    """The step run by the desk of the `followup serve` of this folder (operations/desk.py), its
    log lines printed here as they come; None when there is none, or it runs with other settings
    or for another Prefect server than PREFECT_API_URL names (then this process runs the step)."""
    import os

    from followup.operations.deployments import serving_desk
    from followup.operations.desk import Declined, hand_off

    desk = serving_desk(_prefect_home())
    if desk is None:
        return None

    def print_line(text: str) -> None:  # where Prefect's console handler writes a run's lines
        sys.stderr.write(text.rstrip("\n") + "\n")

    try:
        return hand_off(*desk, step, parameters, api_url=os.environ.get("PREFECT_API_URL"), on_line=print_line)
    except Declined as exc:
        sys.stderr.write(f"not handed to followup serve ({exc}): running here\n")
        return None


def _run_flow(flow: Flow[..., Any], on_workers: bool, start_timeout: float | None = None, **parameters: Any) -> Any:
    """Run a flow now, in this process (reporting to the Prefect server when there is one) and
    return what it returns; or, `on_workers`, as a flow run of its deployment on the server, where
    `followup serve` or a worker runs it: prints the run's name and states, returns None."""
    from followup.operations.deployments import NotStarted, deployment_of, run_on_workers

    with _prefect_server(on_workers) as api:
        if not on_workers:
            return flow(**parameters)
        deployment = deployment_of(flow)
        if deployment is None:
            _fail(f"--on-workers: prefect.yaml has no deployment of the flow {flow.name}", 2)
        sent = {k: v.isoformat() if isinstance(v, date) else v for k, v in parameters.items()}
        ui = str(api).removesuffix("/api")

        def waiting(run: Any, seconds: float) -> None:
            sys.stderr.write(f"nobody has started flow run {run.name} after {seconds:.0f} s: is `followup serve` or a "
                             f"worker of its pool running? Ctrl+C stops waiting; the run stays at {ui}/runs/flow-run/{run.id}\n")

        try:
            ended = run_on_workers(deployment, sent, on_state=lambda run: out.print(
                f"{deployment}: flow run {run.name} {run.state_name}", soft_wrap=True, highlight=False),
                start_timeout=start_timeout, on_waiting=waiting)
        except NotStarted as exc:
            _fail(str(exc), 4)
        page = f"{ui}/runs/flow-run/{ended.id}"
        if not ended.state.is_completed():
            _fail(f"flow run {ended.name} ended {ended.state_name}: {ended.state.message or 'see ' + page}", 1)
        out.print(f"what it did is in the run's artifacts and logs: {page}", soft_wrap=True, highlight=False)
        return None


def _print_run(title: str, counts: dict[str, int] | None) -> None:
    if counts is not None:
        _print_counts(title, counts)


@run_app.command("check-deadlines")
def run_check_deadlines(as_of: AsOfOpt = None, on_workers: OnWorkersOpt = False,
                        start_timeout: StartTimeoutOpt = None) -> None:
    """Derive missing deadlines, mark overdue items, queue reminder letters to the ministries."""
    day = _as_of(as_of)
    with _clear_errors():
        _print_run(f"check-deadlines {day}", _run_step("check-deadlines", on_workers, start_timeout, as_of=day))


@run_app.command("escalate")
def run_escalate(as_of: AsOfOpt = None, on_workers: OnWorkersOpt = False,
                 start_timeout: StartTimeoutOpt = None) -> None:
    """Issue individualized recommendations for items overdue 10 working days; level 2 for silence."""
    day = _as_of(as_of)
    with _clear_errors():
        _print_run(f"escalate {day}", _run_step("escalate", on_workers, start_timeout, as_of=day))


@run_app.command("dispatch")
def run_dispatch(as_of: AsOfOpt = None, on_workers: OnWorkersOpt = False,
                 start_timeout: StartTimeoutOpt = None) -> None:
    """Send what the outbox holds through Apprise (routes: FOLLOWUP_APPRISE_CONFIG)."""
    day = _as_of(as_of)
    with _clear_errors():
        _print_run(f"dispatch {day}", _run_step("dispatch", on_workers, start_timeout, as_of=day))


@run_app.command("digest")
def run_digest(
    as_of: AsOfOpt = None,
    send: Annotated[bool, typer.Option("--send/--no-send", help="deliver it now (default) or only queue it")] = True,
    on_workers: OnWorkersOpt = False,
    start_timeout: StartTimeoutOpt = None,
) -> None:
    """The Ombudsman's digest of the week before AS_OF: build, queue, send."""
    day = _as_of(as_of)
    with _clear_errors():
        _print_run(f"digest {day}", _run_step("digest", on_workers, start_timeout, as_of=day, send=send))


@run_app.command("all")
def run_all(as_of: AsOfOpt = None) -> None:
    """The day's whole pass: check-deadlines, escalate, then dispatch what they queued.

    It has no deployment: on the workers, `followup run check-deadlines --on-workers` starts the
    pass, and its events start escalate and dispatch."""
    day = _as_of(as_of)
    with _clear_errors():
        for step, counts in _run_step("all", False, as_of=day).items():
            _print_counts(f"{step} {day}", counts)


@report_app.command("annual")
def report_annual(
    year: Annotated[int | None, typer.Option("--year", help="the year reported on (default: last year)")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="folder for the files (default: var/reports/YYYY)")] = None,
    language: Annotated[str, typer.Option("--language", help="ru, kk or en")] = "ru",
    tag: TagOpt = None,
) -> None:
    """The consolidated annual report: HTML with charts, CSV and XLSX tables; its headline as a Prefect artifact."""
    if language not in ("ru", "kk", "en"):
        _fail(f"--language: {language!r} is not one of ru, kk, en")
    with _clear_errors():
        _ensure_schema()
        from followup.flows.report import annual_report_flow
        from followup.models.international import parse_tag_filter

        for t in tag or ():
            parse_tag_filter(t)  # a typo fails before the flow runs
        result = annual_report_flow(year=year, out=str(out_dir) if out_dir else None, language=language, tags=tag or None)
    table = Table(title=f"Annual report {result['year']}", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    h = result["headline"]
    rate = "—" if h["implementation_rate"] is None else f"{h['implementation_rate'] * 100:.1f}%"
    for label, value in [("visits", h["visits"]), ("facilities monitored", h["facilities"]), ("recommendations issued", h["issued"]),
                         ("implemented", f"{h['implemented']} ({rate})"), ("partially implemented", h["partially_implemented"]),
                         ("overdue at the end of the period", h["overdue"]),
                         ("median days to implementation", "—" if h["median_days"] is None else f"{h['median_days']:.0f}"),
                         ("individualized recommendations", h["individualized"])]:
        table.add_row(label, str(value))
    out.print(table)
    out.print(f"report: {result['html']}\nspreadsheet: {result['xlsx']}")


@app.command()
def stats(as_of: AsOfOpt = None) -> None:
    """The current picture per ministry: open, due within 14 days, overdue, escalated, answered this year."""
    day = _as_of(as_of)
    with _clear_errors():
        _ensure_schema()
        from sqlmodel import Session, select

        from followup.models.db import get_engine
        from followup.models.registry import Ministry
        from followup.reports.picture import NOT_GIVEN, STATS_COLUMNS, current_picture

        rows = current_picture(as_of=day)
        with Session(get_engine()) as session:
            names = {m.code: m.name_en for m in session.exec(select(Ministry))}
    headers = {"open": "open", "due_soon": "due ≤14 d", "overdue": "overdue", "escalated": "escalated",
               "awaiting_decision": "awaiting decision", "implemented": "implemented", "partially_implemented": "partially",
               "rejected": "rejected", "total": "total"}
    table = Table(title=f"Recommendations as of {day:%d.%m.%Y} (answers since 01.01.{day.year})")
    table.add_column("ministry")
    for column in STATS_COLUMNS:
        table.add_column(headers[column], justify="right", style="bold red" if column in ("overdue", "awaiting_decision") else None)
    for row in rows:
        code = row["ministry"]
        label = "total" if code == "total" else "no ministry assigned" if code == NOT_GIVEN else names.get(code, code)
        last_ministry = len(rows) > 1 and code == rows[-2]["ministry"]
        table.add_row(label, *(str(row[c]) for c in STATS_COLUMNS), end_section=last_ministry)
    out.print(table)


@app.command()
def assign(
    external_id: Annotated[str, typer.Argument(help="the recommendation's external_id")],
    ministry: Annotated[str, typer.Argument(help="a code (interior, health…), a name or an alias from config/ministries.yaml")],
    reason: Annotated[str | None, typer.Option(help="why, for the history (default: assigned by the office)")] = None,
    actor: ActorOpt = None,
) -> None:
    """Give a recommendation its responsible ministry: an unassigned one is issued to it (in the history)."""
    from sqlmodel import select

    from followup.config.loader import normalize_name
    from followup.models.db import session_scope
    from followup.models.registry import Ministry
    from followup.models.triage import assign as assign_items
    from followup.spreadsheets.ingest import default_actor, ministry_lookup

    with _clear_errors():
        _ensure_schema()
        with session_scope() as session:
            lookup = ministry_lookup(list(session.exec(select(Ministry))))
            code = lookup.get(normalize_name(ministry))
            if code is None:
                _fail(f"unknown ministry {ministry!r} (a code such as {', '.join(sorted(set(lookup.values()))[:4])}…, a name or an alias)", 2)
            changed = assign_items(session=session, assignments={external_id: code}, actor=actor or default_actor(),
                                   reason=reason or f"assigned to {code} by the office")
    out.print(f"{external_id}: {'assigned to ' + code if changed else 'already with ' + code}", soft_wrap=True, highlight=False)


# --- the office's actions: hold, resume, withdraw; level-2 decisions; approval of drafts -----------------
# The actor is FOLLOWUP_ACTOR. Deciding and approving need an active head (followup users add);
# holding, resuming and withdrawing need an active clerk or above once the office has any
# workspace user, so scripts written for a registry without users keep working.

ReasonOpt = Annotated[str, typer.Option("--reason", help="why, for the item's history")]
ItemArg = Annotated[str, typer.Argument(help="the recommendation's external_id")]


def _office_move(action: str, external_id: str, reason: str) -> None:
    from followup.spreadsheets.ingest import default_actor
    from followup.steps import office

    act = {"hold": office.hold, "resume": office.resume, "withdraw": office.withdraw}[action]
    with _clear_errors():
        _ensure_schema()
        change = act(external_id=external_id, actor=default_actor(), reason=reason)
    out.print(f"{change.external_id}: {change.from_status} -> {change.to_status}", soft_wrap=True, highlight=False)


@app.command()
def hold(external_id: ItemArg, reason: ReasonOpt) -> None:
    """Put a recommendation on hold (it waits on the office): its deadline clock stops until it resumes."""
    _office_move("hold", external_id, reason)


@app.command()
def resume(external_id: ItemArg, reason: ReasonOpt) -> None:
    """Take a recommendation off hold, back where it stood; its deadline moves by the days it was held."""
    _office_move("resume", external_id, reason)


@app.command()
def withdraw(external_id: ItemArg, reason: ReasonOpt) -> None:
    """Withdraw a recommendation: the office drops it, nothing more is asked of the ministry (final)."""
    _office_move("withdraw", external_id, reason)


@app.command("decide")
def decide_command(
    key: Annotated[str, typer.Argument(metavar="EXTERNAL_ID|REF", help="an item awaiting a decision, or an individualized recommendation (all its items awaiting one)")],
    decision: Annotated[str, typer.Option("--decision", help="parliament_report, prosecutor_referral, new_deadline or closed")],
    reason: Annotated[str, typer.Option("--reason", help="the decision's basis, for the history and the annual report")],
    due: Annotated[date | None, typer.Option("--due", parser=parse_date_option, metavar="DATE", help="new_deadline: the new deadline, DD.MM.YYYY or YYYY-MM-DD")] = None,
) -> None:
    """Record the Commissioner's level-2 decision (needs FOLLOWUP_ACTOR to be an active head)."""
    from followup.spreadsheets.ingest import default_actor
    from followup.steps import office

    with _clear_errors():
        chosen = office.parse_decision(decision)
        _ensure_schema()
        decided = office.record_decision(key=key, decision=chosen, reason=reason, actor=default_actor(), due=due)
    out.print(f"{chosen.value}: {', '.join(decided)}" + (f" (new deadline {due:%d.%m.%Y})" if due else ""), soft_wrap=True, highlight=False)


@app.command()
def approve(
    reference: Annotated[str | None, typer.Argument(metavar="REF", help="the draft individualized recommendation (IR-20261123-INTERIOR)")] = None,
    number: Annotated[str | None, typer.Option("--number", help="the office's outgoing registry number (default: the reference)")] = None,
    on: Annotated[date | None, typer.Option("--date", parser=parse_date_option, metavar="DATE", help="the outgoing date (default: today)")] = None,
    every: Annotated[bool, typer.Option("--all", help="approve every pending draft (numbered with their references)")] = False,
) -> None:
    """Approve and send drafted individualized recommendations, signed by you (FOLLOWUP_ACTOR, an active head)."""
    from followup.interfaces.web.events import notification_queued
    from followup.spreadsheets.ingest import default_actor
    from followup.steps import office

    if every == (reference is not None):
        _fail("name one draft (followup approve REF) or give --all", 2)
    if every and number:
        _fail("--number names one letter: approve the drafts one by one to number them", 2)
    with _clear_errors():
        _ensure_schema()
        references = [d.reference for d in office.pending_drafts()] if every else [reference or ""]
        if not references:
            out.print("no draft individualized recommendation waits for approval", highlight=False)
            return
        approved = [office.approve(reference=ref, actor=default_actor(), outgoing_number=number, outgoing_date=on) for ref in references]
    for ref in approved:
        out.print(f"{ref}: approved and queued for the ministry", soft_wrap=True, highlight=False)
    # wakes the dispatcher when a Prefect server is named (PREFECT_API_URL); else the schedule sends it
    notification_queued(keys=[office.letter_key(ref) for ref in approved])


def _cell(value: object) -> str:
    """A triage-table cell: empty for None or NaN (NaN is the one value not equal to itself)."""
    return "" if value is None or value != value else str(value)


@app.command()
def triage(
    apply: Annotated[bool, typer.Option("--apply", help="assign every item a rule settles")] = False,
    dry_run: DryOpt = False,
    rules_file: Annotated[Path | None, typer.Option("--rules", help="the rules (default: config/triage.yaml, or FOLLOWUP_TRIAGE_FILE)")] = None,
    actor: ActorOpt = None,
) -> None:
    """The queue of recommendations without a ministry, with the ministry config/triage.yaml suggests.

    --apply assigns the suggestions (recorded in the history); --apply --dry-run shows what it would assign.
    """
    from sqlmodel import Session, select

    from followup.config.triage import load_triage
    from followup.models.db import get_engine
    from followup.models.registry import Ministry
    from followup.models.triage import assign as assign_items
    from followup.models.triage import triage_queue
    from followup.spreadsheets.ingest import default_actor

    with _clear_errors():
        _ensure_schema()
        with Session(get_engine()) as session, session.begin():
            codes = {m.code for m in session.exec(select(Ministry))}
            rules = load_triage(rules_file, ministry_codes=codes)
            queue = triage_queue(session=session, rules=rules)
            settled = queue[queue["suggested"].notna()]
            changed = 0
            if apply and not dry_run:
                changed = assign_items(session=session, assignments=dict(zip(settled["external_id"], settled["suggested"], strict=True)),
                                       actor=actor or default_actor(), reason="assigned by the triage rules")
    title = f"{len(queue)} recommendations without a ministry"
    table = Table(title=title, title_justify="left")
    # numbers, codes and dates stay on one line; the text takes what is left. A narrow terminal
    # (80 columns folded every id over three lines) shows only number, date, suggestion, text
    wide = out.width >= 120
    columns = ("external_id", "source", "document", "issued", "facility", "themes", "text", "suggested", "rule") if wide else (
        "external_id", "issued", "suggested", "text")
    for column in columns:
        short = column in ("external_id", "source", "issued", "suggested")
        table.add_column(column, no_wrap=short, overflow="ellipsis" if short else "fold")
    for row in queue.itertuples(index=False):
        text = (row.text[:80] + "…") if len(row.text) > 80 else row.text
        values = {"external_id": row.external_id, "source": row.source, "document": _cell(row.mechanism_ref),
                  "issued": f"{row.issued_on:%d.%m.%Y}", "themes": _cell(row.themes), "text": text,
                  "facility": " ".join(filter(None, (_cell(row.facility), f"({row.facility_type})" if _cell(row.facility_type) else ""))),
                  "suggested": _cell(row.suggested), "rule": _cell(row.rule)}
        table.add_row(*(values[c] for c in columns))
    out.print(table)
    if apply:
        verb = "would assign" if dry_run else "assigned"
        out.print(f"{verb} {len(settled) if dry_run else changed}; {len(queue) - len(settled)} left for the office "
                  "(followup assign EXTERNAL_ID MINISTRY)", soft_wrap=True, highlight=False)


@follow_up_app.command("select")
def follow_up_select(
    external_ids: Annotated[list[str], typer.Argument(help="the recommendations the committee selected")],
    due: Annotated[date | None, typer.Option("--due", parser=parse_date_option, metavar="DATE", help="the date the concluding observations name, DD.MM.YYYY or YYYY-MM-DD (default: the committee's term in policy.yaml)")] = None,
    deselect: Annotated[bool, typer.Option("--deselect", help="take them out of the procedure (the deadline stays)")] = False,
    actor: ActorOpt = None,
) -> None:
    """Mark recommendations as selected for a committee's follow-up procedure and give them its deadline."""
    from followup.config.policy import load_policy
    from followup.models.db import session_scope
    from followup.models.procedure import select_for_follow_up
    from followup.spreadsheets.ingest import default_actor

    with _clear_errors():
        _ensure_schema()
        with session_scope() as session:
            done = select_for_follow_up(session=session, external_ids=external_ids, policy=load_policy(), actor=actor or default_actor(),
                                        due_on=due, selected=not deselect)
    for key, deadline in done:
        out.print(f"{key}: {'no longer in the follow-up procedure' if deselect else f'follow-up report due {deadline:%d.%m.%Y}'}",
                  soft_wrap=True, highlight=False)
    if not done:
        out.print("nothing changed", highlight=False)


@follow_up_app.command("list")
def follow_up_list() -> None:
    """The recommendations in a follow-up procedure: committee, deadline, ministry, status, latest grade."""
    from sqlmodel import Session, col, select

    from followup.models.db import get_engine
    from followup.models.international import committee_of
    from followup.models.procedure import grade_meaning
    from followup.models.registry import Recommendation

    with _clear_errors():
        _ensure_schema()
        with Session(get_engine()) as session:
            rows = list(session.exec(select(Recommendation).where(col(Recommendation.follow_up).is_(True)).order_by(col(Recommendation.due_on), col(Recommendation.external_id))))
    table = Table(title=f"{len(rows)} recommendations in a follow-up procedure", title_justify="left")
    for column in ("external_id", "committee", "document", "due", "ministry", "status", "grade"):
        table.add_column(column, overflow="fold")
    for r in rows:
        grade = f"{r.grade} ({grade_meaning(r.grade)})" if r.grade else ""
        table.add_row(r.external_id, committee_of(r.mechanism_ref) or "", r.mechanism_ref or "",
                      f"{r.due_on:%d.%m.%Y}" if r.due_on else "", r.ministry_code or "—", r.status, grade)
    out.print(table)


# --- ministries' replies: the office's review ---------------------------------------------------------

ReplyArg = Annotated[str, typer.Argument(metavar="ID", help="the reply: REPLY-12 or 12")]
ItemsOpt = Annotated[list[str] | None, typer.Option("--item", help="only the claim on this recommendation (external_id); repeat for several (default: all under review)")]


def _reply_id(value: str) -> int:
    from followup.steps.replies import ReviewError, parse_reply_id

    try:
        return parse_reply_id(value)
    except ReviewError as exc:
        raise typer.BadParameter(str(exc)) from None


@replies_app.command("list")
def replies_list(
    include_all: Annotated[bool, typer.Option("--all", help="every claim of every recorded reply (applied, accepted, returned, refused…)")] = False,
) -> None:
    """The office's review queue: ministries' claims waiting for a decision (followup replies accept|return ID)."""
    from followup.models.answers import shorten
    from followup.steps.replies import list_claims_under_review

    with _clear_errors():
        _ensure_schema()
        lines = list_claims_under_review(include_all=include_all)
    what = "claims of ministries' replies" if include_all else "claims under review"
    table = Table(title=f"{len(lines)} {what}", title_justify="left")
    columns = ("reply", "ministry", "date", "item", "status now", "claim", "measures") + (("outcome", "comment") if include_all else ())
    for column in columns:
        short = column in ("reply", "ministry", "date", "item")
        table.add_column(column, no_wrap=short, overflow="ellipsis" if short else "fold")
    for line in lines:
        row = [line.reference + (" (paper)" if line.channel == "paper" else ""), line.ministry_code, f"{line.responded_on:%d.%m.%Y}",
               line.external_id, line.status, line.claimed_status, shorten(line.measures, 80)]
        if include_all:
            row += [line.outcome + (f" ({line.reviewed_by})" if line.reviewed_by else ""), shorten(line.review_comment, 80)]
        table.add_row(*row)
    out.print(table)
    if not lines:
        out.print("nothing waits for the office's review" if not include_all else "no reply recorded yet", highlight=False)


@replies_app.command("accept")
def replies_accept(reply: ReplyArg, item: ItemsOpt = None, actor: ActorOpt = None) -> None:
    """Accept a reply's claims under review: each item moves to the claimed status (the history names the reply and you)."""
    from followup.spreadsheets.ingest import default_actor
    from followup.steps.replies import accept_claims

    reply_id = _reply_id(reply)
    with _clear_errors():
        _ensure_schema()
        result = accept_claims(reply_id=reply_id, actor=actor or default_actor(), external_ids=item or None)
    if result.accepted:
        out.print(f"{result.reference} ({result.ministry_code}): accepted {', '.join(result.accepted)}", soft_wrap=True, highlight=False)
    for claim in result.refused:
        out.print(f"{result.reference}: {claim.external_id} refused: {claim.why} (kept with the reply)", soft_wrap=True, highlight=False)


@replies_app.command("return")
def replies_return(
    reply: ReplyArg,
    comment: Annotated[str, typer.Option("--comment", help="what the ministry must add or correct; sent to it with the items")],
    item: ItemsOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Return a reply's claims under review to the ministry with a comment: the items keep their status."""
    from followup.spreadsheets.ingest import default_actor
    from followup.steps.replies import return_claims

    reply_id = _reply_id(reply)
    with _clear_errors():
        _ensure_schema()
        result = return_claims(reply_id=reply_id, actor=actor or default_actor(), comment=comment, external_ids=item or None)
    out.print(f"{result.reference} ({result.ministry_code}): returned {', '.join(result.returned)}; the letter to the ministry "
              "is in the outbox and leaves with the next dispatch (followup run dispatch)", soft_wrap=True, highlight=False)


@app.command()
def grade(
    external_id: Annotated[str, typer.Argument(help="the recommendation's external_id")],
    value: Annotated[str, typer.Argument(metavar="GRADE", help="A, B, C, D, E (or the Human Rights Committee's B1, B2, C1, C2, D1, D2)")],
    round_: Annotated[int, typer.Option("--round", help="the follow-up round (1 for the first assessment)")] = 1,
    on: Annotated[date | None, typer.Option("--on", parser=parse_date_option, metavar="DATE", help="the day of the committee's assessment, DD.MM.YYYY or YYYY-MM-DD (default: today)")] = None,
    document: Annotated[str | None, typer.Option(help="the committee's follow-up report, e.g. CCPR/C/125/2")] = None,
    note: Annotated[str | None, typer.Option(help="what the committee said")] = None,
    next_due: Annotated[date | None, typer.Option("--next-due", parser=parse_date_option, metavar="DATE", help="the committee's deadline for further information, if it asked for it")] = None,
    actor: ActorOpt = None,
) -> None:
    """Record a treaty body's grade of the state's follow-up reply, for one round (in the history)."""
    from followup.models.calendar import local_today
    from followup.models.db import session_scope
    from followup.models.procedure import record_grade
    from followup.spreadsheets.ingest import default_actor

    graded_on = on or local_today()
    later = next_due
    with _clear_errors():
        _ensure_schema()
        with session_scope() as session:
            result = record_grade(session=session, external_id=external_id, grade=value, round=round_, graded_on=graded_on,
                                  actor=actor or default_actor(), document=document, note=note, next_due=later)
    state = "recorded" if result.changed else "already recorded"
    out.print(f"{external_id}: round {result.round} grade {result.grade} ({result.meaning}) {state}", soft_wrap=True, highlight=False)


def _stop_on_sigterm(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # the shells' code for "ended by that signal"


#: why a handed-over run `followup serve` did not finish is marked Crashed
ABANDONED = "followup serve stopped before the run ended: what it had not committed was rolled back; run the step again"


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="port of the local Prefect server and UI")] = 4200,
) -> None:
    """Run the whole pipeline on this machine: a Prefect server and every deployment of prefect.yaml.

    With PREFECT_API_URL set, the deployments are served to that server instead of a local one.
    """
    import os

    from prefect import serve as prefect_serve
    from prefect import tags
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from followup.operations.deployments import (
        crash_desk_orphans,
        desk_tag,
        forget_serving,
        load_flow,
        record_serving,
        runner_deployments,
        start_server,
    )
    from followup.operations.desk import STEPS, Desk

    # a SIGTERM (a service manager's stop) ends serve like Ctrl+C, through its clean-up below, also
    # before Prefect's runner takes the signal over: the server it started lives in a session of
    # its own and would otherwise outlive it
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    with _clear_errors():
        _ensure_schema()
        deployments = runner_deployments()
    server = None
    home = _prefect_home()
    api = os.environ.get("PREFECT_API_URL")
    if not api:
        home.mkdir(parents=True, exist_ok=True)
        out.print(f"starting a Prefect server on 127.0.0.1:{port} (data in {home}) …", soft_wrap=True)
        try:
            server = start_server(port, home=home, log=home / "server.log")
        except RuntimeError as exc:
            _fail(str(exc), 3)
        api = server.url
    out.print(f"Prefect UI: {api.removesuffix('/api')}  ·  registry: {get_settings().database_url.split('@')[-1]}", soft_wrap=True)
    out.print(f"serving {', '.join(d.name for d in deployments)}; Ctrl+C stops", soft_wrap=True)
    served_to = api

    def run_handed_over(step: str, parameters: dict[str, Any]) -> Any:
        """A step `followup run` handed over (operations/desk.py), run here, in the desk's thread.

        Without Prefect's heartbeats: nothing watches them here (no automation marks a silent run
        crashed), and a flow run ends only once its heartbeat thread has woken, up to a second.
        Tagged with this folder's desk instead: a run this process did not finish is marked
        crashed when it stops or starts again (crash_desk_orphans)."""
        _ensure_schema()
        with temporary_settings(updates={PREFECT_API_URL: served_to, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}), tags(desk):
            return load_flow(STEPS[step])(**parameters)

    def crash_orphans(why: str) -> None:
        try:
            crashed = crash_desk_orphans(served_to, desk, why=why)
        except Exception as exc:  # noqa: BLE001 - the server may be gone already: say so, stop anyway
            err.print(f"could not check for unfinished handed-over runs: {type(exc).__name__}: {exc}", soft_wrap=True)
            return
        for name in crashed:
            err.print(f"handed-over run {name!r} did not finish: marked Crashed ({why})", soft_wrap=True, highlight=False)

    desk = desk_tag(home)
    crash_orphans(ABANDONED)  # a run the last serve of this folder left when it stopped
    # `followup run …` in this folder hands its step to the desk, or reports to the server here
    desk_server = Desk(run=run_handed_over, failure=_known_failure, api_url=api)
    record_serving(home, api, desk_url=desk_server.open(), desk_token=desk_server.token)
    out.print("`followup run …` in this folder runs its step here, at once", soft_wrap=True)
    try:
        with temporary_settings(updates={PREFECT_API_URL: api}):
            prefect_serve(*deployments, print_starting_message=False)
    finally:
        forget_serving(home)
        desk_server.close()
        if not desk_server.idle(timeout=0):
            err.print("waiting for the run handed over to end (Ctrl+C again abandons it)", soft_wrap=True)
            with suppress(KeyboardInterrupt):
                desk_server.idle()
        crash_orphans(ABANDONED)
        if server is not None:
            server.stop()


@production_app.command("up")
def production_up(
    prefect_database: Annotated[str, typer.Option(
        envvar="PREFECT_API_DATABASE_CONNECTION_URL",
        help="Prefect's own PostgreSQL database, postgresql+asyncpg://USER@HOST:5432/prefect (created if absent, with pg_trgm)")],
    port: Annotated[int, typer.Option(help="port of the Prefect server and UI")] = 4200,
    host: Annotated[str, typer.Option(help="address the server listens on: loopback by default; another address "
                                            "only behind a TLS reverse proxy (basic auth sends the password with every request)")] = "127.0.0.1",
    workers: Annotated[int, typer.Option(min=0, help="workers started on this machine")] = 2,
    detach: Annotated[bool, typer.Option(help="return once everything runs; `followup production down` stops it")] = False,
) -> None:
    """The production setup on this machine: the Prefect server on PostgreSQL, the registry's schema,
    the process work pool, `prefect deploy --all` and the workers. Ctrl+C stops them.

    The API and UI are closed with Prefect's basic auth: PREFECT_API_AUTH_STRING=user:password
    (or PREFECT_SERVER_API_AUTH_STRING) from the environment, required."""
    import time

    from followup.operations.production import ProductionError, auth_string_from_environment, up

    home = _prefect_home()
    registry = get_settings().database_url
    try:
        production = up(prefect_database_url=prefect_database, registry_url=registry, home=home, port=port, host=host,
                        workers=workers, auth_string=auth_string_from_environment())
    except (ProductionError, RuntimeError, OperationalError) as exc:
        _fail(str(exc), 3)
    out.print(f"Prefect UI: {production.ui_url}  ·  registry: {registry.split('@')[-1]}", soft_wrap=True)
    out.print(f"server pid {production.server.process.pid}; workers "
              + ", ".join(f"{w.name} (pid {w.pid})" for w in production.workers), soft_wrap=True)
    if detach:
        out.print(f"stop with: followup production down   (pids in {home / 'production.json'})", soft_wrap=True)
        return
    out.print("Ctrl+C stops the workers and the server", soft_wrap=True)
    try:
        while production.server.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        production.stop()


@production_app.command("down")
def production_down() -> None:
    """Stop the server and workers `followup production up --detach` started (by their process ids)."""
    from followup.operations.production import down

    stopped = down(_prefect_home())
    out.print(f"stopped {len(stopped)} process(es): {', '.join(map(str, stopped))}" if stopped else "nothing was running")


MinistryArg = Annotated[str, typer.Argument(help="a code (interior, health…), a name or an alias (МВД) from config/ministries.yaml")]


def _ministry_code(session: Session, ministry: str) -> str:
    """The code of a ministry named as the imports name it (code, name or alias, any letter case)."""
    from sqlmodel import select

    from followup.config.loader import normalize_name
    from followup.models.registry import Ministry
    from followup.spreadsheets.ingest import ministry_lookup

    lookup = ministry_lookup(list(session.exec(select(Ministry))))
    code = lookup.get(normalize_name(ministry))
    if code is None:
        _fail(f"unknown ministry {ministry!r} (a code such as {', '.join(sorted(set(lookup.values()))[:4])}…, a name or an alias)", 2)
    return code


def _print_link(link: str) -> None:
    # the only place a reply link is printed: never wrapped (a broken line is a broken link), never logged
    out.print(link, soft_wrap=True, highlight=False, markup=False)


@links_app.command("show")
def links_show(ministry: MinistryArg) -> None:
    """Print the ministry's current reply link, dated today, and its last day: for the office to send by hand."""
    from followup.config.policy import load_policy
    from followup.models.calendar import local_today
    from followup.models.db import session_scope
    from followup.models.links import expiry, ministry_link

    with _clear_errors():
        _ensure_schema()
        days, today = load_policy().replies.link_days, local_today()
        with session_scope() as session:
            code = _ministry_code(session, ministry)
            link = ministry_link(session, code, today, days)
    out.print(f"{code}: reply link of {today:%d.%m.%Y}, valid until {expiry(today, days):%d.%m.%Y} inclusive "
              "(send it to the ministry only; `followup links revoke` stops it)", soft_wrap=True, highlight=False)
    _print_link(link)


@links_app.command("revoke")
def links_revoke(ministry: MinistryArg) -> None:
    """Stop every reply link and open session of the ministry at once (a leaked link); print its new link."""
    from followup.config.policy import load_policy
    from followup.models.calendar import local_today
    from followup.models.db import session_scope
    from followup.models.links import expiry, ministry_link, revoke

    with _clear_errors():
        _ensure_schema()
        get_settings().signing_key()  # no key, no new link: then nothing is revoked either
        days, today = load_policy().replies.link_days, local_today()
        with session_scope() as session:
            code = _ministry_code(session, ministry)
            generation = revoke(session, code)
            link = ministry_link(session, code, today, days, generation=generation)
    out.print(f"{code}: every earlier reply link and open session of this ministry stopped working (links are now of "
              f"generation {generation}); letters from now on carry the new link. The new link, dated {today:%d.%m.%Y}, "
              f"valid until {expiry(today, days):%d.%m.%Y} inclusive:", soft_wrap=True, highlight=False)
    _print_link(link)


@app.command()
def web(
    host: Annotated[str, typer.Option(help="address to listen on (the reverse proxy in front of it terminates TLS)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
) -> None:
    """Run the ministries' reply portal (the pages behind the links in the letters).

    Needs FOLLOWUP_SECRET_KEY (the same as the workers'; on an SQLite registry one is made beside it)
    and FOLLOWUP_PUBLIC_URL, the address the ministries reach it at. Link tokens are masked in the log.
    """
    import os

    import uvicorn

    from followup.config.settings import MissingSecretKey

    try:
        get_settings().signing_key()  # refused before anything else is touched
    except MissingSecretKey as exc:
        _fail(str(exc), 2)
    if not os.environ.get("PREFECT_API_URL"):
        from followup.operations.deployments import serving_api

        served = serving_api(_prefect_home())
        if served:
            # set before the app imports Prefect (its events), which reads its settings then
            os.environ["PREFECT_API_URL"] = served
            out.print(f"confirmed replies are announced to the Prefect server of `followup serve` ({served})",
                      soft_wrap=True, highlight=False)
    from followup.interfaces.web.app import create_app
    from followup.interfaces.web.security import uvicorn_log_config
    with _clear_errors():
        _ensure_schema()
        application = create_app()
    out.print(f"reply portal on http://{host}:{port} (public address {get_settings().public_url}); Ctrl+C stops",
              soft_wrap=True, highlight=False)
    # proxy_headers: the client address (the limit on link guesses) comes from the trusted proxy's
    # X-Forwarded-For (FORWARDED_ALLOW_IPS, 127.0.0.1 by default)
    uvicorn.run(application, host=host, port=port, log_config=uvicorn_log_config(), proxy_headers=True,
                server_header=False)


@app.command()
def demo() -> None:
    """Load a realistic NPM year (≈474 facilities, 461 visits, 3,000 recommendations) and summarise it."""
    from followup.interfaces.demo import run_demo

    with _clear_errors():
        run_demo(out)


def _read_password() -> str:
    """The new password from standard input: asked twice at a terminal, else the first line (never an argument,
    which the shell's history and `ps` would show)."""
    if sys.stdin.isatty():
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        _fail("no password given on standard input")
    return str(password)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="the sign-in name; the history names the user's actions with it")],
    role: Annotated[str, typer.Option(help="clerk, head or admin")],
    full_name: Annotated[str | None, typer.Option("--full-name", help="as printed under a letter the user signs")] = None,
    position: Annotated[str | None, typer.Option(help="the user's position, printed under a signed letter")] = None,
) -> None:
    """Add an office user; the password is read from standard input (twice at a terminal)."""
    from followup.models.db import session_scope
    from followup.models.users import UserError, create_user

    password = _read_password()
    with _clear_errors():
        _ensure_schema()
        try:
            with session_scope() as session:
                user = create_user(session=session, name=name, role=role, password=password, full_name=full_name,
                                   position=position)
                added = f"user {user.name} added as {user.role}"
        except UserError as exc:
            _fail(str(exc), 2)
    out.print(added, soft_wrap=True, highlight=False)


@users_app.command("disable")
def users_disable(name: Annotated[str, typer.Argument(help="the user's sign-in name")]) -> None:
    """Disable an office user: no more sign-ins, and every open session ends at once."""
    from followup.models.db import session_scope
    from followup.models.users import UserError, disable_user

    with _clear_errors():
        _ensure_schema()
        try:
            with session_scope() as session:
                disable_user(session=session, name=name)
        except UserError as exc:
            _fail(str(exc), 2)
    out.print(f"user {name} disabled", soft_wrap=True, highlight=False)


@users_app.command("list")
def users_list() -> None:
    """The office's users: role, name and position, active or not, last sign-in."""
    from followup.models.db import session_scope
    from followup.models.users import list_users

    with _clear_errors():
        _ensure_schema()
        with session_scope() as session:
            rows = [(u.name, u.role, u.full_name or "", u.position or "", "yes" if u.active else "no",
                     f"{u.last_login_at:%d.%m.%Y %H:%M}" if u.last_login_at else "") for u in list_users(session=session)]
    table = Table(title="office users", title_justify="left")
    for column in ("name", "role", "full name", "position", "active", "last sign-in"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    out.print(table)


def main() -> None:  # pragma: no cover
    app()

