"""`followup demo`: a realistic NPM year in the default registry, through the real import path.

The sample files are written to `var/demo/` first and imported exactly as a clerk's files
would be, so the demo also shows what an import file looks like. Running it again changes
nothing (the imports are idempotent).
"""

from __future__ import annotations

import logging
import os
from datetime import date
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, insert, select

from followup.config.policy import copy_with_approval
from followup.config.settings import get_settings
from followup.interfaces.demo_data import DemoData, generate
from followup.models.crud import init_db
from followup.models.db import get_engine, session_scope
from followup.models.registry import Facility, Recommendation, Visit, table_of
from followup.spreadsheets.ingest import import_recommendations, import_responses
from followup.spreadsheets.tabular import write_table

DEMO_YEAR = 2026
#: the day the demo's daily pass runs as of: a Monday after the last replies, when some
#: items are due within two weeks, many are overdue and some have waited 10 working days
DEMO_AS_OF = date(2026, 11, 23)
ACTOR = "demo"


def load_places(frames: DemoData) -> tuple[int, int]:
    """Insert the demo's facilities and visits that are not in the registry yet (set-based)."""
    with session_scope() as session:
        connection = session.connection()
        f, v = table_of(Facility), table_of(Visit)
        known = set(connection.execute(select(f.c.name)).scalars())
        new = frames.facilities[~frames.facilities["name"].isin(known)]
        if len(new):
            connection.execute(
                insert(table_of(Facility)),
                new.rename(columns={"ministry": "ministry_code"}).to_dict("records"),
            )
        ids: dict[str, int] = dict(connection.execute(select(f.c.name, f.c.id)).tuples().all())
        known_visits = set(connection.execute(select(v.c.external_id)).scalars())
        visits = frames.visits[~frames.visits["visit_id"].isin(known_visits)]
        if len(visits):
            connection.execute(
                insert(table_of(Visit)),
                [
                    {
                        "external_id": v.visit_id,
                        "visited_on": date.fromisoformat(v.date),
                        "kind": v.kind,
                        "facility_id": ids[v.facility],
                        "team": v.team,
                    }
                    for v in visits.itertuples()
                ],
            )
    return len(new), len(visits)


def run_demo(console: Console) -> None:
    if not os.environ.get("FOLLOWUP_POLICY_FILE"):
        # the demo's individualized recommendations leave without a head's approval (policy
        # `individualized.approval: automatic`): the shipped policy, approval automatic
        os.environ["FOLLOWUP_POLICY_FILE"] = str(copy_with_approval(Path("var/demo/policy.yaml").resolve(), "automatic"))
        get_settings.cache_clear()
    init_db()
    frames = generate(year=DEMO_YEAR)
    folder = Path("var/demo")
    folder.mkdir(parents=True, exist_ok=True)
    rec_file, reply_file = folder / "recommendations.csv", folder / "responses.csv"
    write_table(frames.recommendations, rec_file)
    write_table(frames.responses, reply_file)
    new_facilities, new_visits = load_places(frames)
    imported = import_recommendations(rec_file, actor=ACTOR)
    replies = import_responses(reply_file, actor=ACTOR, today=date(DEMO_YEAR, 12, 31))
    console.print(f"registry: {get_settings().database_url.split('@')[-1]}", soft_wrap=True)
    console.print(
        f"facilities +{new_facilities}, visits +{new_visits}; {rec_file}: "
        + ", ".join(f"{v} {k}" for k, v in imported.counts().items())
        + f"; {reply_file}: {replies.updated} replies recorded, {replies.unchanged} already known",
        soft_wrap=True,
    )
    console.print(summary_table())
    console.print(f"\nDaily pass as of {DEMO_AS_OF:%d.%m.%Y} (check-deadlines, then escalate) on Prefect …", soft_wrap=True)
    from followup.flows.pipeline import daily_flow

    for name in ("prefect", "prefect.flow_runs", "prefect.task_runs", "prefect.events"):
        logging.getLogger(name).setLevel(logging.WARNING)  # the run logs are in the Prefect UI
    passed = daily_flow(DEMO_AS_OF)
    check, escalate = passed["check-deadlines"], passed["escalate"]
    console.print(
        f"check-deadlines: {check.get('reminders', 0)} reminders due, {check.get('to_overdue', 0)} items newly overdue, "
        f"{check.get('derived_deadlines', 0)} deadlines derived, {check.get('notifications', 0)} letters queued",
        soft_wrap=True,
    )
    console.print(
        f"escalate: {escalate.get('individualized', 0)} individualized recommendations covering "
        f"{escalate.get('to_escalated', 0)} items, {escalate.get('to_awaiting_decision', 0)} items for the Ombudsman's decision",
        soft_wrap=True,
    )
    console.print(pipeline_table())
    from followup.flows.notify import digest_flow

    digest = digest_flow(DEMO_AS_OF)
    delivered = passed["dispatch"].get("sent", 0) + digest.get("dispatch_sent", 0)
    console.print(
        f"digest for the Ombudsman's office ({DEMO_AS_OF:%d.%m.%Y}): {digest.get('new_overdue', 0)} newly overdue, "
        f"{digest.get('individualized', 0)} individualized recommendations, {digest.get('unassigned', 0)} items without an owner",
        soft_wrap=True,
    )
    console.print(outbox_summary(delivered), soft_wrap=True)
    console.print("Try: followup history NPM-2026-0001-01 · followup export recommendations var/demo/export.xlsx", soft_wrap=True)
    console.print(reply_link_note(), soft_wrap=True, highlight=False, markup=False)


def reply_link_note(code: str = "interior") -> str:
    """One ministry's reply link, to try the reply page: the link its demo letters carry while that
    one works, else the one dated today (the demo's letters are dated 23.11.2026)."""
    from followup.config.policy import load_policy
    from followup.models.calendar import local_today
    from followup.models.links import expiry, ministry_link

    days, today = load_policy().replies.link_days, local_today()
    day = DEMO_AS_OF if expiry(DEMO_AS_OF, days) >= today else today
    with session_scope() as session:
        link = ministry_link(session, code, day, days)
    return (f"The {code} ministry's reply link ({'as in its letters of ' if day == DEMO_AS_OF else 'dated '}{day:%d.%m.%Y}, "
            f"valid until {expiry(day, days):%d.%m.%Y}): open it after `followup web` to answer as the ministry\n{link}")


def outbox_summary(delivered: int) -> str:
    """Where the demo's letters went: the local outbox folder unless FOLLOWUP_APPRISE_CONFIG routes them elsewhere."""
    from followup.config.notifications import apprise_config_path
    from followup.config.settings import CONFIG_DIR

    if apprise_config_path() != CONFIG_DIR / "apprise.yaml":
        return f"{delivered} messages delivered through the routes in {apprise_config_path()}"
    outbox = Path("var/outbox")
    folders = sorted(p for p in outbox.iterdir() if p.is_dir()) if outbox.is_dir() else []
    counts = ", ".join(f"{p.name} {sum(1 for f in p.iterdir() if f.suffix == '.html')}" for p in folders)
    return (
        f"{delivered} messages delivered to the local outbox {outbox.resolve()}/ — one folder per recipient "
        f"({counts} files); open the .html letters in a browser"
    )


def pipeline_table() -> Table:
    """The individualized recommendations and queued letters, as the office would check them."""
    from followup.models.followup import (
        IndividualizedItem,
        IndividualizedRecommendation,
        Notification,
    )

    ir, item = table_of(IndividualizedRecommendation), table_of(IndividualizedItem)
    with get_engine().connect() as connection:
        letters = connection.execute(
            select(ir.c.reference, ir.c.response_due_on, func.count(item.c.id))
            .join(item, item.c.individualized_id == ir.c.id)
            .group_by(ir.c.reference, ir.c.response_due_on)
            .order_by(ir.c.reference)
        ).all()
        queued = connection.execute(select(func.count()).select_from(Notification)).scalar_one()
    table = Table(title=f"individualized recommendations ({queued} messages queued in the outbox)", title_justify="left")
    table.add_column("reference", no_wrap=True)
    table.add_column("items", justify="right")
    table.add_column("reply due", no_wrap=True)
    for reference, due, items in letters:
        table.add_row(reference, str(items), f"{due:%d.%m.%Y}")
    return table


#: column headers that keep the table inside an 80-column terminal
SHORT = {
    "unassigned": "unassig.", "issued": "issued", "in_progress": "in prog.", "on_hold": "on hold",
    "overdue": "overdue", "escalated": "escal.", "partially_implemented": "partly",
    "implemented": "done", "rejected": "rej.", "withdrawn": "withdr.",
}


def summary_table() -> Table:
    """Recommendations per ministry and status, with the implementation rate."""
    r, v = table_of(Recommendation), table_of(Visit)
    with get_engine().connect() as connection:
        rows = connection.execute(
            select(r.c.ministry_code, r.c.status, func.count()).group_by(r.c.ministry_code, r.c.status)
        ).all()
        visits: dict[str, int] = dict(connection.execute(select(v.c.kind, func.count()).group_by(v.c.kind)).tuples().all())
        facilities = connection.execute(select(func.count()).select_from(Facility)).scalar_one()
    frame = pd.DataFrame(rows, columns=["ministry", "status", "n"]).fillna({"ministry": "(none)"})
    pivot = frame.pivot_table(index="ministry", columns="status", values="n", aggfunc="sum", fill_value=0)
    order = [s for s in ("unassigned", "issued", "in_progress", "on_hold", "overdue", "escalated",
                         "partially_implemented", "implemented", "rejected", "withdrawn") if s in pivot.columns]
    pivot = pivot[order]
    pivot["total"] = pivot.sum(axis=1)
    total_visits = sum(visits.values())
    table = Table(
        title=(
            f"{int(pivot['total'].sum())} recommendations · {total_visits} visits "
            f"({', '.join(f'{visits[k]} {k}' for k in sorted(visits))}) · {facilities} facilities"
        ),
        title_justify="left",
    )
    table.add_column("ministry", no_wrap=True, min_width=10)
    for column in pivot.columns:
        table.add_column(SHORT.get(column, column), justify="right")
    table.add_column("impl. %", justify="right")
    for ministry, row in pivot.sort_values("total", ascending=False).iterrows():
        rate = 100 * row.get("implemented", 0) / row["total"] if row["total"] else 0
        table.add_row(str(ministry), *(str(int(v)) for v in row), f"{rate:.0f}%")
    return table
