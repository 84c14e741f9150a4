"""What a run shows the admin in the Prefect UI: what it did, in words (one Markdown artifact
per run), and, when it fails for a known reason, that reason in one sentence.

Every flow of the pipeline returns its counts as a dict; shown as such ("{'derived_deadlines':
0, 'to_overdue': 3}") they are a Python repr, not a summary. `publish_summary` writes them as a
table with labels (the artifact `<flow>-summary`, one per run: its history is the runs'), and
`in_words` is the same as one line for logs and artifact descriptions.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import ParamSpec, TypeVar, cast

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.states import Failed

from followup.config.loader import ConfigError
from followup.config.settings import MissingSecretKey
from followup.spreadsheets.tabular import ImportFileError, ImportRejected

#: labels of the counts the flows return; a key without one is shown with its underscores as spaces
LABELS: dict[str, str] = {
    # check-deadlines, escalate, daily pass (steps/deadlines.py StepResult.counts)
    "derived_deadlines": "deadlines derived from the policy",
    "reminders": "items reminded of their coming deadline",
    "notifications": "messages queued",
    "individualized": "individualized recommendations issued",
    "drafts": "individualized recommendations drafted (awaiting a head's approval)",
    # dispatch (notifications/dispatch.py DispatchResult.summary)
    "claimed": "messages taken from the outbox",
    "sent": "messages sent",
    "messages": "letters delivered (one per recipient and route)",
    "failed": "messages failed (retried after their backoff)",
    "dead": "messages dead (kept in the outbox; see the digest)",
    "unroutable": "messages without a route (no Apprise URL has their tag)",
    # ingest (spreadsheets/ingest.py ImportResult.counts)
    "created": "recommendations created",
    "updated": "recommendations updated",
    "unchanged": "unchanged",
    "rejected": "rows rejected",
    "skipped": "rows skipped",
    # record-responses (steps/replies.py RecordResult.counts)
    "replies": "replies recorded",
    "applied": "claims applied",
    "under_review": "claims held for the office's review",
    "refused": "claims refused",
    "moves": "status changes",
    # digest, admin-alert
    "queued": "messages queued",
}


def label(key: str) -> str:
    if key in LABELS:
        return LABELS[key]
    if key.startswith("to_"):  # a state change: to_overdue, to_escalated…
        return "became " + key.removeprefix("to_").replace("_", " ")
    if key.startswith("dispatch_"):
        return "dispatch: " + label(key.removeprefix("dispatch_"))
    return key.replace("_", " ")


def in_words(counts: Mapping[str, object]) -> str:
    """`became overdue: 3, messages queued: 1`: the non-zero counts (label first, so no "1 messages"),
    or "nothing to do"."""
    shown = [f"{label(key)}: {value}" for key, value in counts.items() if value]
    return ", ".join(shown) if shown else "nothing to do"


def summary_markdown(title: str, counts: Mapping[str, object], notes: str = "") -> str:
    lines = [f"# {title}", "", "| what | count |", "|---|---:|"]
    lines += [f"| {label(key)} | {value} |" for key, value in counts.items()]
    return "\n".join(lines) + "\n" + (f"\n{notes.strip()}\n" if notes.strip() else "")


@task(cache_policy=NONE, task_run_name="summary: {title}")
def publish_summary(flow: str, title: str, counts: Mapping[str, object], notes: str = "") -> None:
    """The run's summary as the Markdown artifact `<flow>-summary` (a table of labelled counts)."""
    create_markdown_artifact(key=f"{flow}-summary", markdown=summary_markdown(title, counts, notes),
                             description=f"{title}: {in_words(counts)}")


# --- known failures: one sentence --------------------------------------------------------------


class RunFailure(RuntimeError):
    """A run fails for a reason its own message says whole (messages gone dead, …)."""


#: failures whose message is the whole story: a missing or rejected file, a wrong setting or
#: configuration file, no signing key, dead messages. Their traceback tells the admin nothing.
KNOWN_FAILURES: tuple[type[Exception], ...] = (ConfigError, ImportFileError, ImportRejected, MissingSecretKey, RunFailure)


class _SentenceOnly(logging.Filter):
    """Drops the traceback Prefect logs with a task's or flow's known failure (its run logger
    logs every exception with exc_info); the line itself, naming the failure, stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], KNOWN_FAILURES):
            record.exc_info = None
            record.exc_text = None
        return True


for _logger in ("prefect.flow_runs", "prefect.task_runs"):  # where Prefect's run loggers write
    logging.getLogger(_logger).addFilter(_SentenceOnly())

P = ParamSpec("P")
R = TypeVar("R")


def ends_in_a_sentence(fn: Callable[P, R]) -> Callable[P, R]:
    """For a flow's function (under @flow): a known failure fails the run with its sentence as
    the state's message and the one log line, not 70–340 lines of traceback; a caller (the
    command line, a parent flow) still gets the exception itself."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except KNOWN_FAILURES as exc:
            get_run_logger().error("%s", exc)
            return cast(R, Failed(message=str(exc), data=exc))  # Prefect ends the run in this state

    # Prefect validates the parameters against the signature: resolved here, in the flow's own
    # module (`date` of `as_of: date | None` is not a name of this one)
    run.__signature__ = inspect.signature(fn, eval_str=True)  # type: ignore[attr-defined]
    return run
