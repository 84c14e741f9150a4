"""The Prefect flows that deliver: dispatch (the outbox through Apprise) and the Ombudsman digest.

`dispatch` is started by every `followup.notification.queued` event (and every 10 minutes as a
fallback); a run in which a message went `dead` fails, so the admin sees it in the Prefect UI,
and the message stays in the outbox for the digest. `digest` builds the week's tables from the
registry, queues them for the office, publishes them as a markdown artifact, then dispatches.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import (
    NONE,  # every run acts on the registry: never reuse a result
)
from prefect.events import emit_event
from sqlalchemy.orm import Session

from followup.config.notifications import load_notification_config
from followup.flows.pipeline import _as_of_name
from followup.flows.runs import RunFailure, ends_in_a_sentence, in_words, publish_summary
from followup.models.calendar import local_today
from followup.models.db import get_engine
from followup.notifications.digest import Digest, build_digest, digest_message
from followup.notifications.dispatch import DispatchResult, dispatch
from followup.notifications.outbox import queue

DIGEST_KEY = "ombudsman-digest"
OFFICE = "ombudsman"


class DeadNotifications(RunFailure):
    """Messages gave up after the configured attempts: the run fails for the admin to see."""


@task(cache_policy=NONE, task_run_name="deliver the outbox")
def dispatch_task() -> DispatchResult:
    """Claim, send and mark everything due; the outbox itself is the retry (no task retries)."""
    return dispatch()


def _announce(result: DispatchResult) -> None:
    for outcome in result.outcomes:
        emit_event(
            event=f"followup.notification.{outcome.status}",
            resource={"prefect.resource.id": f"followup.recipient.{outcome.recipient}", "prefect.resource.name": outcome.recipient},
            payload={"count": len(outcome.keys), "keys": outcome.keys[:50], "delivered_to": outcome.delivered_to,
                     "error": outcome.error, "dead": outcome.dead},
        )


@flow(name="dispatch", flow_run_name=_as_of_name("dispatch"), log_prints=True)
@ends_in_a_sentence
def dispatch_flow(as_of: date | None = None) -> dict[str, int]:
    """Send what the outbox holds; fail the run if a message went dead (it stays in the outbox)."""
    logger = get_run_logger()
    result = dispatch_task()
    _announce(result)
    rows = [
        {"recipient": o.recipient, "messages": len(o.keys), "status": o.status,
         "delivered_to": ", ".join(o.delivered_to), "error": o.error or ""}
        for o in result.outcomes
    ]
    summary = result.summary()
    day = as_of or local_today()
    create_table_artifact(
        key="dispatch",
        table=rows or [{"recipient": "—", "messages": 0, "status": "nothing due", "delivered_to": "", "error": ""}],
        description=f"dispatch {day:%d.%m.%Y}: {in_words(summary)}",
    )
    rounds = f" in {result.rounds} rounds (messages queued while it ran)" if result.rounds > 1 else ""
    publish_summary("dispatch", f"dispatch {day:%d.%m.%Y}", summary,
                    f"Per recipient: the artifact `dispatch`{rounds}." if result.outcomes else "The outbox held nothing due.")
    for outcome in result.outcomes:
        if outcome.status == "unroutable":
            logger.error("unroutable: %d message(s) for %s stay in the outbox: %s", len(outcome.keys), outcome.recipient, outcome.error)
        elif outcome.error:
            logger.warning("%s: %s (%s)", outcome.recipient, outcome.status, outcome.error)
    logger.info("dispatch: %s", in_words(summary))
    if result.dead:
        raise DeadNotifications(
            f"{len(result.dead)} notification(s) are dead after the configured attempts and stay in the outbox "
            f"(see the digest): {', '.join(result.dead[:10])}"
        )
    return summary


# --- the Ombudsman digest ------------------------------------------------------------------------


@task(cache_policy=NONE, task_run_name="build the digest {as_of}")
def build_digest_task(as_of: date, days: int) -> Digest:
    """The week's tables from the registry."""
    with get_engine().connect() as connection:
        return build_digest(connection, as_of, days=days)


def _markdown_table(frame: pd.DataFrame, limit: int = 200) -> str:
    if frame.empty:
        return "_none_\n"
    shown = frame.head(limit).astype(object).where(frame.head(limit).notna(), "")

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")[:120]

    lines = ["| " + " | ".join(map(str, shown.columns)) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    more = f"\n_… and {len(frame) - limit} more_" if len(frame) > limit else ""
    return "\n".join(lines) + more + "\n"


def digest_markdown(digest: Digest) -> str:
    parts = [f"# Ombudsman digest {digest.since:%d.%m.%Y} – {digest.as_of:%d.%m.%Y}\n"]
    for section in digest.sections:
        parts.append(f"## {section['key'].replace('_', ' ')} ({len(section['rows'])})\n\n{_markdown_table(section['rows'])}")
    return "\n".join(parts)


@task(cache_policy=NONE, task_run_name="queue the digest {as_of}")
def queue_digest_task(digest: Digest, as_of: date, language: str) -> list[str]:
    """Render the digest in the office's language and put it in the outbox (once per day)."""
    message = digest_message(digest, language)
    with Session(get_engine()) as session, session.begin():
        queued = queue(session, [{"recipient": OFFICE, **message, "dedupe_key": f"digest:{as_of.isoformat()}"}])
    return list(queued)


@flow(name="digest", flow_run_name=_as_of_name("digest"), log_prints=True)
@ends_in_a_sentence
def digest_flow(as_of: date | None = None, send: bool = True) -> dict[str, int]:
    """The office's weekly digest: build, publish as an artifact, queue, and (by default) send."""
    as_of = as_of or local_today()
    config = load_notification_config()
    digest = build_digest_task(as_of, config.digest.days)
    create_markdown_artifact(key=DIGEST_KEY, markdown=digest_markdown(digest), description=f"digest {as_of}")
    queued = queue_digest_task(digest, as_of, config.language_of(OFFICE))
    counts = {s["key"]: len(s["rows"]) for s in digest.sections}
    if queued:
        emit_event(event="followup.notification.queued", resource={"prefect.resource.id": "followup.outbox"},
                   payload={"as_of": as_of.isoformat(), "count": len(queued), "keys": queued})
    else:
        get_run_logger().info("the digest of %s was queued before; it is not sent twice", as_of)
    counts["queued"] = len(queued)
    if send:
        counts |= {f"dispatch_{k}": v for k, v in dispatch_flow(as_of).items()}
    return counts
