"""What a run shows the admin in the Prefect UI: what it did, in words (one Markdown artifact
per run), and, when it fails for a known reason, that reason in one sentence.

Every flow of the pipeline returns its counts as a dict; shown as such ("{'derived_deadlines':
0, 'to_overdue': 3}") they are a Python repr, not a summary. `publish_summary` writes them as a
table with labels (the artifact `<flow>-summary`, one per run: its history is the runs'), and
`in_words` is the same as one line for logs and artifact descriptions.
"""

from __future__ import annotations

from collections.abc import Mapping

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

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
    """`3 became overdue, 2 messages queued`: the non-zero counts, or "nothing to do"."""
    shown = [f"{value} {label(key)}" for key, value in counts.items() if value]
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
